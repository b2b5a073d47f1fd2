//! Vector row kernels of the sparse products, written once over [`Isa`] and compiled for
//! AVX-512F and for AVX2 + FMA: the r ≤ 8·LANES components of a row of the result held in
//! `NV` vector registers, `E` stored entries in flight into separate accumulator sets, the
//! rows of `X` prefetched [`PF`] entries ahead (for `A X`; the KL numerator's dot products
//! leave no room for it).
//!
//! The register budget sets `E` ([`avx512_in_flight`], [`avx2_in_flight`]): AVX-512 (32 zmm)
//! keeps four entries in flight for every `NV ≤ 4` (r ≤ 64), two for the KL numerator; AVX2
//! (16 ymm) needs `E·NV` accumulators plus `E` broadcasts, so it keeps four entries for
//! `NV ≤ 2`, two for `NV ≤ 6` and one beyond, and for the KL numerator (`NV` more registers
//! hold the row of `y`) two for `NV ≤ 4` and one beyond.

use super::super::simd::{isa_entries, Isa, Level};
use super::gather::{Gather, Weight};
use super::panels::{Index, Start};

/// How many entries ahead the rows of `x` are prefetched.
const PF: usize = 16;

/// Entries in flight of the AVX-512 kernel: of the KL numerator's (`kl`) or the product's.
pub(super) const fn avx512_in_flight(kl: bool) -> usize {
    if kl {
        2
    } else {
        4
    }
}

/// Entries in flight of the AVX2 kernel with `nv` vectors per row: `E·NV` accumulators, `E`
/// broadcast values and one loaded operand within 16 registers, and for the KL numerator
/// (`kl`) `NV` registers holding the row of `y`.
pub(super) const fn avx2_in_flight(nv: usize, kl: bool) -> usize {
    if kl {
        if nv <= 4 {
            2
        } else {
            1
        }
    } else if nv <= 2 {
        4
    } else if nv <= 6 {
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

/// [`super::products`]' row kernel: `out[i, :] = start[i, :] + Σ_k w_k · x[idx[k], :]` with
/// `NV` vectors per row of `LANES·(NV−1) < r ≤ LANES·NV` floats, `E` entries at a time into
/// separate accumulators. `w_k = val[k]` (`A X`), or with `KL` (and [`Weight::KlRatio`])
/// `w_k = val[k] / max(y[i, :]·x[idx[k], :], ε)`, the row of `y` held in registers.
///
/// # Safety
/// `S`'s instruction set must be available; `LANES·(NV−1) < r ≤ LANES·NV`; every `idx[k]` in
/// the ranges must index a row of `x` (`x.len() ≥ (idx[k]+1)·r`); every `ptr` offset at most
/// `idx.len() = val.len()`; `out.len() = (ptr.len() − 1)·r`; with `KL`, `y.len() = out.len()`.
// The accumulator sets are indexed in lockstep.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn rows_body<S: Isa, const NV: usize, const E: usize, const KL: bool, I: Index>(
    g: &Gather<'_, I>,
    out: &mut [f32],
) {
    let Gather {
        ptr,
        idx,
        val,
        x,
        w,
        r,
        start,
    } = *g;
    let y: &[f32] = match w {
        Weight::KlRatio(y) if KL => y,
        _ => &[],
    };
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
            let mut yv = [S::zero(); NV];
            if KL {
                let yp = y.as_ptr().add(i * r);
                for q in 0..NV {
                    yv[q] = load_q::<S, NV>(yp, q, mask);
                }
            }
            // The weight of entry k, whose row of x is at p.
            let weight = |k: usize, p: *const f32| -> f32 {
                let v = *val.get_unchecked(k);
                if KL {
                    let p = dot(&yv, p);
                    v / if p < eps { eps } else { p }
                } else {
                    v
                }
            };
            let mut a = [[S::zero(); NV]; E];
            if let Start::Out = start {
                for q in 0..NV {
                    a[0][q] = load_q::<S, NV>(op, q, mask);
                }
            }
            let mut k = s;
            while k + E <= e {
                if !KL && k + PF + E <= e {
                    for d in 0..E {
                        let pp = xp.add(idx.get_unchecked(k + PF + d).at() * r);
                        S::prefetch(pp);
                        S::prefetch((pp as *const u8).add(4 * r - 1) as *const f32);
                    }
                }
                let mut xs = [xp; E];
                let mut ws = [S::zero(); E];
                for d in 0..E {
                    xs[d] = xp.add(idx.get_unchecked(k + d).at() * r);
                }
                for d in 0..E {
                    ws[d] = S::splat(weight(k + d, xs[d]));
                }
                for q in 0..NV {
                    for d in 0..E {
                        a[d][q] = S::fmadd(ws[d], load_q::<S, NV>(xs[d], q, mask), a[d][q]);
                    }
                }
                k += E;
            }
            while k < e {
                let x0 = xp.add(idx.get_unchecked(k).at() * r);
                let w = S::splat(weight(k, x0));
                for q in 0..NV {
                    a[0][q] = S::fmadd(w, load_q::<S, NV>(x0, q, mask), a[0][q]);
                }
                k += 1;
            }
            for q in 0..NV {
                store_q::<S, NV>(op, q, mask, sum_sets::<S, NV, E>(&a, q));
            }
        }
    }
}

