//! HALS sweeps on the CPU, vectorised across independent samples.
//!
//! Each column of a block `X` (r x b) — a row of W or a column of H — is independent; the r
//! components are swept in order:
//! `g = (G X)[t,:] − N[t,:] + l1 + l2·X[t,:]`, `X[t,:] ← max(0, X[t,:] − g / (G[t,t] + l2))`.
//! Blocks are laid out component-major so every inner loop runs over contiguous samples, and the
//! sweep is compiled a second time with AVX-512 enabled and chosen at run time.

use ndarray::{ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::options::Regularization;

/// Samples per block: enough for long vector loops, small enough to stay in L1.
const BLOCK: usize = 64;

/// Sweep the rows of `w` (m x r) with `p = V Hᵀ` (m x r) and `g = H Hᵀ`; returns how far the
/// sweep moved `w`, `‖W_new − W_old‖²_F` (summed as it is written back, in f64).
pub(crate) fn sweep_rows(
    w: ArrayViewMut2<'_, f32>,
    p: ArrayView2<'_, f32>,
    g: ArrayView2<'_, f32>,
    reg: Regularization,
) -> f64 {
    let r = g.nrows();
    let mut w = w;
    w.axis_chunks_iter_mut(Axis(0), BLOCK)
        .into_par_iter()
        .zip(p.axis_chunks_iter(Axis(0), BLOCK))
        .map(|(mut wb, pb)| {
            let b = wb.nrows();
            let mut x = vec![0.0f32; r * b];
            let mut n = vec![0.0f32; r * b];
            transpose_block(wb.view(), &mut x);
            transpose_block(pb, &mut n);
            sweep_block(&mut x, &n, b, g, reg);
            let mut moved = 0.0f64;
            let mut put = |w: &mut f32, new: f32| {
                moved += f64::from(new - *w) * f64::from(new - *w);
                *w = new;
            };
            match wb.as_slice_mut() {
                Some(ws) => {
                    for (i, wr) in ws.chunks_exact_mut(r).enumerate() {
                        for (t, w) in wr.iter_mut().enumerate() {
                            put(w, x[t * b + i]);
                        }
                    }
                }
                None => {
                    for ((i, t), w) in wb.indexed_iter_mut() {
                        put(w, x[t * b + i]);
                    }
                }
            }
            moved
        })
        .sum()
}

/// Sweep the columns of `h` (r x n) with `q = Wᵀ V` (r x n) and `k = Wᵀ W`; returns
/// `‖H_new − H_old‖²_F`.
pub(crate) fn sweep_cols(
    h: ArrayViewMut2<'_, f32>,
    q: ArrayView2<'_, f32>,
    k: ArrayView2<'_, f32>,
    reg: Regularization,
) -> f64 {
    let r = k.nrows();
    let mut h = h;
    h.axis_chunks_iter_mut(Axis(1), BLOCK)
        .into_par_iter()
        .zip(q.axis_chunks_iter(Axis(1), BLOCK))
        .map(|(mut hb, qb)| {
            let b = hb.ncols();
            let mut x = vec![0.0f32; r * b];
            let mut n = vec![0.0f32; r * b];
            for t in 0..r {
                for (dst, src) in x[t * b..(t + 1) * b].iter_mut().zip(hb.row(t)) {
                    *dst = *src;
                }
                for (dst, src) in n[t * b..(t + 1) * b].iter_mut().zip(qb.row(t)) {
                    *dst = *src;
                }
            }
            sweep_block(&mut x, &n, b, k, reg);
            let mut moved = 0.0f64;
            for t in 0..r {
                for (dst, src) in hb.row_mut(t).iter_mut().zip(&x[t * b..(t + 1) * b]) {
                    moved += f64::from(*src - *dst) * f64::from(*src - *dst);
                    *dst = *src;
                }
            }
            moved
        })
        .sum()
}

/// `out = aᵀ` (r x b, row-major) for a block `a` (b x r).
fn transpose_block(a: ArrayView2<'_, f32>, out: &mut [f32]) {
    let (b, r) = a.dim();
    match a.as_slice() {
        Some(s) => {
            for (i, row) in s.chunks_exact(r).enumerate() {
                for (t, &v) in row.iter().enumerate() {
                    out[t * b + i] = v;
                }
            }
        }
        None => {
            for ((i, t), &v) in a.indexed_iter() {
                out[t * b + i] = v;
            }
        }
    }
}

/// One sweep over the r components of a component-major block `x` (r x b), numerators `n`.
fn sweep_block(x: &mut [f32], n: &[f32], b: usize, gram: ArrayView2<'_, f32>, reg: Regularization) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F.
            unsafe { sweep_block_avx512(x, n, b, gram, reg) };
            return;
        }
    }
    sweep_block_body(x, n, b, gram, reg);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sweep_block_avx512(
    x: &mut [f32],
    n: &[f32],
    b: usize,
    gram: ArrayView2<'_, f32>,
    reg: Regularization,
) {
    sweep_block_body(x, n, b, gram, reg);
}

#[inline(always)]
fn sweep_block_body(
    x: &mut [f32],
    n: &[f32],
    b: usize,
    gram: ArrayView2<'_, f32>,
    reg: Regularization,
) {
    let r = gram.nrows();
    let Regularization { l1, l2 } = reg;
    let mut grad = vec![0.0f32; b];
    for t in 0..r {
        let hess = gram[[t, t]] + l2;
        if hess == 0.0 {
            continue;
        }
        let xt = &x[t * b..(t + 1) * b];
        for ((g, &nv), &xv) in grad.iter_mut().zip(&n[t * b..(t + 1) * b]).zip(xt) {
            *g = l1 - nv + l2 * xv;
        }
        for (kk, &gk) in gram.row(t).iter().enumerate() {
            if gk == 0.0 {
                continue;
            }
            for (g, &xv) in grad.iter_mut().zip(&x[kk * b..(kk + 1) * b]) {
                *g += gk * xv;
            }
        }
        let inv = 1.0 / hess;
        for (xv, &g) in x[t * b..(t + 1) * b].iter_mut().zip(&grad) {
            *xv = super::flush_subnormal(*xv - g * inv);
        }
    }
}
