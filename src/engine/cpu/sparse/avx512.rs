//! AVX-512 row kernels of the sparse products: up to 64 components of a row held in zmm
//! registers, four stored entries in flight, the rows of `X` prefetched 16 entries ahead.

use std::arch::x86_64::*;

use super::panels::{Index, Start};

/// How many entries ahead the rows of `x` are prefetched.
const PF: usize = 16;

/// [`super::rows_kernel`] with `NV` zmm registers per row of r ≤ 16·NV floats, four
/// entries at a time into separate accumulators.
///
/// # Safety
/// AVX-512F must be available; `16·(NV−1) < r ≤ 16·NV`; every `idx[k]` in the ranges must
/// index a row of `x` (`x.len() ≥ (idx[k]+1)·r`); `out.len() = (ptr.len() − 1)·r`.
// The four accumulator sets are indexed in lockstep.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn rows<const NV: usize, I: Index>(
    ptr: &[usize],
    idx: &[I],
    val: &[f32],
    x: &[f32],
    r: usize,
    start: Start,
    out: &mut [f32],
) {
    let last = r - 16 * (NV - 1);
    let mask: __mmask16 = if last == 16 {
        0xFFFF
    } else {
        (1u16 << last) - 1
    };
    let xp = x.as_ptr();
    let load = |p: *const f32, q: usize| -> __m512 {
        if q + 1 == NV {
            _mm512_maskz_loadu_ps(mask, p.add(16 * q))
        } else {
            _mm512_loadu_ps(p.add(16 * q))
        }
    };
    for (i, orow) in out.chunks_exact_mut(r).enumerate() {
        let (s, e) = (ptr[i], ptr[i + 1]);
        let op = orow.as_mut_ptr();
        let mut a0 = [_mm512_setzero_ps(); NV];
        match start {
            Start::Zero => {}
            Start::Out => {
                for (q, a) in a0.iter_mut().enumerate() {
                    *a = load(op, q);
                }
            }
        }
        let mut a1 = [_mm512_setzero_ps(); NV];
        let mut a2 = [_mm512_setzero_ps(); NV];
        let mut a3 = [_mm512_setzero_ps(); NV];
        let mut k = s;
        while k + 4 <= e {
            if k + PF + 4 <= e {
                for d in 0..4 {
                    let pp = xp.add(idx.get_unchecked(k + PF + d).at() * r) as *const i8;
                    _mm_prefetch::<_MM_HINT_T0>(pp);
                    _mm_prefetch::<_MM_HINT_T0>(pp.add(4 * r - 1));
                }
            }
            let x0 = xp.add(idx.get_unchecked(k).at() * r);
            let x1 = xp.add(idx.get_unchecked(k + 1).at() * r);
            let x2 = xp.add(idx.get_unchecked(k + 2).at() * r);
            let x3 = xp.add(idx.get_unchecked(k + 3).at() * r);
            let v0 = _mm512_set1_ps(*val.get_unchecked(k));
            let v1 = _mm512_set1_ps(*val.get_unchecked(k + 1));
            let v2 = _mm512_set1_ps(*val.get_unchecked(k + 2));
            let v3 = _mm512_set1_ps(*val.get_unchecked(k + 3));
            for q in 0..NV {
                a0[q] = _mm512_fmadd_ps(v0, load(x0, q), a0[q]);
                a1[q] = _mm512_fmadd_ps(v1, load(x1, q), a1[q]);
                a2[q] = _mm512_fmadd_ps(v2, load(x2, q), a2[q]);
                a3[q] = _mm512_fmadd_ps(v3, load(x3, q), a3[q]);
            }
            k += 4;
        }
        while k < e {
            let x0 = xp.add(idx.get_unchecked(k).at() * r);
            let v = _mm512_set1_ps(*val.get_unchecked(k));
            for q in 0..NV {
                a0[q] = _mm512_fmadd_ps(v, load(x0, q), a0[q]);
            }
            k += 1;
        }
        for q in 0..NV {
            let s = _mm512_add_ps(_mm512_add_ps(a0[q], a1[q]), _mm512_add_ps(a2[q], a3[q]));
            if q + 1 == NV {
                _mm512_mask_storeu_ps(op.add(16 * q), mask, s);
            } else {
                _mm512_storeu_ps(op.add(16 * q), s);
            }
        }
    }
}

