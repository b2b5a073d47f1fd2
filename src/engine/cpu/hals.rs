//! HALS sweeps on the CPU, vectorised across independent samples.
//!
//! Each column of a block `X` (r x b) — a row of W or a column of H — is independent; the r
//! components are swept in order:
//! `g = (G X)[t,:] − N[t,:] + l1 + l2·X[t,:]`, `X[t,:] ← max(0, X[t,:] − g / (G[t,t] + l2))`.
//! Blocks are laid out component-major so every inner loop runs over contiguous samples. At
//! [`simd::level`] AVX2 or AVX-512 the sweep runs on vector registers ([`sweep_block_simd`]):
//! the gradient of a whole block of samples stays in registers while the r rows of the block
//! stream through FMAs; otherwise the portable loop ([`sweep_block_portable`]).

use ndarray::{ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use super::elementwise;
#[cfg(target_arch = "x86_64")]
use super::elementwise::IsaExt;
use super::simd::{self, isa_entries, Level};
use crate::options::Regularization;

/// Samples per block: enough for long vector loops, small enough to stay in L1.
const BLOCK: usize = 64;

/// Sweep the rows of `w` (m x r) with `p = V Hᵀ` (m x r) and `g = H Hᵀ`; with `track`, returns
/// how far the sweep moved `w`, `‖W_new − W_old‖²_F` (in f64 from short f32 partial sums, see
/// [`elementwise::sum_sq_diff`]); 0 without.
pub(crate) fn sweep_rows(
    w: ArrayViewMut2<'_, f32>,
    p: ArrayView2<'_, f32>,
    g: ArrayView2<'_, f32>,
    reg: Regularization,
    track: bool,
) -> f64 {
    let r = g.nrows();
    sweep(
        (w, p, g, reg, track),
        Axis(0),
        |wb, pb, x, n| {
            transpose_block(wb, x);
            transpose_block(pb, n);
        },
        |wb, x, b| match wb.as_slice_mut() {
            Some(ws) => {
                for (i, wr) in ws.chunks_exact_mut(r).enumerate() {
                    for (t, w) in wr.iter_mut().enumerate() {
                        *w = x[t * b + i];
                    }
                }
            }
            None => {
                for ((i, t), w) in wb.indexed_iter_mut() {
                    *w = x[t * b + i];
                }
            }
        },
    )
}

/// Sweep the columns of `h` (r x n) with `q = Wᵀ V` (r x n) and `k = Wᵀ W`; with `track`,
/// returns `‖H_new − H_old‖²_F` (as [`sweep_rows`]); 0 without.
pub(crate) fn sweep_cols(
    h: ArrayViewMut2<'_, f32>,
    q: ArrayView2<'_, f32>,
    k: ArrayView2<'_, f32>,
    reg: Regularization,
    track: bool,
) -> f64 {
    let r = k.nrows();
    sweep(
        (h, q, k, reg, track),
        Axis(1),
        |hb, qb, x, n| {
            let b = hb.ncols();
            for t in 0..r {
                for (dst, src) in x[t * b..(t + 1) * b].iter_mut().zip(hb.row(t)) {
                    *dst = *src;
                }
                for (dst, src) in n[t * b..(t + 1) * b].iter_mut().zip(qb.row(t)) {
                    *dst = *src;
                }
            }
        },
        |hb, x, b| {
            for t in 0..r {
                for (dst, src) in hb.row_mut(t).iter_mut().zip(&x[t * b..(t + 1) * b]) {
                    *dst = *src;
                }
            }
        },
    )
}

/// The arguments of [`sweep_rows`] and [`sweep_cols`]: the factor, its numerators, the Gram
/// matrix, the penalties and whether to track the change.
type SweepArgs<'x, 'n, 'g> = (
    ArrayViewMut2<'x, f32>,
    ArrayView2<'n, f32>,
    ArrayView2<'g, f32>,
    Regularization,
    bool,
);

