//! Scaling of extreme data: a fit of `V / s` rescaled, so that any finite nonnegative `V`
//! gives the right answer in f32.
//!
//! In f32, data far from 1 breaks the iterations: entries around 1e-40 are subnormal (the
//! engines flush them, so W = H = 0 and the loss reads 0), and entries around 1e30 overflow
//! the products `V Hᵀ`, `W H Hᵀ` and the squared loss. When `max(V)` lies outside
//! [[`SAFE_MIN`], [`SAFE_MAX`]], the solvers run on `V' = V / s` with `s = 4^j` (a power of 4,
//! so `s` and `√s = 2^j` scale every normal float exactly), from `W₀' = W₀ / √s`,
//! `H₀' = H₀ / √s`, and the result is `W = √s W'`, `H = √s H'`. With
//! `W = √s W'`, `H = √s H'`:
//!
//! ```text
//!   ½‖V − WH‖²        = s² · ½‖V' − W'H'‖²         (Frobenius: losses scale by s²)
//!   D_KL(V ‖ WH)      = s  · D_KL(V' ‖ W'H')       (KL: losses scale by s)
//!   D_β(V ‖ WH)       = s^β · D_β(V' ‖ W'H')       (any β: losses scale by s^β)
//!   ‖W‖₁ = √s ‖W'‖₁,   ‖W‖²_F = s ‖W'‖²_F
//! ```
//!
//! so the penalised objective keeps its minimisers when the penalty weights become
//! `l1' = l1 · √s / c`, `l2' = l2 · s / c` with `c = s²` (Frobenius) or `c = s` (KL), and
//! every reported loss is the scaled one times `c`. The `ε` floors of the multiplicative
//! updates are absolute, so they act on the scaled problem as on data of normal size. Data
//! inside the safe range is never scaled: its results are bit for bit those of the solvers.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use crate::error::Result;
use crate::options::{Checkpoint, Init, IterOptions, Loss, Progress, Regularization, ValidParams};
use crate::report::FitReport;
use crate::sparse::CsrMatrix;

/// Below this largest entry the data is scaled up (2⁻³²).
pub(crate) const SAFE_MIN: f32 = 1.0 / 4_294_967_296.0;
/// Above this largest entry the data is scaled down (2³²).
pub(crate) const SAFE_MAX: f32 = 4_294_967_296.0;

/// The scale `s = 4^j` of one fit (1 for data in the safe range).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DataScale {
    /// `j` in `s = 4^j`.
    exp4: i32,
}

impl DataScale {
    /// No scaling.
    pub const IDENTITY: DataScale = DataScale { exp4: 0 };

    /// The scale for data whose largest entry is `max` (finite, `>= 0`): 1 inside
    /// [[`SAFE_MIN`], [`SAFE_MAX`]] and for all-zero data; otherwise the power of 4 nearest to
    /// `max`, so that `V / s` has its largest entry in [½, 2].
    pub fn for_max(max: f32) -> DataScale {
        if max == 0.0 || (SAFE_MIN..=SAFE_MAX).contains(&max) {
            return DataScale::IDENTITY;
        }
        let exp4 = (f64::from(max).log2() / 2.0).round() as i32;
        DataScale { exp4 }
    }

    /// The scale for `v`.
    pub fn of(v: ArrayView2<'_, f32>) -> DataScale {
        DataScale::for_max(v.iter().fold(0.0f32, |m, &x| m.max(x)))
    }

    /// Whether this is the identity.
    pub fn is_identity(self) -> bool {
        self.exp4 == 0
    }

    /// `s` in f64.
    pub fn s(self) -> f64 {
        4f64.powi(self.exp4)
    }

    /// `√s = 2^j` in f64.
    pub fn root(self) -> f64 {
        2f64.powi(self.exp4)
    }

    /// What a loss of the scaled problem is multiplied by to be the loss of the data.
    pub fn loss_factor(self, loss: Loss) -> f64 {
        match loss.canonical() {
            Loss::Frobenius => self.s() * self.s(),
            Loss::KullbackLeibler => self.s(),
            // d_β(s x | s y) = s^β d_β(x | y).
            other => self.s().powf(f64::from(other.beta_value())),
        }
    }

    /// `x · f` entrywise, each product rounded to f32 once (exact for powers of two that keep
    /// the entries normal).
    fn times(x: ArrayView2<'_, f32>, f: f64) -> Array2<f32> {
        x.mapv(|a| (f64::from(a) * f) as f32)
    }

