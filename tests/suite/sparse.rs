//! Sparse data (CSR): construction and validation, fits that agree with the dense engine,
//! empty rows and columns, monotone objectives, and the MatrixMarket reader.

use crate::common;

use std::path::{Path, PathBuf};

use crate::common::{sparse_uniform, uniform};
use nmf_gpu::io::{read_matrix, read_mtx_sparse, ReadOptions};
use nmf_gpu::ndarray::Array2;
use nmf_gpu::sparse::CsrMatrix;
use nmf_gpu::{Backend, Factorization, Init, Loss, Nmf, NmfError, NmfParams, Solver};

/// Loss curves of the sparse and the dense engine, from the same start: the products are
/// summed in different orders in f32, so the curves agree to rounding, amplified a little by
/// the iterations.
const CURVE_REL_TOL: f64 = 1e-4;
/// Slack for "never increases" when the objective is measured in f64 from the f32 factors.
const MONOTONE_REL_SLACK: f64 = 1e-6;

/// The 120 x 90 test matrix, 90% zeros.
fn data() -> Array2<f32> {
    sparse_uniform(120, 90, 0.9, 7)
}

fn custom(m: usize, n: usize, r: usize) -> Init {
    Init::Custom {
        w: uniform(m, r, 11).mapv(|x| x + 0.1),
        h: uniform(r, n, 12).mapv(|x| x + 0.1),
    }
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1e-30))
        .fold(0.0, f64::max)
}

/// Fit the dense and the sparse form of `v` with `params`; both results.
fn both(params: &NmfParams, v: &Array2<f32>) -> (Factorization, Factorization) {
    let dense = params.fit(v.view()).unwrap();
    let csr = CsrMatrix::from_dense(v.view()).unwrap();
    let sparse = params.fit_sparse(&csr).unwrap();
    (dense, sparse)
}

fn assert_agree(params: &NmfParams, v: &Array2<f32>, what: &str) {
    let (d, s) = both(params, v);
    assert_eq!(d.loss_iterations(), s.loss_iterations(), "{what}");
    let rel = max_rel(s.losses(), d.losses());
    assert!(
        rel < CURVE_REL_TOL,
        "{what}: loss curves differ by {rel:e}\nsparse {:?}\ndense  {:?}",
        s.losses(),
        d.losses()
    );
    assert!(s
        .w()
        .iter()
        .chain(s.h().iter())
        .all(|x| x.is_finite() && *x >= 0.0));
    assert!(s.engine().starts_with("cpu"), "{}", s.engine());
}

// ---------- construction and validation ----------

#[test]
fn triplets_sum_duplicates_and_sort() {
    let a = CsrMatrix::from_triplets(
        3,
        4,
        [
            (2, 1, 1.0),
            (0, 3, 2.0),
            (0, 1, 0.5),
            (2, 1, 2.5),
            (0, 3, 1.0),
        ],
    )
    .unwrap();
    assert_eq!(a.dim(), (3, 4));
    assert_eq!(a.nnz(), 3);
    assert_eq!(a.indptr(), &[0, 2, 2, 3]);
    assert_eq!(a.indices(), &[1, 3, 1]);
    assert_eq!(a.values(), &[0.5, 3.0, 3.5]);
    assert_eq!(a.get(0, 3), Some(3.0));
    assert_eq!(a.get(1, 0), Some(0.0));
    assert_eq!(a.get(3, 0), None);
    let mut dense = Array2::<f32>::zeros((3, 4));
    dense[[0, 1]] = 0.5;
    dense[[0, 3]] = 3.0;
    dense[[2, 1]] = 3.5;
    assert_eq!(a.to_dense(), dense);
    assert_eq!(CsrMatrix::from_dense(dense.view()).unwrap(), a);
    let t = a.transpose();
    assert_eq!(t.to_dense(), dense.t());
    assert!((a.density() - 0.25).abs() < 1e-12);
}

