//! Symmetric NMF: monotone objectives, recovery of planted and real communities, input errors,
//! and the GPU engine against the CPU engine.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::common::gpu_or_skip;
use nmf_gpu::cluster::normalized_mutual_info;
use nmf_gpu::graph::{planted_partition, read_edge_list, read_gml, PlantedPartition};
use nmf_gpu::ndarray::{array, Array2};
use nmf_gpu::symmetric::{Preprocess, SymMethod, SymNmf};
use nmf_gpu::{Backend, NmfError, Progress};

const METHODS: [SymMethod; 3] = [
    SymMethod::Anls,
    SymMethod::Multiplicative,
    SymMethod::TriFactor,
];

/// An increase of the objective smaller than this (relative) is f32 rounding, not divergence.
const ROUNDING: f64 = 1e-6;

fn planted() -> PlantedPartition {
    planted_partition(4, 40, 0.35, 0.04, 11).unwrap()
}

#[test]
fn objectives_never_increase() {
    let p = planted();
    for method in METHODS {
        for preprocess in [Preprocess::NormalizedAdjacency, Preprocess::None] {
            for seed in 0..2 {
                let fit = SymNmf::params(4)
                    .method(method)
                    .preprocess(preprocess)
                    .seed(seed)
                    .max_iter(150)
                    .tol(0.0)
                    .check_every(1)
                    .fit(p.graph().adjacency())
                    .unwrap();
                let l = fit.losses();
                assert_eq!(l.len(), 151);
                assert_eq!(fit.n_iter(), 150);
                assert!(!fit.converged());
                for (i, w) in l.windows(2).enumerate() {
                    assert!(
                        w[1] <= w[0] * (1.0 + ROUNDING),
                        "{method:?} {preprocess:?} seed {seed}: objective rose at iteration {}: {} -> {}",
                        i + 1,
                        w[0],
                        w[1]
                    );
                }
                assert!(l[150] < 0.9 * l[0], "{method:?}: {} -> {}", l[0], l[150]);
            }
        }
    }
}

#[test]
fn planted_partition_is_recovered_by_every_method() {
    let p = planted();
    for method in METHODS {
        let fit = SymNmf::params(4)
            .method(method)
            .seed(3)
            .fit(p.graph().adjacency())
            .unwrap();
        assert_eq!(fit.h().dim(), (160, 4));
        assert!(fit.h().iter().all(|&x| x >= 0.0 && x.is_finite()));
        let nmi = normalized_mutual_info(&fit.labels(), p.labels()).unwrap();
        assert!(nmi > 0.9, "{method:?}: NMI {nmi}");
        assert!(fit.converged(), "{method:?}: {} iterations", fit.n_iter());
        assert!(fit.relative_residual() < 1.0);
        match method {
            SymMethod::TriFactor => {
                let s = fit.s().expect("S of the tri-factorization");
                assert_eq!(s.dim(), (4, 4));
                for i in 0..4 {
                    for j in 0..4 {
                        assert!(s[[i, j]] >= 0.0);
                        assert!((s[[i, j]] - s[[j, i]]).abs() <= 1e-5 * s[[i, i]].max(1e-6));
                    }
                }
            }
            _ => assert!(fit.s().is_none()),
        }
    }
}

#[test]
fn restarts_keep_the_lowest_residual() {
    let p = planted();
    let params = SymNmf::params(4)
        .method(SymMethod::Multiplicative)
        .seed(5)
        .max_iter(40);
    let one = params.clone().fit(p.graph().adjacency()).unwrap();
    let three = params.n_init(3).fit(p.graph().adjacency()).unwrap();
    // The first of the three draws is the single run's.
    assert!(three.residual() <= one.residual());
    assert!(three.best_init() < 3);
    if three.best_init() == 0 {
        assert_eq!(three.h(), one.h());
    }
}

#[test]
fn progress_reports_every_check_of_every_restart() {
    let p = planted();
    let seen: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let params = SymNmf::params(4)
        .seed(9)
        .max_iter(30)
        .tol(0.0)
        .check_every(5);
    let one = params.clone().fit(p.graph().adjacency()).unwrap();
    let three = params
        .n_init(3)
        .on_progress(move |pr| sink.lock().unwrap().push(*pr))
        .fit(p.graph().adjacency())
        .unwrap();
    assert!(three.gpu_stats().is_none(), "a CPU fit has no GPU counters");
    let seen = seen.lock().unwrap();
    // Each restart reports its initial point and the 6 checks, iterations from 0 again.
    let runs: Vec<&[Progress]> = seen.chunks(7).collect();
    assert_eq!(seen.len(), 21);
    for run in &runs {
        let iters: Vec<usize> = run.iter().map(|pr| pr.iteration).collect();
        assert_eq!(iters, [0, 5, 10, 15, 20, 25, 30]);
        assert!(run.iter().all(|pr| pr.max_iter == 30));
    }
    // The starts are drawn one after the other from one seeded generator, so the first
    // restart is the single run, and the kept one reports the losses the result records.
    let losses = |run: &[Progress]| run.iter().map(|pr| pr.loss).collect::<Vec<_>>();
    assert_eq!(losses(runs[0]), one.losses());
    assert_eq!(losses(runs[three.best_init()]), three.losses());
}

