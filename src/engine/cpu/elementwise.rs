//! The elementwise loops of the CPU engine, compiled per instruction set ([`simd::level`]):
//! each has an `#[inline(always)]` body, a portable entry point and AVX2 + FMA / AVX-512F entry
//! points with `#[target_feature]`.
//!
//! The autovectorised loops ([`mu_chunk`], [`ratio_row`]) do the same IEEE operations in the
//! same order at every level (Rust never contracts `a·b + c` into an FMA), so their results are
//! bit-for-bit those of the portable loop. [`sum_sq_diff`] sums in vector lanes (each lane
//! holds at most [`SUM_TERMS`] terms in f32 before they join the f64 total), so its rounding
//! differs from the portable sum by a few f32 ulps of a partial sum.

use super::flush_subnormal;
use super::simd::{self, isa_call, isa_entries, Level};
#[cfg(target_arch = "x86_64")]
use super::simd::{Avx2, Avx512, Isa};
use crate::engine::MuRule;
use crate::options::Regularization;

/// The vector operations the kernels of this engine need beyond [`Isa`].
#[cfg(target_arch = "x86_64")]
pub(super) trait IsaExt: Isa {
    /// `x` where `x ≥ t` or `x` is NaN, else 0: [`flush_subnormal`]'s rule lanewise
    /// (`x < t` becomes 0; NaN stays NaN).
    unsafe fn zero_below(x: Self::V, t: Self::V) -> Self::V;
}

#[cfg(target_arch = "x86_64")]
impl IsaExt for Avx2 {
    #[inline(always)]
    unsafe fn zero_below(x: Self::V, t: Self::V) -> Self::V {
        use std::arch::x86_64::*;
        // SAFETY: the caller guarantees AVX.
        unsafe { _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(x, t), x) }
    }
}

#[cfg(target_arch = "x86_64")]
impl IsaExt for Avx512 {
    #[inline(always)]
    unsafe fn zero_below(x: Self::V, t: Self::V) -> Self::V {
        use std::arch::x86_64::*;
        // SAFETY: the caller guarantees AVX-512F.
        unsafe {
            let keep = _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(x, t);
            _mm512_maskz_mov_ps(keep, x)
        }
    }
}

/// The denominator of one chunk of a multiplicative update.
#[derive(Clone, Copy)]
pub(super) enum Den<'a> {
    /// One value per entry (as long as the chunk).
    Each(&'a [f32]),
    /// One value for the whole chunk.
    All(f32),
}

/// One chunk of [`crate::engine::Engine::mu_step`]: `x ← flush(x ⊙ f(n ⊘ d'))` with
/// `d' = d + l1 + l2·x` (zero replaced by `eps`), `f` and the flush those of `rule`, at `level`
/// (which the CPU must support). `num` (and `den`'s slice) must be as long as `x`.
pub(super) fn mu_chunk(
    level: Level,
    x: &mut [f32],
    num: &[f32],
    den: Den<'_>,
    reg: Regularization,
    eps: f32,
    rule: MuRule,
) {
    assert_eq!(x.len(), num.len());
    if let Den::Each(d) = den {
        assert_eq!(x.len(), d.len());
    }
    assert!(level.supported());
    let Regularization { l1, l2 } = reg;
    match rule {
        MuRule::Plain => mu_at(level, x, num, den, l1, l2, eps, |r| r),
        MuRule::Sqrt => mu_at(level, x, num, den, l1, l2, eps, |r| r.sqrt()),
        MuRule::Damped => mu_at(level, x, num, den, l1, l2, eps, |r| 0.5 + 0.5 * r),
        // A power per entry: no vector form; the portable loop.
        MuRule::Power { .. } => {
            let d_at = |i: usize| match den {
                Den::Each(d) => d[i],
                Den::All(d) => d,
            };
            for (i, (x, &n)) in x.iter_mut().zip(num).enumerate() {
                let mut d = d_at(i) + l1 + l2 * *x;
                if d == 0.0 {
                    d = eps;
                }
                *x = rule.flush(*x * rule.apply(n / d));
            }
        }
    }
}

/// [`mu_body`] at `level` (supported, lengths checked by [`mu_chunk`]).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn mu_at<F: Fn(f32) -> f32>(
    level: Level,
    x: &mut [f32],
    num: &[f32],
    den: Den<'_>,
    l1: f32,
    l2: f32,
    eps: f32,
    f: F,
) {
    // SAFETY: the level is supported (checked by mu_chunk).
    isa_call!(
        unsafe level,
        [mu_avx512, mu_avx2](x, num, den, l1, l2, eps, f),
        mu_body(x, num, den, l1, l2, eps, f)
    )
}