#[test]
fn construction_errors_are_typed() {
    let sparse = |e: NmfError, needle: &str| match e {
        NmfError::InvalidSparse { reason } => {
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}")
        }
        other => panic!("expected InvalidSparse, got {other:?}"),
    };
    // indptr of the wrong length, not starting at 0, decreasing.
    sparse(
        CsrMatrix::from_parts(2, 2, vec![0, 1], vec![0], vec![1.0]).unwrap_err(),
        "indptr",
    );
    sparse(
        CsrMatrix::from_parts(2, 2, vec![1, 1, 1], vec![0], vec![1.0]).unwrap_err(),
        "indptr",
    );
    sparse(
        CsrMatrix::from_parts(2, 2, vec![0, 2, 1], vec![0], vec![1.0]).unwrap_err(),
        "indptr",
    );
    // Index and value counts differ; index out of range; unsorted; repeated.
    sparse(
        CsrMatrix::from_parts(1, 2, vec![0, 1], vec![0, 1], vec![1.0]).unwrap_err(),
        "values",
    );
    sparse(
        CsrMatrix::from_parts(1, 2, vec![0, 1], vec![2], vec![1.0]).unwrap_err(),
        "out of range",
    );
    sparse(
        CsrMatrix::from_parts(1, 3, vec![0, 2], vec![2, 0], vec![1.0, 1.0]).unwrap_err(),
        "strictly increasing",
    );
    sparse(
        CsrMatrix::from_parts(1, 3, vec![0, 2], vec![1, 1], vec![1.0, 1.0]).unwrap_err(),
        "strictly increasing",
    );
    sparse(
        CsrMatrix::from_triplets(2, 2, [(0, 0, 1.0), (2, 0, 1.0)]).unwrap_err(),
        "outside",
    );
    sparse(CsrMatrix::from_triplets(1 << 33, 2, []).unwrap_err(), "u32");
    // Bad values name their position.
    match CsrMatrix::from_parts(2, 3, vec![0, 0, 2], vec![0, 2], vec![1.0, -2.0]) {
        Err(NmfError::NegativeInput { row, col, value }) => {
            assert_eq!((row, col, value), (1, 2, -2.0))
        }
        other => panic!("{other:?}"),
    }
    match CsrMatrix::from_triplets(2, 3, [(0, 1, f32::NAN)]) {
        Err(NmfError::NonFiniteInput { row: 0, col: 1, .. }) => {}
        other => panic!("{other:?}"),
    }
    match CsrMatrix::from_triplets(1, 1, [(0, 0, f32::MAX), (0, 0, f32::MAX)]) {
        Err(NmfError::NonFiniteInput { row: 0, col: 0, .. }) => {}
        other => panic!("{other:?}"),
    }
    let mut d = Array2::<f32>::ones((2, 2));
    d[[1, 0]] = f32::INFINITY;
    assert!(matches!(
        CsrMatrix::from_dense(d.view()),
        Err(NmfError::NonFiniteInput { row: 1, col: 0, .. })
    ));
    // A valid matrix passes, and the fit checks the shape.
    let a = CsrMatrix::from_parts(2, 3, vec![0, 1, 1], vec![2], vec![1.0]).unwrap();
    assert_eq!(a.to_dense()[[0, 2]], 1.0);
    let empty = CsrMatrix::from_parts(0, 3, vec![0], vec![], vec![]).unwrap();
    assert!(matches!(
        Nmf::params(1).fit_sparse(&empty),
        Err(NmfError::EmptyInput { .. })
    ));
}

// ---------- sparse fits agree with dense fits ----------

#[test]
fn mu_frobenius_agrees_with_dense() {
    let v = data();
    let p = Nmf::params(5)
        .init(custom(120, 90, 5))
        .max_iter(60)
        .tol(0.0)
        .check_every(5);
    assert_agree(&p, &v, "MU Frobenius");
    // With penalties too.
    let p = p.alpha_w(0.01).alpha_h(0.02).l1_ratio(0.5);
    assert_agree(&p, &v, "MU Frobenius, penalised");
}

#[test]
fn mu_kl_agrees_with_dense() {
    let v = data();
    let p = Nmf::params(5)
        .loss(Loss::KullbackLeibler)
        .init(custom(120, 90, 5))
        .max_iter(60)
        .tol(0.0)
        .check_every(5);
    assert_agree(&p, &v, "MU KL");
}

#[test]
fn hals_agrees_with_dense() {
    let v = data();
    let p = Nmf::params(5)
        .solver(Solver::Hals)
        .init(custom(120, 90, 5))
        .max_iter(60)
        .tol(0.0)
        .check_every(5);
    assert_agree(&p, &v, "HALS");
}

#[test]
fn orthogonal_mu_agrees_with_dense() {
    let v = data();
    let p = Nmf::params(4)
        .orthogonal(nmf_gpu::Orthogonality::H)
        .init(custom(120, 90, 4))
        .max_iter(30)
        .tol(0.0)
        .check_every(5);
    assert_agree(&p, &v, "ONMF-H");
}