#[test]
fn an_overflowing_anls_penalty_is_refused_with_advice() {
    // max(A)² overflows f32 (and α·sqrt(max) would even for a somewhat smaller max).
    for big in [1e20f32, 1e16] {
        let a = array![[0.0f32, big, 0.0], [big, 0.0, 1.0], [0.0, 1.0, 0.0]];
        let e = SymNmf::params(2)
            .preprocess(Preprocess::None)
            .fit(a.view())
            .unwrap_err();
        assert!(
            matches!(e, NmfError::InvalidParameter { name: "alpha", .. }),
            "{big}: {e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("rescale A") && msg.contains("Preprocess::NormalizedAdjacency"),
            "{msg}"
        );
        // The normalized adjacency has entries at most 1, and the other methods ignore α.
        for (method, preprocess) in [
            (SymMethod::Anls, Preprocess::NormalizedAdjacency),
            (SymMethod::Multiplicative, Preprocess::NormalizedAdjacency),
        ] {
            let fit = SymNmf::params(2)
                .method(method)
                .preprocess(preprocess)
                .fit(a.view())
                .unwrap();
            assert!(fit.h().iter().all(|x| x.is_finite()));
        }
    }
    // A huge α set by hand is refused too, on ordinary data.
    let a = array![[0.0f32, 2.0, 0.0], [2.0, 0.0, 1.0], [0.0, 1.0, 0.0]];
    let e = SymNmf::params(2)
        .preprocess(Preprocess::None)
        .alpha(f32::MAX)
        .fit(a.view())
        .unwrap_err();
    assert!(
        matches!(e, NmfError::InvalidParameter { name: "alpha", .. }),
        "{e}"
    );
    // ... but not by the methods that do not use it.
    let fit = SymNmf::params(2)
        .method(SymMethod::TriFactor)
        .preprocess(Preprocess::None)
        .alpha(f32::MAX)
        .fit(a.view())
        .unwrap();
    assert!(fit.h().iter().all(|x| x.is_finite()));
}

#[test]
fn alpha_defaults_to_the_squared_maximum() {
    let a = array![[0.0f32, 2.0, 0.0], [2.0, 0.0, 1.0], [0.0, 1.0, 0.0]];
    let fit = SymNmf::params(2)
        .preprocess(Preprocess::None)
        .fit(a.view())
        .unwrap();
    assert_eq!(fit.alpha(), 4.0);
    let fit = SymNmf::params(2)
        .preprocess(Preprocess::None)
        .alpha(0.5)
        .fit(a.view())
        .unwrap();
    assert_eq!(fit.alpha(), 0.5);
}

#[test]
fn small_asymmetry_is_accepted_and_isolated_nodes_are_harmless() {
    let p = planted();
    let mut a = p.graph().adjacency().to_owned();
    a[[0, 1]] *= 1.0 + 1e-7;
    // An isolated node: a zero row and column.
    let n = a.nrows();
    let mut b = Array2::<f32>::zeros((n + 1, n + 1));
    b.slice_mut(nmf_gpu::ndarray::s![..n, ..n]).assign(&a);
    for method in METHODS {
        let fit = SymNmf::params(4)
            .method(method)
            .seed(1)
            .fit(b.view())
            .unwrap();
        assert_eq!(fit.labels().len(), n + 1);
        assert!(fit.h().row(n).iter().all(|&x| x == 0.0 || x.is_finite()));
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let good = array![[0.0f32, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]];
    let fit = |a: &Array2<f32>, k: usize| SymNmf::params(k).fit(a.view()).unwrap_err();

    let mut asym = good.clone();
    asym[[2, 0]] = 0.5;
    asym[[1, 2]] = 0.9; // the worst pair: |0.9 - 0| > |1 - 0.5|
    match fit(&asym, 2) {
        NmfError::NotSymmetric {
            row,
            col,
            value,
            mirror,
            ..
        } => assert_eq!((row, col, value, mirror), (1, 2, 0.9, 0.0)),
        e => panic!("expected NotSymmetric, got {e}"),
    }
    let mut neg = good.clone();
    neg[[0, 1]] = -1.0;
    neg[[1, 0]] = -1.0;
    assert!(matches!(
        fit(&neg, 2),
        NmfError::NegativeInput { row: 0, col: 1, .. }
    ));
    let mut nan = good.clone();
    nan[[2, 2]] = f32::NAN;
    assert!(matches!(
        fit(&nan, 2),
        NmfError::NonFiniteInput { row: 2, col: 2, .. }
    ));
    let e = fit(&good, 4);
    assert!(
        matches!(e, NmfError::InvalidParameter { name: "k", .. })
            && e.to_string().contains("at most n = 3"),
        "{e}"
    );
    assert!(matches!(fit(&good, 0), NmfError::ZeroRank));
    assert!(matches!(
        fit(&Array2::zeros((2, 3)), 1),
        NmfError::NotSquare {
            rows: 2,
            cols: 3,
            ..
        }
    ));
    assert!(matches!(
        fit(&Array2::zeros((0, 0)), 1),
        NmfError::EmptyInput { .. }
    ));
    assert!(matches!(
        fit(&Array2::zeros((3, 3)), 1),
        NmfError::InvalidParameter { name: "A", .. }
    ));
    let opt = |p: nmf_gpu::symmetric::SymNmfParams| p.fit(good.view()).unwrap_err();
    assert!(matches!(
        opt(SymNmf::params(2).n_init(0)),
        NmfError::InvalidParameter { name: "n_init", .. }
    ));
    assert!(matches!(
        opt(SymNmf::params(2).alpha(-1.0)),
        NmfError::InvalidRegularization { name: "alpha", .. }
    ));
    assert!(matches!(
        opt(SymNmf::params(2).symmetry_tol(f32::NAN)),
        NmfError::InvalidParameter {
            name: "symmetry_tol",
            ..
        }
    ));
    assert!(matches!(
        opt(SymNmf::params(2).tol(-1.0)),
        NmfError::InvalidTol(_)
    ));
    assert!(matches!(
        opt(SymNmf::params(2).max_iter(0)),
        NmfError::ZeroMaxIter
    ));
    assert!(matches!(
        opt(SymNmf::params(2).check_every(0)),
        NmfError::ZeroCheckEvery
    ));
    assert!(matches!(
        opt(SymNmf::params(2).epsilon(0.0)),
        NmfError::InvalidEpsilon(_)
    ));
}

/// `../shared/data/<rel>`, or `None` with a printed reason when the shared data are absent.
fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "skipping: {} not found (the shared data sets are absent)",
            p.display()
        );
        None
    }
}

