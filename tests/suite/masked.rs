//! Masked NMF: monotone objective, ignored missing entries, completion of a planted low-rank
//! matrix, the ratings reader, and input errors.

use crate::common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::common::{gpu_or_skip, pseudo};
use nmf_gpu::masked::{
    dense_from_triplets, IdMap, MaskedFactorization, MaskedInit, MaskedNmf, PenaltyScale, Rating,
    Ratings, DENSE_FIT_BYTES,
};
use nmf_gpu::ndarray::Array2;
use nmf_gpu::{Backend, NmfError};

/// A step may raise the objective by this much relative to it (f32 rounding of the products).
const MONOTONE_REL_SLACK: f64 = 1e-5;
/// Held-out relative error `‖(1−M)⊙(V − WH)‖ / ‖(1−M)⊙V‖` of the planted completion.
const HELD_OUT_REL_TOL: f64 = 0.02;

/// `W₀ H₀` with positive factors in [0.1, 1.1), and a mask with about `observed` of it set.
fn planted(m: usize, n: usize, r: usize, observed: f32, seed: u32) -> (Array2<f32>, Array2<bool>) {
    let w0 = pseudo(m, r, seed) + 0.1;
    let h0 = pseudo(r, n, seed + 1) + 0.1;
    let v = w0.dot(&h0);
    let coin = pseudo(m, n, seed + 2);
    let mask = coin.mapv(|c| c < observed);
    (v, mask)
}

fn fit(v: &Array2<f32>, mask: &Array2<bool>, params: MaskedParamsFn) -> MaskedFactorization {
    params(MaskedNmf::params(3))
        .fit(v.view(), mask.view())
        .expect("fit")
}

type MaskedParamsFn = fn(nmf_gpu::masked::MaskedParams) -> nmf_gpu::masked::MaskedParams;

#[test]
fn objective_never_increases() {
    let (v, mask) = planted(40, 30, 3, 0.5, 1);
    // Noise on the observed entries, so the fit is not exact and the steps stay informative.
    let v = v + pseudo(40, 30, 9) * 0.3;
    let configs: [(&str, MaskedParamsFn); 5] = [
        ("no penalty", |p| p.l2(0.0)),
        ("per-observation l2", |p| p.l2(0.2)),
        ("uniform l2", |p| {
            p.l2(0.5).penalty_scale(PenaltyScale::Uniform)
        }),
        ("l1 and l2", |p| p.l1(0.05).l2(0.1)),
        ("random init", |p| p.init(MaskedInit::Random).seed(3)),
    ];
    for (what, config) in configs {
        let f = config(MaskedNmf::params(4))
            .max_iter(150)
            .tol(0.0)
            .check_every(1)
            .fit(v.view(), mask.view())
            .expect(what);
        let losses = f.losses();
        assert_eq!(losses.len(), 151, "{what}");
        for (k, pair) in losses.windows(2).enumerate() {
            assert!(
                pair[1] <= pair[0] * (1.0 + MONOTONE_REL_SLACK),
                "{what}: objective rose at iteration {}: {} -> {}",
                k + 1,
                pair[0],
                pair[1]
            );
        }
        assert!(losses[150] < losses[0], "{what}: no progress: {losses:?}");
    }
}

#[test]
fn unobserved_entries_are_ignored() {
    let (v, mask) = planted(30, 25, 3, 0.6, 2);
    let replace = |f: &dyn Fn(usize, usize) -> f32| {
        Array2::from_shape_fn(
            v.dim(),
            |(i, j)| {
                if mask[[i, j]] {
                    v[[i, j]]
                } else {
                    f(i, j)
                }
            },
        )
    };
    let zeros = replace(&|_, _| 0.0);
    let nans = replace(&|_, _| f32::NAN);
    let wild = replace(&|i, j| match (i + j) % 4 {
        0 => 1e30,
        1 => -7.0,
        2 => f32::INFINITY,
        _ => f32::NEG_INFINITY,
    });
    let config: MaskedParamsFn = |p| p.max_iter(60).tol(0.0);
    let base = fit(&zeros, &mask, config);
    for (what, other) in [("NaN", &nans), ("wild values", &wild), ("true values", &v)] {
        let f = fit(other, &mask, config);
        assert_eq!(
            f.w(),
            base.w(),
            "W changed with {what} at unobserved entries"
        );
        assert_eq!(
            f.h(),
            base.h(),
            "H changed with {what} at unobserved entries"
        );
    }
    // NaN marks the missing entries for fit_nan: the same fit.
    let f = MaskedNmf::params(3)
        .max_iter(60)
        .tol(0.0)
        .fit_nan(nans.view())
        .expect("fit_nan");
    assert_eq!(f.w(), base.w());
    assert_eq!(f.h(), base.h());
}

