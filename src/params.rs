//! The builder (`NmfParams`) and every validation rule of an NMF fit in one place (`check`).
//! The option types it takes live in [`crate::options`] (re-exported here and at the crate
//! root).

use crate::engine::Backend;
use crate::error::{Factor, NmfError, Result};
use crate::options::{
    check_factor, iter_option_setters, Init, IterOptions, Loss, Orthogonality, Regularization,
    Solver, ValidParams,
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
        }
    }

    /// Orthogonal NMF: constrain `H Hᵀ = I` or `Wᵀ W = I` (MU with the Frobenius loss only).
    pub fn orthogonal(mut self, orthogonality: Orthogonality) -> Self {
        self.orthogonality = orthogonality;
        self
    }

    /// The update algorithm.
    pub fn solver(mut self, solver: Solver) -> Self {
        self.solver = solver;
        self
    }
    /// The divergence to minimise.
    pub fn loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }
    /// The initialisation.
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }
    /// Regularisation strength on W (scaled by n, see the type's docs). Default 0.
    pub fn alpha_w(mut self, alpha: f32) -> Self {
        self.alpha_w = alpha;
        self
    }
    /// Regularisation strength on H (scaled by m). Default: the same as `alpha_w`.
    pub fn alpha_h(mut self, alpha: f32) -> Self {
        self.alpha_h = Some(alpha);
        self
    }
    /// Share of L1 in the penalty: 0 = pure L2 (ridge), 1 = pure L1 (lasso). Default 0.
    pub fn l1_ratio(mut self, l1_ratio: f32) -> Self {
        self.l1_ratio = l1_ratio;
        self
    }
    /// Where the iterations run.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
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
        for (name, value) in [("alpha_w", self.alpha_w), ("alpha_h", alpha_h)] {
            if !value.is_finite() || value < 0.0 {
                return Err(NmfError::InvalidRegularization { name, value });
            }
        }
        if !(0.0..=1.0).contains(&self.l1_ratio) {
            return Err(NmfError::InvalidL1Ratio(self.l1_ratio));
        }
        if self.solver != Solver::MultiplicativeUpdate && self.loss != Loss::Frobenius {
            return Err(NmfError::UnsupportedLoss {
                solver: match self.solver {
                    Solver::AcceleratedHals => "Solver::AcceleratedHals",
                    _ => "Solver::Hals",
                },
                loss: "Loss::KullbackLeibler",
            });
        }
        if self.orthogonality != Orthogonality::None {
            if self.solver != Solver::MultiplicativeUpdate {
                return Err(NmfError::UnsupportedOption {
                    option: "orthogonal NMF",
                    requires: "Solver::MultiplicativeUpdate",
                });
            }
            if self.loss != Loss::Frobenius {
                return Err(NmfError::UnsupportedOption {
                    option: "orthogonal NMF",
                    requires: "Loss::Frobenius",
                });
            }
        }
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
        let (m_f, n_f) = (m as f32, n as f32);
        let rho = self.l1_ratio;
        Ok(ValidParams {
            rank: r,
            solver: self.solver,
            loss: self.loss,
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
        })
    }
}