#[test]
fn karate_club_splits_with_at_most_two_errors() {
    let (Some(edges), Some(labels)) = (
        shared("karate/karate_edges.txt"),
        shared("karate/karate_labels.tsv"),
    ) else {
        return;
    };
    let g = read_edge_list(edges).unwrap();
    let text = std::fs::read_to_string(labels).unwrap();
    // Columns: node, club_after_split, sand_group.
    let mut truth = vec![usize::MAX; g.n_nodes()];
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        let node: i64 = f[0].parse().unwrap();
        truth[g.index_of(node).unwrap()] = f[1].parse().unwrap();
    }
    assert!(truth.iter().all(|&t| t <= 1));
    for method in METHODS {
        for seed in 0..3 {
            let labels = SymNmf::params(2)
                .method(method)
                .seed(seed)
                .fit(g.adjacency())
                .unwrap()
                .labels();
            let differ = labels.iter().zip(&truth).filter(|(a, b)| a != b).count();
            let wrong = differ.min(labels.len() - differ); // up to swapping the two labels
            assert!(
                wrong <= 2,
                "{method:?} seed {seed}: {wrong} nodes misplaced"
            );
        }
    }
}

#[test]
fn football_conferences_are_found() {
    let Some(path) = shared("football/football.gml") else {
        return;
    };
    let g = read_gml(path, Some("value")).unwrap();
    let truth = g.attribute_labels().unwrap();
    for seed in 0..3 {
        let fit = SymNmf::params(12)
            .seed(seed)
            .fit(g.graph().adjacency())
            .unwrap();
        let nmi = normalized_mutual_info(&fit.labels(), &truth).unwrap();
        assert!(nmi >= 0.85, "seed {seed}: NMI {nmi}");
    }
    // Restarts keep the lowest residual, which here is also the best partition.
    let fit = SymNmf::params(12)
        .n_init(5)
        .fit(g.graph().adjacency())
        .unwrap();
    let nmi = normalized_mutual_info(&fit.labels(), &truth).unwrap();
    assert!(nmi >= 0.9, "best of 5: NMI {nmi}");
}

#[test]
fn gpu_fits_match_cpu() {
    let Some(ctx) = gpu_or_skip() else { return };
    let p = planted_partition(3, 30, 0.4, 0.05, 2).unwrap();
    for method in METHODS {
        let params = |backend| {
            SymNmf::params(3)
                .method(method)
                .seed(4)
                .max_iter(40)
                .tol(0.0)
                .backend(backend)
        };
        let cpu = params(Backend::Cpu).fit(p.graph().adjacency()).unwrap();
        let gpu = params(Backend::Gpu(ctx.clone()))
            .fit(p.graph().adjacency())
            .unwrap();
        assert!(gpu.engine().starts_with("gpu"), "ran on {}", gpu.engine());
        let stats = gpu.gpu_stats().expect("a GPU fit reports its counters");
        assert!(
            stats.dispatches > 0 && stats.bytes_read_back > 0,
            "{stats:?}"
        );
        assert!(cpu.gpu_stats().is_none());
        assert_eq!(gpu.loss_iterations(), cpu.loss_iterations());
        for (g, c) in gpu.losses().iter().zip(cpu.losses()) {
            assert!(
                (g - c).abs() <= 1e-3 * c.abs(),
                "{method:?}: gpu {g} cpu {c}"
            );
        }
        assert_eq!(gpu.labels(), cpu.labels(), "{method:?}");
    }
}