#[test]
fn recovers_held_out_entries_of_a_planted_matrix() {
    let (m, n, r) = (60, 50, 3);
    let (v, mask) = planted(m, n, r, 0.6, 3);
    let f = MaskedNmf::params(r)
        .l2(0.0)
        .max_iter(3000)
        .tol(1e-7)
        .fit(v.view(), mask.view())
        .expect("fit");
    let wh = f.complete();
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for ((i, j), &x) in v.indexed_iter() {
        if !mask[[i, j]] {
            num += ((x - wh[[i, j]]) as f64).powi(2);
            den += (x as f64).powi(2);
        }
    }
    let rel = (num / den).sqrt();
    assert!(
        rel < HELD_OUT_REL_TOL,
        "held-out relative error {rel} after {} iterations",
        f.n_iter()
    );
    // masked_error on the held-out entries agrees with the sum above.
    let held_out = mask.mapv(|k| !k);
    let (loss, rmse) = f
        .masked_error(v.view(), held_out.view())
        .expect("masked_error");
    assert!((loss - 0.5 * num).abs() <= 1e-3 * loss.max(1e-12));
    let count = held_out.iter().filter(|&&k| k).count() as f64;
    assert!((rmse - (num / count).sqrt()).abs() <= 1e-3 * rmse.max(1e-12));
}

#[test]
fn a_row_without_observations_gets_a_zero_row_of_w() {
    let (v, mut mask) = planted(20, 15, 2, 0.7, 4);
    mask.row_mut(5).fill(false);
    mask.column_mut(7).fill(false);
    let f = MaskedNmf::params(2)
        .max_iter(50)
        .fit(v.view(), mask.view())
        .expect("fit");
    assert!(f.w().row(5).iter().all(|&x| x == 0.0), "{:?}", f.w().row(5));
    assert!(f.h().column(7).iter().all(|&x| x == 0.0));
    assert_eq!(f.observed_in_row(5), 0);
    assert_eq!(f.observed_in_column(7), 0);
    assert_eq!(f.predict(5, 3).expect("in range"), 0.0);
    assert!(f.observed_in_row(0) > 0);
}

#[test]
fn predict_agrees_with_complete() {
    let (v, mask) = planted(12, 9, 2, 0.8, 5);
    let f = fit(&v, &mask, |p| p.max_iter(20));
    let full = f.complete();
    assert_eq!(full.dim(), (12, 9));
    assert_eq!(f.dim(), (12, 9));
    for ((i, j), &x) in full.indexed_iter() {
        let p = f.predict(i, j).expect("in range");
        assert!(
            (p - x).abs() <= 1e-5 * x.abs().max(1.0),
            "({i}, {j}): {p} vs {x}"
        );
    }
    for (i, j) in [(12, 0), (0, 9)] {
        match f.predict(i, j) {
            Err(NmfError::ShapeMismatch { found, .. }) => {
                assert!(found.contains(&i.to_string()), "{found}")
            }
            other => panic!("predict({i}, {j}): {other:?}"),
        }
    }
}

#[test]
fn progress_reports_every_check() {
    let (v, mask) = planted(15, 10, 2, 0.7, 6);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let f = MaskedNmf::params(2)
        .max_iter(25)
        .tol(0.0)
        .check_every(10)
        .on_progress(move |p| sink.lock().expect("lock").push((p.iteration, p.loss)))
        .fit(v.view(), mask.view())
        .expect("fit");
    let seen = seen.lock().expect("lock").clone();
    let iters: Vec<usize> = seen.iter().map(|s| s.0).collect();
    assert_eq!(iters, vec![0, 10, 20, 25]);
    assert_eq!(f.loss_iterations(), &iters[..]);
    assert_eq!(f.n_iter(), 25);
    assert!(!f.converged());
    assert!(f.gpu_stats().is_none(), "a CPU fit has no GPU counters");
    for (s, &l) in seen.iter().zip(f.losses()) {
        assert_eq!(s.1, l);
    }
}

