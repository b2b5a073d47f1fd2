//! Randomized truncated SVD (Halko, Martinsson & Tropp, "Finding structure with
//! randomness", SIAM Review 2011, Algorithms 4.4 and 5.1), following scikit-learn's
//! `randomized_svd`.
//!
//! For `A` (m×n, m ≥ n after an optional transpose) and `l = k + p` sketch columns:
//!
//! 1. range finder: `Q = orth(A Ω)` with Gaussian `Ω` (n×l), then `q` subspace (power)
//!    iterations `Q ← orth(A orth(Aᵀ Q))`, each product followed by a QR
//!    re-orthonormalisation so that the columns do not collapse onto the dominant
//!    singular vector; after them `Q` spans `(A Aᵀ)^q A Ω`, whose singular values decay as
//!    `σᵢ^{2q+1}`, so `Q Qᵀ A ≈ A` is close to the best rank-`l` approximation;
//! 2. projection: `B = Qᵀ A` (l×n), so `A ≈ Q B`;
//! 3. small SVD of `B` through the `f64` Gram matrix `B Bᵀ = U_b Λ U_bᵀ` (Jacobi):
//!    `wⱼ = Bᵀ u_{b,j}`, `σⱼ = ‖wⱼ‖` (`= √λⱼ`), `vⱼ = wⱼ / σⱼ`, and `uⱼ = Q u_{b,j}`.
//!
//! Taking `σⱼ = ‖Bᵀ u_{b,j}‖` rather than `√λⱼ` keeps `Σ uⱼ σⱼ vⱼᵀ = Q U_b U_bᵀ B` exact
//! for every retained component, including those whose `λⱼ` is at rounding level.

use super::eigen::symmetric_eigen;
use super::gemm::matmul;
use super::qr::{dot_f64, orthonormalize};
use ndarray::{s, Array1, Array2, ArrayView2};
use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

/// Result of a truncated SVD: `A ≈ U diag(S) Vt`, with `U` m×k, `S` descending (length k)
/// and `Vt` k×n.
///
/// The columns of `U` are orthonormal. The rows of `Vt` are orthonormal for every
/// component whose `S_j` is above rounding level relative to `S_0`; a component with
/// `S_j = 0` (all of them for a zero matrix, and every `j ≥ min(m, n)`) has a zero row in
/// `Vt` (and, for `j ≥ min(m, n)`, a zero column in `U`).
#[derive(Debug, Clone)]
pub(crate) struct Svd {
    /// Left singular vectors as columns (m×k).
    pub u: Array2<f32>,
    /// Singular values in descending order (k).
    pub s: Array1<f32>,
    /// Right singular vectors as rows (k×n).
    pub vt: Array2<f32>,
}

