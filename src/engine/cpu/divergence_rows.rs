//! The divergence kernels of the CPU engine over rows, compiled per instruction set
//! ([`simd::level`]): the β rules' pair `(V ⊙ Y₁^(β−2), Y₂^(β−1))` and the sums of the
//! Kullback–Leibler and Itakura–Saito entries, with the logarithm and power of
//! [`vmath`](crate::engine::vmath) (no library call, so the loops vectorise).
//!
//! The entries are those of [`divergence`](crate::engine::divergence), with `q = max(p, ε)`:
//!
//! ```text
//!   KL   v·ln(v / q) + (p − v)   where v > ε, else p
//!   IS   (v − q)/q − ln(v / q)   where v > ε, else −1      (= v/q − ln(v/q) − 1)
//! ```
//!
//! Both are written so that nothing cancels as `v → q`: `p − v` and `v − q` are exact there
//! and [`vmath::ln_ratio`] keeps its relative accuracy. Each entry is formed in f32 (within a
//! few units of 2⁻²⁴ of `v·|ln(v/q)| + |p − v|`, from [`vmath::LN_RATIO_ABS`]) and summed in
//! [`LANES`] f32 partial sums of at most [`SUM_TERMS`] terms each before they join the f64
//! total. Every level runs the same operations in the same order, so the results are bit for
//! bit those of the portable loop.

use super::elementwise::SUM_TERMS;
use super::simd::{self, isa_call, isa_entries, Level};
use crate::engine::divergence::{beta_entry, beta_pair, BETA_GUARD};
use crate::engine::vmath;

/// The partial sums of the loss rows: one per f32 lane of the widest vector (AVX-512).
pub(super) const LANES: usize = 16;

/// Entries formed at once before they are summed (a stack buffer).
const CHUNK: usize = SUM_TERMS * LANES;

/// The entrywise divergences whose rows this module sums.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum RowLoss {
    /// Kullback–Leibler, with the guard `ε` of the caller.
    KullbackLeibler(f32),
    /// Itakura–Saito (β = 0), with its guard `ε`.
    ItakuraSaito(f32),
    /// The β-divergence of any other β (not 0, 1 or 2), guard [`BETA_GUARD`].
    Beta(f32),
}

/// `Σ_j entry(v_j, p_j)` over one row of `V` and of `W H` (as long as each other), in f64, at
/// [`simd::level`].
pub(super) fn loss_row(v: &[f32], p: &[f32], loss: RowLoss) -> f64 {
    loss_row_at(simd::level(), v, p, loss)
}

/// [`loss_row`] at `level` (which the CPU must support).
pub(super) fn loss_row_at(level: Level, v: &[f32], p: &[f32], loss: RowLoss) -> f64 {
    assert_eq!(v.len(), p.len());
    assert!(level.supported());
    // SAFETY: the level is supported and the rows are as long as each other (asserted).
    isa_call!(unsafe level, [loss_avx512, loss_avx2](v, p, loss), loss_body(v, p, loss))
}

isa_entries!([loss_avx512, loss_avx2] [] (v: &[f32], p: &[f32], loss: RowLoss) -> f64, |S| loss_body(v, p, loss));

/// The loop of [`loss_row`]: a chunk of entries into a buffer, then summed lane by lane.
#[inline(always)]
fn loss_body(v: &[f32], p: &[f32], loss: RowLoss) -> f64 {
    let mut buf = [0.0f32; CHUNK];
    let mut total = 0.0f64;
    for (vc, pc) in v.chunks(CHUNK).zip(p.chunks(CHUNK)) {
        let out = &mut buf[..vc.len()];
        match loss {
            RowLoss::KullbackLeibler(eps) => {
                for ((o, &v), &p) in out.iter_mut().zip(vc).zip(pc) {
                    let q = if p < eps { eps } else { p };
                    let data = v * vmath::ln_ratio(v, q) + (p - v);
                    *o = if v > eps { data } else { p };
                }
            }
            RowLoss::ItakuraSaito(eps) => {
                for ((o, &v), &p) in out.iter_mut().zip(vc).zip(pc) {
                    let q = if p < eps { eps } else { p };
                    let entry = (v - q) / q - vmath::ln_ratio(v, q);
                    *o = if v > eps { entry } else { -1.0 };
                }
            }
            RowLoss::Beta(beta) => {
                let series = BetaSeries::new(beta);
                for ((o, &v), &p) in out.iter_mut().zip(vc).zip(pc) {
                    *o = series.entry(v, p) as f32;
                }
                // The entries with wh < ε (rare): their whole entry in f64.
                for (&v, &p) in vc.iter().zip(pc) {
                    if p < BETA_GUARD {
                        total += beta_entry(v, p, beta);
                    }
                }
            }
        }
        total += lane_sum(out);
    }
    total
}