/// [`super::kl_rows_kernel`] with `NV` zmm registers per row of r ≤ 16·NV floats: the row
/// of `y` held in registers, two entries at a time.
///
/// # Safety
/// As for [`rows`], and `y.len() = out.len()`.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn kl_rows<const NV: usize, I: Index>(
    ptr: &[usize],
    idx: &[I],
    val: &[f32],
    x: &[f32],
    y: &[f32],
    r: usize,
    start: Start,
    out: &mut [f32],
) {
    let last = r - 16 * (NV - 1);
    let mask: __mmask16 = if last == 16 {
        0xFFFF
    } else {
        (1u16 << last) - 1
    };
    let eps = f32::EPSILON;
    let xp = x.as_ptr();
    let load = |p: *const f32, q: usize| -> __m512 {
        if q + 1 == NV {
            _mm512_maskz_loadu_ps(mask, p.add(16 * q))
        } else {
            _mm512_loadu_ps(p.add(16 * q))
        }
    };
    let dot = |yv: &[__m512; NV], p: *const f32| -> f32 {
        let mut d = _mm512_mul_ps(yv[0], load(p, 0));
        for q in 1..NV {
            d = _mm512_fmadd_ps(yv[q], load(p, q), d);
        }
        _mm512_reduce_add_ps(d)
    };
    for (i, orow) in out.chunks_exact_mut(r).enumerate() {
        let (s, e) = (ptr[i], ptr[i + 1]);
        let op = orow.as_mut_ptr();
        let yp = y.as_ptr().add(i * r);
        let mut yv = [_mm512_setzero_ps(); NV];
        for q in 0..NV {
            yv[q] = load(yp, q);
        }
        let mut a0 = [_mm512_setzero_ps(); NV];
        if let Start::Out = start {
            for q in 0..NV {
                a0[q] = load(op, q);
            }
        }
        let mut a1 = [_mm512_setzero_ps(); NV];
        let mut k = s;
        while k + 2 <= e {
            let x0 = xp.add(idx.get_unchecked(k).at() * r);
            let x1 = xp.add(idx.get_unchecked(k + 1).at() * r);
            let (p0, p1) = (dot(&yv, x0), dot(&yv, x1));
            let z0 = *val.get_unchecked(k) / if p0 < eps { eps } else { p0 };
            let z1 = *val.get_unchecked(k + 1) / if p1 < eps { eps } else { p1 };
            let (z0, z1) = (_mm512_set1_ps(z0), _mm512_set1_ps(z1));
            for q in 0..NV {
                a0[q] = _mm512_fmadd_ps(z0, load(x0, q), a0[q]);
                a1[q] = _mm512_fmadd_ps(z1, load(x1, q), a1[q]);
            }
            k += 2;
        }
        if k < e {
            let x0 = xp.add(idx.get_unchecked(k).at() * r);
            let p0 = dot(&yv, x0);
            let z0 = *val.get_unchecked(k) / if p0 < eps { eps } else { p0 };
            let z0 = _mm512_set1_ps(z0);
            for q in 0..NV {
                a0[q] = _mm512_fmadd_ps(z0, load(x0, q), a0[q]);
            }
        }
        for q in 0..NV {
            let s = _mm512_add_ps(a0[q], a1[q]);
            if q + 1 == NV {
                _mm512_mask_storeu_ps(op.add(16 * q), mask, s);
            } else {
                _mm512_storeu_ps(op.add(16 * q), s);
            }
        }
    }
}
