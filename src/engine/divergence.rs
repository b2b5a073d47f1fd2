//! The divergence math of the engines, entry by entry, in one place: the guards, the entries
//! of the Kullback–Leibler and β-divergences, and the powers of the β rules. The CPU engine
//! (dense and sparse) calls these functions; the GPU engine's WGSL counterparts live in
//! `shaders/prelude.wgsl` (`KL_GUARD`, `beta_entry`, `beta_numerator`, `beta_denominator`),
//! whose guard is checked against [`BETA_GUARD`] below and whose entries are tested against
//! these functions (engine/gpu/tiled_tests.rs and the GPU parity tests).
//!
//! With `ε` the guard and `q = max(wh, ε)`:
//!
//! ```text
//!   KL entry     v log(v / q) − v + wh           (the log term only where v > ε)
//!   β entry      (v^β − β v q^(β−1) + (β−1) wh^β) / (β (β−1))     β ∉ {0, 1, 2}
//!   IS entry     v / q − log(v / q) − 1          (β = 0; −1 where v ≤ ε)
//!   β rules      numerator V ⊙ y₁^(β−2), denominator y₂^(β−1), y₁ = max(y, ε) for β < 2,
//!                y₂ = max(y, ε) for β < 1 (scikit-learn's guards)
//! ```
//!
//! The powers are [`vmath::pow`] (within [`vmath::POW_ULPS`]), so the CPU engine's row
//! kernels (`cpu::divergence_rows`) vectorise them; the f64 entries here are the references
//! the vector loss rows are tested against.

use crate::engine::vmath;

/// The guard of the β-divergence products and loss: scikit-learn's `EPSILON`, f32's machine
/// epsilon.
pub(crate) const BETA_GUARD: f32 = f32::EPSILON;

/// `(y₁^(β−2), y₂^(β−1))` of the β rules ([`Engine::beta_products`]) with one power: the
/// second is the first times `y₂` wherever `y₁ = y₂` (everywhere but `y < ε` for
/// 1 ≤ β < 2, where it is its own power).
#[inline(always)]
pub(crate) fn beta_pair(y: f32, beta: f32) -> (f32, f32) {
    let a = beta_num_power(y, beta);
    if y < BETA_GUARD {
        if beta < 1.0 {
            (a, a * BETA_GUARD)
        } else {
            (a, beta_den_power(y, beta))
        }
    } else {
        (a, a * y)
    }
}

/// `y₁^(β−2)` of the numerator of the β rules, `y₁ = max(y, ε)` for β < 2.
#[inline(always)]
pub(crate) fn beta_num_power(y: f32, beta: f32) -> f32 {
    let y = if beta < 2.0 && y < BETA_GUARD {
        BETA_GUARD
    } else {
        y
    };
    if beta == 0.0 {
        // scikit-learn's (1/y)² for Itakura–Saito.
        let inv = 1.0 / y;
        inv * inv
    } else {
        vmath::pow(y, beta - 2.0)
    }
}

/// `y₂^(β−1)` of the denominator of the β rules, `y₂ = max(y, ε)` for β < 1.
#[inline(always)]
pub(crate) fn beta_den_power(y: f32, beta: f32) -> f32 {
    let y = if beta < 1.0 && y < BETA_GUARD {
        BETA_GUARD
    } else {
        y
    };
    vmath::pow(y, beta - 1.0)
}

/// One entry of scikit-learn's β-divergence (β ∉ {1, 2}), in f64, with `q = max(wh, ε)`
/// where `v > ε` and only the `wh` term elsewhere:
/// `β = 0`: `v/q − log(v/q) − 1` (and `−1` where `v ≤ ε`, from scikit-learn's `− n·m`);
/// else `(v^β − β v q^(β−1) + (β−1) wh^β) / (β (β−1))` (and `wh^β / β` where `v ≤ ε`).
pub(crate) fn beta_entry(v: f32, wh: f32, beta: f32) -> f64 {
    let (v, wh, b) = (f64::from(v), f64::from(wh), f64::from(beta));
    let eps = f64::from(BETA_GUARD);
    if beta == 0.0 {
        if v <= eps {
            return -1.0;
        }
        let x = v / wh.max(eps);
        return x - x.ln() - 1.0;
    }
    if v <= eps {
        return wh.powf(b) / b;
    }
    let q = wh.max(eps);
    (v.powf(b) - b * v * q.powf(b - 1.0) + (b - 1.0) * wh.powf(b)) / (b * (b - 1.0))
}

/// The ratio of the KL numerators, `v / max(y, ε)` with `ε` = [`BETA_GUARD`] (scikit-learn's
/// guard; the vector kernels of `cpu::elementwise` and `shaders/gemm.wgsl` apply the same).
#[inline(always)]
pub(crate) fn kl_ratio(v: f32, y: f32) -> f32 {
    v / if y < BETA_GUARD { BETA_GUARD } else { y }
}

/// The part of one KL entry that reads the data: `v log(v / q) − v` with `q = max(p, ε)`,
/// where `v > ε`, and 0 elsewhere (scikit-learn's rule; the `+ wh` term is the caller's), in
/// f64: the reference the engines' loss rows (`cpu::divergence_rows`, the sparse KL term) are
/// tested against.
#[cfg(test)]
pub(crate) fn kl_entry_data(v: f64, p: f64, eps: f64) -> f64 {
    if v > eps {
        let q = if p < eps { eps } else { p };
        v * (v / q).ln() - v
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The WGSL prelude's guard is this module's.
    #[test]
    fn the_shaders_guard_is_the_same() {
        let prelude = include_str!("../../shaders/prelude.wgsl");
        let line = prelude
            .lines()
            .find(|l| l.trim_start().starts_with("const KL_GUARD"))
            .expect("the prelude declares KL_GUARD");
        let literal = line
            .split('=')
            .nth(1)
            .and_then(|x| x.trim().trim_end_matches(';').parse::<f32>().ok())
            .expect("KL_GUARD is a float literal");
        assert_eq!(literal, BETA_GUARD);
    }

    /// The entries against their definitions in f64, and the pair against its two powers.
    #[test]
    fn entries_follow_their_definitions() {
        for &(v, wh) in &[(1.0f32, 2.0f32), (3.0, 0.5), (0.25, 0.25), (2.0, 1e-9)] {
            let (vd, q) = (f64::from(v), f64::from(wh).max(f64::from(BETA_GUARD)));
            let kl = kl_entry_data(vd, f64::from(wh), f64::from(BETA_GUARD));
            assert!((kl - (vd * (vd / q).ln() - vd)).abs() <= 1e-12 * (1.0 + kl.abs()));
            let is = beta_entry(v, wh, 0.0);
            let x = vd / q;
            assert!((is - (x - x.ln() - 1.0)).abs() <= 1e-12 * (1.0 + is.abs()));
            for beta in [-0.5f32, 0.5, 1.5, 3.0] {
                let (a, d) = beta_pair(wh, beta);
                assert_eq!(a, beta_num_power(wh, beta));
                let rel = (d - beta_den_power(wh, beta)).abs() / d.abs().max(f32::MIN_POSITIVE);
                assert!(
                    rel < 1e-5,
                    "β {beta}, y {wh}: {d} vs {}",
                    beta_den_power(wh, beta)
                );
            }
        }
        assert_eq!(kl_entry_data(0.0, 1.0, f64::from(BETA_GUARD)), 0.0);
        assert_eq!(beta_entry(0.0, 3.0, 0.0), -1.0);
    }
}
