//! Interruption is uniform across the `nmf` commands: SIGINT / SIGTERM during `fit --online`,
//! `rank` and `transform` stop the work promptly, write what was finished (and say so in the
//! summary), and exit with 128 + the signal; `--resume` of a converged model changes nothing.
//!
//! Each test signals a running process only after it has shown that it is at work (a progress
//! line on standard error, or a partial output file), never after a bare sleep.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nmf_gpu::io::{read_matrix, write_npy_atomic, ReadOptions};
use nmf_gpu::ndarray::Array2;
use rand::{Rng, SeedableRng};

fn nmf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nmf"))
        .args(args)
        .output()
        .expect("run nmf")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn read(p: &Path) -> Array2<f32> {
    read_matrix(p, &ReadOptions::new()).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn summary(dir: &Path) -> serde_json::Value {
    let text = std::fs::read(dir.join("summary.json")).expect("summary.json");
    serde_json::from_slice(&text).expect("summary.json is JSON")
}

/// A uniform random m x n matrix in a .npy file.
fn random_npy(dir: &Path, name: &str, (m, n): (usize, usize), seed: u64) -> PathBuf {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let v = Array2::from_shape_simple_fn((m, n), || rng.random::<f32>());
    let p = dir.join(name);
    write_npy_atomic(&p, &v).unwrap();
    p
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nmf"));
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start nmf")
}

/// Send `signal` (e.g. "INT") to `child`.
fn send(child: &Child, signal: &str) {
    let st = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(st.success());
}

/// Read `child`'s standard error line by line until `done(line)` holds; then keep draining it
/// on a thread (so that the child never blocks on a full pipe), collecting the rest.
fn wait_for_line(
    child: &mut Child,
    mut done: impl FnMut(&str) -> bool,
) -> (String, std::thread::JoinHandle<String>) {
    let stderr = child.stderr.take().expect("piped stderr");
    let mut reader = std::io::BufReader::new(stderr);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "nmf ended before the line awaited: {seen}");
        seen.push_str(&line);
        if done(&line) {
            let rest = std::thread::spawn(move || {
                let mut rest = String::new();
                let mut line = String::new();
                while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    rest.push_str(&line);
                    line.clear();
                }
                rest
            });
            return (seen, rest);
        }
    }
}

/// Wait for `child` at most `limit` (killing it after that); its exit code and how long it
/// took.
fn wait_for(mut child: Child, limit: Duration) -> (Option<i32>, Duration) {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st.code(), start.elapsed());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nmf did not stop within {limit:?} of the signal");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn online_fit_stopped_while_learning_writes_w_and_the_samples_seen() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = random_npy(d, "v.npy", (60, 4000), 1);
    let out = d.join("out");
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        // An H of an earlier run in the directory must not survive beside the new W.
        let o = nmf(&[
            "fit",
            "-i",
            s(&input),
            "-r",
            "4",
            "-o",
            s(&out),
            "--online",
            "--epochs",
            "1",
            "--backend",
            "cpu",
            "-q",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(out.join("H.npy").exists());
        // Small batches, no stopping rule, a million passes: it runs until stopped.
        let mut child = spawn(
            &[
                "fit",
                "-i",
                s(&input),
                "-r",
                "4",
                "-o",
                s(&out),
                "--online",
                "--batch-size",
                "8",
                "--epochs",
                "1000000",
                "--max-no-improvement",
                "0",
                "--tol",
                "0",
                "--backend",
                "cpu",
            ],
            &[],
        );
        wait_for_line(&mut child, |l| l.starts_with("epoch "));
        send(&child, signal);
        let (status, _) = wait_for(child, Duration::from_secs(30));
        assert_eq!(status, Some(code), "SIG{signal}");
        let w = read(&out.join("W.npy"));
        assert_eq!(w.dim(), (60, 4));
        assert!(w.iter().all(|x| x.is_finite() && *x >= 0.0));
        let sm = summary(&out);
        assert_eq!(sm["interrupted"], true, "{sm}");
        assert_eq!(sm["stop"], "Interrupted", "{sm}");
        let samples = sm["samples"].as_u64().unwrap();
        assert!(samples >= 8, "{sm}");
        assert!(samples < 4000 * 1_000_000, "{sm}");
        assert_eq!(sm["H"], serde_json::Value::Null, "{sm}");
        assert!(
            !out.join("H.npy").exists(),
            "a stale H.npy was left beside the new W"
        );
    }
}

