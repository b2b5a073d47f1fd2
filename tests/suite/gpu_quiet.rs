//! Probing for a GPU prints nothing on a machine without a display: with `XDG_RUNTIME_DIR` (and
//! every Wayland variable) removed from the environment, `nmf info` (which lists the adapters)
//! and `nmf fit --backend auto` (which searches for one) write no window-system complaint such
//! as libwayland's `error: XDG_RUNTIME_DIR is invalid or not set in the environment.`

use std::path::Path;
use std::process::{Command, Output};

use nmf_gpu::io::write_npy_atomic;
use nmf_gpu::ndarray::Array2;

fn headless(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nmf"))
        .args(args)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET")
        .env_remove("NODEVICE_SELECT")
        .output()
        .expect("run nmf")
}

fn assert_quiet(o: &Output, what: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("XDG_RUNTIME_DIR") && !err.to_lowercase().contains("wayland"),
        "{what} printed a window-system message:\n{err}"
    );
}

#[test]
fn info_lists_adapters_without_window_system_messages() {
    let o = headless(&["info"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("GPU adapters:"), "{out}");
    assert_quiet(&o, "nmf info");
}

#[test]
fn auto_backend_fit_searches_without_window_system_messages() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("v.npy");
    let v = Array2::from_shape_fn((20, 15), |(i, j)| ((i * 3 + j * 5) % 7) as f32 + 0.5);
    write_npy_atomic(&input, &v).unwrap();
    let out = dir.path().join("out");
    let o = headless(&[
        "fit",
        "--input",
        s(&input),
        "--rank",
        "2",
        "--output-dir",
        s(&out),
        "--max-iter",
        "5",
        "--backend",
        "auto",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_quiet(&o, "nmf fit --backend auto");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
