//! Bi-cross-validation of the rank (Owen & Perry, Ann. Appl. Stat. 2009): hold out a block of
//! rows *and* columns. With the rows and columns permuted so that the held-out ones come first,
//!
//! ```text
//!   V = [ A  B ]     A = V[I, J]  held out (|I| = m/k rows, |J| = n/k columns, k = BICV_FOLD)
//!       [ C  D ]     D = V[Iᶜ, Jᶜ] fitted: D ≈ W_D H_D (rank r, the sweep's solver)
//! ```
//!
//! the factors of the held-out rows and columns are fitted to the blocks beside `D` with the
//! other factor fixed (nonnegative least squares), `B ≈ W_A H_D` and `C ≈ W_D H_A`, and `A` is
//! predicted by `Â = W_A H_A`, the NMF analogue of Owen & Perry's `B D⁺ C`. The error
//! `‖A − Â‖` falls while `r` adds signal and rises once the extra components fit the noise of
//! `D`, since `A` shares no entry, row or column noise with `D`. Unlike held-out entries
//! ([`cv`](super::cv)), every fit is an ordinary NMF of a complete block, so it converges as
//! fast as the sweep's other fits.
//!
//! The least-squares problems `min_{X ≥ 0} ‖Y − G X‖_F` are solved by HALS sweeps on the
//! normal equations (`X[k,:] ← max(0, X[k,:] + (GᵀY − GᵀG X)[k,:] / (GᵀG)[k,k])`), at most
//! [`NNLS_SWEEPS`], stopping when a sweep moves `X` by less than [`NNLS_TOL`] of its norm.

use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::Rng;

/// One held-out row and column in `BICV_FOLD`: the held-out block is about `m/k x n/k`.
pub const BICV_FOLD: usize = 3;

/// The most HALS sweeps of a nonnegative least-squares solve.
pub const NNLS_SWEEPS: usize = 200;

/// A solve stops when a sweep changes `X` by less than this share of `‖X‖_F`.
pub const NNLS_TOL: f64 = 1e-6;

/// Which rows and columns are held out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BiSplit {
    /// Held-out rows `I` (sorted).
    pub rows_out: Vec<usize>,
    /// Kept rows `Iᶜ` (sorted).
    pub rows_in: Vec<usize>,
    /// Held-out columns `J` (sorted).
    pub cols_out: Vec<usize>,
    /// Kept columns `Jᶜ` (sorted).
    pub cols_in: Vec<usize>,
}

/// A random split of an `m x n` matrix holding out `max(1, m / BICV_FOLD)` rows and
/// `max(1, n / BICV_FOLD)` columns, keeping at least `keep` rows and columns (the rank
/// compared, so that the kept block can hold it) when the shape allows.
pub fn split(m: usize, n: usize, keep: usize, rng: &mut impl Rng) -> BiSplit {
    let (rows_out, rows_in) = part(m, keep, rng);
    let (cols_out, cols_in) = part(n, keep, rng);
    BiSplit {
        rows_out,
        rows_in,
        cols_out,
        cols_in,
    }
}

/// `len` indices shuffled into (held out, kept), each sorted.
fn part(len: usize, keep: usize, rng: &mut impl Rng) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..len).collect();
    idx.shuffle(rng);
    let out = (len / BICV_FOLD)
        .max(1)
        .min(len.saturating_sub(keep).max(1))
        .min(len);
    let mut held = idx[..out].to_vec();
    let mut kept = idx[out..].to_vec();
    held.sort_unstable();
    kept.sort_unstable();
    (held, kept)
}

/// `v[rows, cols]` as a new matrix.
pub fn block(v: ArrayView2<'_, f32>, rows: &[usize], cols: &[usize]) -> Array2<f32> {
    v.select(Axis(0), rows).select(Axis(1), cols)
}