#[test]
fn online_fit_stopped_while_writing_h_keeps_the_columns_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 100_000;
    let input = random_npy(d, "v.npy", (16, n), 2);
    let out = d.join("out");
    // One pass of one-sample batches to learn W, then one-sample batches of H: the pass over H
    // takes far longer than a signal takes to arrive.
    let mut child = spawn(
        &[
            "fit",
            "-i",
            s(&input),
            "-r",
            "3",
            "-o",
            s(&out),
            "--online",
            "--batch-size",
            "1",
            "--epochs",
            "1",
            "--max-no-improvement",
            "0",
            "--tol",
            "0",
            "--backend",
            "cpu",
            "-q",
        ],
        &[],
    );
    let partial = out.join(".H.npy.partial");
    let start = Instant::now();
    // The partial file is created as the pass over H begins; the first batch is always
    // written (the stop flag is read after each batch).
    while !partial.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "nmf ended before it wrote H"
        );
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "H was never begun"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    send(&child, "INT");
    let (status, _) = wait_for(child, Duration::from_secs(30));
    assert_eq!(status, Some(130));
    let sm = summary(&out);
    assert_eq!(sm["interrupted"], true, "{sm}");
    assert_eq!(sm["stop"], "MaxEpochs", "W was learned whole: {sm}");
    assert_eq!(sm["samples"], n, "{sm}");
    let cols = sm["H"]["shape"][1].as_u64().unwrap() as usize;
    assert!((1..n).contains(&cols), "{sm}");
    assert_eq!(sm["H"]["complete"], false, "{sm}");
    assert_eq!(sm["H"]["shape"][0], 3);
    let h = read(&out.join("H.npy"));
    assert_eq!(h.dim(), (3, cols));
    assert!(h.iter().all(|x| x.is_finite() && *x >= 0.0));
    assert!(!partial.exists());
    // The columns kept are the encodings of the first samples: `nmf transform` (a solve of
    // its own, the batch solver) is not the online encoder, so compare with the online model's
    // reconstruction instead: W H explains the first samples about as well as a fit does.
    let w = read(&out.join("W.npy"));
    let v = read(&input);
    let first = v.slice(nmf_gpu::ndarray::s![.., ..cols]);
    let wh = w.dot(&h);
    let err = (&first - &wh).mapv(|x| x * x).sum().sqrt() / first.mapv(|x| x * x).sum().sqrt();
    assert!(err < 0.6, "relative error of the H kept: {err}");
}

#[test]
fn rank_stopped_writes_the_ranks_finished() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = random_npy(d, "v.npy", (120, 200), 3);
    let out = d.join("sel");
    // One worker, so that the fits finish in job order: the largest rank first, two runs each.
    // Each fit is long enough (20000 iterations) that the sweep cannot end between the progress
    // line read below (printed at most once a second) and the signal, however fast the machine.
    let mut child = spawn(
        &[
            "rank",
            "-i",
            s(&input),
            "--ranks",
            "2..12",
            "--runs",
            "2",
            "--method",
            "consensus",
            "--max-iter",
            "20000",
            "--tol",
            "0",
            "-o",
            s(&out),
            "--backend",
            "cpu",
        ],
        &[("RAYON_NUM_THREADS", "1")],
    );
    // "fits d/22": wait until the two fits of rank 12 are done.
    let (_, rest) = wait_for_line(&mut child, |l| {
        l.strip_prefix("fits ")
            .and_then(|x| x.split('/').next())
            .and_then(|x| x.trim().parse::<usize>().ok())
            .is_some_and(|done| done >= 2)
    });
    send(&child, "INT");
    // Stopped, not finished: the exit code says so, and the summary below lists fewer ranks
    // than asked (how fast it stops is not asserted: a loaded machine may deschedule it).
    let (status, _) = wait_for(child, Duration::from_secs(30));
    let rest = rest.join().unwrap();
    assert_eq!(status, Some(130), "{rest}");
    assert!(rest.contains("interrupted by SIGINT"), "{rest}");
    let sm = summary(&out);
    assert_eq!(sm["interrupted"], true, "{sm}");
    assert_eq!(sm["ranks_asked"], serde_json::json!([2, 12]));
    let ranks: Vec<u64> = sm["ranks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap())
        .collect();
    assert!(!ranks.is_empty() && ranks.len() < 11, "{sm}");
    assert_eq!(*ranks.last().unwrap(), 12, "{sm}");
    // The ranks finished are the largest ones, in increasing order, each with its row.
    let first = ranks[0];
    assert_eq!(ranks, (first..=12).collect::<Vec<_>>(), "{sm}");
    let rows = sm["per_rank"].as_array().unwrap();
    assert_eq!(rows.len(), ranks.len());
    for (row, r) in rows.iter().zip(&ranks) {
        assert_eq!(row["rank"], *r);
        assert!(row["cophenetic"].as_f64().is_some(), "{row}");
    }
    assert!(ranks.contains(&sm["recommended_rank"].as_u64().unwrap()));
    // The fits run: those of the ranks finished, and at most one of the next rank (one
    // worker), which its summary leaves out.
    let fits = sm["fits"].as_u64().unwrap() as usize;
    assert!(
        (2 * ranks.len()..2 * ranks.len() + 2).contains(&fits),
        "{sm}"
    );
    for f in sm["files"].as_array().unwrap() {
        assert!(out.join(f.as_str().unwrap()).is_file(), "{f} missing");
    }
    #[cfg(feature = "plots")]
    assert!(out.join("rank.png").is_file());
}