isa_entries!(
    [mu_avx512, mu_avx2] [F: Fn(f32) -> f32]
    (x: &mut [f32], num: &[f32], den: Den<'_>, l1: f32, l2: f32, eps: f32, f: F),
    |S| mu_body(x, num, den, l1, l2, eps, f)
);

/// The update loop of [`mu_chunk`] for the rules without a floor of their own.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn mu_body<F: Fn(f32) -> f32>(
    x: &mut [f32],
    num: &[f32],
    den: Den<'_>,
    l1: f32,
    l2: f32,
    eps: f32,
    f: F,
) {
    let one = |x: &mut f32, n: f32, d: f32| {
        let mut d = d + l1 + l2 * *x;
        if d == 0.0 {
            d = eps;
        }
        *x = flush_subnormal(*x * f(n / d));
    };
    match den {
        Den::Each(ds) => {
            for ((x, &n), &d) in x.iter_mut().zip(num).zip(ds) {
                one(x, n, d);
            }
        }
        Den::All(d) => {
            for (x, &n) in x.iter_mut().zip(num) {
                one(x, n, d);
            }
        }
    }
}

/// `z ← v ⊘ max(z, ε)` with `ε = f32::EPSILON` over one row (the KL ratio), at `level`
/// (supported); `v` as long as `z`.
pub(super) fn ratio_row(level: Level, z: &mut [f32], v: &[f32]) {
    assert_eq!(z.len(), v.len());
    assert!(level.supported());
    // SAFETY: the level is supported (asserted above).
    isa_call!(unsafe level, [ratio_avx512, ratio_avx2](z, v), ratio_body(z, v))
}

isa_entries!([ratio_avx512, ratio_avx2] [] (z: &mut [f32], v: &[f32]), |S| ratio_body(z, v));

#[inline(always)]
fn ratio_body(z: &mut [f32], v: &[f32]) {
    let eps = f32::EPSILON;
    for (z, &v) in z.iter_mut().zip(v) {
        *z = v / if *z < eps { eps } else { *z };
    }
}

/// Terms each f32 partial sum of [`sum_sq_diff`] holds before it joins the f64 total.
pub(super) const SUM_TERMS: usize = 64;

/// `Σ (a − b)²` (or `Σ a²` when `b` is empty) in f64, from f32 partial sums of at most
/// [`SUM_TERMS`] terms each; `b`, when given, as long as `a`. At [`simd::level`].
pub(super) fn sum_sq_diff(a: &[f32], b: &[f32]) -> f64 {
    sum_sq_diff_at(simd::level(), a, b)
}

/// [`sum_sq_diff`] at `level` (supported).
pub(super) fn sum_sq_diff_at(level: Level, a: &[f32], b: &[f32]) -> f64 {
    assert!(b.is_empty() || b.len() == a.len());
    assert!(level.supported());
    // SAFETY: the level is supported and b is empty or as long as a (asserted above).
    isa_call!(unsafe level, [sum_sq_avx512, sum_sq_avx2](a, b), sum_sq_portable(a, b))
}

/// The portable [`sum_sq_diff`]: one f32 partial sum per [`SUM_TERMS`] terms.
fn sum_sq_portable(a: &[f32], b: &[f32]) -> f64 {
    let mut total = 0.0f64;
    if b.is_empty() {
        for ca in a.chunks(SUM_TERMS) {
            total += ca.iter().fold(0.0f32, |s, &x| s + x * x) as f64;
        }
    } else {
        for (ca, cb) in a.chunks(SUM_TERMS).zip(b.chunks(SUM_TERMS)) {
            total += ca
                .iter()
                .zip(cb)
                .fold(0.0f32, |s, (&x, &y)| s + (x - y) * (x - y)) as f64;
        }
    }
    total
}

isa_entries!([sum_sq_avx512, sum_sq_avx2] [] (a: &[f32], b: &[f32]) -> f64, |S| sum_sq_body::<S>(a, b));

