//! The builder (`NmfParams`) and every validation rule of an NMF fit in one place (`check`).
//! The option types it takes live in [`crate::options`] (re-exported here and at the crate
//! root).

use crate::engine::Backend;
use crate::error::{Factor, NmfError, Result};
use crate::options::{
    check_factor, check_penalty, iter_option_setters, Fixed, Init, IterOptions, Loss,
    Orthogonality, Regularization, Solver, SparseOrder, ValidParams,
};

/// Entry point: `Nmf::params(rank)` starts a builder.
#[derive(Debug, Clone, Copy)]
pub struct Nmf;

impl Nmf {
    /// Parameters for a rank-`rank` factorization with default settings
    /// (MU, Frobenius, NNDSVDa, 200 iterations, tol 1e-4, seed 0, no regularisation, CPU).
    pub fn params(rank: usize) -> NmfParams {
        NmfParams::new(rank)
    }
}

/// Builder for a factorization. Every setter takes and returns `self`; `fit` validates
/// everything (see [`NmfParams::check`]) and runs.
///
/// Regularisation follows scikit-learn: with `m x n` data, the objective is
/// `D(V‖WH) + n·α_W·ρ·‖W‖₁ + ½·n·α_W·(1−ρ)·‖W‖²_F + m·α_H·ρ·‖H‖₁ + ½·m·α_H·(1−ρ)·‖H‖²_F`
/// where `ρ = l1_ratio` (`alpha_h` defaults to `alpha_w`). The sparse-NMF objectives map to it so:
///
/// | objective | setting |
/// |---|---|
/// | `λ Σ_j ‖h_j‖₁` (sparse encodings: L1 on H's columns) | `alpha_w(0).alpha_h(λ/m).l1_ratio(1)` |
/// | `λ Σ_i ‖w_i‖²₂` on W's columns, i.e. `λ ‖W‖²_F` (small, spread parts) | `alpha_w(2λ/n).alpha_h(0).l1_ratio(0)` |
/// | `λ ‖W‖₁` (sparse parts) | `alpha_w(λ/n).alpha_h(0).l1_ratio(1)` |
///
/// Both solvers minimise the penalised objective: HALS exactly per coordinate, MU by adding
/// the penalty's gradient to the denominator (`W ← W ⊙ (V Hᵀ) ⊘ (W H Hᵀ + l1 + l2 W)`),
/// which keeps the penalised objective non-increasing.
///
/// [`orthogonal`](NmfParams::orthogonal) selects orthogonal NMF (see [`Orthogonality`]).
#[derive(Clone, Debug)]
pub struct NmfParams {
    pub(crate) rank: usize,
    pub(crate) solver: Solver,
    pub(crate) loss: Loss,
    pub(crate) init: Init,
    pub(crate) alpha_w: f32,
    pub(crate) alpha_h: Option<f32>,
    pub(crate) l1_ratio: f32,
    pub(crate) orthogonality: Orthogonality,
    pub(crate) backend: Backend,
    pub(crate) iter: IterOptions,
    pub(crate) fix_w: Fixed,
    pub(crate) fix_h: Fixed,
    pub(crate) sparse_order: SparseOrder,
}

impl NmfParams {
    /// Defaults for rank `rank`; see [`Nmf::params`].
    pub fn new(rank: usize) -> Self {
        NmfParams {
            rank,
            solver: Solver::default(),
            loss: Loss::default(),
            init: Init::default(),
            alpha_w: 0.0,
            alpha_h: None,
            l1_ratio: 0.0,
            orthogonality: Orthogonality::None,
            backend: Backend::Cpu,
            iter: IterOptions::new(200, 1e-4),
            fix_w: Fixed::None,
            fix_h: Fixed::None,
            sparse_order: SparseOrder::default(),
        }
    }

    /// Keep these columns of W at their starting values (known parts, spectra or signatures,
    /// beside free ones): `fix_w(..)` fixes all of W, `fix_w([0, 2])` columns 0 and 2. The
    /// values are those of [`Init::Custom`], which this requires (give the known columns there
    /// and any nonnegative start for the free ones). Every solver (not with an orthogonality
    /// constraint); the fixed columns end bit for bit as they started, and the free ones
    /// follow the solver's rule with the fixed ones in place (the MU, HALS and accelerated
    /// HALS objectives still never increase). Fixing all of W is what
    /// [`Factorization::transform`](crate::Factorization::transform) does.
    pub fn fix_w(mut self, columns: impl Into<Fixed>) -> Self {
        self.fix_w = columns.into();
        self
    }

    /// Keep these rows of H at their starting values; see [`fix_w`](Self::fix_w).
    pub fn fix_h(mut self, rows: impl Into<Fixed>) -> Self {
        self.fix_h = rows.into();
        self
    }

    /// Orthogonal NMF: constrain `H Hᵀ = I` or `Wᵀ W = I` (MU with the Frobenius loss only).
    pub fn orthogonal(mut self, orthogonality: Orthogonality) -> Self {
        self.orthogonality = orthogonality;
        self
    }