#[test]
fn transform_stops_when_signalled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = random_npy(d, "train.npy", (200, 50), 4);
    let model = d.join("model");
    let o = nmf(&[
        "fit",
        "-i",
        s(&train),
        "-r",
        "8",
        "-o",
        s(&model),
        "--max-iter",
        "20",
        "--backend",
        "cpu",
        "-q",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The model's budget for transform: ten million iterations, no stopping rule.
    let mut sm = summary(&model);
    sm["max_iter"] = serde_json::json!(10_000_000);
    sm["tol"] = serde_json::json!(0.0);
    std::fs::write(model.join("summary.json"), sm.to_string()).unwrap();
    let new = random_npy(d, "new.npy", (200, 4000), 5);
    let h_out = d.join("h.npy");
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let mut child = spawn(
            &[
                "transform",
                "-m",
                s(&model),
                "-i",
                s(&new),
                "-o",
                s(&h_out),
                "--backend",
                "cpu",
            ],
            &[],
        );
        // Printed once the data is read, as the iterations begin.
        let (_, rest) = wait_for_line(&mut child, |l| l.starts_with("encoding "));
        send(&child, signal);
        // Stopped, not finished: the exit code and the missing output say so (the time it
        // takes, about 2 ms here, is not asserted: a loaded machine may deschedule it).
        let (status, _) = wait_for(child, Duration::from_secs(30));
        let rest = rest.join().unwrap();
        assert_eq!(status, Some(code), "{rest}");
        assert!(rest.contains("interrupted"), "{rest}");
        assert!(!h_out.exists(), "an interrupted transform wrote its output");
    }
}

