//! `nmf fit --loss is` and `--beta B`: the fit runs, summary.json names the loss, `transform`
//! and `--resume` read it back, and conflicting flags are usage errors (exit 2).

use std::path::Path;
use std::process::{Command, Output};

use crate::common::pseudo;
use nmf_gpu::io::write_npy_atomic;

fn nmf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nmf"))
        .args(args)
        .output()
        .expect("run nmf")
}

fn fit(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "fit",
        "--input",
        input.to_str().expect("utf-8 path"),
        "--rank",
        "3",
        "--output-dir",
        out.to_str().expect("utf-8 path"),
        "--max-iter",
        "30",
        "--backend",
        "cpu",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    nmf(&args)
}

#[test]
fn beta_losses_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("v.npy");
    write_npy_atomic(&input, &(pseudo(20, 15, 1) + 0.1)).expect("write V");
    for (flags, name) in [
        (vec!["--loss", "is"], "is"),
        (vec!["--beta", "1.5"], "beta=1.5"),
        (vec!["--beta", "-0.5"], "beta=-0.5"),
        (vec!["--beta", "1"], "kl"),
    ] {
        let out = dir.path().join(name);
        let o = fit(&input, &out, &flags);
        assert!(
            o.status.success(),
            "{flags:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let summary = std::fs::read_to_string(out.join("summary.json")).expect("summary");
        assert!(
            summary.contains(&format!("\"loss\": \"{name}\"")),
            "{flags:?}: {summary}"
        );
        let t = nmf(&[
            "transform",
            "--model",
            out.to_str().expect("utf-8 path"),
            "--input",
            input.to_str().expect("utf-8 path"),
            "--output",
            dir.path()
                .join(format!("{name}-h.npy"))
                .to_str()
                .expect("utf-8"),
            "--backend",
            "cpu",
            "--quiet",
        ]);
        assert!(
            t.status.success(),
            "{flags:?} transform: {}",
            String::from_utf8_lossy(&t.stderr)
        );
    }
    for bad in [
        vec!["--beta", "0.5", "--loss", "kl"],
        vec!["--beta", "0.5", "--solver", "hals"],
        vec!["--loss", "is", "--solver", "hals"],
        vec!["--beta", "nan"],
    ] {
        let o = fit(&input, &dir.path().join("bad"), &bad);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
