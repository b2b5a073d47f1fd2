//! The `nmf` binary end to end: every input format round-trips a planted rank-5 matrix through
//! `nmf fit` to W.npy and H.npy, `transform` reproduces H, and every bad input exits with code 1
//! and a message naming the file and the problem, leaving no W.npy behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{naive_matmul, planted, sparse_uniform};
use nmf_gpu::io::{read_matrix, write_npy_atomic, ReadOptions};
use nmf_gpu::ndarray::Array2;

const RANK: usize = 5;

fn nmf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nmf"))
        .args(args)
        .output()
        .expect("run nmf")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn read(p: &Path) -> Array2<f32> {
    read_matrix(p, &ReadOptions::new()).unwrap_or_else(|e| panic!("{e}"))
}

/// The planted 40 x 30 rank-5 matrix with sparse nonnegative factors.
fn v() -> Array2<f32> {
    planted(40, 30, RANK, 11).0
}

/// ‖A − B‖_F / ‖B‖_F.
fn rel(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    assert_eq!(a.dim(), b.dim());
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| ((x - y) as f64).powi(2))
        .sum();
    let den: f64 = b.iter().map(|&y| (y as f64).powi(2)).sum();
    (num / den).sqrt()
}

/// `nmf fit` with HALS, 2000 iterations, tol 0; returns (W, H, output dir).
fn fit_ok(input: &Path, out: &Path, extra: &[&str]) -> (Array2<f32>, Array2<f32>) {
    let rank = RANK.to_string();
    let mut args = vec![
        "fit",
        "--input",
        s(input),
        "--rank",
        &rank,
        "--output-dir",
        s(out),
        "--solver",
        "hals",
        "--max-iter",
        "2000",
        "--tol",
        "0",
        "--backend",
        "cpu",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let o = nmf(&args);
    assert!(o.status.success(), "{input:?}: {}", stderr(&o));
    (read(&out.join("W.npy")), read(&out.join("H.npy")))
}

/// Fit `file` and check that W H reconstructs `expected` (as factorized) to < 1e-3.
fn round_trip(file: &Path, expected: &Array2<f32>, extra: &[&str]) {
    let out = file.with_extension("out");
    let (w, h) = fit_ok(file, &out, extra);
    assert_eq!(w.dim(), (expected.nrows(), RANK), "{file:?}");
    assert_eq!(h.dim(), (RANK, expected.ncols()), "{file:?}");
    assert!(w.iter().chain(h.iter()).all(|&x| x >= 0.0 && x.is_finite()));
    let err = rel(&naive_matmul(&w, &h), expected);
    assert!(err < 1e-3, "{file:?}: relative error {err}");
}

// ---------- hand-written files ----------

fn npy(a: &Array2<f32>, descr: &str, fortran: bool) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': ({}, {}), }}",
        if fortran { "True" } else { "False" },
        a.nrows(),
        a.ncols()
    );
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(&header);
    let order: Vec<f32> = if fortran {
        a.t().iter().copied().collect()
    } else {
        a.iter().copied().collect()
    };
    for x in order {
        match descr {
            "<f8" => out.extend_from_slice(&(x as f64).to_le_bytes()),
            ">f8" => out.extend_from_slice(&(x as f64).to_be_bytes()),
            _ => out.extend_from_slice(&x.to_le_bytes()),
        }
    }
    out
}

fn table(a: &Array2<f32>, sep: &str, header: Option<&str>) -> String {
    let mut t = String::new();
    if let Some(h) = header {
        t.push_str(h);
        t.push('\n');
    }
    for row in a.rows() {
        let cells: Vec<String> = row.iter().map(|x| format!("{x:e}")).collect();
        t.push_str(&cells.join(sep));
        t.push('\n');
    }
    t
}

/// MatrixMarket coordinate: the nonzeros of `a` (only i >= j when `symmetric`).
fn mtx_coord(a: &Array2<f32>, field: &str, symmetric: bool) -> String {
    let mut entries = Vec::new();
    for ((i, j), &x) in a.indexed_iter() {
        if x != 0.0 && (!symmetric || i >= j) {
            entries.push(match field {
                "pattern" => format!("{} {}", i + 1, j + 1),
                "integer" => format!("{} {} {}", i + 1, j + 1, x as i64),
                _ => format!("{} {} {x:e}", i + 1, j + 1),
            });
        }
    }
    let sym = if symmetric { "symmetric" } else { "general" };
    format!(
        "%%MatrixMarket matrix coordinate {field} {sym}\n% planted rank 5\n{} {} {}\n{}\n",
        a.nrows(),
        a.ncols(),
        entries.len(),
        entries.join("\n")
    )
}

/// MatrixMarket array: column by column (the lower triangle when `symmetric`).
fn mtx_array(a: &Array2<f32>, symmetric: bool) -> String {
    let mut t = format!(
        "%%MatrixMarket matrix array real {}\n{} {}\n",
        if symmetric { "symmetric" } else { "general" },
        a.nrows(),
        a.ncols()
    );
    for j in 0..a.ncols() {
        for i in (if symmetric { j } else { 0 })..a.nrows() {
            t.push_str(&format!("{:e}\n", a[[i, j]]));
        }
    }
    t
}

/// `bytes` with the first `from` replaced by `to` (same length, so a .npy header stays valid).
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let k = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern");
    let mut out = bytes.to_vec();
    out[k..k + to.len()].copy_from_slice(to);
    out
}

fn put(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

// ---------- formats ----------

#[test]
fn npy_formats_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let v = v();
    let lib = dir.path().join("lib.npy");
    write_npy_atomic(&lib, &v).unwrap();
    round_trip(&lib, &v, &[]);
    for (name, descr, fortran) in [
        ("f32c.npy", "<f4", false),
        ("f32f.npy", "<f4", true),
        ("f64c.npy", "<f8", false),
        ("f64f.npy", "<f8", true),
        ("f64be.npy", ">f8", false),
    ] {
        let p = put(dir.path(), name, npy(&v, descr, fortran));
        round_trip(&p, &v, &[]);
    }
}

#[test]
fn text_formats_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let v = v();
    let names: Vec<String> = (0..v.ncols()).map(|j| format!("sample{j}")).collect();
    let numbers: Vec<String> = (0..v.ncols()).map(|j| j.to_string()).collect();
    let plain = put(dir.path(), "plain.csv", table(&v, ",", None));
    let named = put(
        dir.path(),
        "named.csv",
        table(&v, ",", Some(&names.join(","))),
    );
    let numeric = put(
        dir.path(),
        "numeric.csv",
        table(&v, ",", Some(&numbers.join(","))),
    );
    let tsv = put(
        dir.path(),
        "data.tsv",
        table(&v, "\t", Some(&names.join("\t"))),
    );
    round_trip(&plain, &v, &[]);
    round_trip(&named, &v, &[]);
    round_trip(&numeric, &v, &["--header"]);
    round_trip(&tsv, &v, &["--header", "auto"]);
}

