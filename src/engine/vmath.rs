//! The logarithm, the base-2 exponential and the power in f32, written for the vector units:
//! no table, no branch and no library call, only IEEE additions, multiplications and bit
//! operations, so a loop over a slice compiles to vector code at every instruction set the CPU
//! engine targets (AVX-512, AVX2) and gives bit for bit the same results at each of them and in
//! the portable build (nothing is contracted into an FMA).
//!
//! The reductions, with `x = 2^e · m`, `m ∈ [√½, √2)` and `f = m − 1`:
//!
//! ```text
//!   ln x      = e·ln 2 + ln(1 + f),   ln(1 + f) ≈ f − f²/2 + f³·P(f)      (P: degree 7)
//!   ln(v / q) = the same, with f = (v − q) / q where v / q ∈ [√½, √2)    (no cancellation near 1)
//!   2^z       = 2^k · 2^r,            k = round(z), r = z − k ∈ [−½, ½],
//!               2^r ≈ 1 + r·Q(r)                                        (Q: degree 5)
//!   y^p       = 2^(p·(e + log₂ m))    with p·(e + log₂ m) and 2^k in f64
//! ```
//!
//! P and Q were fitted to relative error on their intervals (Lawson-reweighted least squares
//! in f64): 0.27 and 0.07 ulp before rounding to f32. The bounds below are measured over the
//! whole f32 range by the tests of this module against f64 references (worst seen: 1.58, 1.98
//! and 1.49), with margin:
//! [`LN_ULPS`] (for `q = 1`), [`LN_RATIO_ABS`], [`POW_ULPS`]. Subnormal arguments are scaled by 2²³ first;
//! `ln 0 = −∞`, `ln ∞ = ∞`, `ln` of a negative number or NaN is NaN; `pow` keeps IEEE's rules
//! for `0^p`, `∞^p`, `1^p` and NaN.

/// Bound of the absolute error of [`ln_ratio`]`(x, 1)`, `ln x`, in units of
/// `2⁻²⁴ · max(1, |ln x|)`.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const LN_ULPS: f64 = 2.0;

/// Bound of [`ln_ratio`]'s absolute error, in units of `2⁻²⁴ · max(1, |ln(v / q)|)`.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const LN_RATIO_ABS: f64 = 2.5;

/// Bound of [`pow`]'s relative error in units of 2⁻²⁴, per unit of `1 + |p|` (the exponent's
/// own rounding is carried in f64, so the bound does not grow with `|p · ln y|`).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const POW_ULPS: f64 = 2.0;

/// Bound of [`exp_m1_wide`]'s relative error, in units of 2⁻²⁴ (worst seen: 3.34, where
/// `|e^x − 1|` is 0.2–0.4 and the f32 polynomial's rounding is the error).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const EXPM1_ULPS: f64 = 4.0;

/// `ln 2`, split so that `e · LN2_HI` is exact for every exponent `e` of an f32.
const LN2_HI: f32 = 0.693_359_4;
/// `ln 2 − LN2_HI`.
const LN2_LO: f32 = -2.121_944_4e-4;
/// `log₂ e`.
const LOG2_E: f32 = std::f32::consts::LOG2_E;

/// The coefficients of P, lowest degree first: `ln(1 + f) ≈ f − f²/2 + f³·P(f)` on
/// `f ∈ [√½ − 1, √2 − 1]`.
const P: [f32; 8] = [
    0.333_333_58,
    -0.250_006_94,
    0.199_992_12,
    -0.166_265_8,
    0.142_459_24,
    -0.131_700_53,
    0.124_652_57,
    -0.072_476_625,
];

/// The coefficients of Q, lowest degree first: `2^r ≈ 1 + r·Q(r)` on `r ∈ [−½, ½]`.
const Q: [f32; 6] = [
    std::f32::consts::LN_2,
    0.240_226_49,
    0.055_503_413,
    0.009_618_365,
    0.001_339_511_8,
    0.000_153_642_12,
];

