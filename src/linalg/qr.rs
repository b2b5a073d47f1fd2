//! Thin QR factorisation by blocked Householder reflections.
//!
//! For a tall `A` (m×k, m ≥ k) the factorisation `A = Q R` is computed as
//! `H_{k−1} ⋯ H₁ H₀ A = R` with reflectors `H_j = I − τ_j v_j v_jᵀ`, where `v_j` has a
//! unit entry at row `j` and zeros above it. Reflectors are grouped in panels of
//! [`PANEL`] columns and each panel is written in compact WY form
//! `H_{j₀} ⋯ H_{j₀+b−1} = I − V T Vᵀ` (Schreiber & Van Loan 1989), so that the updates of
//! the trailing columns and the accumulation of `Q = H₀ H₁ ⋯ H_{k−1} [I_k; 0]` are
//! matrix–matrix products.
//!
//! Storage is `f32`; every inner product inside a panel (reflector norms, reflector
//! applications, the entries of `T`) is accumulated in `f64`. Matrices are kept transposed
//! (one column of `A` per contiguous row) so that all column operations are unit-stride.

use super::gemm::{gemm_conforming, Accum};
use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

/// Number of reflectors combined into one compact-WY block.
const PANEL: usize = 32;

/// Below this many multiply-adds a panel update runs on the calling thread.
const PAR_WORK: usize = 1 << 16;

/// Orthonormal basis of the column space of a tall matrix: the `Q` (m×k) of the thin QR
/// factorisation `A = Q R`, with `QᵀQ = I_k` to working precision.
///
/// Rank-deficient input is fine: a column that is already zero below the diagonal gets
/// the identity reflector (`τ = 0`), so the corresponding column of `Q` is still a unit
/// vector orthogonal to the others, and no division by a vanishing norm ever happens.
/// When `k > m` only `m` columns can be orthonormal; the remaining `k − m` columns of the
/// result are zero.
pub(crate) fn orthonormalize(a: Array2<f32>) -> Array2<f32> {
    let (m, k) = a.dim();
    // Columns of A as contiguous rows.
    let at = a.reversed_axes();
    let mut at = if at.is_standard_layout() {
        at
    } else {
        at.as_standard_layout().into_owned()
    };
    let r = m.min(k);
    let mut tau = vec![0.0f32; r];

    // Factorisation, one panel at a time.
    let mut panels = Vec::new();
    let mut j0 = 0;
    while j0 < r {
        let b = PANEL.min(r - j0);
        factor_panel(at.slice_mut(s![j0..j0 + b, j0..]), &mut tau[j0..j0 + b]);
        let (v, t) = block_reflector(at.slice(s![j0..j0 + b, j0..]), &tau[j0..j0 + b]);
        if j0 + b < k {
            // Trailing columns C (stored as Cᵀ): C ← (I − V T Vᵀ)ᵀ C = C − V Tᵀ (Vᵀ C).
            let ct = at.slice_mut(s![j0 + b.., j0..]);
            apply_block(ct, v.view(), t.view(), true);
        }
        panels.push((j0, v, t));
        j0 += b;
    }

    // Q = H₀ ⋯ H_{r−1} [I; 0], accumulated backwards so each block acts on a shrinking
    // trailing corner: Q[j₀.., j₀..] ← (I − V T Vᵀ) Q[j₀.., j₀..].
    let mut qt = Array2::<f32>::zeros((k, m));
    for i in 0..r {
        qt[[i, i]] = 1.0;
    }
    for (j0, v, t) in panels.iter().rev() {
        let sub = qt.slice_mut(s![*j0..r, *j0..]);
        apply_block(sub, v.view(), t.view(), false);
    }
    qt.reversed_axes().as_standard_layout().into_owned()
}