    crate::options::field_setters! {
        /// The update algorithm.
        solver: Solver;
        /// The divergence to minimise.
        loss: Loss;
        /// The initialisation.
        init: Init;
        /// Regularisation strength on W (scaled by n, see the type's docs). Default 0.
        alpha_w: f32;
        /// Regularisation strength on H (scaled by m). Default: the same as `alpha_w`.
        alpha_h: Some(f32);
        /// Share of L1 in the penalty: 0 = pure L2 (ridge), 1 = pure L1 (lasso). Default 0.
        l1_ratio: f32;
        /// Where the iterations run.
        backend: Backend;
        /// The order in which [`fit_sparse`](Self::fit_sparse) holds V's rows and columns
        /// while it iterates (speed only; see [`SparseOrder`]). Default: as stored.
        sparse_order: SparseOrder;
    }

    iter_option_setters!();

    /// Validate the options against the data shape `m x n`: every rule lives here.
    pub fn check(&self, m: usize, n: usize) -> Result<ValidParams> {
        if m == 0 || n == 0 {
            return Err(NmfError::EmptyInput { rows: m, cols: n });
        }
        if self.rank == 0 {
            return Err(NmfError::ZeroRank);
        }
        self.iter.check()?;
        let alpha_h = self.alpha_h.unwrap_or(self.alpha_w);
        check_penalty(self.alpha_w, alpha_h, self.l1_ratio)?;
        let loss = self.loss.canonical();
        if let Loss::Beta(b) = loss {
            if !b.is_finite() {
                return Err(NmfError::InvalidParameter {
                    name: "loss",
                    value: format!("Loss::Beta({b})"),
                    expected: "a finite β (0 Itakura–Saito, 1 KL, 2 Frobenius, or any other)"
                        .into(),
                });
            }
        }
        self.solver.admits(loss)?;
        self.orthogonality.admits(self.solver, loss)?;
        let r = self.rank;
        // NNDSVD takes r singular vectors, so r ≤ min(m, n); otherwise any factorization of
        // rank min(m, n) is already exact, and far larger ranks only allocate (m + n)·r floats
        // for nothing, so r ≤ max(m, n).
        let limit = match &self.init {
            Init::Nndsvd | Init::Nndsvda | Init::Nndsvdar => m.min(n),
            _ => m.max(n),
        };
        if r > limit {
            return Err(NmfError::RankTooLarge {
                rank: r,
                limit,
                init: self.init.name(),
            });
        }
        if let Init::Custom { w, h } = &self.init {
            check_factor(Factor::W, w.view(), m, r)?;
            check_factor(Factor::H, h.view(), r, n)?;
        } else if self.iter.resume.is_some() {
            return Err(NmfError::UnsupportedOption {
                option: "resume",
                requires: "Init::Custom with the saved W and H",
            });
        }
        let (fixed_w, fixed_h) = self.fixed_components(r)?;
        let (m_f, n_f) = (m as f32, n as f32);
        let rho = self.l1_ratio;
        Ok(ValidParams {
            rank: r,
            solver: self.solver,
            loss,
            init: self.init.clone(),
            reg_w: Regularization {
                l1: n_f * self.alpha_w * rho,
                l2: n_f * self.alpha_w * (1.0 - rho),
            },
            reg_h: Regularization {
                l1: m_f * alpha_h * rho,
                l2: m_f * alpha_h * (1.0 - rho),
            },
            orthogonality: self.orthogonality,
            iter: self.iter.clone(),
            fixed_w,
            fixed_h,
        })
    }

    /// The fixed columns of W and rows of H of a rank-`r` fit, checked: indices below r, a
    /// custom start to take them from, a solver that honours them, something left to fit.
    fn fixed_components(&self, r: usize) -> Result<(Vec<usize>, Vec<usize>)> {
        let resolve = |fixed: &Fixed, name: &'static str| {
            fixed.resolve(r).map_err(|bad| NmfError::InvalidParameter {
                name,
                value: bad.to_string(),
                expected: format!("component indices below the rank {r}"),
            })
        };
        let w = resolve(&self.fix_w, "fix_w")?;
        let h = resolve(&self.fix_h, "fix_h")?;
        if w.is_empty() && h.is_empty() {
            return Ok((w, h));
        }
        if !matches!(self.init, Init::Custom { .. }) {
            return Err(NmfError::UnsupportedOption {
                option: "fixed components (fix_w, fix_h)",
                requires: "Init::Custom holding the fixed columns of W and rows of H",
            });
        }
        if self.orthogonality != Orthogonality::None {
            return Err(NmfError::UnsupportedOption {
                option: "fixed components (fix_w, fix_h)",
                requires: "no orthogonality constraint",
            });
        }
        if w.len() == r && h.len() == r {
            return Err(NmfError::InvalidParameter {
                name: "fix_h",
                value: "every row, with every column of W fixed too".into(),
                expected: "at least one free component in W or H".into(),
            });
        }
        Ok((w, h))
    }
}