#[test]
fn matrix_market_formats_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let v = v();
    // Integer data: a planted product of small integer factors.
    let wi = sparse_uniform(40, RANK, 0.5, 21).mapv(|x| (x * 4.0).floor());
    let hi = sparse_uniform(RANK, 30, 0.5, 22).mapv(|x| (x * 4.0).floor());
    let vi = naive_matmul(&wi, &hi);
    // Pattern data: five disjoint all-ones blocks (a 0/1 matrix of nonnegative rank 5).
    let vp = Array2::from_shape_fn((40, 30), |(i, j)| f32::from(u8::from(i % RANK == j % RANK)));
    // Symmetric data: W₀ W₀ᵀ.
    let w0 = sparse_uniform(36, RANK, 0.5, 23);
    let vs = naive_matmul(&w0, &w0.t().to_owned());
    let cases: Vec<(&str, String, &Array2<f32>)> = vec![
        ("real.mtx", mtx_coord(&v, "real", false), &v),
        ("int.mtx", mtx_coord(&vi, "integer", false), &vi),
        ("pattern.mtx", mtx_coord(&vp, "pattern", false), &vp),
        ("sym.mtx", mtx_coord(&vs, "real", true), &vs),
        ("array.mtx", mtx_array(&v, false), &v),
        ("arraysym.mtx", mtx_array(&vs, true), &vs),
    ];
    for (name, text, expected) in cases {
        let p = put(dir.path(), name, text);
        round_trip(&p, expected, &[]);
    }
}

