//! Rank selection (`nmf_gpu::select`): every method finds the planted rank of noisy planted
//! data; a perfectly stable consensus has cophenetic correlation 1; a sweep is deterministic
//! for its seed; bad ranges and options are typed errors; `nmf rank` writes its summary and
//! pictures.

use std::path::Path;
use std::process::Command;

use nmf_gpu::io::write_npy_atomic;
use nmf_gpu::ndarray::Array2;
use nmf_gpu::select::consensus::{consensus_matrix, Consensus};
use nmf_gpu::select::{Method, RankSelect, RankSelection};
use nmf_gpu::NmfError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `V = W H ⊙ (1 + noise)`, `m x n`, rank `r`: sparse parts W and samples that each belong to
/// one cluster (`H[j % r, j]` dominant), with uniform multiplicative noise of `noise`.
fn planted(m: usize, n: usize, r: usize, noise: f32, seed: u64) -> Array2<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let w = Array2::from_shape_simple_fn((m, r), || {
        if rng.random::<f32>() < 0.4 {
            rng.random::<f32>() + 0.2
        } else {
            0.0
        }
    });
    let h = Array2::from_shape_fn((r, n), |(k, j)| {
        if k == j % r {
            1.0 + rng.random::<f32>()
        } else {
            0.1 * rng.random::<f32>()
        }
    });
    let v = w.dot(&h);
    v.mapv(|x| x * (1.0 + noise * (2.0 * rng.random::<f32>() - 1.0)))
}

fn show(sel: &RankSelection) {
    for c in &sel.consensus {
        eprintln!(
            "r={:2} coph={:.4} disp={:.4} evar={:.4}",
            c.rank, c.cophenetic, c.dispersion, c.explained_variance
        );
    }
    for k in &sel.nmfk {
        eprintln!(
            "r={:2} minsil={:.4} meansil={:.4} err={:.4}",
            k.rank, k.min_silhouette, k.mean_silhouette, k.mean_relative_error
        );
    }
    for c in &sel.cv {
        eprintln!(
            "r={:2} rmse={:.5} rel={:.5}",
            c.rank, c.heldout_rmse, c.heldout_relative_error
        );
    }
    for c in &sel.choices {
        eprintln!("{} -> {}: {}", c.method.name(), c.rank, c.rule);
    }
}