/// `(e, f)` with `x = 2^e · (1 + f)` and `1 + f ∈ [√½, √2)`, for `x` positive and finite
/// (subnormal `x` scaled by 2²³ first). Adding the bits of `1 − √½` to those of `x` carries
/// into the exponent exactly when the mantissa is at least `√2`.
#[inline(always)]
fn split(x: f32) -> (f32, f32) {
    let tiny = x < f32::MIN_POSITIVE;
    let xs = if tiny { x * 8_388_608.0 } else { x };
    let b = xs.to_bits().wrapping_add(0x3f80_0000 - 0x3f35_04f3);
    let e = (b >> 23) as i32 - 127 - if tiny { 23 } else { 0 };
    let m = f32::from_bits((b & 0x007f_ffff) + 0x3f35_04f3);
    (e as f32, m - 1.0)
}

/// `ln(1 + f)` for `f ∈ [√½ − 1, √2 − 1]`.
#[inline(always)]
fn ln1p_reduced(f: f32) -> f32 {
    let mut p = P[7];
    for &c in P[..7].iter().rev() {
        p = p * f + c;
    }
    let f2 = f * f;
    f - 0.5 * f2 + f2 * f * p
}

/// IEEE's special cases of the logarithm applied over `finite`, the value for positive
/// finite `x`.
#[inline(always)]
fn ln_special(x: f32, finite: f32) -> f32 {
    if x == 0.0 {
        f32::NEG_INFINITY
    } else if x == f32::INFINITY {
        f32::INFINITY
    } else if x > 0.0 {
        finite
    } else {
        f32::NAN
    }
}

/// `ln(v / q)` for positive finite `v` and `q`, within [`LN_RATIO_ABS`], over the whole
/// range (the quotient of the mantissas is reduced, never `v / q` itself, which can leave
/// f32's range). Where `v / q` is near 1 the reduced argument is `(v − q) / q`, whose
/// numerator is exact there, so the result keeps its relative accuracy as `v → q` (where
/// `ln(fl(v / q))` would carry the division's rounding, 2⁻²⁴, as an absolute error). Other
/// arguments follow IEEE's rules for `ln` of the quotient.
#[inline(always)]
pub(crate) fn ln_ratio(v: f32, q: f32) -> f32 {
    let (ev, mv) = exponent_mantissa(v);
    let (eq, mq) = exponent_mantissa(q);
    let (e, f) = split(mv / mq);
    let e = e + (ev - eq);
    let f = if e == 0.0 { (v - q) / q } else { f };
    let finite = ln1p_reduced(f) + e * LN2_LO + e * LN2_HI;
    if v > 0.0 && q > 0.0 && v < f32::INFINITY && q < f32::INFINITY {
        finite
    } else {
        ln_special(v / q, f32::NAN)
    }
}

/// `(e, m)` with `x = 2^e · m` and `m ∈ [1, 2)`, for `x` positive and finite (subnormal `x`
/// scaled by 2²³ first).
#[inline(always)]
fn exponent_mantissa(x: f32) -> (f32, f32) {
    let tiny = x < f32::MIN_POSITIVE;
    let b = if tiny { x * 8_388_608.0 } else { x }.to_bits();
    let e = (b >> 23) as i32 - 127 - if tiny { 23 } else { 0 };
    (e as f32, f32::from_bits((b & 0x007f_ffff) | 0x3f80_0000))
}

/// `2^r − 1` for `r ∈ [−½, ½]`, without cancellation near 0.
#[inline(always)]
fn exp2m1_reduced(r: f32) -> f32 {
    let mut q = Q[5];
    for &c in Q[..5].iter().rev() {
        q = q * r + c;
    }
    r * q
}

/// `(2^r − 1, 2^k, k)` with `z = k + r`, `k = round(z)`, for `z` already clamped to
/// `[−1000, 1000]` (so `2^k` is a normal f64). The rounding and `2^k` are formed by adding
/// `1.5 · 2⁵²`, whose last bits then hold `k`.
#[inline(always)]
fn exp2_split(z: f64) -> (f32, f64, f64) {
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    let t = z + SHIFT;
    let k = t - SHIFT;
    let scale = f64::from_bits(t.to_bits().wrapping_add(1023) << 52);
    (exp2m1_reduced((z - k) as f32), scale, k)
}

/// `2^z` in f64 for `z` clamped to `[−200, 200]`, rounded once to f32 (so results below
/// f32's normal range round to its subnormals or 0, and above it to ∞).
#[inline(always)]
fn exp2_wide(z: f64) -> f32 {
    let (m1, scale, _) = exp2_split(z);
    (f64::from(1.0 + m1) * scale) as f32
}