#[test]
fn samples_as_rows_transposes() {
    let dir = tempfile::tempdir().unwrap();
    let v = v();
    let p = put(dir.path(), "x.csv", table(&v, ",", None));
    let out = dir.path().join("out");
    let o = nmf(&[
        "fit",
        "--input",
        s(&p),
        "--rank",
        "5",
        "--output-dir",
        s(&out),
        "--solver",
        "hals",
        "--max-iter",
        "2000",
        "--tol",
        "0",
        "--samples-as-rows",
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("--samples-as-rows"), "{}", stderr(&o));
    let (w, h) = (read(&out.join("W.npy")), read(&out.join("H.npy")));
    assert_eq!((w.dim(), h.dim()), ((30, RANK), (RANK, 40)));
    let vt = v.t().to_owned();
    assert!(rel(&naive_matmul(&w, &h), &vt) < 1e-3);
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(summary.contains("\"samples_as_rows\": true"), "{summary}");
    // transform applies the same orientation: one row per sample in, r x samples out.
    let hout = dir.path().join("h.npy");
    let o = nmf(&[
        "transform",
        "--model",
        s(&out),
        "--input",
        s(&p),
        "--output",
        s(&hout),
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let h2 = read(&hout);
    assert_eq!(h2.dim(), (RANK, 40));
    assert!(rel(&naive_matmul(&w, &h2), &vt) < 1e-3);
}

#[test]
fn transform_reproduces_h_and_encodes_new_samples() {
    let dir = tempfile::tempdir().unwrap();
    let (v, w0, _) = planted(40, 30, RANK, 11);
    let p = dir.path().join("v.npy");
    write_npy_atomic(&p, &v).unwrap();
    let out = dir.path().join("model");
    let (w, h) = fit_ok(&p, &out, &[]);

    let hout = dir.path().join("h.npy");
    let o = nmf(&[
        "transform",
        "--model",
        s(&out),
        "--input",
        s(&p),
        "--output",
        s(&hout),
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("h.npy"), "{}", stdout(&o));
    let h2 = read(&hout);
    let d = rel(&h2, &h);
    assert!(d < 1e-2, "transform differs from the fitted H by {d}");

    // New samples with the same parts.
    let h_new = sparse_uniform(RANK, 12, 0.5, 99);
    let v_new = naive_matmul(&w0, &h_new);
    let pn = put(dir.path(), "new.csv", table(&v_new, ",", None));
    let hn = dir.path().join("hn.npy");
    let o = nmf(&[
        "transform",
        "-m",
        s(&out),
        "-i",
        s(&pn),
        "-o",
        s(&hn),
        "--quiet",
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let e = rel(&naive_matmul(&w, &read(&hn)), &v_new);
    assert!(e < 1e-3, "new samples reconstructed to {e}");
}

#[test]
fn summary_json_and_output_modes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v.npy");
    write_npy_atomic(&p, &v()).unwrap();
    let out = dir.path().join("o");
    let o = nmf(&[
        "fit",
        "-i",
        s(&p),
        "-r",
        "5",
        "-o",
        s(&out),
        "--max-iter",
        "50",
        "--json",
        "--backend",
        "cpu",
        "--loss",
        "kl",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let json: serde_json::Value = serde_json::from_str(&text).expect("stdout is JSON");
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json, on_disk);
    for key in [
        "input",
        "shape",
        "rank",
        "solver",
        "loss",
        "init",
        "backend",
        "engine",
        "iterations",
        "converged",
        "relative_error",
        "losses",
        "loss_iterations",
        "seconds",
    ] {
        assert!(json.get(key).is_some(), "summary lacks {key}: {text}");
    }
    assert_eq!(json["shape"], serde_json::json!([40, 30]));
    assert_eq!(json["loss"], "kl");
    assert_eq!(json["tol"], serde_json::json!(0.0001));
    assert!(json["engine"].as_str().unwrap().contains("cpu"));
    let losses = json["losses"].as_array().unwrap();
    assert_eq!(
        losses.len(),
        json["loss_iterations"].as_array().unwrap().len()
    );
    assert!(losses.len() >= 2);
    // Progress: plain lines on a non-terminal, nothing with --quiet.
    assert!(stderr(&o).contains("iteration 0/50"), "{}", stderr(&o));
    let o = nmf(&[
        "fit",
        "-i",
        s(&p),
        "-r",
        "5",
        "-o",
        s(&out),
        "--max-iter",
        "50",
        "-q",
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success());
    assert!(
        stdout(&o).is_empty() && stderr(&o).is_empty(),
        "{}",
        stderr(&o)
    );
    // Default: a human summary.
    let o = nmf(&[
        "fit",
        "-i",
        s(&p),
        "-r",
        "5",
        "-o",
        s(&out),
        "--max-iter",
        "50",
        "--backend",
        "cpu",
    ]);
    assert!(stdout(&o).contains("relative error"), "{}", stdout(&o));
    // No temporary files are left in the output directory.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["H.npy", "W.npy", "summary.json"]);
}

#[test]
fn info_and_help() {
    let o = nmf(&["info"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains(env!("CARGO_PKG_VERSION")) && text.contains("CPU threads"),
        "{text}"
    );
    assert!(text.contains("--backend auto uses"), "{text}");
    for cmd in ["fit", "transform", "info"] {
        let o = nmf(&[cmd, "--help"]);
        assert!(o.status.success());
        assert!(stdout(&o).contains("Usage: nmf"), "{}", stdout(&o));
    }
}

// ---------- bad input ----------

/// Run a fit expected to fail: exit code 1, a message naming `names`, no W.npy left behind.
fn fit_fails(input: &str, out: &Path, extra: &[&str], needles: &[&str]) -> String {
    let mut args = vec![
        "fit",
        "--input",
        input,
        "--rank",
        "5",
        "--output-dir",
        s(out),
        "--backend",
        "cpu",
    ];
    args.extend_from_slice(extra);
    let o = nmf(&args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{input}: {err}");
    assert!(
        err.lines().last().unwrap_or("").starts_with("error: "),
        "{err}"
    );
    for n in needles {
        assert!(err.contains(n), "{input}: expected {n:?} in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.join("W.npy").exists(), "{input}: W.npy left behind");
    if out.is_dir() {
        let left: Vec<_> = std::fs::read_dir(out).unwrap().collect();
        assert!(
            left.is_empty(),
            "{input}: files left in the output directory: {left:?}"
        );
    }
    err
}

#[test]
fn bad_files_exit_1_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    let v = v();
    let good = npy(&v, "<f4", false);

    // Missing file, unknown extension.
    fit_fails(
        s(&d.join("missing.npy")),
        &out,
        &[],
        &["missing.npy", "No such file"],
    );
    let p = put(d, "data.xlsx", "1,2\n");
    fit_fails(s(&p), &out, &[], &["data.xlsx", "unknown file extension"]);
    // Malformed headers.
    let mut bad = good.clone();
    bad[0] = b'P';
    let p = put(d, "badmagic.npy", bad);
    fit_fails(s(&p), &out, &[], &["badmagic.npy", "not a .npy file"]);
    let p = put(d, "baddict.npy", replace(&good, b"'shape'", b"'shap' "));
    fit_fails(s(&p), &out, &[], &["baddict.npy", "malformed header"]);
    let p = put(
        d,
        "badbanner.mtx",
        "%%MatrixMarket matrix coordinate\n2 2 1\n1 1 1\n",
    );
    fit_fails(
        s(&p),
        &out,
        &[],
        &["badbanner.mtx", "line 1", "malformed header"],
    );
    // Truncated data.
    let p = put(d, "trunc.npy", &good[..good.len() - 10]);
    fit_fails(s(&p), &out, &[], &["trunc.npy", "truncated"]);
    let text = mtx_coord(&v, "real", false);
    let p = put(d, "trunc.mtx", &text[..text.len() / 2]);
    fit_fails(s(&p), &out, &[], &["trunc.mtx"]);
    // A declared shape too large to allocate, refused from the header alone.
    let huge = replace(
        &good,
        b"(40, 30), }             ",
        b"(4000000000, 3000000), }",
    );
    let p = put(d, "huge.npy", huge);
    fit_fails(
        s(&p),
        &out,
        &[],
        &["huge.npy", "4000000000 x 3000000", "input limit"],
    );
    let p = put(
        d,
        "huge.mtx",
        "%%MatrixMarket matrix coordinate real general\n9000000000 9000000000 1\n1 1 1\n",
    );
    // Read densely, the declared shape is too large for memory; read sparsely (the default
    // for a coordinate file this sparse), the row count is beyond the sparse index range.
    fit_fails(
        s(&p),
        &out,
        &["--storage", "dense"],
        &["huge.mtx", "9000000000 x 9000000000"],
    );
    fit_fails(s(&p), &out, &[], &["huge.mtx", "9000000000 rows"]);
    // A cell that is not a number: line and column.
    let mut lines: Vec<String> = table(&v, ",", None).lines().map(String::from).collect();
    let mut cells: Vec<&str> = lines[2].split(',').collect();
    cells[2] = "oops";
    lines[2] = cells.join(",");
    let p = put(d, "cell.csv", lines.join("\n"));
    fit_fails(
        s(&p),
        &out,
        &[],
        &["cell.csv", "line 3", "column 3", "\"oops\""],
    );
}

#[test]
fn bad_values_exit_1_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    let mut v = v();
    v[[2, 7]] = -0.5;
    let p = put(d, "neg.csv", table(&v, ",", None));
    fit_fails(
        s(&p),
        &out,
        &[],
        &["neg.csv", "negative", "-0.5", "line 3, column 8"],
    );
    // With --samples-as-rows the location is still given in the file's terms.
    fit_fails(
        s(&p),
        &out,
        &["--samples-as-rows"],
        &["neg.csv", "negative", "line 3, column 8"],
    );
    v[[2, 7]] = f32::NAN;
    let p = d.join("nan.npy");
    write_npy_atomic(&p, &v).unwrap();
    fit_fails(s(&p), &out, &[], &["nan.npy", "NaN", "element [2, 7]"]);
    v[[2, 7]] = f32::INFINITY;
    let p = put(d, "inf.mtx", mtx_array(&v, false));
    fit_fails(s(&p), &out, &[], &["inf.mtx", "inf", "entry (3, 8)"]);
}

#[test]
fn bad_options_exit_1_or_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    let p = d.join("v.npy");
    write_npy_atomic(&p, &v()).unwrap();
    // A rank too large for the data (known once it is read): exit code 1.
    let args = [
        "fit",
        "-i",
        s(&p),
        "-o",
        s(&out),
        "--backend",
        "cpu",
        "--rank",
        "41",
    ];
    let o = nmf(&args);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("rank 41 is too large"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    // Output directory not writable: it is a file, or under a file (refused before the fit).
    let file = put(d, "afile", "x");
    fit_fails(s(&p), &file, &[], &["afile", "not a directory"]);
    fit_fails(
        s(&p),
        &file.join("sub"),
        &[],
        &["afile", "would be under", "which is a file"],
    );

    // Usage errors: exit code 2, a message naming the option, nothing written.
    let usage = |extra: &[&str], needles: &[&str]| {
        let mut args = vec!["fit", "-i", s(&p), "-o", s(&out), "--backend", "cpu"];
        args.extend_from_slice(extra);
        let o = nmf(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.starts_with("error: "), "{extra:?}: {err}");
        for n in needles {
            assert!(err.contains(n), "{extra:?}: expected {n:?} in: {err}");
        }
        assert!(!out.exists(), "{extra:?}: output written");
    };
    usage(&[], &["--rank"]);
    usage(&["-r", "5", "--solver", "als"], &["--solver", "als"]);
    for (option, value, needle) in [
        ("--rank", "0", "at least 1"),
        ("--rank", "-3", "whole number"),
        ("--rank", "five", "whole number"),
        ("--max-iter", "0", "at least 1"),
        ("--max-iter", "1.5", "whole number"),
        ("--tol", "-1", ">= 0"),
        ("--tol", "nan", "finite"),
        ("--tol", "inf", "finite"),
        ("--tol", "1e-4x", "a number"),
        ("--alpha-w", "-0.5", ">= 0"),
        ("--alpha-w", "NaN", "finite"),
        ("--alpha-h", "-inf", "finite"),
        ("--l1-ratio", "1.5", "between 0 and 1"),
        ("--l1-ratio", "nan", "between 0 and 1"),
        ("--l1-ratio", "-0.1", "between 0 and 1"),
        ("--seed", "-1", "--seed"),
    ] {
        let mut extra = vec![option, value];
        if option != "--rank" {
            extra.extend_from_slice(&["-r", "5"]);
        }
        usage(&extra, &[option, value, needle]);
        // The same with `=`.
        let joined = format!("{option}={value}");
        extra[0] = &joined;
        extra.remove(1);
        usage(&extra, &[option, needle]);
    }
    // Options that cannot go together.
    usage(
        &["-r", "5", "--solver", "hals", "--loss", "kl"],
        &["the solver hals minimises the Frobenius loss only, not kl"],
    );
    usage(
        &["-r", "5", "--solver", "hals", "--orthogonal", "h"],
        &["orthogonal NMF requires the solver mu"],
    );
    // Valid edge values are accepted.
    let o = nmf(&[
        "fit",
        "-i",
        s(&p),
        "-o",
        s(&out),
        "--backend",
        "cpu",
        "-r",
        "5",
        "--tol",
        "0",
        "--max-iter",
        "1",
        "--l1-ratio",
        "1",
        "--alpha-w",
        "0",
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn bad_transform_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = d.join("v.npy");
    write_npy_atomic(&p, &v()).unwrap();
    let h = d.join("h.npy");
    let run = |model: &Path, input: &Path, output: &Path| {
        let o = nmf(&[
            "transform",
            "--model",
            s(model),
            "--input",
            s(input),
            "--output",
            s(output),
            "--backend",
            "cpu",
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(!output.exists());
        stderr(&o)
    };
    // Not a model directory.
    let err = run(&d.join("nomodel"), &p, &h);
    assert!(
        err.contains("summary.json") && err.contains("nmf fit"),
        "{err}"
    );
    let model = d.join("model");
    let o = nmf(&[
        "fit",
        "-i",
        s(&p),
        "-r",
        "5",
        "-o",
        s(&model),
        "-q",
        "--max-iter",
        "20",
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success());
    // Data with the wrong number of features.
    let q = d.join("narrow.npy");
    write_npy_atomic(&q, &Array2::<f32>::ones((7, 3))).unwrap();
    let err = run(&model, &q, &h);
    assert!(
        err.contains("narrow.npy") && err.contains("40 rows"),
        "{err}"
    );
    // Negative new data.
    let mut bad = v();
    bad[[1, 1]] = -2.0;
    let q = d.join("negnew.npy");
    write_npy_atomic(&q, &bad).unwrap();
    let err = run(&model, &q, &h);
    assert!(
        err.contains("negnew.npy") && err.contains("negative"),
        "{err}"
    );
    // Output that is not .npy, or in a missing directory.
    let err = run(&model, &p, &d.join("h.csv"));
    assert!(err.contains("h.csv") && err.contains(".npy"), "{err}");
    let err = run(&model, &p, &d.join("nodir/h.npy"));
    assert!(err.contains("nodir"), "{err}");
    // A damaged summary.
    std::fs::write(model.join("summary.json"), "{\"solver\": \"mu\"}").unwrap();
    let err = run(&model, &p, &h);
    assert!(
        err.contains("summary.json") && err.contains("malformed summary"),
        "{err}"
    );
}

/// `--backend gpu` either runs on the GPU (reconstructing the planted matrix) or, where no
/// usable adapter exists, exits with code 1 saying so; it never panics.
#[test]
fn gpu_backend_runs_or_explains() {
    let dir = tempfile::tempdir().unwrap();
    let v = planted(24, 18, 3, 4).0;
    let p = dir.path().join("v.npy");
    write_npy_atomic(&p, &v).unwrap();
    let out = dir.path().join("out");
    let o = nmf(&[
        "fit",
        "-i",
        s(&p),
        "-r",
        "3",
        "-o",
        s(&out),
        "--solver",
        "hals",
        "--max-iter",
        "300",
        "--tol",
        "0",
        "--backend",
        "gpu",
        "--json",
    ]);
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    if o.status.success() {
        let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert!(json["engine"].as_str().unwrap().contains("gpu"), "{json}");
        let (w, h) = (read(&out.join("W.npy")), read(&out.join("H.npy")));
        assert!(rel(&naive_matmul(&w, &h), &v) < 1e-3);
    } else {
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("--backend gpu"), "{err}");
        assert!(!out.join("W.npy").exists());
    }
}

#[test]
fn orthogonal_fits_and_image_directories() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A directory of 8 tiny PGM images is a 12 x 8 matrix, one image per column.
    let images = d.join("faces");
    std::fs::create_dir(&images).unwrap();
    for k in 0..8u32 {
        let levels: Vec<String> = (0..12u32)
            .map(|i| ((i * 7 + k * 13) % 200 + (i % 3) * 20).to_string())
            .collect();
        let text = format!("P2\n4 3\n255\n{}\n", levels.join(" "));
        std::fs::write(images.join(format!("f{k}.pgm")), text).unwrap();
    }
    let out = d.join("o");
    let o = nmf(&[
        "fit",
        "-i",
        s(&images),
        "-r",
        "2",
        "-o",
        s(&out),
        "--backend",
        "cpu",
        "--json",
        "--orthogonal",
        "h",
        "--max-iter",
        "100",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("stdout is JSON");
    assert_eq!(json["shape"], serde_json::json!([12, 8]));
    assert_eq!(json["format"], "image directory");
    assert_eq!(json["orthogonal"], "h");
    let residual = json["orthogonality_residual"].as_f64().expect("a residual");
    assert!(residual.is_finite() && residual >= 0.0, "{residual}");
    // The orthogonal rules are multiplicative: HALS is refused with a usable message.
    let o = nmf(&[
        "fit",
        "-i",
        s(&images),
        "-r",
        "2",
        "-o",
        s(&out),
        "--backend",
        "cpu",
        "--orthogonal",
        "w",
        "--solver",
        "hals",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("requires the solver mu"),
        "{}",
        stderr(&o)
    );
}

// ---------- --storage ----------

/// A 40 x 30 matrix with about 5% nonzeros (below the 10% of `--storage auto`).
fn sparse_v() -> Array2<f32> {
    sparse_uniform(40, 30, 0.95, 21)
}

/// `nmf fit` with MU, a random init from seed 1, 100 iterations; returns (W, H, summary).
fn fit_storage(
    input: &Path,
    out: &Path,
    extra: &[&str],
) -> (Array2<f32>, Array2<f32>, serde_json::Value) {
    let mut args = vec![
        "fit",
        "-i",
        s(input),
        "-r",
        "3",
        "-o",
        s(out),
        "--init",
        "random",
        "--seed",
        "1",
        "--max-iter",
        "100",
        "--tol",
        "0",
        "--backend",
        "cpu",
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = nmf(&args);
    assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("stdout is JSON");
    (read(&out.join("W.npy")), read(&out.join("H.npy")), json)
}

#[test]
fn sparse_storage_matches_dense() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v = sparse_v();
    let nnz = v.iter().filter(|&&x| x != 0.0).count();
    assert!(nnz > 0 && (nnz as f64) < 0.1 * (40.0 * 30.0), "{nnz}");
    let p = put(d, "v.mtx", mtx_coord(&v, "real", false));
    for rows in [false, true] {
        let extra: &[&str] = if rows { &["--samples-as-rows"] } else { &[] };
        let (wd, hd, jd) = fit_storage(
            &p,
            &d.join("dense"),
            &[extra, &["--storage", "dense"]].concat(),
        );
        let (ws, hs, js) = fit_storage(
            &p,
            &d.join("sparse"),
            &[extra, &["--storage", "sparse"]].concat(),
        );
        let (wa, ha, ja) = fit_storage(&p, &d.join("auto"), extra);
        assert_eq!(jd["storage"], "dense");
        assert_eq!(js["storage"], "sparse");
        assert_eq!(
            ja["storage"], "sparse",
            "auto: a coordinate file at 5% density is sparse"
        );
        for j in [&jd, &js, &ja] {
            assert_eq!(j["format"], "mtx");
            assert_eq!(j["file_shape"], serde_json::json!([40, 30]));
            assert_eq!(j["samples_as_rows"], rows);
            let shape = if rows { [30, 40] } else { [40, 30] };
            assert_eq!(j["shape"], serde_json::json!(shape));
        }
        let expected_w = if rows { 30 } else { 40 };
        assert_eq!(wd.dim(), (expected_w, 3));
        for (w, h) in [(&ws, &hs), (&wa, &ha)] {
            assert!(rel(w, &wd) < 1e-4, "W: {}", rel(w, &wd));
            assert!(rel(h, &hd) < 1e-4, "H: {}", rel(h, &hd));
        }
        let (ed, es) = (
            jd["relative_error"].as_f64().unwrap(),
            js["relative_error"].as_f64().unwrap(),
        );
        assert!((ed - es).abs() <= 1e-4 * ed.max(1e-12), "{ed} vs {es}");
        // transform: the same encodings from either storage.
        let model = d.join("dense");
        let mut hs_t = Vec::new();
        for storage in ["dense", "sparse"] {
            let h_out = d.join(format!("h_{storage}.npy"));
            let o = nmf(&[
                "transform",
                "-m",
                s(&model),
                "-i",
                s(&p),
                "-o",
                s(&h_out),
                "--backend",
                "cpu",
                "--storage",
                storage,
                "-q",
            ]);
            assert!(o.status.success(), "{storage}: {}", stderr(&o));
            hs_t.push(read(&h_out));
        }
        assert_eq!(hs_t[0].ncols(), if rows { 40 } else { 30 });
        assert!(
            rel(&hs_t[1], &hs_t[0]) < 1e-4,
            "{}",
            rel(&hs_t[1], &hs_t[0])
        );
    }
    // A dense-format file or a dense .mtx stays dense under auto.
    let q = d.join("v.npy");
    write_npy_atomic(&q, &v).unwrap();
    let (_, _, j) = fit_storage(&q, &d.join("npy"), &[]);
    assert_eq!(j["storage"], "dense");
    let dense_mtx = put(d, "planted.mtx", mtx_coord(&self::v(), "real", false));
    let (_, _, j) = fit_storage(&dense_mtx, &d.join("planted"), &[]);
    assert_eq!(j["storage"], "dense");
    let array = put(d, "array.mtx", mtx_array(&v, false));
    let (_, _, j) = fit_storage(&array, &d.join("array"), &[]);
    assert_eq!(j["storage"], "dense");
}

#[test]
fn sparse_storage_refusals_and_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    let v = sparse_v();
    let q = d.join("v.npy");
    write_npy_atomic(&q, &v).unwrap();
    fit_fails(
        s(&q),
        &out,
        &["--storage", "sparse"],
        &["v.npy", "--storage sparse", ".mtx"],
    );
    let p = put(d, "v.mtx", mtx_coord(&v, "real", false));
    let gpu_out = d.join("gpu-out");
    let o = nmf(&[
        "fit",
        "-i",
        s(&p),
        "-r",
        "3",
        "-o",
        s(&gpu_out),
        "--storage",
        "sparse",
        "--backend",
        "gpu",
        "--json",
    ]);
    // Sparse V runs on the GPU engine, or the command says there is no usable GPU.
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    if o.status.success() {
        let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert!(json["engine"].as_str().unwrap().contains("gpu"), "{json}");
    } else {
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("--backend gpu"), "{err}");
    }
    // A non-MatrixMarket file is refused by transform too.
    let o = nmf(&[
        "transform",
        "-m",
        s(d),
        "-i",
        s(&q),
        "-o",
        s(&d.join("h.npy")),
        "--storage",
        "sparse",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(".mtx"), "{}", stderr(&o));

    // A bad value in a sparse file: the file and the 1-based entry, in either orientation.
    let mut bad = v.clone();
    bad[[2, 7]] = -0.5;
    let p = put(d, "neg.mtx", mtx_coord(&bad, "real", false));
    for extra in [&["--storage", "sparse"][..], &[], &["--samples-as-rows"]] {
        fit_fails(
            s(&p),
            &out,
            extra,
            &["neg.mtx", "negative", "-0.5", "entry (3, 8)"],
        );
    }
    // Repeated entries that sum past f32::MAX are non-finite.
    let text = "%%MatrixMarket matrix coordinate real general\n3 4 2\n2 3 3e38\n2 3 3e38\n";
    let p = put(d, "inf.mtx", text);
    fit_fails(
        s(&p),
        &out,
        &["--storage", "sparse"],
        &["inf.mtx", "non-finite", "entry (2, 3)"],
    );
    // A symmetric file names the stored entry or its mirror.
    let text = "%%MatrixMarket matrix coordinate real symmetric\n30 30 2\n1 1 1\n9 4 nan\n";
    let p = put(d, "sym.mtx", text);
    fit_fails(
        s(&p),
        &out,
        &["--storage", "sparse"],
        &["sym.mtx", "non-finite", "entry (9, 4) or its mirror (4, 9)"],
    );
}

// ---------- the output directory as a unit ----------

/// Hidden entries of `dir` (temporary or set-aside directories and files).
fn hidden_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// The sorted names in `dir`.
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    n.sort();
    n
}

fn summary_of(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn model_directory_is_written_as_a_unit() {
    use nmf_gpu::io::StagedDir;

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = d.join("v.npy");
    write_npy_atomic(&p, &v()).unwrap();
    let out = d.join("model");
    let fit = |iters: &str, rank: &str| {
        let args = [
            "fit",
            "-i",
            s(&p),
            "-r",
            rank,
            "-o",
            s(&out),
            "-q",
            "--max-iter",
            iters,
            "--tol",
            "0",
            "--backend",
            "cpu",
        ];
        nmf(&args)
    };
    let o = fit("20", "5");
    assert!(o.status.success(), "{}", stderr(&o));
    let model_files = ["H.npy", "W.npy", "summary.json"]
        .map(String::from)
        .to_vec();
    assert_eq!(names(&out), model_files);
    let old_w = std::fs::read(out.join("W.npy")).unwrap();
    let old_summary = std::fs::read(out.join("summary.json")).unwrap();
    let unchanged = |why: &str| {
        assert_eq!(names(&out), model_files, "{why}");
        assert_eq!(std::fs::read(out.join("W.npy")).unwrap(), old_w, "{why}");
        assert_eq!(
            std::fs::read(out.join("summary.json")).unwrap(),
            old_summary,
            "{why}"
        );
        assert!(
            hidden_entries(d).is_empty(),
            "{why}: {:?}",
            hidden_entries(d)
        );
    };

    // A write that fails after W and H were written: the old model stays whole, and the
    // temporary directory is removed.
    {
        let staged = StagedDir::new(&out).unwrap();
        staged.npy("W.npy", &Array2::<f32>::zeros((40, 5))).unwrap();
        staged.npy("H.npy", &Array2::<f32>::zeros((5, 30))).unwrap();
        assert_eq!(hidden_entries(d).len(), 1);
        let e = staged
            .write_with("summary.json", |w| {
                w.write_all(b"{\"partial\": ")?;
                Err(std::io::Error::other("no space left on device"))
            })
            .unwrap_err();
        assert!(e.to_string().contains("summary.json"), "{e}");
    }
    unchanged("failed staged write");

    // A fit that fails leaves the old model.
    let o = fit("20", "41");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    unchanged("failed fit");

    // A directory holding anything but a model is refused before the fit, and kept.
    let notes = put(&out, "notes.txt", "mine");
    let o = fit("30", "5");
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("notes.txt") && err.contains("not part of a model"),
        "{err}"
    );
    assert!(notes.exists());
    std::fs::remove_file(&notes).unwrap();
    unchanged("refused directory");

    // A new fit replaces all three files together.
    let o = fit("30", "5");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(names(&out), model_files);
    assert_eq!(summary_of(&out)["iterations"], 30);
    assert_ne!(std::fs::read(out.join("W.npy")).unwrap(), old_w);
    assert!(hidden_entries(d).is_empty(), "{:?}", hidden_entries(d));

    // A staged directory commits exactly its files, replacing the old ones.
    let staged = StagedDir::new(&out).unwrap();
    staged.bytes("only.txt", b"x").unwrap();
    staged.commit().unwrap();
    assert_eq!(names(&out), vec!["only.txt".to_string()]);
    assert!(hidden_entries(d).is_empty(), "{:?}", hidden_entries(d));
    // A directory needs a name.
    assert!(StagedDir::new(".").is_err());
}

// ---------- nmf-bench ----------

#[test]
fn nmf_bench_runs_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let bench = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nmf-bench"))
            .args(args)
            .output()
            .expect("run nmf-bench")
    };
    let o = bench(&[
        "--shape",
        "30,20,3",
        "--sparse",
        "40,30,0.1,2",
        "--backend",
        "cpu",
        "--iterations",
        "4",
        "--repeats",
        "1",
        "--json",
        s(&json),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("30x20r3") && out.contains("sparse 40x30 r2"),
        "{out}"
    );
    let records: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let records = records.as_array().unwrap();
    // MU Frobenius, MU KL and HALS on the dense case (sparse cases are printed only).
    assert_eq!(records.len(), 3);
    for r in records {
        assert_eq!(
            (r["m"].as_u64(), r["n"].as_u64(), r["r"].as_u64()),
            (Some(30), Some(20), Some(3))
        );
        assert_eq!(r["backend"], "cpu");
        assert_eq!(r["iterations"], 4);
        let err = r["rel_error"].as_f64().unwrap();
        assert!(err > 0.0 && err < 1.0, "{r}");
        assert!(r["ms_per_iter"].as_f64().unwrap() > 0.0, "{r}");
    }
    // Usage errors exit with code 2.
    for args in [
        &["--shape", "1,2"][..],
        &["--iterations", "0"],
        &["--backend", "tpu"],
        &["--solver", "hals", "--loss", "kl"],
    ] {
        let o = bench(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
}

// ---------- interruption, checkpoints, resumption ----------

/// A 600 x 500 uniform random matrix: thousands of MU iterations take seconds.
fn slow_input(dir: &Path) -> PathBuf {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let v = Array2::from_shape_simple_fn((600, 500), || rng.random::<f32>());
    let p = dir.join("slow.npy");
    write_npy_atomic(&p, &v).unwrap();
    p
}

/// Start a fit of `input` that would run for minutes, with progress lines on standard error.
fn spawn_long_fit(input: &Path, out: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_nmf"))
        .args([
            "fit",
            "-i",
            s(input),
            "-r",
            "10",
            "-o",
            s(out),
            "--max-iter",
            "10000000",
            "--tol",
            "0",
            "--backend",
            "cpu",
            "--init",
            "random",
        ])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start nmf")
}

/// Send `signal` (e.g. "INT") to `child`.
fn send(child: &std::process::Child, signal: &str) {
    let st = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(st.success());
}

/// Wait for `child` at most a minute (killing it after that); its exit code and stderr.
fn wait_for(mut child: std::process::Child) -> (Option<i32>, String) {
    use std::io::Read as _;
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("nmf did not stop within a minute of the signal");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status.code(), err)
}

/// Read lines of `child`'s standard error until one contains `needle`.
fn wait_for_line(child: &mut std::process::Child, needle: &str) -> String {
    use std::io::BufRead as _;
    let stderr = child.stderr.take().expect("piped stderr");
    let mut reader = std::io::BufReader::new(stderr);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "nmf ended before printing {needle:?}: {seen}");
        seen.push_str(&line);
        if line.contains(needle) {
            // Keep draining standard error so that the child never blocks on it.
            std::thread::spawn(move || {
                let mut sink = String::new();
                while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                    sink.clear();
                }
            });
            return seen;
        }
    }
}

/// W, H and the summary of a model directory, read consistently (retried while a writer
/// replaces the directory between the reads).
fn read_model(dir: &Path) -> (Array2<f32>, Array2<f32>, serde_json::Value) {
    for _ in 0..50 {
        let before = std::fs::read(dir.join("summary.json"));
        let w = read_matrix(dir.join("W.npy"), &ReadOptions::new());
        let h = read_matrix(dir.join("H.npy"), &ReadOptions::new());
        let after = std::fs::read(dir.join("summary.json"));
        if let (Ok(b), Ok(w), Ok(h), Ok(a)) = (before, w, h, after) {
            if a == b {
                return (w, h, serde_json::from_slice(&b).unwrap());
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{dir:?}: no consistent model");
}

#[test]
fn signals_stop_the_fit_and_write_the_model_reached() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = slow_input(d);
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let out = d.join(format!("out-{signal}"));
        let mut child = spawn_long_fit(&input, &out, &[]);
        wait_for_line(&mut child, "iteration 0/");
        send(&child, signal);
        let (status, _) = wait_for(child);
        assert_eq!(status, Some(code), "SIG{signal}");
        let (w, h, summary) = read_model(&out);
        assert_eq!(w.dim(), (600, 10));
        assert_eq!(h.dim(), (10, 500));
        assert!(w.iter().chain(h.iter()).all(|x| x.is_finite() && *x >= 0.0));
        assert_eq!(summary["interrupted"], true, "{summary}");
        assert_eq!(summary["converged"], false);
        let iterations = summary["iterations"].as_u64().unwrap();
        assert!((1..10_000_000).contains(&iterations), "{iterations}");
        assert_eq!(summary["W"]["shape"], serde_json::json!([600, 10]));
        assert!(summary["initial_loss"].as_f64().unwrap() > 0.0, "{summary}");
        assert!(hidden_entries(d).is_empty(), "{:?}", hidden_entries(d));

        // The same command with --resume (and a budget just past the stop) finishes it.
        let budget = (iterations + 3).to_string();
        let o = nmf(&[
            "fit",
            "-i",
            s(&input),
            "-r",
            "10",
            "-o",
            s(&out),
            "--max-iter",
            &budget,
            "--tol",
            "0",
            "--backend",
            "cpu",
            "--init",
            "random",
            "--resume",
            s(&out),
            "-q",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let (_, _, resumed) = read_model(&out);
        assert_eq!(resumed["iterations"], iterations + 3);
        assert_eq!(resumed["interrupted"], false);
        assert_eq!(resumed["resumed_from"]["iterations"], iterations);
        assert_eq!(resumed["initial_loss"], summary["initial_loss"]);
    }
}

#[test]
fn checkpoints_are_complete_models() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = slow_input(d);
    let out = d.join("out");
    let mut child = spawn_long_fit(&input, &out, &["--checkpoint-every", "25"]);
    wait_for_line(&mut child, "iteration 0/");
    // Two checkpoints, each a complete model at a multiple of 25 iterations.
    let mut seen = Vec::new();
    let start = std::time::Instant::now();
    while seen.len() < 2 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "no checkpoints"
        );
        if out.join("summary.json").exists() {
            let (w, h, summary) = read_model(&out);
            let it = summary["iterations"].as_u64().unwrap();
            if !seen.contains(&it) {
                assert_eq!(summary["checkpoint"], true, "{summary}");
                assert_eq!(it % 25, 0, "{summary}");
                assert_eq!(w.dim(), (600, 10));
                assert_eq!(h.dim(), (10, 500));
                assert!(w.iter().chain(h.iter()).all(|x| x.is_finite() && *x >= 0.0));
                assert!(summary["initial_loss"].as_f64().unwrap() > 0.0);
                assert_eq!(summary["rank"], 10);
                seen.push(it);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    send(&child, "TERM");
    let (status, _) = wait_for(child);
    assert_eq!(status, Some(143));
    let (_, _, last) = read_model(&out);
    assert_eq!(last["interrupted"], true);
    assert!(last["iterations"].as_u64().unwrap() >= *seen.iter().max().unwrap());
    assert!(hidden_entries(d).is_empty(), "{:?}", hidden_entries(d));
}

/// Relative Frobenius difference below which a resumed fit counts as equal to the
/// uninterrupted one (the saved factors are exact f32; only summation order may differ).
const RESUME_TOL: f64 = 1e-5;

#[test]
fn resumed_fit_equals_uninterrupted_fit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = d.join("v.npy");
    write_npy_atomic(&p, &v()).unwrap();
    for solver in ["mu", "hals"] {
        let fit = |out: &Path, iters: &str, resume: Option<&Path>| {
            let mut args = vec![
                "fit",
                "-i",
                s(&p),
                "-r",
                "5",
                "-o",
                s(out),
                "--solver",
                solver,
                "--max-iter",
                iters,
                "--tol",
                "0",
                "--backend",
                "cpu",
                "-q",
            ];
            if let Some(r) = resume {
                args.extend_from_slice(&["--resume", s(r)]);
            }
            let o = nmf(&args);
            assert!(o.status.success(), "{solver}: {}", stderr(&o));
            read_model(out)
        };
        let half = d.join(format!("{solver}-100"));
        let resumed = d.join(format!("{solver}-resumed"));
        let whole = d.join(format!("{solver}-200"));
        fit(&half, "100", None);
        let (w1, h1, s1) = fit(&resumed, "200", Some(&half));
        let (w2, h2, s2) = fit(&whole, "200", None);
        assert_eq!(s1["iterations"], 200);
        assert_eq!(s2["iterations"], 200);
        let (ew, eh) = (rel(&w1, &w2), rel(&h1, &h2));
        assert!(
            ew < RESUME_TOL && eh < RESUME_TOL,
            "{solver}: W {ew:e}, H {eh:e}"
        );
        let (l1, l2) = (
            s1["final_loss"].as_f64().unwrap(),
            s2["final_loss"].as_f64().unwrap(),
        );
        assert!((l1 - l2).abs() <= RESUME_TOL * l2, "{solver}: {l1} vs {l2}");
        assert_eq!(s1["initial_loss"], s2["initial_loss"], "{solver}");
    }

    // A saved model that does not fit the command is refused, saying why.
    let half = d.join("mu-100");
    let never = d.join("never");
    let refuse = |resume: &Path, extra: &[&str], needles: &[&str]| {
        let mut args = vec![
            "fit",
            "-i",
            s(&p),
            "-o",
            s(&never),
            "--tol",
            "0",
            "--backend",
            "cpu",
            "--resume",
            s(resume),
        ];
        args.extend_from_slice(extra);
        let o = nmf(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {err}");
        for n in needles {
            assert!(err.contains(n), "{extra:?}: expected {n:?} in: {err}");
        }
        assert!(!never.exists());
    };
    refuse(
        &half,
        &["-r", "4"],
        &["cannot resume", "rank 5", "--rank 4"],
    );
    refuse(
        &half,
        &["-r", "5", "--solver", "hals"],
        &["cannot resume", "solver mu"],
    );
    refuse(
        &half,
        &["-r", "5", "--loss", "kl"],
        &["cannot resume", "loss frobenius"],
    );
    refuse(
        &half,
        &["-r", "5", "--samples-as-rows"],
        &["cannot resume", "--samples-as-rows"],
    );
    let narrow = d.join("narrow.npy");
    write_npy_atomic(
        &narrow,
        &v().slice(nmf_gpu::ndarray::s![.., ..20]).to_owned(),
    )
    .unwrap();
    let o = nmf(&[
        "fit",
        "-i",
        s(&narrow),
        "-o",
        s(&never),
        "-r",
        "5",
        "--backend",
        "cpu",
        "--resume",
        s(&half),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("40 x 30") && stderr(&o).contains("40 x 20"),
        "{}",
        stderr(&o)
    );
    refuse(
        &d.join("missing"),
        &["-r", "5"],
        &["summary.json", "cannot resume"],
    );
}

/// A model fitted with `--online` encodes new samples with `nmf transform --model`: its summary
/// names what the transform needs, and the encodings reconstruct the data as well as the
/// fit's own H does.
#[test]
fn transform_takes_a_model_fitted_online() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = d.join("v.npy");
    let data = v();
    write_npy_atomic(&p, &data).unwrap();
    let model = d.join("model");
    let fit = nmf(&[
        "fit",
        "--input",
        s(&p),
        "--rank",
        "5",
        "--online",
        "--batch-size",
        "10",
        "--output-dir",
        s(&model),
        "-q",
    ]);
    assert!(fit.status.success(), "{}", stderr(&fit));
    let h_file = d.join("h.npy");
    let out = nmf(&[
        "transform",
        "--model",
        s(&model),
        "--input",
        s(&p),
        "--output",
        s(&h_file),
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (w, h) = (read(&model.join("W.npy")), read(&h_file));
    assert_eq!(h.dim(), (5, 30));
    let err = rel(&w.dot(&h), &data);
    let fit_err = rel(&w.dot(&read(&model.join("H.npy"))), &data);
    assert!(
        err <= fit_err * 1.05 + 1e-3,
        "transform {err}, the fit's own H {fit_err}"
    );
}

// ---------- --memory-limit ----------

/// `--memory-limit` bounds the reader (half of it) and the fit (all of it), each refused with
/// the need and the limit before anything is allocated; a limit that leaves room lets the fit
/// run; a malformed size is a usage error.
#[test]
fn memory_limit_bounds_the_reader_and_the_fit() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v.npy");
    write_npy_atomic(&p, &Array2::<f32>::from_elem((600, 600), 1.0)).unwrap();
    let out = dir.path().join("out");
    let fit = |limit: &str| {
        nmf(&[
            "fit",
            "-i",
            s(&p),
            "-o",
            s(&out),
            "-r",
            "4",
            "--backend",
            "cpu",
            "--max-iter",
            "5",
            "-q",
            "--memory-limit",
            limit,
        ])
    };
    // 1.4 MiB of data: the reader's half of 2 MiB is too little.
    let o = fit("2M");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("more than the input limit of 1.000 MiB"),
        "{}",
        stderr(&o)
    );
    // The reader fits in 4 MiB of 8, the fit's work space does not.
    let o = fit("8M");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("the fit needs about"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("more than the limit of 8.000 MiB"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists(), "a refused fit wrote its output directory");
    let o = fit("1G");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(out.join("W.npy").exists());
    let o = fit("12X");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--memory-limit"), "{}", stderr(&o));
}

/// `--sparse-order degree` renumbers a sparse V's rows and columns during the fit only: W and H
/// come back in V's order, equal to the stored order's fit to float rounding, and the summary
/// records the order.
#[test]
fn sparse_order_degree_gives_the_stored_orders_factors() {
    let dir = tempfile::tempdir().unwrap();
    // Rows and columns of uneven degrees: entry (i, j) dropped unless (i·j) % 5 < 2 + i % 3.
    let mut v = v();
    for ((i, j), x) in v.indexed_iter_mut() {
        if (i * j) % 5 >= 2 + i % 3 {
            *x = 0.0;
        }
    }
    let file = put(dir.path(), "uneven.mtx", mtx_coord(&v, "real", false));
    let (out_s, out_d) = (dir.path().join("stored"), dir.path().join("degree"));
    let sparse = ["--storage", "sparse"];
    let (ws, hs) = fit_ok(&file, &out_s, &sparse);
    let (wd, hd) = fit_ok(
        &file,
        &out_d,
        &["--storage", "sparse", "--sparse-order", "degree"],
    );
    assert!(rel(&wd, &ws) < 1e-4, "W differs by {}", rel(&wd, &ws));
    assert!(rel(&hd, &hs) < 1e-4, "H differs by {}", rel(&hd, &hs));
    let summary = std::fs::read_to_string(out_d.join("summary.json")).unwrap();
    assert!(
        summary.contains("\"sparse_order\": \"degree\""),
        "{summary}"
    );
    assert!(summary.contains("\"storage\": \"sparse\""), "{summary}");
    let bad = nmf(&[
        "fit",
        "--input",
        s(&file),
        "--rank",
        "3",
        "--sparse-order",
        "rcm",
    ]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("degree"), "{}", stderr(&bad));
}