/// [`sum_sq_diff`] in `S`'s lanes: blocks of `SUM_TERMS · LANES` entries, each lane of two
/// accumulators summing at most `SUM_TERMS / 2` terms per block.
///
/// # Safety
/// `S`'s instruction set must be available; `b` empty or as long as `a`.
#[inline(always)]
unsafe fn sum_sq_body<S: Isa>(a: &[f32], b: &[f32]) -> f64 {
    let diff = !b.is_empty();
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    let term = |i: usize, m: Option<S::M>| -> S::V {
        // SAFETY: i + LANES ≤ a.len() (or the mask covers only entries below a.len()), and b
        // is as long as a when it is read.
        unsafe {
            let x = match m {
                None => S::load(ap.add(i)),
                Some(m) => S::load_masked(m, ap.add(i)),
            };
            let d = if diff {
                let y = match m {
                    None => S::load(bp.add(i)),
                    Some(m) => S::load_masked(m, bp.add(i)),
                };
                S::sub(x, y)
            } else {
                x
            };
            S::mul(d, d)
        }
    };
    let block = SUM_TERMS * S::LANES;
    let mut total = 0.0f64;
    let mut i0 = 0;
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        while i0 < a.len() {
            let end = (i0 + block).min(a.len());
            let (mut s0, mut s1) = (S::zero(), S::zero());
            let mut i = i0;
            while i + 2 * S::LANES <= end {
                s0 = S::add(s0, term(i, None));
                s1 = S::add(s1, term(i + S::LANES, None));
                i += 2 * S::LANES;
            }
            while i < end {
                s0 = S::add(s0, term(i, Some(S::mask(end - i))));
                i += S::LANES;
            }
            total += S::sum(S::add(s0, s1)) as f64;
            i0 = end;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether two slices hold the same floats bit for bit (NaNs included).
    fn same_bits(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    /// Lengths around every vector width and block.
    const LENS: [usize; 12] = [0, 1, 7, 8, 9, 16, 17, 20, 33, 64, 100, 1030];

    /// Values in `[0, 2)`, with zeros, tiny values and a NaN sprinkled in.
    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let h = (i as u32).wrapping_mul(2654435761).wrapping_add(seed * 97) >> 8;
                match h % 29 {
                    0 => 0.0,
                    1 => 1e-39,
                    2 => 3e-38,
                    _ => (h % 2000) as f32 / 1000.0,
                }
            })
            .collect()
    }

    #[test]
    fn mu_chunks_match_the_portable_loop_bit_for_bit() {
        let rules = [
            MuRule::Plain,
            MuRule::Sqrt,
            MuRule::Damped,
            MuRule::Power {
                gamma: 0.5,
                floor: 1e-20,
            },
        ];
        let regs = [
            Regularization { l1: 0.0, l2: 0.0 },
            Regularization { l1: 0.1, l2: 0.3 },
        ];
        for len in LENS {
            let (x0, num, den) = (values(len, 1), values(len, 2), values(len, 3));
            for rule in rules {
                for reg in regs {
                    for all in [None, Some(0.0f32), Some(0.7)] {
                        let d = match all {
                            None => Den::Each(&den),
                            Some(v) => Den::All(v),
                        };
                        let mut want = x0.clone();
                        mu_chunk(Level::None, &mut want, &num, d, reg, 1e-10, rule);
                        for level in Level::all_supported() {
                            let mut got = x0.clone();
                            mu_chunk(level, &mut got, &num, d, reg, 1e-10, rule);
                            assert!(
                                same_bits(&got, &want),
                                "{level:?} {rule:?} len {len} {all:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn ratio_rows_match_the_portable_loop_bit_for_bit() {
        for len in LENS {
            let (z0, v) = (values(len, 4), values(len, 5));
            let mut want = z0.clone();
            ratio_row(Level::None, &mut want, &v);
            for level in Level::all_supported() {
                let mut got = z0.clone();
                ratio_row(level, &mut got, &v);
                assert!(same_bits(&got, &want), "{level:?} len {len}");
            }
        }
    }

    #[test]
    fn sums_of_squares_match_f64_at_every_level() {
        for len in LENS.into_iter().chain([64 * 16 + 3, 5000]) {
            let (a, b) = (values(len, 6), values(len, 7));
            let exact: f64 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
                .sum();
            let exact_sq: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum();
            for level in Level::all_supported() {
                let got = sum_sq_diff_at(level, &a, &b);
                assert!(
                    (got - exact).abs() <= 1e-6 * exact.max(1e-30),
                    "{level:?} {len}"
                );
                let got = sum_sq_diff_at(level, &a, &[]);
                assert!(
                    (got - exact_sq).abs() <= 1e-6 * exact_sq.max(1e-30),
                    "{level:?} {len}"
                );
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn zero_below_keeps_nan_and_flushes_what_is_below() {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn flush_avx2(x: &mut [f32; 8]) {
            // SAFETY: AVX2 is available (the caller checked); 8 floats.
            unsafe {
                let v = Avx2::load(x.as_ptr());
                Avx2::store(
                    x.as_mut_ptr(),
                    Avx2::zero_below(v, Avx2::splat(f32::MIN_POSITIVE)),
                );
            }
        }
        #[target_feature(enable = "avx512f")]
        unsafe fn flush_avx512(x: &mut [f32; 16]) {
            // SAFETY: AVX-512F is available (the caller checked); 16 floats.
            unsafe {
                let v = Avx512::load(x.as_ptr());
                let t = Avx512::splat(f32::MIN_POSITIVE);
                Avx512::store(x.as_mut_ptr(), Avx512::zero_below(v, t));
            }
        }
        let src = [
            f32::NAN,
            -1.0,
            0.0,
            1e-39,
            f32::MIN_POSITIVE,
            1.0,
            -0.0,
            f32::INFINITY,
        ];
        let want: Vec<u32> = src.iter().map(|&v| flush_subnormal(v).to_bits()).collect();
        if Level::Avx2.supported() {
            let mut x = src;
            // SAFETY: AVX2 and FMA were detected.
            unsafe { flush_avx2(&mut x) };
            assert_eq!(x.map(f32::to_bits).to_vec(), want);
        }
        if Level::Avx512.supported() {
            let mut x = [0.0f32; 16];
            x[..8].copy_from_slice(&src);
            x[8..].copy_from_slice(&src);
            // SAFETY: AVX-512F was detected.
            unsafe { flush_avx512(&mut x) };
            assert_eq!(x[..8].iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want);
            assert_eq!(x[8..].iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want);
        }
    }
}