#[test]
fn every_method_finds_the_planted_rank() {
    let mut failures = Vec::new();
    for (r, seed) in [(3usize, 1u64), (5, 2), (8, 3)] {
        let v = planted(60, 90, r, 0.05, seed);
        let sel = RankSelect::params(2..=r + 3)
            .runs(10)
            .seed(seed)
            .run(v.view())
            .unwrap_or_else(|e| panic!("r = {r}: {e}"));
        show(&sel);
        for c in &sel.choices {
            // Held-out entries fitted by masked multiplicative updates may still gain a little
            // past the planted rank (the one-standard-error rule reads that): one rank of slack.
            let slack = usize::from(c.method == Method::CrossValidation);
            if c.rank.abs_diff(r) > slack {
                failures.push(format!("planted rank {r}: {} chose {}", c.rule, c.rank));
            }
        }
        assert_eq!(sel.recommended().rank, r);
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_perfectly_stable_consensus_has_cophenetic_correlation_one() {
    // Every run finds the same 4 clusters of 40 samples (under different cluster names).
    let base: Vec<usize> = (0..40).map(|j| (j * 7) % 4).collect();
    let runs: Vec<Vec<usize>> = (0..6)
        .map(|t| base.iter().map(|&c| (c + t) % 4).collect())
        .collect();
    let c = Consensus::of(&runs).unwrap();
    assert!(c.matrix.iter().all(|&x| x == 0.0 || x == 1.0));
    assert!((c.cophenetic - 1.0).abs() < 1e-12, "{}", c.cophenetic);
    assert!((c.dispersion - 1.0).abs() < 1e-12);
    // The clustering's order puts each cluster's samples together.
    let order = c.order();
    let changes = order
        .windows(2)
        .filter(|w| base[w[0]] != base[w[1]])
        .count();
    assert_eq!(changes, 3);

    // Runs that disagree: the score drops below 1 and the dispersion too.
    let mut noisy = runs.clone();
    noisy[0].swap(0, 1);
    noisy[1][5] = (noisy[1][5] + 1) % 4;
    noisy[2].rotate_left(3);
    let d = Consensus::of(&noisy).unwrap();
    assert!(d.cophenetic < 1.0 - 1e-6, "{}", d.cophenetic);
    assert!(d.dispersion < 1.0);
    // A consensus matrix is symmetric with a unit diagonal.
    let m = consensus_matrix(&noisy).unwrap();
    assert!((0..40).all(|i| m[[i, i]] == 1.0));
    assert_eq!(m, m.t());
}

#[test]
fn a_sweep_is_deterministic_for_its_seed() {
    let v = planted(30, 40, 3, 0.05, 11);
    let params = RankSelect::params(2..=4).runs(4).cv_repeats(2).seed(7);
    let a = params.run(v.view()).unwrap();
    // The same seed on one thread: the same figures, bit for bit.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let b = pool.install(|| params.run(v.view()).unwrap());
    assert_eq!(a.consensus, b.consensus);
    assert_eq!(a.nmfk, b.nmfk);
    assert_eq!(a.cv, b.cv);
    assert_eq!(a.bicv, b.bicv);
    assert_eq!(a.dominance, b.dominance);
    assert_eq!(a.choices, b.choices);
    assert_eq!(a.decision, b.decision);
    // Another seed: other restarts, other figures.
    let c = params.clone().seed(8).run(v.view()).unwrap();
    assert_ne!(a.nmfk, c.nmfk);
}

#[test]
fn bad_ranges_and_options_are_typed_errors() {
    let v = planted(10, 20, 3, 0.0, 1);
    let range_err = |e: NmfError| matches!(e, NmfError::InvalidRankRange { .. });
    for (from, to) in [(1, 4), (5, 3), (2, 11)] {
        let e = RankSelect::params(from..=to).run(v.view()).unwrap_err();
        assert!(range_err(e), "{from}..={to}");
    }
    let invalid = |e: NmfError| matches!(e, NmfError::InvalidParameter { .. });
    let p = RankSelect::params(2..=4);
    assert!(invalid(p.clone().runs(1).run(v.view()).unwrap_err()));
    assert!(invalid(p.clone().holdout(0.9).run(v.view()).unwrap_err()));
    assert!(invalid(p.clone().noise(1.5).run(v.view()).unwrap_err()));
    assert!(invalid(p.clone().methods(&[]).run(v.view()).unwrap_err()));
    assert!(invalid(
        p.clone()
            .silhouette_threshold(2.0)
            .run(v.view())
            .unwrap_err()
    ));
    let mut bad = v.clone();
    bad[[2, 3]] = -1.0;
    assert!(matches!(
        p.clone().run(bad.view()).unwrap_err(),
        NmfError::NegativeInput { row: 2, col: 3, .. }
    ));
    assert!(matches!(
        p.clone().memory_limit(1000).run(v.view()).unwrap_err(),
        NmfError::FitTooLarge { .. }
    ));
    // The stop flag ends the sweep with its own error.
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    assert!(matches!(
        p.clone().stop_flag(flag).run(v.view()).unwrap_err(),
        NmfError::Interrupted { .. }
    ));
    // One method only: its choice is the recommendation.
    let sel = p.methods(&[Method::Nmfk]).runs(3).run(v.view()).unwrap();
    assert!(sel.consensus.is_empty() && sel.cv.is_empty());
    assert_eq!(sel.choices.len(), 1);
    assert_eq!(sel.recommended().rank, sel.choices[0].rank);
    assert!(sel.consensus_of(3).is_none());
}

fn nmf(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nmf"))
        .args(args)
        .output()
        .expect("run nmf")
}

fn is_png(p: &Path) -> bool {
    std::fs::read(p).is_ok_and(|b| b.len() > 1000 && b.starts_with(b"\x89PNG\r\n\x1a\n"))
}

#[test]
fn cli_writes_the_summary_and_the_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("v.npy");
    write_npy_atomic(&input, &planted(40, 60, 4, 0.05, 5)).unwrap();
    let out = dir.path().join("rank");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (input_s, out_s) = (s(&input), s(&out));
    let args = [
        "rank",
        "--input",
        &input_s,
        "--ranks",
        "2..6",
        "--runs",
        "6",
        "--output-dir",
        &out_s,
        "--backend",
        "cpu",
        "--seed",
        "3",
    ];
    let o = nmf(&args);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("recommended rank: 4"), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["recommended_rank"], 4);
    assert!(summary["rule"].as_str().is_some_and(|r| !r.is_empty()));
    let per_rank = summary["per_rank"].as_array().unwrap();
    assert_eq!(per_rank.len(), 5);
    for key in [
        "cophenetic",
        "dispersion",
        "min_silhouette",
        "heldout_rmse",
        "heldout_rmse_se",
        "bicv_rmse",
        "dominance",
    ] {
        assert!(per_rank.iter().all(|r| r[key].is_number()), "{key}");
    }
    // The decision: clustered factors, every method counted, the reason in words.
    let decision = &summary["decision"];
    assert_eq!(decision["clustered"], true, "{decision}");
    assert_eq!(decision["evidence"].as_array().map(Vec::len), Some(4));
    assert!(decision["reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(decision["warnings"].is_array());
    assert!(is_png(&out.join("rank.png")));
    assert!(is_png(&out.join("consensus.png")));
    assert!(is_png(&out.join("heldout.png")));

    // Rerunning replaces the results; usage errors exit 2 and write nothing.
    assert!(nmf(&args).status.success());
    let fresh = s(&dir.path().join("fresh"));
    for ranks in ["5..2", "1..4", "two..six", "2..100"] {
        let o = nmf(&[
            "rank",
            "--input",
            &input_s,
            "--ranks",
            ranks,
            "--output-dir",
            &fresh,
            "--backend",
            "cpu",
            "--quiet",
        ]);
        assert_eq!(o.status.code(), Some(2), "--ranks {ranks}");
        assert!(!Path::new(&fresh).exists());
    }
    // A directory holding other files is not replaced.
    std::fs::write(out.join("keep.txt"), "x").unwrap();
    let o = nmf(&args);
    assert_eq!(o.status.code(), Some(1));
    assert!(out.join("keep.txt").exists());
}