#[test]
fn invalid_input_gives_typed_errors() {
    let v = Array2::from_elem((4, 5), 1.0f32);
    let all = Array2::from_elem((4, 5), true);
    let p = || MaskedNmf::params(2);

    let wrong_mask = Array2::from_elem((5, 4), true);
    assert!(matches!(
        p().fit(v.view(), wrong_mask.view()),
        Err(NmfError::ShapeMismatch { .. })
    ));
    let empty = Array2::<f32>::zeros((0, 3));
    let empty_mask = Array2::from_elem((0, 3), true);
    assert!(matches!(
        p().fit(empty.view(), empty_mask.view()),
        Err(NmfError::EmptyInput { .. })
    ));
    let none = Array2::from_elem((4, 5), false);
    let e = p().fit(v.view(), none.view()).unwrap_err();
    assert!(matches!(
        e,
        NmfError::NoObservedEntries { rows: 4, cols: 5 }
    ));
    assert!(e.to_string().contains("at least one observed entry"), "{e}");

    for bad in [f32::NAN, -1.0, f32::INFINITY] {
        let mut w = v.clone();
        w[[2, 3]] = bad;
        match p().fit(w.view(), all.view()) {
            Err(NmfError::InvalidObservedEntry { row: 2, col: 3, .. }) => {}
            other => panic!("{bad}: {other:?}"),
        }
    }
    let mut w = v.clone();
    w[[1, 1]] = -2.0;
    assert!(matches!(
        p().fit_nan(w.view()),
        Err(NmfError::InvalidObservedEntry { row: 1, col: 1, .. })
    ));

    assert!(matches!(
        MaskedNmf::params(0).fit(v.view(), all.view()),
        Err(NmfError::ZeroRank)
    ));
    assert!(matches!(
        MaskedNmf::params(5).fit(v.view(), all.view()),
        Err(NmfError::RankTooLarge { limit: 4, .. })
    ));
    assert!(matches!(
        p().l2(-1.0).fit(v.view(), all.view()),
        Err(NmfError::InvalidRegularization { name: "l2", .. })
    ));
    assert!(matches!(
        p().l1(f32::NAN).fit(v.view(), all.view()),
        Err(NmfError::InvalidRegularization { name: "l1", .. })
    ));
    assert!(matches!(
        p().tol(f32::NAN).fit(v.view(), all.view()),
        Err(NmfError::InvalidTol(_))
    ));
    assert!(matches!(
        p().max_iter(0).fit(v.view(), all.view()),
        Err(NmfError::ZeroMaxIter)
    ));
    assert!(matches!(
        p().check_every(0).fit(v.view(), all.view()),
        Err(NmfError::ZeroCheckEvery)
    ));
    assert!(matches!(
        p().epsilon(0.0).fit(v.view(), all.view()),
        Err(NmfError::InvalidEpsilon(_))
    ));
    let custom = MaskedInit::Custom {
        w: Array2::from_elem((4, 3), 1.0),
        h: Array2::from_elem((2, 5), 1.0),
    };
    assert!(matches!(
        p().init(custom).fit(v.view(), all.view()),
        Err(NmfError::InitShape { .. })
    ));
}

const GOOD_RATINGS: &str = "\u{feff}user_id\titem_id\trating\ttimestamp\r
# a comment line
196\t242\t3\t881250949\r
186 302   3.5   # a trailing comment
alice,The Matrix,4.5,extra,columns

bob::242::1
196 302 0
";