/// A matrix `A` (m×n) as the randomized SVD uses it: only through products with skinny dense
/// matrices, so that a sparse `A` never has to be formed densely.
pub(crate) trait LinearOperator: Sized {
    /// `(m, n)`.
    fn dim(&self) -> (usize, usize);
    /// `A X` (m×l) for `X` (n×l).
    fn mul(&self, x: ArrayView2<'_, f32>) -> Array2<f32>;
    /// `Xᵀ A` (l×n) for `X` (m×l).
    fn t_mul(&self, x: ArrayView2<'_, f32>) -> Array2<f32>;
    /// `Aᵀ` as an operator.
    fn transposed(&self) -> Self;
}

impl LinearOperator for ArrayView2<'_, f32> {
    fn dim(&self) -> (usize, usize) {
        ArrayView2::dim(self)
    }
    fn mul(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        matmul(*self, x)
    }
    fn t_mul(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        matmul(x.t(), *self)
    }
    fn transposed(&self) -> Self {
        self.reborrow().reversed_axes()
    }
}

/// scikit-learn's `'auto'` number of power iterations for `randomized_svd`:
/// `7` when `k < 0.1 · min(m, n)` (few components, so a slowly decaying tail must be
/// suppressed harder), `4` otherwise. Evaluated exactly as `10 k < min(m, n)`.
pub(crate) fn auto_power_iters(k: usize, m: usize, n: usize) -> usize {
    if k.saturating_mul(10) < m.min(n) {
        7
    } else {
        4
    }
}

/// Randomized truncated SVD of `a` (m×n): the leading `k` singular triplets,
/// `A ≈ U diag(S) Vt`.
///
/// The sketch has `l = min(k + n_oversamples, min(m, n))` columns and is refined by
/// `n_power_iter` power iterations, QR-orthonormalised after every product (see the
/// module documentation for the algorithm). When `m < n` the factorisation of `Aᵀ` is
/// computed and transposed back, so that the sketch `Ω` lives on the smaller side and the
/// orthonormal bases on the larger one, as scikit-learn does.
///
/// Signs follow scikit-learn's `svd_flip` (u-based): each pair `(u_j, v_j)` is negated
/// if needed so that the entry of `u_j` with the largest absolute value (the first one on
/// ties) is positive.
///
/// The result always has exactly `k` components; when `k > min(m, n)` the trailing
/// components are zero (`S_j = 0`, zero `u_j` and `v_j`). `k = 0` gives empty factors.
/// All large products (`A Ω`, `Aᵀ Q`, `A Z`, `Qᵀ A`) are multithreaded GEMMs.
pub(crate) fn randomized_svd<A: LinearOperator>(
    a: A,
    k: usize,
    n_oversamples: usize,
    n_power_iter: usize,
    rng: &mut impl Rng,
) -> Svd {
    let (m, n) = a.dim();
    let (mut u, mut s, mut vt) = if m < n {
        // A = (Aᵀ)ᵀ = (U' S V'ᵀ)ᵀ = V' S U'ᵀ.
        let (u2, s2, vt2) = sketch_svd(a.transposed(), k, n_oversamples, n_power_iter, rng);
        (
            vt2.reversed_axes().as_standard_layout().into_owned(),
            s2,
            u2.reversed_axes().as_standard_layout().into_owned(),
        )
    } else {
        sketch_svd(a, k, n_oversamples, n_power_iter, rng)
    };

    // svd_flip, u-based.
    for j in 0..u.ncols() {
        let mut best = 0.0f32;
        let mut best_abs = -1.0f32;
        for &x in u.column(j) {
            if x.abs() > best_abs {
                best_abs = x.abs();
                best = x;
            }
        }
        if best < 0.0 {
            u.column_mut(j).mapv_inplace(|x| -x);
            vt.row_mut(j).mapv_inplace(|x| -x);
        }
    }

    // Pad to exactly k components.
    let got = s.len();
    if got < k {
        let mut u_full = Array2::<f32>::zeros((m, k));
        u_full.slice_mut(s![.., ..got]).assign(&u);
        let mut vt_full = Array2::<f32>::zeros((k, n));
        vt_full.slice_mut(s![..got, ..]).assign(&vt);
        let mut s_full = Array1::<f32>::zeros(k);
        s_full.slice_mut(s![..got]).assign(&s);
        u = u_full;
        vt = vt_full;
        s = s_full;
    }
    Svd { u, s, vt }
}

/// Core of [`randomized_svd`] for `m ≥ n`: returns `(U, S, Vt)` with
/// `min(k, n)` components sorted by descending `S`, before the sign convention is applied.
fn sketch_svd<A: LinearOperator>(
    a: A,
    k: usize,
    n_oversamples: usize,
    n_power_iter: usize,
    rng: &mut impl Rng,
) -> (Array2<f32>, Array1<f32>, Array2<f32>) {
    let (m, n) = a.dim();
    let r = m.min(n);
    let k_eff = k.min(r);
    if k_eff == 0 {
        return (
            Array2::zeros((m, 0)),
            Array1::zeros(0),
            Array2::zeros((0, n)),
        );
    }
    let l = k.saturating_add(n_oversamples).min(r);

    // Range finder: Q = orth(A Ω), then Q ← orth(A orth(Aᵀ Q)).
    let omega = Array2::<f32>::from_shape_simple_fn((n, l), || rng.sample(StandardNormal));
    let mut q = orthonormalize(a.mul(omega.view()));
    for _ in 0..n_power_iter {
        // Aᵀ Q computed as (Qᵀ A)ᵀ: GEMM is faster with A streamed row-major, and the
        // QR works on the transposed storage anyway.
        let z = orthonormalize(a.t_mul(q.view()).reversed_axes());
        q = orthonormalize(a.mul(z.view()));
    }

    // B = Qᵀ A (l×n), Gram G = B Bᵀ in f64.
    let b = a.t_mul(q.view());
    let b = if b.is_standard_layout() {
        b
    } else {
        b.as_standard_layout().into_owned()
    };
    let rows: Vec<&[f32]> = b.outer_iter().filter_map(|row| row.to_slice()).collect();
    let mut gram = Array2::<f64>::zeros((l, l));
    if rows.len() == l {
        let upper: Vec<f64> = (0..l * l)
            .into_par_iter()
            .map(|idx| {
                let (i, j) = (idx / l, idx % l);
                if i <= j {
                    dot_f64(rows[i], rows[j])
                } else {
                    0.0
                }
            })
            .collect();
        for i in 0..l {
            for j in i..l {
                gram[[i, j]] = upper[i * l + j];
                gram[[j, i]] = upper[i * l + j];
            }
        }
    }
    let (_, ub) = symmetric_eigen(&gram);

    // wⱼ = Bᵀ u_{b,j} = Σᵢ U_b[i, j] Bᵢ (f64), for the k_eff leading eigenvectors.
    let w: Vec<Vec<f64>> = (0..k_eff)
        .into_par_iter()
        .map(|j| {
            let mut acc = vec![0.0f64; n];
            for (i, row) in rows.iter().enumerate() {
                let c = ub[[i, j]];
                if c == 0.0 {
                    continue;
                }
                for (x, y) in acc.iter_mut().zip(row.iter()) {
                    *x += c * *y as f64;
                }
            }
            acc
        })
        .collect();

    let mut sigma = vec![0.0f64; k_eff];
    let mut vt = Array2::<f32>::zeros((k_eff, n));
    for (j, wj) in w.iter().enumerate() {
        let norm = wj.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 0.0 && norm.is_finite() {
            sigma[j] = norm;
            let inv = 1.0 / norm;
            for (dst, x) in vt.row_mut(j).iter_mut().zip(wj) {
                *dst = (x * inv) as f32;
            }
        }
    }

    // U = Q U_b[:, ..k_eff]
    let ub_k = ub.slice(s![.., ..k_eff]).mapv(|x| x as f32);
    let u = matmul(q.view(), ub_k.view());

    // Descending order of σ (already so up to rounding of √λ vs ‖w‖).
    let mut order: Vec<usize> = (0..k_eff).collect();
    order.sort_by(|&x, &y| sigma[y].total_cmp(&sigma[x]));
    if order.iter().enumerate().all(|(i, &o)| i == o) {
        let s = Array1::from_iter(sigma.iter().map(|&x| x as f32));
        return (u, s, vt);
    }
    let s = Array1::from_iter(order.iter().map(|&o| sigma[o] as f32));
    let u_sorted = Array2::from_shape_fn((m, k_eff), |(i, j)| u[[i, order[j]]]);
    let vt_sorted = Array2::from_shape_fn((k_eff, n), |(j, i)| vt[[order[j], i]]);
    (u_sorted, s, vt_sorted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    fn randn(m: usize, n: usize, rng: &mut StdRng) -> Array2<f32> {
        Array2::from_shape_simple_fn((m, n), || rng.sample(StandardNormal))
    }

    /// `A = U₀ diag(s₀) V₀ᵀ` with orthonormal `U₀`, `V₀` and rank `s₀.len()`.
    fn known(m: usize, n: usize, s0: &[f32], rng: &mut StdRng) -> (Array2<f32>, Array2<f32>) {
        let r = s0.len();
        let u0 = orthonormalize(randn(m, r, rng));
        let v0 = orthonormalize(randn(n, r, rng));
        let us = &u0 * &Array1::from(s0.to_vec());
        (matmul(us.view(), v0.t()), u0)
    }

    fn frob(a: &Array2<f32>) -> f64 {
        a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
    }

    fn reconstruct(svd: &Svd) -> Array2<f32> {
        let us = &svd.u * &svd.s;
        matmul(us.view(), svd.vt.view())
    }

    fn spectrum() -> Vec<f32> {
        vec![
            10.0, 8.0, 6.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.125, 0.06, 0.03, 0.01,
        ]
    }

    fn check_known(m: usize, n: usize, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let s0 = spectrum();
        let (a, u0) = known(m, n, &s0, &mut rng);
        let k = 5;
        let svd = randomized_svd(a.view(), k, 10, auto_power_iters(k, m, n), &mut rng);
        assert_eq!(svd.u.dim(), (m, k));
        assert_eq!(svd.s.len(), k);
        assert_eq!(svd.vt.dim(), (k, n));
        for (j, &want) in s0.iter().enumerate().take(k) {
            let rel = ((svd.s[j] - want) / want).abs();
            assert!(rel < 1e-4, "σ{j}: {} vs {want}", svd.s[j]);
            let dot = crate::linalg::dot_in_order(svd.u.column(j), u0.column(j));
            assert!(dot.abs() > 0.999, "u{j}·u0{j} = {dot}");
            // svd_flip: largest-|·| entry of u_j is positive.
            let col = svd.u.column(j);
            let big = col
                .iter()
                .fold(0.0f32, |b, &x| if x.abs() > b.abs() { x } else { b });
            assert!(big > 0.0);
        }
        // Rank-k truncation of the known decomposition.
        let a_k = truncation(&a, &u0, k);
        let rec = reconstruct(&svd);
        let err = frob(&(&rec - &a_k)) / frob(&a_k);
        assert!(err < 1e-3, "rank-{k} reconstruction error {err}");
    }

    /// `U₀[:, ..k] U₀[:, ..k]ᵀ A`, the best rank-k approximation when `A = U₀ S₀ V₀ᵀ`.
    fn truncation(a: &Array2<f32>, u0: &Array2<f32>, k: usize) -> Array2<f32> {
        let uk = u0.slice(s![.., ..k]);
        matmul(uk, matmul(uk.t(), a.view()).view())
    }

    #[test]
    fn recovers_known_decomposition() {
        check_known(200, 150, 11);
    }

    #[test]
    fn recovers_known_decomposition_transposed() {
        check_known(150, 200, 12);
    }

    #[test]
    fn orthonormal_factors_and_full_rank_input() {
        let mut rng = StdRng::seed_from_u64(5);
        let a = randn(120, 90, &mut rng).mapv(|x| x.abs());
        let svd = randomized_svd(a.view(), 10, 10, 7, &mut rng);
        for (f, rows) in [(svd.u.t().to_owned(), true), (svd.vt.clone(), false)] {
            let g = matmul(f.view(), f.t());
            for i in 0..10 {
                for j in 0..10 {
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!(
                        (g[[i, j]] - want).abs() < 1e-4,
                        "{rows} {i} {j} {}",
                        g[[i, j]]
                    );
                }
            }
        }
        for j in 1..10 {
            assert!(svd.s[j] <= svd.s[j - 1]);
        }
    }

    #[test]
    fn zero_matrix() {
        let mut rng = StdRng::seed_from_u64(1);
        for &(m, n) in &[(30, 20), (20, 30)] {
            let a = Array2::<f32>::zeros((m, n));
            let svd = randomized_svd(a.view(), 4, 10, 4, &mut rng);
            assert!(svd.s.iter().all(|&x| x == 0.0));
            assert!(svd.u.iter().chain(svd.vt.iter()).all(|x| x.is_finite()));
            assert_eq!((svd.u.dim(), svd.vt.dim()), ((m, 4), (4, n)));
        }
    }

    #[test]
    fn k_at_least_min_dimension() {
        let mut rng = StdRng::seed_from_u64(2);
        for &(m, n) in &[(40, 25), (25, 40)] {
            let a = randn(m, n, &mut rng);
            for k in [25, 30] {
                let svd = randomized_svd(a.view(), k, 10, 4, &mut rng);
                assert_eq!(svd.u.dim(), (m, k));
                assert_eq!(svd.s.len(), k);
                assert_eq!(svd.vt.dim(), (k, n));
                let rec = reconstruct(&svd);
                let err = frob(&(&rec - &a)) / frob(&a);
                assert!(err < 1e-5, "full reconstruction error {err}");
                assert!(svd.s.iter().skip(25).all(|&x| x == 0.0));
            }
        }
    }

    #[test]
    fn empty_and_degenerate() {
        let mut rng = StdRng::seed_from_u64(3);
        let a = randn(10, 8, &mut rng);
        let svd = randomized_svd(a.view(), 0, 10, 4, &mut rng);
        assert_eq!(
            (svd.u.dim(), svd.s.len(), svd.vt.dim()),
            ((10, 0), 0, (0, 8))
        );
        let e = Array2::<f32>::zeros((0, 5));
        let svd = randomized_svd(e.view(), 3, 10, 4, &mut rng);
        assert_eq!(
            (svd.u.dim(), svd.s.len(), svd.vt.dim()),
            ((0, 3), 3, (3, 5))
        );
        let one = Array2::from_elem((1, 1), -2.0f32);
        let svd = randomized_svd(one.view(), 1, 10, 4, &mut rng);
        assert!((svd.s[0] - 2.0).abs() < 1e-6 && svd.u[[0, 0]] == 1.0 && svd.vt[[0, 0]] == -1.0);
    }

    #[test]
    fn non_finite_input_does_not_panic() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut a = randn(30, 20, &mut rng);
        a[[3, 4]] = f32::NAN;
        a[[7, 1]] = f32::INFINITY;
        let svd = randomized_svd(a.view(), 5, 10, 2, &mut rng);
        assert_eq!(svd.s.len(), 5);
    }

    #[test]
    fn auto_iters_matches_sklearn() {
        assert_eq!(auto_power_iters(5, 200, 150), 7);
        assert_eq!(auto_power_iters(15, 200, 150), 4);
        assert_eq!(auto_power_iters(128, 10000, 5000), 7);
        assert_eq!(auto_power_iters(500, 10000, 5000), 4);
    }
}