/// One entry of the β-divergence (β ∉ {0, 1, 2}) with `q = max(wh, ε)`, written so that
/// nothing cancels as `v → q`. With `x = v / q = 1 + d`:
///
/// ```text
///   v > ε:  q^β · g(d) / (β (β − 1)),   g(d) = x^β − 1 − β d = Σ_{k≥2} C(β, k) d^k
///   v ≤ ε:  q^β / β
/// ```
///
/// `g` is summed as that series (to `k = 10`) for `|d| ≤ 1/8`, else as `(e^(β ln x) − 1) − β d`
/// ([`vmath::exp_m1_wide`], [`vmath::ln_ratio`]); `q^β` is [`vmath::pow_wide`]. Where
/// `wh < ε` the last term of scikit-learn's entry holds `wh^β`, not `q^β`: those (rare)
/// entries are 0 here and the caller adds [`beta_entry`]'s.
struct BetaSeries {
    beta: f32,
    /// `C(β, k)` for `k = 2 … 10`.
    c: [f64; 9],
}

impl BetaSeries {
    /// `|d|` up to which `g` is summed as its series (the first term left out is below
    /// `d^8 ≈ 6·10⁻⁸` of the first).
    const SERIES_D: f32 = 0.125;

    fn new(beta: f32) -> BetaSeries {
        let b = f64::from(beta);
        let mut c = [0.0; 9];
        let mut ck = b * (b - 1.0) / 2.0;
        for (k, slot) in (2..).zip(c.iter_mut()) {
            *slot = ck;
            ck *= (b - f64::from(k)) / f64::from(k + 1);
        }
        BetaSeries { beta, c }
    }

    /// The entry of `v` and `p` (see the type), 0 where `p < ε`.
    #[inline(always)]
    fn entry(&self, v: f32, p: f32) -> f64 {
        let eps = BETA_GUARD;
        let b = f64::from(self.beta);
        let q = if p < eps { eps } else { p };
        let qb = vmath::pow_wide(q, self.beta);
        let d = (v - q) / q;
        let g = if d.abs() <= Self::SERIES_D {
            let d = f64::from(d);
            let mut s = self.c[8];
            for &ck in self.c[..8].iter().rev() {
                s = s * d + ck;
            }
            d * d * s
        } else {
            vmath::exp_m1_wide(b * f64::from(vmath::ln_ratio(v, q))) - b * f64::from(d)
        };
        if p < eps {
            0.0
        } else if v > eps {
            qb * g / (b * (b - 1.0))
        } else {
            qb / b
        }
    }
}

/// `Σ x` in f64 from [`LANES`] f32 partial sums (lane `j` sums the entries `j`, `j + LANES`,
/// …; at most [`SUM_TERMS`] of them for a chunk), the tail's entries added one by one.
#[inline(always)]
fn lane_sum(x: &[f32]) -> f64 {
    let mut acc = [0.0f32; LANES];
    let mut lanes = x.chunks_exact(LANES);
    for c in &mut lanes {
        for (a, &e) in acc.iter_mut().zip(c) {
            *a += e;
        }
    }
    let tail: f64 = lanes.remainder().iter().map(|&e| f64::from(e)).sum();
    acc.iter().map(|&a| f64::from(a)).sum::<f64>() + tail
}

/// The β rules' pair over one row ([`beta_pair`]): `y ← v ⊙ y₁^(β−2)` and `b ← y₂^(β−1)`
/// from `y = (W H)` row, all three as long as each other, at [`simd::level`].
pub(super) fn beta_pair_row(y: &mut [f32], b: &mut [f32], v: &[f32], beta: f32) {
    let level = simd::level();
    assert!(y.len() == b.len() && y.len() == v.len());
    assert!(level.supported());
    // SAFETY: the level is supported and the rows are as long as each other (asserted).
    isa_call!(
        unsafe level,
        [pair_avx512, pair_avx2](y, b, v, beta),
        pair_body(y, b, v, beta)
    )
}

isa_entries!([pair_avx512, pair_avx2] [] (y: &mut [f32], b: &mut [f32], v: &[f32], beta: f32), |S| pair_body(y, b, v, beta));

/// The loop of [`beta_pair_row`], with the branches of [`beta_pair`] on β taken once per row
/// and the one on `y < ε` once per chunk where it costs a second power, so that the vector
/// loops compute one power per entry (none for β = 0). Each entry equals [`beta_pair`]'s.
#[inline(always)]
fn pair_body(y: &mut [f32], b: &mut [f32], v: &[f32], beta: f32) {
    let eps = BETA_GUARD;
    if beta == 0.0 {
        pair_loop(y, b, v, |y| {
            let inv = 1.0 / if y < eps { eps } else { y };
            let a = inv * inv;
            (a, if y < eps { a * eps } else { a * y })
        });
    } else if beta < 1.0 {
        pair_loop(y, b, v, |y| {
            let a = vmath::pow(if y < eps { eps } else { y }, beta - 2.0);
            (a, if y < eps { a * eps } else { a * y })
        });
    } else {
        // y₂^(β−1) is its own power only where y < ε: the chunks holding such a y take the
        // entry's whole rule, the others one power.
        let (yc, bc, vc) = (y.chunks_mut(CHUNK), b.chunks_mut(CHUNK), v.chunks(CHUNK));
        for ((y, b), v) in yc.zip(bc).zip(vc) {
            if y.iter().any(|&y| y < eps) {
                pair_loop(y, b, v, |y| beta_pair(y, beta));
            } else {
                pair_loop(y, b, v, |y| {
                    let a = vmath::pow(y, beta - 2.0);
                    (a, a * y)
                });
            }
        }
    }
}

