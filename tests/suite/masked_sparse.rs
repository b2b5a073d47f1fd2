//! Masked NMF over the observed entries only (V sparse, the mask its pattern): the same
//! iterations as the dense masked path, on the CPU and the GPU engine, in memory linear in
//! the observed entries.

use crate::common::{gpu_or_skip, pseudo};
use nmf_gpu::masked::{
    sparse_fit_bytes, MaskedFactorization, MaskedInit, MaskedNmf, MaskedParams, PenaltyScale,
    Ratings, DENSE_FIT_BYTES, SPARSE_FIT_BYTES_PER_ENTRY,
};
use nmf_gpu::ndarray::Array2;
use nmf_gpu::sparse::CsrMatrix;
use nmf_gpu::{Backend, NmfError};

/// A planted rank-`r` matrix and a mask with about `observed` of it set; some observed
/// entries are exact zeros (stored in the CSR form all the same), row 3 and column 5 are
/// unobserved.
fn planted(m: usize, n: usize, r: usize, observed: f32, seed: u32) -> (Array2<f32>, Array2<bool>) {
    let w0 = pseudo(m, r, seed) + 0.1;
    let h0 = pseudo(r, n, seed + 1) + 0.1;
    let mut v = w0.dot(&h0);
    let coin = pseudo(m, n, seed + 2);
    let mut mask = coin.mapv(|c| c < observed);
    mask.row_mut(3).fill(false);
    mask.column_mut(5).fill(false);
    for ((i, j), x) in v.indexed_iter_mut() {
        if (i * 7 + j) % 23 == 0 {
            *x = 0.0;
        }
    }
    (v, mask)
}

/// The observed entries as CSR (observed zeros stored).
fn observed_csr(v: &Array2<f32>, mask: &Array2<bool>) -> CsrMatrix {
    let (m, n) = v.dim();
    let t = v
        .indexed_iter()
        .filter(|(ij, _)| mask[*ij])
        .map(|((i, j), &x)| (i, j, x));
    CsrMatrix::from_triplets(m, n, t).unwrap()
}

