//! Cross-validation of the rank by held-out entries (as RcppML's `crossValidate`): a random
//! share of the entries of `V` is hidden through the mask of masked NMF
//! ([`MaskedNmf`](crate::MaskedNmf)), the factors are fitted to the rest, and the error of
//! `W H` on the hidden entries is measured. Too small a rank underfits every entry; too large
//! a rank fits the noise of the observed ones and predicts the hidden ones worse, so the
//! held-out error falls until the data's rank and then flattens or rises.

use ndarray::{Array2, ArrayView2};
use rand::Rng;

/// A random hold-out mask of an `m x n` matrix: each entry is held out (`true`) with
/// probability `fraction`; at least one entry is held out and at least one kept.
pub fn holdout_mask(m: usize, n: usize, fraction: f64, rng: &mut impl Rng) -> Array2<bool> {
    let mut mask = Array2::from_shape_fn((m, n), |_| rng.random::<f64>() < fraction);
    let held = mask.iter().filter(|&&h| h).count();
    let total = m * n;
    if total >= 2 {
        if held == 0 {
            let k = rng.random_range(0..total);
            mask[[k / n, k % n]] = true;
        } else if held == total {
            let k = rng.random_range(0..total);
            mask[[k / n, k % n]] = false;
        }
    }
    mask
}

/// The error of `W H` on the entries of `v` where `held_out` is true:
/// `(rmse, relative)`, `relative = sqrt(Σ (V − WH)² / Σ V²)` over those entries (0 when they
/// are all zero and predicted exactly).
pub fn heldout_error(
    v: ArrayView2<'_, f32>,
    w: ArrayView2<'_, f32>,
    h: ArrayView2<'_, f32>,
    held_out: ArrayView2<'_, bool>,
) -> (f64, f64) {
    let mut sq = 0.0f64;
    let mut norm = 0.0f64;
    let mut count = 0usize;
    for ((i, j), &x) in v.indexed_iter() {
        if !held_out[[i, j]] {
            continue;
        }
        let pred = crate::linalg::dot_in_order(w.row(i), h.column(j));
        let d = x as f64 - pred;
        sq += d * d;
        norm += x as f64 * x as f64;
        count += 1;
    }
    let rmse = if count == 0 {
        0.0
    } else {
        (sq / count as f64).sqrt()
    };
    (rmse, relative_to_norm(sq, norm))
}

/// `sqrt(sq / norm)`, the error relative to the data's norm: 0 for no error, infinite for an
/// error on zero data.
pub(crate) fn relative_to_norm(sq: f64, norm: f64) -> f64 {
    if norm > 0.0 {
        (sq / norm).sqrt()
    } else if sq == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}