/// `y ← v ⊙ a(y)`, `b ← d(y)` with `(a, d) = pair(y)`.
#[inline(always)]
fn pair_loop(y: &mut [f32], b: &mut [f32], v: &[f32], pair: impl Fn(f32) -> (f32, f32)) {
    for ((y, b), &x) in y.iter_mut().zip(b.iter_mut()).zip(v) {
        let (a, d) = pair(*y);
        *y = x * a;
        *b = d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::divergence::kl_entry_data;

    /// Relative agreement of the row sums with the f64 entries: a few units of 2⁻²⁴ per entry
    /// ([`vmath::LN_RATIO_ABS`] and the f32 rounding of the entry and its partial sum).
    const ROW_SUM_REL_TOL: f64 = 1e-6;

    /// A row of data and of a model near it, with zeros, tiny values and exact matches.
    fn rows(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut s = seed | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32
        };
        (0..n)
            .map(|i| {
                let v = match i % 7 {
                    0 => 0.0,
                    1 => 1e-9,
                    _ => 10.0 * next(),
                };
                let p = match i % 5 {
                    0 => v,
                    1 => 1e-12,
                    2 => v * (1.0 + 1e-3 * (next() - 0.5)),
                    _ => v * (0.5 + next()) + next(),
                };
                (v, p)
            })
            .unzip()
    }

    #[test]
    fn the_loss_rows_follow_the_f64_entries_at_every_level() {
        let eps = BETA_GUARD;
        for n in [1, 15, 17, 1000, CHUNK + 33] {
            let (v, p) = rows(n, n as u64);
            let kl: f64 = v
                .iter()
                .zip(&p)
                .map(|(&v, &p)| {
                    kl_entry_data(f64::from(v), f64::from(p), f64::from(eps)) + f64::from(p)
                })
                .sum();
            let is: f64 = v.iter().zip(&p).map(|(&v, &p)| beta_entry(v, p, 0.0)).sum();
            let b15: f64 = v.iter().zip(&p).map(|(&v, &p)| beta_entry(v, p, 1.5)).sum();
            let bh: f64 = v.iter().zip(&p).map(|(&v, &p)| beta_entry(v, p, 0.5)).sum();
            let scale_is: f64 = v
                .iter()
                .zip(&p)
                .map(|(&v, &p)| beta_entry(v, p, 0.0).abs())
                .sum();
            let mut seen = Vec::new();
            for level in [Level::None, Level::Avx2, Level::Avx512] {
                if !level.supported() {
                    continue;
                }
                let got_kl = loss_row_at(level, &v, &p, RowLoss::KullbackLeibler(eps));
                let got_is = loss_row_at(level, &v, &p, RowLoss::ItakuraSaito(eps));
                assert!(
                    (got_kl - kl).abs() <= ROW_SUM_REL_TOL * kl.abs(),
                    "KL n {n}: {got_kl} vs {kl}"
                );
                assert!(
                    (got_is - is).abs() <= ROW_SUM_REL_TOL * scale_is,
                    "IS n {n}: {got_is} vs {is}"
                );
                let got_b15 = loss_row_at(level, &v, &p, RowLoss::Beta(1.5));
                let got_bh = loss_row_at(level, &v, &p, RowLoss::Beta(0.5));
                assert!(
                    (got_b15 - b15).abs() <= ROW_SUM_REL_TOL * b15.abs(),
                    "β 1.5 n {n}: {got_b15} vs {b15}"
                );
                assert!(
                    (got_bh - bh).abs() <= ROW_SUM_REL_TOL * bh.abs(),
                    "β 0.5 n {n}: {got_bh} vs {bh}"
                );
                seen.push([got_kl, got_is, got_b15, got_bh].map(f64::to_bits));
            }
            assert!(
                seen.windows(2).all(|w| w[0] == w[1]),
                "levels differ at n {n}"
            );
        }
    }

    #[test]
    fn the_pair_row_is_the_pair_of_each_entry() {
        let (v, mut y) = rows(3 * CHUNK + 5, 7);
        // The first chunk without a y below the guard, the others with.
        y[..CHUNK].iter_mut().for_each(|y| *y += 1.0);
        for beta in [0.0f32, 0.5, 1.0, 1.5, 2.0, 3.0] {
            let (mut yr, mut br) = (y.clone(), vec![0.0; y.len()]);
            beta_pair_row(&mut yr, &mut br, &v, beta);
            for i in 0..y.len() {
                let (a, d) = beta_pair(y[i], beta);
                assert_eq!((yr[i], br[i]), (v[i] * a, d), "β {beta} entry {i}");
            }
        }
    }
}