isa_entries!(
    [rows_avx512, rows_avx2] [const NV: usize, const E: usize, const KL: bool, I: Index]
    (g: &Gather<'_, I>, out: &mut [f32]),
    |S| rows_body::<S, NV, E, KL, I>(g, out)
);

/// The kernels of `KL` (a literal) at `level`: `⌈r/16⌉` zmm or `⌈r/8⌉` ymm vectors a row.
macro_rules! at_level {
    ($level:expr, $kl:literal, $g:expr, $out:expr) => {{
        let (g, out) = ($g, $out);
        match $level {
            Level::None => {}
            Level::Avx512 => match g.r.div_ceil(16) {
                1 => rows_avx512::<1, { avx512_in_flight($kl) }, $kl, I>(g, out),
                2 => rows_avx512::<2, { avx512_in_flight($kl) }, $kl, I>(g, out),
                3 => rows_avx512::<3, { avx512_in_flight($kl) }, $kl, I>(g, out),
                _ => rows_avx512::<4, { avx512_in_flight($kl) }, $kl, I>(g, out),
            },
            Level::Avx2 => match g.r.div_ceil(8) {
                1 => rows_avx2::<1, { avx2_in_flight(1, $kl) }, $kl, I>(g, out),
                2 => rows_avx2::<2, { avx2_in_flight(2, $kl) }, $kl, I>(g, out),
                3 => rows_avx2::<3, { avx2_in_flight(3, $kl) }, $kl, I>(g, out),
                4 => rows_avx2::<4, { avx2_in_flight(4, $kl) }, $kl, I>(g, out),
                5 => rows_avx2::<5, { avx2_in_flight(5, $kl) }, $kl, I>(g, out),
                6 => rows_avx2::<6, { avx2_in_flight(6, $kl) }, $kl, I>(g, out),
                7 => rows_avx2::<7, { avx2_in_flight(7, $kl) }, $kl, I>(g, out),
                _ => rows_avx2::<8, { avx2_in_flight(8, $kl) }, $kl, I>(g, out),
            },
        }
    }};
}

/// [`rows_body`] at `level` with the `NV` that r needs: the KL numerator's kernel for
/// [`Weight::KlRatio`], the product's for the rest.
///
/// # Safety
/// `level`'s instruction set must be available; `0 < r ≤ 64`; the rest as for [`rows_body`].
pub(super) unsafe fn vector_rows<I: Index>(level: Level, g: &Gather<'_, I>, out: &mut [f32]) {
    // SAFETY: forwarded contract; each arm's NV satisfies LANES·(NV−1) < r ≤ LANES·NV.
    unsafe {
        match g.w {
            Weight::KlRatio(_) => at_level!(level, true, g, out),
            _ => at_level!(level, false, g, out),
        }
    }
}