#[test]
fn reads_ratings_with_comments_headers_and_mixed_separators() {
    let r = Ratings::from_reader(
        GOOD_RATINGS.as_bytes(),
        "good.txt",
        IdMap::new(),
        IdMap::new(),
    )
    .expect("parse");
    assert_eq!(r.len(), 5);
    assert_eq!(r.dim(), (4, 3));
    assert_eq!(r.users().ids(), ["196", "186", "alice", "bob"]);
    assert_eq!(r.items().ids(), ["242", "302", "The Matrix"]);
    let expect = [
        (0, 0, 3.0),
        (1, 1, 3.5),
        (2, 2, 4.5),
        (3, 0, 1.0),
        (0, 1, 0.0),
    ];
    for (got, &(user, item, value)) in r.ratings().iter().zip(&expect) {
        assert_eq!(*got, Rating { user, item, value });
    }
    assert_eq!(r.value_range(), Some((0.0, 4.5)));
    assert_eq!(r.users().index("alice"), Some(2));
    assert_eq!(r.items().id(1), Some("302"));

    let (v, mask) = r.to_dense().expect("dense");
    assert_eq!(v.dim(), (4, 3));
    assert_eq!(mask.iter().filter(|&&k| k).count(), 5);
    assert_eq!(v[[2, 2]], 4.5);
    assert!(mask[[0, 1]] && v[[0, 1]] == 0.0);
    assert!(!mask[[1, 0]]);

    // A test file read with the training maps keeps their indices and appends new ids.
    let test = Ratings::from_reader(
        "carol 242 2\n186 999 4\n".as_bytes(),
        "test.txt",
        r.users().clone(),
        r.items().clone(),
    )
    .expect("parse");
    assert_eq!(
        test.ratings(),
        [
            Rating {
                user: 4,
                item: 0,
                value: 2.0
            },
            Rating {
                user: 1,
                item: 3,
                value: 4.0
            },
        ]
    );
}