#[test]
fn resume_of_a_converged_model_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (v, _, _) = crate::common::planted(40, 30, 5, 11);
    let input = d.join("v.npy");
    write_npy_atomic(&input, &v).unwrap();
    let out = d.join("out");
    let fit = |extra: &[&str]| {
        let mut args = vec![
            "fit",
            "-i",
            s(&input),
            "-r",
            "5",
            "-o",
            s(&out),
            "--backend",
            "cpu",
            "--seed",
            "3",
        ];
        args.extend_from_slice(extra);
        nmf(&args)
    };
    let o = fit(&["--max-iter", "5000", "--tol", "1e-4", "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let first = summary(&out);
    assert_eq!(first["converged"], true, "{first}");
    let iterations = first["iterations"].as_u64().unwrap();
    assert!(iterations < 5000);
    let bytes = |name: &str| std::fs::read(out.join(name)).unwrap();
    let (w0, h0, s0) = (bytes("W.npy"), bytes("H.npy"), bytes("summary.json"));

    // The same command with --resume: reported converged, nothing changed.
    let o = fit(&["--max-iter", "5000", "--tol", "1e-4", "--resume", s(&out)]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("converged"), "{err}");
    assert_eq!(bytes("W.npy"), w0, "W changed");
    assert_eq!(bytes("H.npy"), h0, "H changed");
    assert_eq!(bytes("summary.json"), s0, "the summary changed");

    // Into another directory: the same model, unchanged.
    let copy = d.join("copy");
    let o = nmf(&[
        "fit",
        "-i",
        s(&input),
        "-r",
        "5",
        "-o",
        s(&copy),
        "--backend",
        "cpu",
        "--max-iter",
        "5000",
        "--resume",
        s(&out),
        "-q",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(copy.join("W.npy")).unwrap(), w0);
    assert_eq!(std::fs::read(copy.join("H.npy")).unwrap(), h0);

    // A smaller --tol without budget left changes nothing either.
    let budget = iterations.to_string();
    let o = fit(&["--max-iter", &budget, "--tol", "1e-9", "--resume", s(&out)]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("converged"));
    assert_eq!(bytes("W.npy"), w0, "W changed");
    assert_eq!(bytes("summary.json"), s0, "the summary changed");

    // A smaller --tol with budget left continues it.
    let o = fit(&[
        "--max-iter",
        "5000",
        "--tol",
        "1e-9",
        "--resume",
        s(&out),
        "-q",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let more = summary(&out);
    assert!(more["iterations"].as_u64().unwrap() > iterations, "{more}");
    assert_eq!(more["resumed_from"]["iterations"], iterations);
    assert_ne!(bytes("W.npy"), w0);
}

#[test]
fn the_library_rank_sweep_until_stopped_keeps_the_ranks_finished() {
    use nmf_gpu::select::{Method, RankSelect};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let (v, _, _) = crate::common::planted(30, 40, 3, 5);
    let flag = Arc::new(AtomicBool::new(false));
    let raise = flag.clone();
    // Raised once two fits are done: with one worker the jobs finish in order, the two runs of
    // rank 4 (the largest first).
    let p = RankSelect::params(2..=4)
        .runs(2)
        .methods(&[Method::Consensus])
        .max_iter(50)
        .seed(1)
        .backend(nmf_gpu::Backend::Cpu)
        .stop_flag(flag.clone())
        .on_progress(move |pr| {
            if pr.done == 2 {
                raise.store(true, Ordering::SeqCst);
            }
        });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let sel = pool
        .install(|| p.clone().run_until_stopped(v.view()))
        .unwrap();
    assert!(sel.interrupted);
    assert_eq!(sel.ranks, vec![4]);
    assert_eq!(sel.consensus.len(), 1);
    assert_eq!(sel.consensus[0].rank, 4);
    assert_eq!(sel.fits, 2);
    assert_eq!(sel.recommended().rank, 4);
    assert!(sel.consensus_of(4).is_some_and(|c| c.is_ok()));
    assert!(sel.consensus_of(3).is_none());
    // `run` keeps its contract: a stopped sweep is an error.
    flag.store(false, Ordering::SeqCst);
    let err = pool.install(|| p.run(v.view())).unwrap_err();
    assert!(
        matches!(err, nmf_gpu::NmfError::Interrupted { .. }),
        "{err}"
    );
}

#[test]
fn the_library_transform_honours_the_stop_flag() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let (v, w, _) = crate::common::planted(30, 40, 3, 6);
    let stop = Arc::new(AtomicBool::new(true));
    let params = nmf_gpu::Nmf::params(3)
        .max_iter(1_000_000)
        .tol(0.0)
        .backend(nmf_gpu::Backend::Cpu)
        .stop_flag(stop.clone());
    let model = nmf_gpu::Factorization::from_w(w, &params).unwrap();
    let err = model.transform(v.view()).unwrap_err();
    assert!(
        matches!(err, nmf_gpu::NmfError::Interrupted { what: "transform" }),
        "{err}"
    );
    let sparse = nmf_gpu::CsrMatrix::from_dense(v.view()).unwrap();
    assert!(matches!(
        model.transform_sparse(&sparse),
        Err(nmf_gpu::NmfError::Interrupted { .. })
    ));
    // Lowered, the flag lets it run (a short budget this time).
    stop.store(false, Ordering::SeqCst);
    let quick = nmf_gpu::Factorization::from_w(
        model.w().to_owned(),
        &nmf_gpu::Nmf::params(3)
            .max_iter(20)
            .backend(nmf_gpu::Backend::Cpu)
            .stop_flag(stop),
    )
    .unwrap();
    assert_eq!(quick.transform(v.view()).unwrap().dim(), (3, 40));
}
