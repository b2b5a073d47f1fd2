//! Vector row kernels of the sparse products, written once over [`Isa`] and compiled for
//! AVX-512F and for AVX2 + FMA: the r ≤ 8·LANES components of a row of the result held in
//! `NV` vector registers, `E` stored entries in flight into separate accumulator sets, the
//! rows of `X` prefetched [`PF`] entries ahead.
//!
//! The register budget sets `E`: AVX-512 (32 zmm) keeps four entries in flight for every
//! `NV ≤ 4` (r ≤ 64); AVX2 (16 ymm) needs `E·NV` accumulators plus `E` broadcasts, so it keeps
//! four entries for `NV ≤ 2`, two for `NV ≤ 6` and one beyond ([`avx2_in_flight`]).

use super::super::simd::{Avx2, Avx512, Isa};
use super::panels::{Index, Start};

/// How many entries ahead the rows of `x` are prefetched.
const PF: usize = 16;

/// Entries in flight of the AVX2 [`rows`] kernel with `nv` vectors per row: `E·NV`
/// accumulators, `E` broadcast values and one loaded operand within 16 registers.
pub(super) const fn avx2_in_flight(nv: usize) -> usize {
    if nv <= 2 {
        4
    } else if nv <= 6 {
        2
    } else {
        1
    }
}

/// Entries in flight of the AVX2 [`kl_rows`] kernel: `NV` registers hold the row of `y`.
pub(super) const fn avx2_kl_in_flight(nv: usize) -> usize {
    if nv <= 4 {
        2
    } else {
        1
    }
}

/// Vector `q` of the row at `p`: the last (`q + 1 = NV`) masked to the `r − LANES·(NV−1)`
/// components left.
#[inline(always)]
unsafe fn load_q<S: Isa, const NV: usize>(p: *const f32, q: usize, mask: S::M) -> S::V {
    // SAFETY: the caller guarantees r readable floats at p and r ≤ LANES·NV; the last
    // vector reads only the masked lanes.
    unsafe {
        if q + 1 == NV {
            S::load_masked(mask, p.add(S::LANES * q))
        } else {
            S::load(p.add(S::LANES * q))
        }
    }
}

/// Store vector `q` of the row at `p`, the last masked as in [`load_q`].
#[inline(always)]
unsafe fn store_q<S: Isa, const NV: usize>(p: *mut f32, q: usize, mask: S::M, v: S::V) {
    // SAFETY: as in load_q, for writable floats.
    unsafe {
        if q + 1 == NV {
            S::store_masked(p.add(S::LANES * q), mask, v)
        } else {
            S::store(p.add(S::LANES * q), v)
        }
    }
}

/// The sum of the `E` accumulator sets of vector `q`, pairwise: `(a0 + a1) + (a2 + a3)`.
#[inline(always)]
unsafe fn sum_sets<S: Isa, const NV: usize, const E: usize>(a: &[[S::V; NV]; E], q: usize) -> S::V {
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        match E {
            1 => a[0][q],
            2 => S::add(a[0][q], a[1][q]),
            _ => {
                let mut s = S::add(S::add(a[0][q], a[1][q]), S::add(a[2][q], a[3][q]));
                for set in a.iter().skip(4) {
                    s = S::add(s, set[q]);
                }
                s
            }
        }
    }
}