/// `argmin_{X ≥ 0} ‖Y − G X‖_F` (`G` p x r, `Y` p x q; `X` r x q) by HALS sweeps on the normal
/// equations (see the module docs); a component with a zero column of `G` stays 0.
pub fn nnls(g: ArrayView2<'_, f32>, y: ArrayView2<'_, f32>) -> Array2<f32> {
    let g = g.mapv(f64::from);
    let y = y.mapv(f64::from);
    let gram = g.t().dot(&g);
    let gy = g.t().dot(&y);
    let r = gram.nrows();
    let q = y.ncols();
    let mut x = Array2::<f64>::zeros((r, q));
    for _ in 0..NNLS_SWEEPS {
        let mut moved = 0.0f64;
        for k in 0..r {
            let d = gram[[k, k]];
            if d <= 0.0 {
                continue;
            }
            let gx = gram.row(k).dot(&x);
            for j in 0..q {
                let old = x[[k, j]];
                let new = (old + (gy[[k, j]] - gx[j]) / d).max(0.0);
                if new != old {
                    moved += (new - old) * (new - old);
                    x[[k, j]] = new;
                }
            }
        }
        let norm: f64 = x.iter().map(|a| a * a).sum();
        if moved <= NNLS_TOL * NNLS_TOL * norm.max(f64::MIN_POSITIVE) {
            break;
        }
    }
    x.mapv(|a| a as f32)
}

/// The error of the bi-cross-validation prediction of the held-out block: with `w_d`, `h_d`
/// the factors of the kept block `D`, `H_A = nnls(W_D, C)`, `W_Aᵀ = nnls(H_Dᵀ, Bᵀ)` and
/// `Â = W_A H_A`; `(rmse, relative)` over the entries of `A`, `relative = ‖A − Â‖_F / ‖A‖_F`
/// (0 when both vanish, infinite when only `A` does).
pub fn heldout_block_error(
    v: ArrayView2<'_, f32>,
    split: &BiSplit,
    w_d: ArrayView2<'_, f32>,
    h_d: ArrayView2<'_, f32>,
) -> (f64, f64) {
    let b = block(v, &split.rows_out, &split.cols_in);
    let c = block(v, &split.rows_in, &split.cols_out);
    let a = block(v, &split.rows_out, &split.cols_out);
    let h_a = nnls(w_d, c.view());
    let w_a = nnls(h_d.t(), b.t()).reversed_axes();
    let pred = w_a.dot(&h_a);
    let mut sq = 0.0f64;
    let mut norm = 0.0f64;
    for (&x, &p) in a.iter().zip(pred.iter()) {
        let d = f64::from(x) - f64::from(p);
        sq += d * d;
        norm += f64::from(x) * f64::from(x);
    }
    let count = a.len().max(1) as f64;
    ((sq / count).sqrt(), super::cv::relative_to_norm(sq, norm))
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn nnls_recovers_nonnegative_coefficients() {
        let g = Array2::from_shape_fn((8, 3), |(i, k)| ((i * 3 + k * 5) % 7) as f32 + 0.5);
        let x = Array2::from_shape_fn((3, 4), |(k, j)| if (k + j) % 3 == 0 { 0.0 } else { 1.5 });
        let y = g.dot(&x);
        let got = nnls(g.view(), y.view());
        for (a, b) in got.iter().zip(x.iter()) {
            assert!((a - b).abs() < 1e-3, "{got:?} vs {x:?}");
        }
    }

    #[test]
    fn an_exact_low_rank_block_is_predicted_exactly() {
        let w = Array2::from_shape_fn((12, 2), |(i, k)| ((i + k) % 4) as f32 + 1.0);
        let h = Array2::from_shape_fn((2, 15), |(k, j)| ((j * 2 + k) % 5) as f32 + 0.5);
        let v = w.dot(&h);
        let s = split(12, 15, 2, &mut StdRng::seed_from_u64(1));
        assert_eq!(s.rows_out.len(), 4);
        assert_eq!(s.cols_out.len(), 5);
        let w_d = w.select(Axis(0), &s.rows_in);
        let h_d = h.select(Axis(1), &s.cols_in);
        let (rmse, rel) = heldout_block_error(v.view(), &s, w_d.view(), h_d.view());
        assert!(rmse < 1e-3 && rel < 1e-4, "{rmse} {rel}");
    }
}