#[test]
fn random_and_nndsvd_inits_agree_with_dense() {
    let v = data();
    for init in [Init::Random, Init::Nndsvd, Init::Nndsvda, Init::Nndsvdar] {
        let p = Nmf::params(4)
            .init(init.clone())
            .seed(3)
            .max_iter(20)
            .tol(0.0)
            .check_every(5);
        let (d, s) = both(&p, &v);
        let rel = max_rel(s.losses(), d.losses());
        // The randomized SVD runs its products in another order: its vectors agree to
        // rounding, which NNDSVD's thresholds can move by a little more.
        assert!(
            rel < 1e-3,
            "{init:?}: {rel:e}\n{:?}\n{:?}",
            s.losses(),
            d.losses()
        );
    }
}

#[test]
fn empty_rows_and_columns() {
    let mut v = data();
    v.row_mut(17).fill(0.0);
    v.column_mut(40).fill(0.0);
    v.column_mut(89).fill(0.0);
    v.row_mut(0).fill(0.0);
    for (solver, loss) in [
        (Solver::MultiplicativeUpdate, Loss::Frobenius),
        (Solver::MultiplicativeUpdate, Loss::KullbackLeibler),
        (Solver::Hals, Loss::Frobenius),
    ] {
        let p = Nmf::params(4)
            .solver(solver)
            .loss(loss)
            .init(custom(120, 90, 4))
            .max_iter(40)
            .tol(0.0)
            .check_every(10);
        assert_agree(
            &p,
            &v,
            &format!("{solver:?} {loss:?} with empty rows/columns"),
        );
        let csr = CsrMatrix::from_dense(v.view()).unwrap();
        assert_eq!(csr.row(17).0.len(), 0);
        let s = p.fit_sparse(&csr).unwrap();
        assert!(s.final_loss().is_finite());
    }
}

#[test]
fn mu_objective_never_increases() {
    let v = data();
    let csr = CsrMatrix::from_dense(v.view()).unwrap();
    for loss in [Loss::Frobenius, Loss::KullbackLeibler] {
        let fit = Nmf::params(6)
            .loss(loss)
            .init(Init::Random)
            .max_iter(80)
            .tol(0.0)
            .check_every(1)
            .fit_sparse(&csr)
            .unwrap();
        for w in fit.losses().windows(2) {
            assert!(
                w[1] <= w[0] * (1.0 + MONOTONE_REL_SLACK),
                "{loss:?}: {} then {}",
                w[0],
                w[1]
            );
        }
        assert!(fit.final_loss() < fit.losses()[0]);
    }
}

#[test]
fn transform_and_relative_error_agree_with_dense() {
    let v = data();
    let csr = CsrMatrix::from_dense(v.view()).unwrap();
    for solver in [Solver::MultiplicativeUpdate, Solver::Hals] {
        let fit = Nmf::params(5)
            .solver(solver)
            .init(custom(120, 90, 5))
            .max_iter(50)
            .fit_sparse(&csr)
            .unwrap();
        let e_dense = fit.relative_error(v.view()).unwrap();
        let e_sparse = fit.relative_error_sparse(&csr).unwrap();
        assert!(
            (e_dense - e_sparse).abs() < 1e-5 * e_dense,
            "{e_dense} {e_sparse}"
        );
        let h_dense = fit.transform(v.view()).unwrap();
        let h_sparse = fit.transform_sparse(&csr).unwrap();
        let scale = h_dense.iter().fold(0.0f32, |m, &x| m.max(x));
        let diff = (&h_dense - &h_sparse)
            .iter()
            .fold(0.0f32, |m, &x| m.max(x.abs()));
        assert!(diff <= 1e-3 * scale, "{solver:?}: {diff} vs {scale}");
        let wrong = CsrMatrix::from_triplets(119, 3, []).unwrap();
        assert!(matches!(
            fit.transform_sparse(&wrong),
            Err(NmfError::ShapeMismatch { .. })
        ));
    }
}

#[test]
fn auto_backend_runs_sparse_on_the_cpu() {
    let csr = CsrMatrix::from_dense(data().view()).unwrap();
    let fit = Nmf::params(3)
        .backend(Backend::Auto)
        .init(Init::Random)
        .max_iter(5)
        .fit_sparse(&csr)
        .unwrap();
    assert!(fit.engine().starts_with("cpu"), "{}", fit.engine());
}