/// `Σ xᵢ yᵢ` accumulated in `f64` over eight independent lanes (vectorisable).
pub(super) fn dot_f64(x: &[f32], y: &[f32]) -> f64 {
    let mut acc = [0.0f64; 8];
    let xc = x.chunks_exact(8);
    let yc = y.chunks_exact(8);
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for ((s, x), y) in acc.iter_mut().zip(a).zip(b) {
            *s += *x as f64 * *y as f64;
        }
    }
    let mut tail = 0.0f64;
    for (a, b) in xr.iter().zip(yr) {
        tail += *a as f64 * *b as f64;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Unblocked Householder QR of one panel, in place.
///
/// `p` holds the panel transposed: row `c` is column `c` of the panel, starting at the
/// panel's diagonal row. On return row `c` holds `R[c, c]` at index `c`, the entries of
/// `R` above it at smaller indices, and the reflector `v_c` (without its implicit unit
/// head) below it; `tau[c]` is its `τ`.
///
/// Reflector for `x = (α, x₂)`: with `σ² = ‖x₂‖²` (f64), if `σ² = 0` then `τ = 0`
/// (`H = I`); otherwise `β = −sign(α) √(α² + σ²)`, `τ = (β − α)/β`, `v = (1, x₂/(α − β))`,
/// giving `H x = β e₁`. Since `|α − β| = |α| + √(α² + σ²)`, there is no cancellation and
/// `|vᵢ| ≤ 1`.
fn factor_panel(mut p: ArrayViewMut2<'_, f32>, tau: &mut [f32]) {
    let b = p.nrows();
    for c in 0..b {
        let (mut head, mut rest) = p.view_mut().split_at(Axis(0), c + 1);
        let mut col = head.row_mut(c);
        let Some(x) = col.as_slice_mut() else {
            return;
        };
        let x = &mut x[c..];
        let alpha = x[0] as f64;
        let sigma2 = dot_f64(&x[1..], &x[1..]);
        if sigma2 == 0.0 || !sigma2.is_finite() {
            tau[c] = 0.0;
            continue;
        }
        let norm = (alpha * alpha + sigma2).sqrt();
        let beta = if alpha >= 0.0 { -norm } else { norm };
        let t = (beta - alpha) / beta;
        let scale = 1.0 / (alpha - beta);
        for xi in x[1..].iter_mut() {
            *xi = (*xi as f64 * scale) as f32;
        }
        x[0] = beta as f32;
        tau[c] = t as f32;
        let v = &x[1..];
        // Apply H = I − τ v vᵀ to the remaining panel columns: y ← y − τ (vᵀ y) v.
        let apply = |y: &mut [f32]| {
            let y = &mut y[c..];
            let w = t * (y[0] as f64 + dot_f64(v, &y[1..]));
            let wf = w as f32;
            y[0] -= wf;
            for (yi, vi) in y[1..].iter_mut().zip(v) {
                *yi -= wf * vi;
            }
        };
        let others = rest.nrows();
        if others * v.len() >= PAR_WORK {
            rest.axis_iter_mut(Axis(0))
                .into_par_iter()
                .for_each(|mut row| {
                    if let Some(y) = row.as_slice_mut() {
                        apply(y);
                    }
                });
        } else {
            for mut row in rest.axis_iter_mut(Axis(0)) {
                if let Some(y) = row.as_slice_mut() {
                    apply(y);
                }
            }
        }
    }
}

/// Compact WY form of a factored panel: returns `(Vᵀ, T)` with
/// `H₀ H₁ ⋯ H_{b−1} = I − V T Vᵀ`.
///
/// `Vᵀ` (b × rows) is the panel's reflectors made explicit (unit at the diagonal, zeros
/// above). `T` is upper triangular, built column by column (LAPACK `larft`):
/// `T[i,i] = τᵢ`, `T[0..i, i] = −τᵢ T[0..i, 0..i] (V[:, 0..i]ᵀ vᵢ)`, with the inner
/// products `V[:, 0..i]ᵀ vᵢ` accumulated in `f64`.
fn block_reflector(p: ArrayView2<'_, f32>, tau: &[f32]) -> (Array2<f32>, Array2<f32>) {
    let (b, rows) = p.dim();
    let mut vt = Array2::<f32>::zeros((b, rows));
    for c in 0..b {
        vt[[c, c]] = 1.0;
        for i in (c + 1)..rows {
            vt[[c, i]] = p[[c, i]];
        }
    }
    // Gram entries g[j][i] = v_jᵀ v_i for j < i (f64).
    let rows_v: Vec<&[f32]> = vt.outer_iter().filter_map(|r| r.to_slice()).collect();
    let mut t = vec![0.0f64; b * b];
    if rows_v.len() == b {
        let gram: Vec<f64> = (0..b * b)
            .into_par_iter()
            .map(|idx| {
                let (j, i) = (idx / b, idx % b);
                if j < i {
                    // v_j is zero above row j and v_i above row i > j.
                    dot_f64(&rows_v[j][i..], &rows_v[i][i..])
                } else {
                    0.0
                }
            })
            .collect();
        for i in 0..b {
            let ti = tau[i] as f64;
            t[i * b + i] = ti;
            for r in 0..i {
                let mut acc = 0.0;
                for j in r..i {
                    acc += t[r * b + j] * gram[j * b + i];
                }
                t[r * b + i] = -ti * acc;
            }
        }
    }
    let t = Array2::from_shape_fn((b, b), |(r, c)| t[r * b + c] as f32);
    (vt, t)
}

/// Applies a block reflector to a matrix stored transposed.
///
/// `xt` is `Xᵀ` (columns of `X` as rows, `X` having `Vᵀ.ncols()` rows). With
/// `transpose = true` it computes `X ← (I − V T Vᵀ)ᵀ X = X − V Tᵀ Vᵀ X`, otherwise
/// `X ← X − V T Vᵀ X`. In the transposed storage this is
/// `Xᵀ ← Xᵀ − (Xᵀ V) T⁽ᵀ⁾ Vᵀ`, i.e. two GEMMs and one small triangular product.
fn apply_block(
    xt: ArrayViewMut2<'_, f32>,
    vt: ArrayView2<'_, f32>,
    t: ArrayView2<'_, f32>,
    transpose: bool,
) {
    let (cols, _) = xt.dim();
    let b = vt.nrows();
    if cols == 0 || b == 0 {
        return;
    }
    // W = Xᵀ V (cols × b)
    let mut w = Array2::<f32>::zeros((cols, b));
    gemm_conforming(w.view_mut(), xt.view(), vt.t(), Accum::Replace);
    // W2 = −W Tᵀ (for X ← X − V T Vᵀ X) or −W T (for the transposed block).
    let tt = if transpose { t } else { t.reversed_axes() };
    let mut w2 = Array2::<f32>::zeros((cols, b));
    gemm_conforming(w2.view_mut(), w.view(), tt, Accum::Replace);
    w2.mapv_inplace(|x| -x);
    // Xᵀ += W2 Vᵀ
    gemm_conforming(xt, w2.view(), vt, Accum::Add);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::gemm::matmul;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use rand_distr::StandardNormal;

    fn randn(m: usize, n: usize, seed: u64) -> Array2<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        Array2::from_shape_simple_fn((m, n), || rng.sample(StandardNormal))
    }

    fn orthonormality_error(q: &Array2<f32>) -> f64 {
        let k = q.ncols();
        let mut worst = 0.0f64;
        for i in 0..k {
            for j in 0..k {
                let d = crate::linalg::dot_in_order(q.column(i), q.column(j));
                let want = if i == j { 1.0 } else { 0.0 };
                worst = worst.max((d - want).abs());
            }
        }
        worst
    }

    /// ‖Q Qᵀ A − A‖_F / ‖A‖_F
    fn projection_error(q: &Array2<f32>, a: &Array2<f32>) -> f64 {
        let p = matmul(q.view(), matmul(q.t(), a.view()).view());
        let num: f64 = p.iter().zip(a).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
        let den: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum();
        (num / den.max(1e-300)).sqrt()
    }

    #[test]
    fn random_tall() {
        for &(m, k) in &[(300, 40), (257, 65), (5, 5), (1, 1), (1000, 100)] {
            let a = randn(m, k, 7 + m as u64);
            let q = orthonormalize(a.clone());
            assert_eq!(q.dim(), (m, k));
            let e = orthonormality_error(&q);
            assert!(e < 1e-5, "{m}x{k}: QᵀQ − I = {e}");
            let p = projection_error(&q, &a);
            assert!(p < 1e-5, "{m}x{k}: projection {p}");
        }
    }

    #[test]
    fn rank_deficient() {
        // Duplicate columns, a zero column, and a column that is a combination of others.
        let base = randn(300, 20, 3);
        let mut a = Array2::<f32>::zeros((300, 40));
        for j in 0..20 {
            a.column_mut(j).assign(&base.column(j));
            a.column_mut(20 + j).assign(&base.column(j));
        }
        a.column_mut(5).fill(0.0);
        let comb = &base.column(1) * 2.0 - base.column(2);
        a.column_mut(39).assign(&comb);
        let q = orthonormalize(a.clone());
        assert!(q.iter().all(|x| x.is_finite()));
        let e = orthonormality_error(&q);
        assert!(e < 1e-5, "QᵀQ − I = {e}");
        let p = projection_error(&q, &a);
        assert!(p < 1e-5, "projection {p}");

        let z = orthonormalize(Array2::zeros((50, 10)));
        assert!(orthonormality_error(&z) < 1e-6);
    }

    #[test]
    fn odd_shapes() {
        assert_eq!(orthonormalize(Array2::zeros((4, 0))).dim(), (4, 0));
        assert_eq!(orthonormalize(Array2::zeros((0, 0))).dim(), (0, 0));
        let q = orthonormalize(randn(3, 5, 1));
        assert_eq!(q.dim(), (3, 5));
        assert!(q.iter().all(|x| x.is_finite()));
        // Column-major input.
        let a = randn(80, 33, 9)
            .reversed_axes()
            .as_standard_layout()
            .into_owned();
        let q = orthonormalize(a.reversed_axes());
        assert!(orthonormality_error(&q) < 1e-5);
    }
}