/// [`super::products`]' row kernel: `out[i, :] = start[i, :] + Σ_k val[k] · x[idx[k], :]`
/// with `NV` vectors per row of `LANES·(NV−1) < r ≤ LANES·NV` floats, `E` entries at a time
/// into separate accumulators.
///
/// # Safety
/// `S`'s instruction set must be available; `LANES·(NV−1) < r ≤ LANES·NV`; every `idx[k]` in
/// the ranges must index a row of `x` (`x.len() ≥ (idx[k]+1)·r`); every `ptr` offset at most
/// `idx.len() = val.len()`; `out.len() = (ptr.len() − 1)·r`.
// The accumulator sets are indexed in lockstep.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn rows_body<S: Isa, const NV: usize, const E: usize, I: Index>(
    ptr: &[usize],
    idx: &[I],
    val: &[f32],
    x: &[f32],
    r: usize,
    start: Start,
    out: &mut [f32],
) {
    // SAFETY: the caller's contract above covers every pointer formed below.
    unsafe {
        let mask = S::mask(r - S::LANES * (NV - 1));
        let xp = x.as_ptr();
        for (i, orow) in out.chunks_exact_mut(r).enumerate() {
            let (s, e) = (ptr[i], ptr[i + 1]);
            let op = orow.as_mut_ptr();
            let mut a = [[S::zero(); NV]; E];
            if let Start::Out = start {
                for q in 0..NV {
                    a[0][q] = load_q::<S, NV>(op, q, mask);
                }
            }
            let mut k = s;
            while k + E <= e {
                if k + PF + E <= e {
                    for d in 0..E {
                        let pp = xp.add(idx.get_unchecked(k + PF + d).at() * r);
                        S::prefetch(pp);
                        S::prefetch((pp as *const u8).add(4 * r - 1) as *const f32);
                    }
                }
                let mut xs = [xp; E];
                let mut vs = [S::zero(); E];
                for d in 0..E {
                    xs[d] = xp.add(idx.get_unchecked(k + d).at() * r);
                    vs[d] = S::splat(*val.get_unchecked(k + d));
                }
                for q in 0..NV {
                    for d in 0..E {
                        a[d][q] = S::fmadd(vs[d], load_q::<S, NV>(xs[d], q, mask), a[d][q]);
                    }
                }
                k += E;
            }
            while k < e {
                let x0 = xp.add(idx.get_unchecked(k).at() * r);
                let v = S::splat(*val.get_unchecked(k));
                for q in 0..NV {
                    a[0][q] = S::fmadd(v, load_q::<S, NV>(x0, q, mask), a[0][q]);
                }
                k += 1;
            }
            for q in 0..NV {
                store_q::<S, NV>(op, q, mask, sum_sets::<S, NV, E>(&a, q));
            }
        }
    }
}

/// [`rows_body`] on zmm registers (16 lanes), four entries in flight.
///
/// # Safety
/// AVX-512F must be available; the rest as for [`rows_body`] with `LANES = 16`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn rows_avx512<const NV: usize, I: Index>(
    ptr: &[usize],
    idx: &[I],
    val: &[f32],
    x: &[f32],
    r: usize,
    start: Start,
    out: &mut [f32],
) {
    // SAFETY: forwarded contract.
    unsafe { rows_body::<Avx512, NV, 4, I>(ptr, idx, val, x, r, start, out) }
}

/// [`rows_body`] on ymm registers (8 lanes), `E` entries in flight ([`avx2_in_flight`]).
///
/// # Safety
/// AVX2 and FMA must be available; the rest as for [`rows_body`] with `LANES = 8`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn rows_avx2<const NV: usize, const E: usize, I: Index>(
    ptr: &[usize],
    idx: &[I],
    val: &[f32],
    x: &[f32],
    r: usize,
    start: Start,
    out: &mut [f32],
) {
    // SAFETY: forwarded contract.
    unsafe { rows_body::<Avx2, NV, E, I>(ptr, idx, val, x, r, start, out) }
}