#[test]
fn reads_a_ratings_file_and_fits_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ratings.tsv");
    let mut file = std::fs::File::create(&path).expect("create");
    for u in 0..12 {
        for i in 0..10 {
            if (u * 7 + i * 3) % 4 != 0 {
                writeln!(file, "u{u}\ti{i}\t{}", 1 + (u % 3) + (i % 2)).expect("write");
            }
        }
    }
    drop(file);
    let ratings = Ratings::read(&path).expect("read");
    assert_eq!(ratings.dim(), (12, 10));
    let f = MaskedNmf::params(2)
        .max_iter(300)
        .fit_ratings(&ratings)
        .expect("fit");
    assert_eq!(f.dim(), (12, 10));
    let (lo, hi) = ratings.value_range().expect("ratings");
    for r in ratings.ratings() {
        let p = f.predict(r.user, r.item).expect("in range");
        assert!(p > lo - 1.0 && p < hi + 1.0, "{r:?}: {p}");
    }

    let missing = dir.path().join("no-such-file.txt");
    match Ratings::read(&missing) {
        Err(NmfError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_ratings_name_the_line() {
    let cases: [(&[u8], usize, Option<usize>, &str); 5] = [
        (b"1 2 3\n1 2\n", 2, None, "found 2 fields"),
        (
            b"# no header\n1 2 3\n\n4 5 five\n",
            4,
            Some(3),
            "not a number",
        ),
        (b"1 2 -1\n", 1, Some(3), ">= 0"),
        (b"1 2 3\n1 2 NaN\n", 2, Some(3), "finite"),
        (b"1 2 3\n\xff\xfe 1 2\n", 2, None, "UTF-8"),
    ];
    for (bytes, line, column, needle) in cases {
        let text = String::from_utf8_lossy(bytes);
        match Ratings::from_reader(bytes, "bad.txt", IdMap::new(), IdMap::new()) {
            Err(e @ NmfError::Format { .. }) => {
                if let NmfError::Format {
                    line: l, column: c, ..
                } = &e
                {
                    assert_eq!((*l, *c), (Some(line), column), "{text:?}: {e}");
                }
                let msg = e.to_string();
                assert!(msg.contains("bad.txt") && msg.contains(needle), "{msg}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    // No ratings at all (only comments and a header).
    let e = Ratings::from_reader(
        "# nothing\nuser item rating\n".as_bytes(),
        "empty.txt",
        IdMap::new(),
        IdMap::new(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("no ratings found"), "{e}");
}

#[test]
fn dense_from_triplets_checks_positions_and_values() {
    let (v, mask) =
        dense_from_triplets(2, 3, [(0, 1, 2.0), (1, 2, 4.0), (0, 1, 3.0)]).expect("dense");
    assert_eq!(v[[0, 1]], 3.0, "a repeated entry keeps its last value");
    assert_eq!(mask.iter().filter(|&&k| k).count(), 2);
    assert!(matches!(
        dense_from_triplets(2, 3, [(2, 0, 1.0)]),
        Err(NmfError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        dense_from_triplets(2, 3, [(1, 0, f32::NAN)]),
        Err(NmfError::InvalidObservedEntry { row: 1, col: 0, .. })
    ));
    assert!(matches!(
        Ratings::from_triplets([("a", "x", 1.0), ("b", "y", -1.0)]),
        Err(NmfError::InvalidObservedEntry { row: 1, col: 1, .. })
    ));
}

#[test]
fn dense_size_check_counts_what_a_fit_allocates() {
    assert_eq!(DENSE_FIT_BYTES, 17);
    // A shape whose dense pair alone (5 bytes an entry) is under the limit, but whose fit is
    // not: refused before anything is allocated.
    let limit = nmf_gpu::io::default_max_bytes();
    let cols = 1usize << 16;
    let rows = usize::try_from(limit / 10 / cols as u64).unwrap().max(1);
    assert!((rows * cols) as u128 * 5 <= u128::from(limit));
    match dense_from_triplets(rows, cols, [(0, 0, 1.0)]) {
        Err(NmfError::TooLarge { bytes, .. }) => {
            assert_eq!(bytes, (rows * cols) as u128 * u128::from(DENSE_FIT_BYTES))
        }
        other => panic!("expected TooLarge, got {:?}", other.map(|(v, _)| v.dim())),
    }
}

/// The same fit on the GPU engine and the CPU engine (skipped without a GPU adapter).
#[test]
fn gpu_fit_matches_cpu() {
    let Some(ctx) = gpu_or_skip() else { return };
    let (v, mask) = planted(70, 90, 4, 0.5, 7);
    let run = |backend: Backend| {
        MaskedNmf::params(4)
            .l1(0.01)
            .max_iter(60)
            .tol(0.0)
            .backend(backend)
            .fit(v.view(), mask.view())
            .expect("fit")
    };
    let gpu = run(Backend::Gpu(ctx));
    let cpu = run(Backend::Cpu);
    assert!(gpu.engine().starts_with("gpu"), "ran on {}", gpu.engine());
    let stats = gpu.gpu_stats().expect("a GPU fit reports its counters");
    assert!(
        stats.dispatches > 0 && stats.bytes_read_back > 0,
        "{stats:?}"
    );
    assert!(cpu.gpu_stats().is_none());
    assert_eq!(gpu.loss_iterations(), cpu.loss_iterations());
    for (k, (g, c)) in gpu.losses().iter().zip(cpu.losses()).enumerate() {
        assert!(
            (g - c).abs() <= 1e-3 * c.abs(),
            "check {k}: gpu {g} cpu {c}"
        );
    }
    let diff = common::max_rel_diff(&gpu.complete(), &cpu.complete());
    assert!(diff < 1e-2, "completed matrices differ by {diff}");
}

#[test]
fn rating_lines_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    std::fs::write(&path, format!("u1,i1,4\nu2,{},3\n", "i".repeat(300))).unwrap();
    let tight = nmf_gpu::io::ReadOptions::new().max_line_bytes(100);
    let err = Ratings::read_with(&path, IdMap::new(), IdMap::new(), &tight).unwrap_err();
    match &err {
        NmfError::LineTooLong { path: p, line, .. } => assert_eq!((p, *line), (&path, 2)),
        other => panic!("expected LineTooLong, got {other:?}"),
    }
    // The default bound reads it.
    assert_eq!(Ratings::read(&path).unwrap().len(), 2);
    #[cfg(unix)]
    {
        let zero = dir.path().join("zero.csv");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        match Ratings::read(&zero) {
            Err(NmfError::LineTooLong { line, .. }) => assert_eq!(line, 1),
            other => panic!("expected LineTooLong, got {other:?}"),
        }
    }
}
