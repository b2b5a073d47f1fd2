//! The parts of the losses that read the stored entries of a sparse V (the rest comes from
//! the factors alone), and dense rows of V where a blocked loss needs them.

use ndarray::{ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use std::ops::Range;

use super::super::simd::{self, isa_call, isa_entries};
use super::panels::Operand;
use super::products::dot_f32;
use crate::engine::vmath;
use crate::sparse::CsrMatrix;

/// `Σ_t a[t]·b[t]` in f64 (four partial sums, so that the loop vectorises).
#[inline(always)]
fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for t in 0..4 {
            acc[t] += xa[t] as f64 * xb[t] as f64;
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (&x, &y) in ra.iter().zip(rb) {
        s += x as f64 * y as f64;
    }
    s
}

/// Over the stored entries of `A` with `wh_ij = w[i, :]·x[j, :]` (in f64):
/// `(Σ (a_ij − wh_ij)², Σ wh_ij²)`, for the Frobenius loss. `w` is A.rows x r and `x` A.cols x r,
/// row-major.
pub(crate) fn frobenius_terms(a: Operand<'_>, w: &[f32], x: &[f32], r: usize) -> (f64, f64) {
    entry_sums(a, w, x, r, |v, wr, xr| {
        let p = dot_f64(wr, xr);
        let d = v as f64 - p;
        (d * d, p * p)
    })
}

/// `Σ_{a_ij > ε} [a_ij log(a_ij / max(wh_ij, ε)) − a_ij]` over the stored entries, the part of
/// the KL divergence that reads V (the rest is `Σ WH`); shapes as in [`frobenius_terms`].
pub(crate) fn kl_term(a: Operand<'_>, w: &[f32], x: &[f32], r: usize, eps: f32) -> f64 {
    let (kl, _) = entry_sums(a, w, x, r, |v, wr, xr| {
        if v > eps {
            // WH in f32, as the dense engine forms it; the logarithm as its loss rows take it
            // (vmath::ln_ratio, within LN_RATIO_ABS).
            let p = dot_f32(wr, xr);
            let q = if p < eps { eps } else { p };
            let v64 = f64::from(v);
            (v64 * f64::from(vmath::ln_ratio(v, q)) - v64, 0.0)
        } else {
            (0.0, 0.0)
        }
    });
    kl
}

/// `Σ term(a_ij, w[i, :], x[j, :])` over the stored entries (two sums at once), blocks of rows
/// in parallel, each through the panels in turn (when `a` has them) so that the rows of `x`
/// it gathers stay in cache, as in the products; compiled for [`simd::level`].
fn entry_sums<F>(a: Operand<'_>, w: &[f32], x: &[f32], r: usize, term: F) -> (f64, f64)
where
    F: Fn(f32, &[f32], &[f32]) -> (f64, f64) + Sync,
{
    let rows = a.dim().0;
    let br = a.block_rows();
    let level = simd::level();
    (0..rows.div_ceil(br))
        .into_par_iter()
        .map(|t| {
            let block = t * br..((t + 1) * br).min(rows);
            // SAFETY: the level is supported (simd::level never exceeds the CPU's).
            isa_call!(
                unsafe level,
                [block_sums_avx512, block_sums_avx2](a, block, w, x, r, &term),
                block_sums(a, block, w, x, r, &term)
            )
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
}

isa_entries!(
    [block_sums_avx512, block_sums_avx2] [F: Fn(f32, &[f32], &[f32]) -> (f64, f64)]
    (a: Operand<'_>, rows: Range<usize>, w: &[f32], x: &[f32], r: usize, term: &F) -> (f64, f64),
    |S| block_sums(a, rows, w, x, r, term)
);

/// The sums of [`entry_sums`] over the entries of `rows`.
#[inline(always)]
fn block_sums<F: Fn(f32, &[f32], &[f32]) -> (f64, f64)>(
    a: Operand<'_>,
    rows: Range<usize>,
    w: &[f32],
    x: &[f32],
    r: usize,
    term: &F,
) -> (f64, f64) {
    let (mut s0, mut s1) = (0.0f64, 0.0f64);
    let mut add = |v: f32, i: usize, j: usize| {
        let (t0, t1) = term(v, &w[i * r..(i + 1) * r], &x[j * r..(j + 1) * r]);
        s0 += t0;
        s1 += t1;
    };
    match a {
        Operand::Csr(c) => {
            let (ptr, idx, val) = (c.indptr(), c.indices(), c.values());
            for i in rows {
                for k in ptr[i]..ptr[i + 1] {
                    add(val[k], i, idx[k] as usize);
                }
            }
        }
        Operand::Panels(p) => {
            for panel in &p.panels {
                for i in rows.clone() {
                    for k in panel.indptr[i]..panel.indptr[i + 1] {
                        add(panel.values[k], i, panel.col0 + panel.indices[k] as usize);
                    }
                }
            }
        }
    }
    (s0, s1)
}

/// Rows `row0..row0 + out.nrows()` of `A`, written densely into `out` (zeroed first).
pub(crate) fn densify_rows(a: &CsrMatrix, row0: usize, mut out: ArrayViewMut2<'_, f32>) {
    out.fill(0.0);
    for (ii, mut orow) in out.rows_mut().into_iter().enumerate() {
        let (idx, val) = a.row(row0 + ii);
        for (&j, &v) in idx.iter().zip(val) {
            orow[j as usize] = v;
        }
    }
}

/// `Σ_ab x[a,b]·y[a,b]` of two r x r Gram matrices, each computed in f64 from a row-major
/// factor: `⟨AᵀA, BᵀB⟩` for `a` (p x r) and `b` (q x r).
pub(crate) fn gram_inner_f64(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> f64 {
    let ga = gram_f64(a);
    let gb = gram_f64(b);
    ga.iter().zip(&gb).map(|(x, y)| x * y).sum()
}

/// `XᵀX` (r x r, flattened) in f64 for `x` (p x r).
fn gram_f64(x: ArrayView2<'_, f32>) -> Vec<f64> {
    let r = x.ncols();
    let upper = x
        .axis_chunks_iter(Axis(0), 256)
        .into_par_iter()
        .map(|blk| {
            let mut g = vec![0.0f64; r * r];
            for row in blk.rows() {
                for a in 0..r {
                    let xa = row[a] as f64;
                    if xa == 0.0 {
                        continue;
                    }
                    for b in a..r {
                        g[a * r + b] += xa * row[b] as f64;
                    }
                }
            }
            g
        })
        .reduce(
            || vec![0.0f64; r * r],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(&b) {
                    *x += y;
                }
                a
            },
        );
    // Only the upper triangle was accumulated: mirror it.
    let mut g = upper;
    for a in 0..r {
        for b in 0..a {
            g[a * r + b] = g[b * r + a];
        }
    }
    g
}