/// Sparse V on the GPU engine: every solver and loss ends within 1e-3 (relative error) of the
/// CPU sparse path from the same start, on data with empty rows and columns, with V split into
/// row panels too; a GPU model encodes sparse samples like the CPU.
#[test]
fn gpu_sparse_fits_match_the_cpu() {
    let Some(ctx) = common::gpu_or_skip() else {
        return;
    };
    let mut v = data();
    v.row_mut(5).fill(0.0);
    v.column_mut(17).fill(0.0);
    let csr = CsrMatrix::from_dense(v.view()).unwrap();
    let (m, n, r) = (v.nrows(), v.ncols(), 4);
    let small = ctx.clone().with_max_panel_bytes(4 * 200);
    for (solver, loss) in [
        (Solver::MultiplicativeUpdate, Loss::Frobenius),
        (Solver::MultiplicativeUpdate, Loss::KullbackLeibler),
        (Solver::Hals, Loss::Frobenius),
    ] {
        let p = Nmf::params(r)
            .solver(solver)
            .loss(loss)
            .init(custom(m, n, r))
            .max_iter(60)
            .tol(0.0);
        let cpu = p.clone().fit_sparse(&csr).unwrap();
        for c in [&ctx, &small] {
            let gpu = p
                .clone()
                .backend(Backend::Gpu(c.clone()))
                .fit_sparse(&csr)
                .unwrap();
            assert!(gpu.engine().starts_with("gpu"), "{}", gpu.engine());
            let (a, b) = (
                cpu.relative_error_sparse(&csr).unwrap(),
                gpu.relative_error_sparse(&csr).unwrap(),
            );
            assert!(
                (a - b).abs() <= 1e-3,
                "{solver:?} {loss:?}: cpu {a}, gpu {b}"
            );
            let (la, lb) = (*cpu.losses().last().unwrap(), *gpu.losses().last().unwrap());
            assert!(
                (la - lb).abs() <= 1e-3 * la,
                "{solver:?} {loss:?}: {la} vs {lb}"
            );
            assert!(gpu.h().row(0).iter().all(|x| x.is_finite()));
            assert!(gpu.h().column(17).iter().all(|&x| x >= 0.0));
        }
    }
    let p = Nmf::params(3).init(custom(m, n, 3)).max_iter(30);
    let cpu = p.clone().fit_sparse(&csr).unwrap();
    let gpu = p.backend(Backend::Gpu(ctx)).fit_sparse(&csr).unwrap();
    let (a, b) = (
        cpu.transform_sparse(&csr).unwrap(),
        gpu.transform_sparse(&csr).unwrap(),
    );
    let scale = a.iter().fold(1e-12f32, |m, x| m.max(x.abs()));
    let diff = a
        .iter()
        .zip(&b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff <= 1e-2 * scale, "transform: {diff} vs {scale}");
}

// ---------- MatrixMarket to CSR ----------

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn mtx_to_csr_equals_the_dense_reader() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "general",
            "%%MatrixMarket matrix coordinate real general\n% a comment\n4 5 6\n1 1 1.5\n4 5 2\n2 3 0.25\n1 1 1\n3 2 7e-1\n4 1 3\n",
        ),
        (
            "symmetric",
            "%%MatrixMarket matrix coordinate integer symmetric\n3 3 4\n1 1 2\n2 1 3\n3 2 1\n3 3 5\n",
        ),
        (
            "pattern",
            "%%MatrixMarket matrix coordinate pattern general\n2 3 3\n1 2\n2 1\n2 3\n",
        ),
        (
            "array",
            "%%MatrixMarket matrix array real general\n2 2\n1\n0\n0\n4\n",
        ),
        (
            "empty",
            "%%MatrixMarket matrix coordinate real general\n3 2 0\n",
        ),
    ];
    let opts = ReadOptions::default();
    for (name, text) in files {
        let p = write(dir.path(), &format!("{name}.mtx"), text);
        let dense = read_matrix(&p, &opts).unwrap();
        let csr = read_mtx_sparse(&p, &opts).unwrap();
        assert_eq!(csr.to_dense(), dense, "{name}");
        assert_eq!(csr, CsrMatrix::from_dense(dense.view()).unwrap(), "{name}");
    }
    // Errors: truncated, out of range, negative values, too many entries for the limit.
    let bad = [
        (
            "short",
            "%%MatrixMarket matrix coordinate real general\n2 2 3\n1 1 1\n2 2 1\n",
            "truncated",
        ),
        (
            "range",
            "%%MatrixMarket matrix coordinate real general\n2 2 1\n3 1 1\n",
            "out of range",
        ),
    ];
    for (name, text, needle) in bad {
        let p = write(dir.path(), &format!("{name}.mtx"), text);
        let e = read_mtx_sparse(&p, &opts).unwrap_err();
        assert!(e.to_string().contains(needle), "{name}: {e}");
    }
    let p = write(
        dir.path(),
        "big.mtx",
        "%%MatrixMarket matrix coordinate real general\n100000 100000 2\n1 1 1\n2 2 1\n",
    );
    // 10^10 dense entries (40 GB) would not fit in 2 MiB, but two sparse ones do: 28 bytes
    // each, plus 8 bytes per row and per column for the offsets of V and its transpose.
    let need = 2 * 28 + 8 * 100_001 * 2;
    let fits = ReadOptions::default().max_bytes(need);
    assert_eq!(read_mtx_sparse(&p, &fits).unwrap().nnz(), 2);
    assert!(matches!(
        read_mtx_sparse(&p, &ReadOptions::default().max_bytes(need - 1)),
        Err(NmfError::TooLarge { bytes, .. }) if bytes == u128::from(need)
    ));
}