/// `e^x − 1` in f64 within [`EXPM1_ULPS`] (relative, units of 2⁻²⁴) for `|x| ≤ 690`:
/// `2^z − 1` with `z = x·log₂ e`, from the reduced polynomial itself where `k = 0`, so small
/// `x` keep their relative accuracy.
#[inline(always)]
pub(crate) fn exp_m1_wide(x: f64) -> f64 {
    let z = (x * std::f64::consts::LOG2_E).clamp(-1000.0, 1000.0);
    let (m1, scale, k) = exp2_split(z);
    if k == 0.0 {
        f64::from(m1)
    } else {
        // 2^k·(1 + m) − 1 = 2^k·m + (2^k − 1): the second term is exact.
        f64::from(m1) * scale + (scale - 1.0)
    }
}

/// `y^p` in f64, without f32's range, within [`POW_ULPS`] for positive finite `y` whose power
/// lies within `2^±1000`.
#[inline(always)]
pub(crate) fn pow_wide(y: f32, p: f32) -> f64 {
    let (m1, scale, _) = exp2_split(log2_times(y, p).clamp(-1000.0, 1000.0));
    f64::from(1.0 + m1) * scale
}

/// `p · log₂ y` in f64 for positive finite `y`: the exponent of `y` joins in f64, so the
/// product carries no rounding of `p · e`.
#[inline(always)]
fn log2_times(y: f32, p: f32) -> f64 {
    let (e, f) = split(y);
    let l2 = ln1p_reduced(f) * LOG2_E;
    f64::from(p) * (f64::from(e) + f64::from(l2))
}