/// [`super::products`]' KL row kernel: `out[i, :] = start[i, :] + Σ_k z_k · x[idx[k], :]`,
/// `z_k = val[k] / max(y[i, :]·x[idx[k], :], ε)`, with `NV` vectors per row, the row of `y`
/// held in registers, `E` entries at a time.
///
/// # Safety
/// As for [`rows_body`], and `y.len() = out.len()`.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[inline(always)]
unsafe fn kl_rows_body<S: Isa, const NV: usize, const E: usize, I: Index>(
    ptr: &[usize],
    idx: &[I],
    val: &[f32],
    x: &[f32],
    y: &[f32],
    r: usize,
    start: Start,
    out: &mut [f32],
) {
    // SAFETY: the caller's contract above covers every pointer formed below.
    unsafe {
        let mask = S::mask(r - S::LANES * (NV - 1));
        let eps = f32::EPSILON;
        let xp = x.as_ptr();
        let dot = |yv: &[S::V; NV], p: *const f32| -> f32 {
            let mut d = S::mul(yv[0], load_q::<S, NV>(p, 0, mask));
            for q in 1..NV {
                d = S::fmadd(yv[q], load_q::<S, NV>(p, q, mask), d);
            }
            S::sum(d)
        };
        for (i, orow) in out.chunks_exact_mut(r).enumerate() {
            let (s, e) = (ptr[i], ptr[i + 1]);
            let op = orow.as_mut_ptr();
            let yp = y.as_ptr().add(i * r);
            let mut yv = [S::zero(); NV];
            for q in 0..NV {
                yv[q] = load_q::<S, NV>(yp, q, mask);
            }
            let mut a = [[S::zero(); NV]; E];
            if let Start::Out = start {
                for q in 0..NV {
                    a[0][q] = load_q::<S, NV>(op, q, mask);
                }
            }
            let mut k = s;
            while k + E <= e {
                let mut xs = [xp; E];
                let mut zs = [S::zero(); E];
                for d in 0..E {
                    xs[d] = xp.add(idx.get_unchecked(k + d).at() * r);
                }
                for d in 0..E {
                    let p = dot(&yv, xs[d]);
                    zs[d] = S::splat(*val.get_unchecked(k + d) / if p < eps { eps } else { p });
                }
                for q in 0..NV {
                    for d in 0..E {
                        a[d][q] = S::fmadd(zs[d], load_q::<S, NV>(xs[d], q, mask), a[d][q]);
                    }
                }
                k += E;
            }
            while k < e {
                let x0 = xp.add(idx.get_unchecked(k).at() * r);
                let p = dot(&yv, x0);
                let z = S::splat(*val.get_unchecked(k) / if p < eps { eps } else { p });
                for q in 0..NV {
                    a[0][q] = S::fmadd(z, load_q::<S, NV>(x0, q, mask), a[0][q]);
                }
                k += 1;
            }
            for q in 0..NV {
                store_q::<S, NV>(op, q, mask, sum_sets::<S, NV, E>(&a, q));
            }
        }
    }
}

/// [`kl_rows_body`] on zmm registers, two entries in flight.
///
/// # Safety
/// AVX-512F must be available; the rest as for [`kl_rows_body`] with `LANES = 16`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn kl_rows_avx512<const NV: usize, I: Index>(
    ptr: &[usize],
    idx: &[I],
    val: &[f32],
    x: &[f32],
    y: &[f32],
    r: usize,
    start: Start,
    out: &mut [f32],
) {
    // SAFETY: forwarded contract.
    unsafe { kl_rows_body::<Avx512, NV, 2, I>(ptr, idx, val, x, y, r, start, out) }
}

/// [`kl_rows_body`] on ymm registers, `E` entries in flight ([`avx2_kl_in_flight`]).
///
/// # Safety
/// AVX2 and FMA must be available; the rest as for [`kl_rows_body`] with `LANES = 8`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn kl_rows_avx2<const NV: usize, const E: usize, I: Index>(
    ptr: &[usize],
    idx: &[I],
    val: &[f32],
    x: &[f32],
    y: &[f32],
    r: usize,
    start: Start,
    out: &mut [f32],
) {
    // SAFETY: forwarded contract.
    unsafe { kl_rows_body::<Avx2, NV, E, I>(ptr, idx, val, x, y, r, start, out) }
}