/// The `Format` error of `e`: its line, column and message.
fn format_parts(e: NmfError) -> (Option<usize>, Option<usize>, String) {
    match e {
        NmfError::Format {
            line,
            column,
            message,
            ..
        } => (line, column, message),
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn mtx_sparse_bad_values_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ReadOptions::default();
    // A negative value: its line (1-based, comments counted), the value column and the
    // 1-based entry.
    let p = write(
        dir.path(),
        "neg.mtx",
        "%%MatrixMarket matrix coordinate real general\n% a comment\n3 2 2\n1 1 1\n3 1 -0.5\n",
    );
    let e = read_mtx_sparse(&p, &opts).unwrap_err();
    assert!(e.to_string().contains("neg.mtx"), "{e}");
    let (line, column, msg) = format_parts(e);
    assert_eq!((line, column), (Some(5), Some(3)));
    assert!(
        msg.contains("negative") && msg.contains("-0.5") && msg.contains("entry (3, 1)"),
        "{msg}"
    );
    // Non-finite values, in a symmetric file with the mirror named.
    let p = write(
        dir.path(),
        "nan.mtx",
        "%%MatrixMarket matrix coordinate real symmetric\n30 30 2\n1 1 1\n9 4 nan\n",
    );
    let (line, _, msg) = format_parts(read_mtx_sparse(&p, &opts).unwrap_err());
    assert_eq!(line, Some(4));
    assert!(
        msg.contains("non-finite") && msg.contains("entry (9, 4) or its mirror (4, 9)"),
        "{msg}"
    );
    let p = write(
        dir.path(),
        "inf.mtx",
        "%%MatrixMarket matrix coordinate real general\n2 2 1\n2 2 1e39\n",
    );
    let (line, _, msg) = format_parts(read_mtx_sparse(&p, &opts).unwrap_err());
    assert_eq!(line, Some(3));
    assert!(msg.contains("non-finite"), "{msg}");
    // Repeated entries are summed after reading: a negative entry whose sum is not negative
    // is still refused on its line, and finite entries that sum past f32::MAX are reported at
    // their (0-based) position.
    let p = write(
        dir.path(),
        "negsum.mtx",
        "%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 2\n1 1 -1\n",
    );
    let (line, _, msg) = format_parts(read_mtx_sparse(&p, &opts).unwrap_err());
    assert_eq!(line, Some(4));
    assert!(msg.contains("negative"), "{msg}");
    let p = write(
        dir.path(),
        "sum.mtx",
        "%%MatrixMarket matrix coordinate real general\n3 4 2\n2 3 3e38\n2 3 3e38\n",
    );
    assert!(matches!(
        read_mtx_sparse(&p, &opts),
        Err(NmfError::NonFiniteInput { row: 1, col: 2, .. })
    ));
    // Skew-symmetric files are refused from the header (line 1), with or without entries.
    for (name, text) in [
        (
            "skew.mtx",
            "%%MatrixMarket matrix coordinate real skew-symmetric\n2 2 1\n2 1 3\n",
        ),
        (
            "skew0.mtx",
            "%%MatrixMarket matrix coordinate real skew-symmetric\n2 2 0\n",
        ),
        (
            "skewa.mtx",
            "%%MatrixMarket matrix array real skew-symmetric\n2 2\n3\n",
        ),
    ] {
        let p = write(dir.path(), name, text);
        let e = read_mtx_sparse(&p, &opts).unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
        let (line, _, msg) = format_parts(e);
        assert_eq!(line, Some(1), "{name}");
        assert!(msg.contains("skew-symmetric"), "{name}: {msg}");
    }
}

#[test]
fn mtx_sparse_huge_declared_dimensions_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ReadOptions::default().max_bytes(1 << 30);
    // 4·10^9 rows fit the u32 indices, but their offsets alone take 32 GB: over the limit,
    // refused from the size line (the file holds no entry at all).
    for size in [
        "4000000000 1 0",
        "1 4000000000 0",
        "4000000000 4000000000 1",
    ] {
        let p = write(
            dir.path(),
            "tall.mtx",
            &format!("%%MatrixMarket matrix coordinate real general\n{size}\n"),
        );
        match read_mtx_sparse(&p, &opts) {
            Err(NmfError::TooLarge { bytes, limit, .. }) => {
                assert!(bytes >= 32_000_000_000, "{size}: {bytes}");
                assert_eq!(limit, 1 << 30);
            }
            other => panic!("{size}: expected TooLarge, got {other:?}"),
        }
    }
    // More rows or columns than u32 indices reach: a format error at the size line, whatever
    // the limit.
    for (size, column) in [("5000000000 1 0", 1), ("1 5000000000 0", 2)] {
        let p = write(
            dir.path(),
            "huge.mtx",
            &format!("%%MatrixMarket matrix coordinate real general\n{size}\n"),
        );
        let e = read_mtx_sparse(&p, &ReadOptions::default().max_bytes(u64::MAX)).unwrap_err();
        let (line, col, msg) = format_parts(e);
        assert_eq!((line, col), (Some(2), Some(column)), "{size}");
        assert!(msg.contains("u32"), "{size}: {msg}");
    }
}