fn max_abs_rel(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    let scale = b.iter().fold(1e-30f32, |s, x| s.max(x.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f32, |d, (x, y)| d.max((x - y).abs()))
        / scale
}

fn assert_same(dense: &MaskedFactorization, sparse: &MaskedFactorization, tol: f64, what: &str) {
    assert_eq!(dense.loss_iterations(), sparse.loss_iterations(), "{what}");
    for (k, (d, s)) in dense.losses().iter().zip(sparse.losses()).enumerate() {
        assert!(
            (d - s).abs() <= tol * d.abs(),
            "{what}: check {k}: dense {d}, sparse {s}"
        );
    }
    let (dw, sw) = (dense.w().to_owned(), sparse.w().to_owned());
    let (dh, sh) = (dense.h().to_owned(), sparse.h().to_owned());
    assert!(max_abs_rel(&sw, &dw) <= tol as f32 * 10.0, "{what}: W");
    assert!(max_abs_rel(&sh, &dh) <= tol as f32 * 10.0, "{what}: H");
}

/// A change to the default parameters.
type Setting = fn(MaskedParams) -> MaskedParams;

fn custom(m: usize, n: usize, r: usize) -> MaskedInit {
    MaskedInit::Custom {
        w: pseudo(m, r, 40) + 0.2,
        h: pseudo(r, n, 41) + 0.2,
    }
}

/// The sparse path runs the dense path's iterations: from the same start, the objective at
/// every check and the factors agree to 1e-5 (relative), with either penalty weighting, L1,
/// observed zeros, and an unobserved row and column.
#[test]
fn sparse_masked_equals_dense_masked_from_the_same_start() {
    let (m, n, r) = (40, 55, 3);
    let (v, mask) = planted(m, n, r, 0.4, 3);
    let csr = observed_csr(&v, &mask);
    let settings: [(&str, Setting); 3] = [
        ("per observation", |p| p),
        ("uniform + l1", |p| {
            p.penalty_scale(PenaltyScale::Uniform).l2(0.05).l1(0.01)
        }),
        ("no penalty", |p| p.l2(0.0)),
    ];
    for (what, set) in settings {
        let p = set(MaskedNmf::params(r))
            .init(custom(m, n, r))
            .max_iter(40)
            .tol(0.0);
        let dense = p.fit(v.view(), mask.view()).unwrap();
        let sparse = p.fit_sparse(&csr).unwrap();
        assert_same(&dense, &sparse, 1e-5, what);
        assert_eq!(sparse.observed_in_row(3), 0);
        assert_eq!(sparse.observed_in_column(5), 0);
        assert!(sparse.w().row(3).iter().all(|&x| x == 0.0));
        // predict and complete are the same functions of the factors.
        let c = sparse.complete();
        assert!((sparse.predict(7, 9).unwrap() - c[[7, 9]]).abs() <= 1e-5 * c[[7, 9]].max(1.0));
    }
}

/// The default filled start is formed without densifying; on positive data (no bias
/// estimate below zero) it is the dense path's start up to rounding, so both fits complete
/// the planted matrix alike.
#[test]
fn sparse_filled_start_matches_the_dense_one() {
    let (m, n, r) = (50, 60, 3);
    let (mut v, mask) = planted(m, n, r, 0.5, 9);
    v.mapv_inplace(|x| x + 1.0);
    let csr = observed_csr(&v, &mask);
    let p = MaskedNmf::params(r).max_iter(1).tol(0.0);
    let dense = p.fit(v.view(), mask.view()).unwrap();
    let sparse = p.fit_sparse(&csr).unwrap();
    let d = max_abs_rel(&sparse.complete(), &dense.complete());
    assert!(d < 1e-3, "first iterates differ by {d}");
}

/// Pattern products on the GPU engine (sparse V on the device) follow the CPU's.
#[test]
fn sparse_masked_gpu_matches_cpu() {
    let Some(ctx) = gpu_or_skip() else { return };
    let (m, n, r) = (70, 90, 4);
    let (v, mask) = planted(m, n, r, 0.5, 7);
    let csr = observed_csr(&v, &mask);
    let run = |backend: Backend| {
        MaskedNmf::params(r)
            .init(custom(m, n, r))
            .l1(0.01)
            .max_iter(60)
            .tol(0.0)
            .backend(backend)
            .fit_sparse(&csr)
            .unwrap()
    };
    let (gpu, cpu) = (run(Backend::Gpu(ctx)), run(Backend::Cpu));
    assert!(gpu.engine().starts_with("gpu"), "{}", gpu.engine());
    assert_same(&cpu, &gpu, 1e-3, "gpu vs cpu");
}

/// Memory: the estimate is linear in the observed entries with
/// `SPARSE_FIT_BYTES_PER_ENTRY` bytes each (plus `O((m + n)·r)`), a MovieLens-25M-shaped
/// fit stays under 2 GiB where the dense path would need 163 GB, and a fit over the limit is
/// refused before anything is allocated.
#[test]
fn sparse_masked_memory_is_linear_in_the_observed_entries() {
    let (m, n, r) = (162_541, 59_047, 32);
    let nnz = 25_000_095;
    let one = sparse_fit_bytes(m, n, nnz, r);
    let two = sparse_fit_bytes(m, n, 2 * nnz, r);
    assert_eq!(two - one, SPARSE_FIT_BYTES_PER_ENTRY * nnz as u64);
    let base = sparse_fit_bytes(m, n, 0, r);
    assert!(base < 1 << 30, "the part outside nnz: {base}");
    assert!(one < 2 << 30, "MovieLens-25M shape: {one} bytes");
    let dense = m as u64 * n as u64 * DENSE_FIT_BYTES;
    assert!(dense > 60 * one, "dense {dense} vs sparse {one}");

    let (v, mask) = planted(30, 40, 2, 0.5, 1);
    let csr = observed_csr(&v, &mask);
    let need = sparse_fit_bytes(30, 40, csr.nnz(), 2);
    match MaskedNmf::params(2).memory_limit(need - 1).fit_sparse(&csr) {
        Err(NmfError::FitTooLarge { need: n, limit, .. }) => {
            assert_eq!(n, need);
            assert_eq!(limit, need - 1);
        }
        other => panic!("expected FitTooLarge, got {other:?}"),
    }
    assert!(MaskedNmf::params(2)
        .memory_limit(need)
        .max_iter(2)
        .fit_sparse(&csr)
        .is_ok());
}

/// Ratings become CSR with the last rating of a pair kept and a zero rating stored; a
/// ratings set too large for the dense path (20000 x 4000, 1.4 GB dense) fits on the sparse
/// one, with the result of `fit_sparse` on the same CSR.
#[test]
fn ratings_pick_the_sparse_path_when_large() {
    let small =
        Ratings::from_triplets([("u1", "a", 3.0), ("u1", "a", 4.0), ("u2", "b", 0.0)]).unwrap();
    let c = small.to_csr().unwrap();
    assert_eq!(c.nnz(), 2);
    assert_eq!(c.get(0, 0), Some(4.0));
    assert_eq!(c.get(1, 1), Some(0.0));

    let (users, items) = (20_000usize, 4_000usize);
    let names: Vec<(String, String)> = (0..users)
        .map(|u| (format!("u{u}"), format!("i{}", (u * 7919) % items)))
        .chain((0..items).map(|i| (format!("u{}", (i * 31) % users), format!("i{i}"))))
        .collect();
    let ratings = Ratings::from_triplets(
        names
            .iter()
            .enumerate()
            .map(|(k, (u, i))| (u.as_str(), i.as_str(), 1.0 + (k % 5) as f32)),
    )
    .unwrap();
    assert_eq!(ratings.dim(), (users, items));
    let p = MaskedNmf::params(2)
        .init(MaskedInit::Random)
        .max_iter(5)
        .tol(0.0);
    let auto = p.fit_ratings(&ratings).unwrap();
    let direct = p.fit_sparse(&ratings.to_csr().unwrap()).unwrap();
    assert_eq!(auto.w(), direct.w());
    assert_eq!(auto.h(), direct.h());
}