/// The sweep of [`sweep_rows`] and [`sweep_cols`]: blocks of [`BLOCK`] samples of `x` (along
/// `samples`) in parallel, each `load`ed with its numerators into component-major buffers
/// (r x b), swept with `gram` and `store`d back.
fn sweep<L, T>(args: SweepArgs<'_, '_, '_>, samples: Axis, load: L, store: T) -> f64
where
    L: Fn(ArrayView2<'_, f32>, ArrayView2<'_, f32>, &mut [f32], &mut [f32]) + Sync,
    T: Fn(&mut ArrayViewMut2<'_, f32>, &[f32], usize) + Sync,
{
    let (mut x, num, gram, reg, track) = args;
    let r = gram.nrows();
    let gram = gram.as_standard_layout();
    let gram = gram.view();
    let level = simd::level();
    x.axis_chunks_iter_mut(samples, BLOCK)
        .into_par_iter()
        .zip(num.axis_chunks_iter(samples, BLOCK))
        .map(|(mut xb, nb)| {
            let b = xb.len_of(samples);
            let mut buf = vec![0.0f32; 3 * r * b];
            let (xs, rest) = buf.split_at_mut(r * b);
            let (n, old) = rest.split_at_mut(r * b);
            load(xb.view(), nb, xs, n);
            if track {
                old.copy_from_slice(xs);
            }
            sweep_block(level, xs, n, b, gram, reg);
            store(&mut xb, xs, b);
            if track {
                elementwise::sum_sq_diff_at(level, xs, old)
            } else {
                0.0
            }
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

/// One sweep over the r components of a component-major block `x` (r x b), numerators `n`
/// (r x b), at `level` (which the CPU must support).
pub(super) fn sweep_block(
    level: Level,
    x: &mut [f32],
    n: &[f32],
    b: usize,
    gram: ArrayView2<'_, f32>,
    reg: Regularization,
) {
    let r = gram.nrows();
    assert!(level.supported());
    assert_eq!(gram.ncols(), r);
    assert_eq!(x.len(), r * b);
    assert_eq!(n.len(), r * b);
    #[cfg(target_arch = "x86_64")]
    if let Some(g) = gram.as_slice() {
        match level {
            // SAFETY: AVX-512F is available (a supported level); x and n hold r rows of b
            // samples and g is r x r (asserted above).
            Level::Avx512 => return unsafe { sweep_block_avx512(x, n, b, g, r, reg) },
            // SAFETY: as above, AVX2 and FMA.
            Level::Avx2 => return unsafe { sweep_block_avx2(x, n, b, g, r, reg) },
            Level::None => {}
        }
    }
    sweep_block_portable(x, n, b, gram, reg);
}

// A block of 64 samples: 4 zmm or 8 ymm vectors.
isa_entries!(
    [sweep_block_avx512, sweep_block_avx2] []
    (x: &mut [f32], n: &[f32], b: usize, g: &[f32], r: usize, reg: Regularization),
    |S| sweep_block_simd::<S, { 64 / <S as simd::Isa>::LANES }>(x, n, b, g, r, reg)
);

/// [`sweep_block_portable`] on `S`'s registers, `G` vectors of samples at a time: per
/// component t, `grad = (l1 − n_t) + l2·x_t` then `grad += G[t,k]·x_k` (fused) for every k with
/// `G[t,k] ≠ 0`, all in registers, then `x_t ← flush(x_t − grad·(1/(G[t,t] + l2)))`. The
/// samples left after the full groups run one (masked) vector at a time.
///
/// # Safety
/// `S`'s instruction set must be available; `x.len() = n.len() = r·b`, `g.len() = r·r`.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn sweep_block_simd<S: IsaExt, const G: usize>(
    x: &mut [f32],
    n: &[f32],
    b: usize,
    g: &[f32],
    r: usize,
    reg: Regularization,
) {
    let Regularization { l1, l2 } = reg;
    let xp = x.as_mut_ptr();
    let np = n.as_ptr();
    let group = G * S::LANES;
    // SAFETY: every pointer below is xp or np plus kk·b + i with kk < r and i + LANES ≤ b (or
    // a mask of the b − i < LANES samples left), inside the r·b floats of x and n.
    unsafe {
        let (vl1, vl2, tiny) = (S::splat(l1), S::splat(l2), S::splat(f32::MIN_POSITIVE));
        for t in 0..r {
            let grow = &g[t * r..(t + 1) * r];
            let hess = grow[t] + l2;
            if hess == 0.0 {
                continue;
            }
            let inv = S::splat(1.0 / hess);
            let xt = xp.add(t * b);
            let nt = np.add(t * b);
            let mut i = 0;
            while i + group <= b {
                let mut acc = [S::zero(); G];
                for j in 0..G {
                    let o = i + j * S::LANES;
                    acc[j] = S::fmadd(vl2, S::load(xt.add(o)), S::sub(vl1, S::load(nt.add(o))));
                }
                for (kk, &gk) in grow.iter().enumerate() {
                    if gk == 0.0 {
                        continue;
                    }
                    let gv = S::splat(gk);
                    let xk = xp.add(kk * b + i);
                    for j in 0..G {
                        acc[j] = S::fmadd(gv, S::load(xk.add(j * S::LANES)), acc[j]);
                    }
                }
                for j in 0..G {
                    let p = xt.add(i + j * S::LANES);
                    let new = S::sub(S::load(p), S::mul(acc[j], inv));
                    S::store(p, S::zero_below(new, tiny));
                }
                i += group;
            }
            while i < b {
                let m = S::mask(b - i);
                let mut acc = S::fmadd(
                    vl2,
                    S::load_masked(m, xt.add(i)),
                    S::sub(vl1, S::load_masked(m, nt.add(i))),
                );
                for (kk, &gk) in grow.iter().enumerate() {
                    if gk != 0.0 {
                        acc = S::fmadd(S::splat(gk), S::load_masked(m, xp.add(kk * b + i)), acc);
                    }
                }
                let new = S::sub(S::load_masked(m, xt.add(i)), S::mul(acc, inv));
                S::store_masked(xt.add(i), m, S::zero_below(new, tiny));
                i += S::LANES;
            }
        }
    }
}

/// The portable sweep (autovectorised for the target's baseline).
fn sweep_block_portable(
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

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    fn pseudo(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let h = (i as u32)
                    .wrapping_mul(2654435761)
                    .wrapping_add(seed * 7919)
                    >> 8;
                (h % 1000) as f32 / 1000.0
            })
            .collect()
    }

    /// The vector sweeps against the portable one, for every rank of the list, block widths
    /// around the vector groups, with and without regularisation, a zero Gram entry and a
    /// component whose Hessian is 0 (skipped).
    #[test]
    fn vector_sweeps_match_the_portable_sweep() {
        for r in [1, 7, 8, 9, 16, 17, 20, 33, 64] {
            let f = pseudo(r * 3, r as u32);
            let mut gram = Array2::<f32>::zeros((r, r));
            for i in 0..r {
                for j in 0..r {
                    gram[[i, j]] = (0..3).map(|c| f[i * 3 + c] * f[j * 3 + c]).sum::<f32>();
                }
                gram[[i, i]] += 0.5;
            }
            if r > 2 {
                gram[[1, 2]] = 0.0;
                gram[[r - 1, r - 1]] = 0.0;
            }
            for b in [0, 1, 7, 8, 9, 31, 33, 63, 64] {
                let x0 = pseudo(r * b, 3);
                let n: Vec<f32> = pseudo(r * b, 4).iter().map(|v| v * 3.0).collect();
                for reg in [
                    Regularization { l1: 0.0, l2: 0.0 },
                    Regularization { l1: 0.05, l2: 0.2 },
                ] {
                    let mut want = x0.clone();
                    sweep_block(Level::None, &mut want, &n, b, gram.view(), reg);
                    for level in Level::all_supported() {
                        let mut got = x0.clone();
                        sweep_block(level, &mut got, &n, b, gram.view(), reg);
                        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                            let tol = 1e-4 * (1.0 + w.abs());
                            assert!((g - w).abs() <= tol, "{level:?} r={r} b={b} {i}: {g} {w}");
                        }
                    }
                }
            }
        }
    }
}