/// `y^p` within [`POW_ULPS`] for `y ≥ 0` (and IEEE's `pow` rules at `y = 0`, `y = ∞` and NaN
/// for the powers the β rules use); negative `y` gives NaN.
#[inline(always)]
pub(crate) fn pow(y: f32, p: f32) -> f32 {
    let finite = exp2_wide(log2_times(y, p).clamp(-200.0, 200.0));
    if p == 0.0 || y == 1.0 {
        1.0
    } else if y.is_nan() || p.is_nan() || y < 0.0 {
        f32::NAN
    } else if y == 0.0 {
        if p > 0.0 {
            0.0
        } else {
            f32::INFINITY
        }
    } else if y == f32::INFINITY {
        if p > 0.0 {
            f32::INFINITY
        } else {
            0.0
        }
    } else {
        finite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One unit in the last place of `x` (as an f32), in f64.
    fn ulp(x: f64) -> f64 {
        let a = (x.abs() as f32).max(f32::MIN_POSITIVE);
        f64::from(f32::from_bits(a.to_bits() + 1) - a)
    }

    /// Every `stride`-th positive finite f32, subnormals included, and the last one.
    fn positive_floats(stride: u32) -> impl Iterator<Item = f32> {
        (1..0x7f80_0000u32)
            .step_by(stride as usize)
            .chain([0x7f7f_ffff])
            .map(f32::from_bits)
    }

    #[test]
    fn ln_of_x_over_one_is_within_its_bound_over_the_positive_floats() {
        let mut worst = 0.0f64;
        for x in positive_floats(101) {
            let exact = f64::from(x).ln();
            let err = (f64::from(ln_ratio(x, 1.0)) - exact).abs()
                / (2f64.powi(-24) * exact.abs().max(1.0));
            worst = worst.max(err);
        }
        assert!(worst <= LN_ULPS, "ln: {worst} x 2^-24");
    }

    #[test]
    fn ln_keeps_the_special_values() {
        let ln = |x| ln_ratio(x, 1.0);
        assert_eq!(ln(0.0), f32::NEG_INFINITY);
        assert_eq!(ln(f32::INFINITY), f32::INFINITY);
        assert_eq!(ln(1.0), 0.0);
        assert!(ln(-1.0).is_nan() && ln(f32::NAN).is_nan());
        assert_eq!(ln_ratio(1.0, 0.0), f32::INFINITY);
        assert!(ln_ratio(f32::INFINITY, f32::INFINITY).is_nan());
    }

    #[test]
    fn ln_ratio_is_accurate_near_one_and_far_from_it() {
        let mut worst = 0.0f64;
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2_000_000 {
            let q = f32::from_bits(0x0080_0000 + (next() % 0x7e00_0000) as u32);
            // v near q (a few ulps to a few percent away) or anywhere.
            let v = match next() % 3 {
                0 => f32::from_bits((q.to_bits() as i64 + (next() % 2001) as i64 - 1000) as u32),
                1 => q * (1.0 + ((next() % 20001) as f32 - 10000.0) * 1e-6),
                _ => f32::from_bits(0x0080_0000 + (next() % 0x7e00_0000) as u32),
            };
            if !(v.is_finite() && v > 0.0) {
                continue;
            }
            let exact = (f64::from(v) / f64::from(q)).ln();
            let err =
                (f64::from(ln_ratio(v, q)) - exact).abs() / (2f64.powi(-24) * exact.abs().max(1.0));
            worst = worst.max(err);
        }
        assert!(worst <= LN_RATIO_ABS, "ln_ratio: {worst} x 2^-24");
    }

    #[test]
    fn pow_is_within_its_bound_for_the_powers_of_the_beta_rules() {
        let mut worst = 0.0f64;
        for p in [
            -2.0f32, -1.5, -1.0, -0.75, -0.5, -0.25, 0.25, 0.5, 1.0, 1.5, 2.3,
        ] {
            for y in positive_floats(997) {
                let exact = f64::from(y).powf(f64::from(p));
                if !(f64::from(f32::MIN_POSITIVE)..=f64::from(f32::MAX)).contains(&exact) {
                    // Out of f32's normal range: 0, a subnormal or ∞, as the rounding of
                    // the f64 value gives.
                    let got = pow(y, p);
                    let want = exact as f32;
                    assert!(
                        got == want || (f64::from(got) - exact).abs() <= 2.0 * ulp(0.0),
                        "pow({y:e}, {p}) = {got:e}, want {want:e}"
                    );
                    continue;
                }
                let err = (f64::from(pow(y, p)) - exact).abs() / (exact * 2f64.powi(-24));
                worst = worst.max(err / (1.0 + f64::from(p.abs())));
            }
        }
        assert!(worst <= POW_ULPS, "pow: {worst} ulp per 1 + |p|");
    }

    #[test]
    fn exp_m1_keeps_its_relative_accuracy_near_zero_and_far_from_it() {
        let mut worst = 0.0f64;
        for i in -40_000..=40_000 {
            let t = f64::from(i) / 40_000.0;
            for x in [t * 1e-6, t * 1e-2, t, t * 80.0, t * 690.0] {
                if x == 0.0 {
                    assert_eq!(exp_m1_wide(0.0), 0.0);
                    continue;
                }
                let exact = x.exp_m1();
                let err = (exp_m1_wide(x) - exact).abs() / (exact.abs() * 2f64.powi(-24));
                worst = worst.max(err);
            }
        }
        assert!(worst <= EXPM1_ULPS, "exp_m1_wide: {worst} x 2^-24");
    }

    #[test]
    fn pow_wide_is_pow_without_the_f32_range() {
        let mut worst = 0.0f64;
        for p in [-1.5f32, -0.5, 0.5, 1.5, 2.5] {
            for y in positive_floats(997) {
                let exact = f64::from(y).powf(f64::from(p));
                let err = (pow_wide(y, p) - exact).abs() / (exact * 2f64.powi(-24));
                worst = worst.max(err / (1.0 + f64::from(p.abs())));
            }
        }
        assert!(worst <= POW_ULPS, "pow_wide: {worst} ulp per 1 + |p|");
    }

    #[test]
    fn pow_keeps_the_special_values() {
        assert_eq!(pow(0.0, 0.5), 0.0);
        assert_eq!(pow(0.0, -0.5), f32::INFINITY);
        assert_eq!(pow(f32::INFINITY, -0.5), 0.0);
        assert_eq!(pow(f32::INFINITY, 0.5), f32::INFINITY);
        assert_eq!(pow(3.0, 0.0), 1.0);
        assert_eq!(pow(1.0, -7.5), 1.0);
        assert!(pow(f32::NAN, 0.5).is_nan() && pow(2.0, f32::NAN).is_nan());
        assert!(pow(-2.0, 0.5).is_nan());
    }
}