    /// `V / s`.
    pub fn dense(self, v: ArrayView2<'_, f32>) -> Array2<f32> {
        Self::times(v, 1.0 / self.s())
    }

    /// `V / s` for a CSR matrix.
    pub fn csr(self, v: &CsrMatrix) -> Result<CsrMatrix> {
        let f = 1.0 / self.s();
        let values = v
            .values()
            .iter()
            .map(|&x| (f64::from(x) * f) as f32)
            .collect();
        let (m, n) = v.dim();
        CsrMatrix::from_parts(m, n, v.indptr().to_vec(), v.indices().to_vec(), values)
    }

    /// A factor of the data's scale as one of the scaled problem: `X / √s`.
    pub fn factor_in(self, x: &Array2<f32>) -> Array2<f32> {
        Self::times(x.view(), 1.0 / self.root())
    }

    /// A factor of the scaled problem as one of the data's: `X · √s`.
    pub fn factor_out(self, x: &mut Array2<f32>) {
        if !self.is_identity() {
            let f = self.root();
            x.mapv_inplace(|a| (f64::from(a) * f) as f32);
        }
    }

    /// The parameters of the scaled problem: the custom start, the penalty weights as in the
    /// module docs, the resumption loss and the callbacks' losses and factors translated.
    pub fn params(self, p: &ValidParams) -> ValidParams {
        let mut q = p.clone();
        if self.is_identity() {
            return q;
        }
        if let Init::Custom { w, h } = &mut q.init {
            *w = self.factor_in(w);
            *h = self.factor_in(h);
        }
        q.reg_w = self.penalty(p.reg_w, p.loss);
        q.reg_h = self.penalty(p.reg_h, p.loss);
        q.iter = self.iter_options(&p.iter, p.loss);
        q
    }

    /// Penalty weights `l1·‖X‖₁ + ½·l2·‖X‖²` of the scaled problem.
    pub fn penalty(self, r: Regularization, loss: Loss) -> Regularization {
        let c = self.loss_factor(loss);
        Regularization {
            l1: (f64::from(r.l1) * self.root() / c) as f32,
            l2: (f64::from(r.l2) * self.s() / c) as f32,
        }
    }

    /// Iteration options of the scaled problem: the resumption loss, and callbacks that see
    /// the data's losses and factors.
    pub fn iter_options(self, o: &IterOptions, loss: Loss) -> IterOptions {
        let mut q = o.clone();
        if self.is_identity() {
            return q;
        }
        let c = self.loss_factor(loss);
        if let Some(resume) = q.resume.as_mut() {
            resume.initial_loss /= c;
        }
        if let Some(f) = o.progress.clone() {
            q.progress = Some(Arc::new(move |pr: &Progress| {
                f(&Progress {
                    loss: pr.loss * c,
                    ..*pr
                })
            }));
        }
        if let Some((every, f)) = o.checkpoint.clone() {
            q.checkpoint = Some((
                every,
                Arc::new(move |cp: &Checkpoint<'_>| {
                    let (mut w, mut h) = (cp.w.to_owned(), cp.h.to_owned());
                    self.factor_out(&mut w);
                    self.factor_out(&mut h);
                    f(&Checkpoint {
                        iteration: cp.iteration,
                        w: w.view(),
                        h: h.view(),
                        initial_loss: cp.initial_loss * c,
                    })
                }),
            ));
        }
        q
    }

    /// The report of the data's problem from that of the scaled one.
    pub fn report(self, report: &mut FitReport, loss: Loss) {
        if self.is_identity() {
            return;
        }
        let c = self.loss_factor(loss);
        report.losses.iter_mut().for_each(|l| *l *= c);
        report.initial_loss *= c;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_safe_range_is_left_alone() {
        for max in [0.0, SAFE_MIN, 1e-6, 1.0, 255.0, 1e9, SAFE_MAX] {
            assert!(DataScale::for_max(max).is_identity(), "{max}");
        }
    }

    #[test]
    fn extreme_data_is_brought_near_one_by_a_power_of_four() {
        for max in [1e-40f32, 1e-20, 1e-12, 1e12, 1e30, f32::MAX] {
            let s = DataScale::for_max(max);
            let scaled = f64::from(max) / s.s();
            assert!((0.49..=2.01).contains(&scaled), "{max}: {scaled}");
            assert_eq!(s.root() * s.root(), s.s());
        }
    }
}