// ---------- very wide, very sparse data ----------

/// A `rows x cols` matrix with `k` entries spread over it (distinct positions).
fn scattered(rows: usize, cols: usize, k: usize) -> CsrMatrix {
    let t = (0..k).map(|e| {
        let i = (e * 7 + 1) % rows;
        let j = (e * (cols / k.max(1)) + e * 13) % cols;
        (i, j, 1.0 + (e % 5) as f32)
    });
    CsrMatrix::from_triplets(rows, cols, t).unwrap()
}

#[test]
fn wide_hypersparse_fits_agree_with_dense() {
    // 3 x 200_000 with 12 entries: far too few for column panels (200_001 offsets per panel
    // of Vᵀ), so both products read the CSR matrices; small enough to fit densely too.
    let (m, n, r) = (3, 200_000, 2);
    let v = scattered(m, n, 12).to_dense();
    for loss in [Loss::Frobenius, Loss::KullbackLeibler] {
        let p = |m, n| {
            Nmf::params(r)
                .loss(loss)
                .init(custom(m, n, r))
                .max_iter(20)
                .tol(0.0)
                .check_every(5)
        };
        assert_agree(&p(m, n), &v, &format!("{loss:?}, 3 x 200000"));
        let vt = v.t().as_standard_layout().into_owned();
        assert_agree(&p(n, m), &vt, &format!("{loss:?}, 200000 x 3"));
    }
}

#[test]
fn wide_and_huge_hypersparse_matrices_fit() {
    // Panels of 65536 columns would store rows + 1 offsets each: for 1M x 1M, 16 panels per
    // side, 256 MB in all against 40 entries. Unsplit, the fit needs little beyond the
    // factors.
    for (m, n) in [(3, 2_000_000), (2_000_000, 3), (1_000_000, 1_000_000)] {
        let v = scattered(m, n, 40);
        for loss in [Loss::Frobenius, Loss::KullbackLeibler] {
            let fit = Nmf::params(2)
                .loss(loss)
                .init(Init::Random)
                .seed(3)
                .max_iter(5)
                .fit_sparse(&v)
                .unwrap();
            assert_eq!((fit.w().dim(), fit.h().dim()), ((m, 2), (2, n)));
            assert!(fit.losses().iter().all(|l| l.is_finite()), "{m} x {n}");
            assert!(fit
                .w()
                .iter()
                .chain(fit.h().iter())
                .all(|x| x.is_finite() && *x >= 0.0));
        }
    }
}
