//! The builder of an online fit (`OnlineNmf::params`) and its one check.

use std::sync::Arc;

use ndarray::Array2;

use ndarray::ArrayView2;

use super::state::OnlineState;
use crate::engine::Backend;
use crate::error::{Factor, NmfError, Result};
use crate::options::{
    check_factor, check_penalty, iter_option_setters, Init, IterOptions, Loss, Regularization,
    Solver,
};

/// Entry point: `OnlineNmf::params(rank)` starts a builder for online (mini-batch) NMF.
#[derive(Debug, Clone, Copy)]
pub struct OnlineNmf;

impl OnlineNmf {
    /// Parameters for a rank-`rank` online factorization with default settings (Frobenius,
    /// batches of 1024 samples, forget factor 0.7, at most 200 epochs, tol 1e-4, stop after 10
    /// batches without improvement of the smoothed cost, CPU).
    pub fn params(rank: usize) -> OnlineParams {
        OnlineParams::new(rank)
    }
}

/// What an online fit reports after each batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnlineProgress {
    /// The pass over the data (0-based).
    pub epoch: usize,
    /// The epoch budget.
    pub max_epochs: usize,
    /// Samples done in this pass.
    pub samples: usize,
    /// Samples per pass.
    pub samples_per_epoch: usize,
    /// This batch's cost `D(V_b ‖ W H_b) / b` (W before the batch's update).
    pub batch_cost: f64,
    /// The exponentially smoothed batch cost the stopping rule watches.
    pub smoothed_cost: f64,
}

/// A callback called after every batch.
pub type OnlineProgressFn = Arc<dyn Fn(&OnlineProgress) + Send + Sync>;

/// A checkpoint callback: the model's state and, when they are kept
/// (`fresh_restarts(false)`), every sample's encodings (r x n); an error it returns ends the
/// fit with that error.
pub type OnlineStateFn =
    Arc<dyn Fn(&OnlineState, Option<ArrayView2<'_, f32>>) -> Result<()> + Send + Sync>;

/// Builder of an online (mini-batch) NMF fit; see the [module docs](crate::online) for the
/// algorithm. `max_iter` counts epochs (passes over the data); `tol` and `seed`, `epsilon`,
/// `stop_flag`, `memory_limit` and `on_progress` (called after each batch with the steps
/// done and the smoothed cost) work as for [`Nmf`](crate::Nmf); `resume` and `checkpoint`
/// are refused.
///
/// Penalties follow [`NmfParams`](crate::NmfParams)'s objective with each factor's weight
/// scaled by the other dimension of the data it meets: for a batch of `b` samples,
/// `b·α_W·(ρ‖W‖₁ + ½(1−ρ)‖W‖²_F) + m·α_H·(ρ‖H_b‖₁ + ½(1−ρ)‖H_b‖²_F)` with `ρ = l1_ratio`
/// (scikit-learn's `MiniBatchNMF`, whose `alpha_H` is this `alpha_w`: its `H` is this W).
#[derive(Clone)]
pub struct OnlineParams {
    pub(crate) rank: usize,
    pub(crate) loss: Loss,
    pub(crate) init: Init,
    pub(crate) w_init: Option<Array2<f32>>,
    pub(crate) batch_size: usize,
    pub(crate) forget_factor: f32,
    pub(crate) inner_max_iter: usize,
    pub(crate) max_no_improvement: Option<usize>,
    pub(crate) solver: Option<Solver>,
    pub(crate) alpha_w: f32,
    pub(crate) alpha_h: Option<f32>,
    pub(crate) l1_ratio: f32,
    pub(crate) fresh_restarts: bool,
    pub(crate) h_init: Option<Array2<f32>>,
    pub(crate) resume_state: Option<Box<OnlineState>>,
    pub(crate) on_state: Option<(usize, OnlineStateFn)>,
    pub(crate) backend: Backend,
    pub(crate) on_batch: Option<OnlineProgressFn>,
    pub(crate) iter: IterOptions,
}

impl std::fmt::Debug for OnlineParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineParams")
            .field("rank", &self.rank)
            .field("loss", &self.loss)
            .field("init", &self.init)
            .field("w_init", &self.w_init.as_ref().map(|w| w.dim()))
            .field("batch_size", &self.batch_size)
            .field("forget_factor", &self.forget_factor)
            .field("inner_max_iter", &self.inner_max_iter)
            .field("max_no_improvement", &self.max_no_improvement)
            .field("solver", &self.solver)
            .field("alpha_w", &self.alpha_w)
            .field("alpha_h", &self.alpha_h)
            .field("l1_ratio", &self.l1_ratio)
            .field("fresh_restarts", &self.fresh_restarts)
            .field("h_init", &self.h_init.as_ref().map(|h| h.dim()))
            .field("resume_state", &self.resume_state.as_ref().map(|s| s.steps))
            .field("checkpoint_state", &self.on_state.as_ref().map(|c| c.0))
            .field("backend", &self.backend)
            .field("iter", &self.iter)
            .finish()
    }
}

impl OnlineParams {
    /// Defaults for rank `rank`; see [`OnlineNmf::params`].
    pub fn new(rank: usize) -> Self {
        OnlineParams {
            rank,
            loss: Loss::Frobenius,
            init: Init::Nndsvda,
            w_init: None,
            batch_size: 1024,
            forget_factor: 0.7,
            inner_max_iter: 30,
            max_no_improvement: Some(10),
            solver: None,
            alpha_w: 0.0,
            alpha_h: None,
            l1_ratio: 0.0,
            fresh_restarts: true,
            h_init: None,
            resume_state: None,
            on_state: None,
            backend: Backend::Cpu,
            on_batch: None,
            iter: IterOptions::new(200, 1e-4),
        }
    }

    /// The divergence: [`Loss::Frobenius`] (default) or [`Loss::KullbackLeibler`].
    pub fn loss(mut self, loss: Loss) -> Self {
        self.loss = loss.canonical();
        self
    }

    crate::options::field_setters! {
        /// How W starts, computed from the first batch: [`Init::Nndsvda`] (default; random when
        /// the first batch has fewer samples than the rank), [`Init::Random`], ... A custom start
        /// is given with [`w_init`](Self::w_init) instead.
        init: Init;
        /// Start from this W (m x r, finite, nonnegative, not all zero).
        w_init: Some(Array2<f32>);
        /// Samples per batch (default 1024); the last batch of a pass may be smaller.
        batch_size: usize;
        /// How much of the past the statistics keep, in `[0, 1]` (default 0.7): after each batch of
        /// `b` samples out of `n` they are scaled by `ρ = forget_factor^(b/n)` (scikit-learn's
        /// rule), so a whole pass scales the past by `forget_factor`. 0 keeps only the last batch.
        forget_factor: f32;
        /// At most this many sweeps of each batch's encoding solve (default 30, scikit-learn's
        /// `fresh_restarts_max_iter`); the solve stops earlier once `‖ΔH‖ ≤ tol·‖H‖`.
        inner_max_iter: usize;
        /// Stop after this many consecutive batches without a new minimum of the smoothed batch
        /// cost (default 10); `None` turns the rule off.
        max_no_improvement: Option<usize>;
        /// How W and the encodings are updated:
        ///
        /// - [`Solver::Hals`] (the default for Frobenius): HALS sweeps for the encodings and one
        ///   HALS sweep of W against the statistics `A = Σ ρ H Hᵀ`, `B = Σ ρ V Hᵀ` (Mairal et
        ///   al. 2010). Frobenius only.
        /// - [`Solver::MultiplicativeUpdate`] (the default, and the only rule, for KL):
        ///   scikit-learn's `MiniBatchNMF`. The encodings by multiplicative updates from
        ///   `sqrt(mean(V_b)/r)`; W by the online multiplicative rule
        ///   `N ← ρ N + W ⊙ N_b`, `D ← ρ D + D_b`, `W ← N ⊘ D` (`N₀ = W₀`, `D₀ = 1`), where
        ///   `N_b ⊘ D_b` is the batch's multiplicative ratio for W with its penalty:
        ///   `N_b = V_b H_bᵀ`, `D_b = W H_b H_bᵀ + l1 + l2 W` (Frobenius) and
        ///   `N_b = (V_b ⊘ W H_b) H_bᵀ`, `D_b = 1 (H_b 1)ᵀ + l1 + l2 W` (KL).
        ///
        /// [`Solver::AcceleratedHals`] is refused by [`check`](Self::check).
        solver: Some(Solver);
        /// Penalty weight on W (the dictionary), scaled by the batch's samples (default 0).
        alpha_w: f32;
        /// Penalty weight on the encodings H, scaled by the features m (default: `alpha_w`).
        alpha_h: Some(f32);
        /// The L1 share of the penalties, in `[0, 1]` (default 0: pure L2).
        l1_ratio: f32;
        /// Solve each batch's encodings afresh (default `true`), or keep every sample's encodings
        /// (r x n, on the host) from one pass to the next and take one update step from them
        /// (`false`, scikit-learn's `fresh_restarts=False`: cheaper batches, memory `O(r·n)`).
        /// Without [`h_init`](Self::h_init) the first pass solves them afresh.
        fresh_restarts: bool;
        /// The encodings of every sample at the start (r x n) when they are kept
        /// (`fresh_restarts(false)`); refused otherwise.
        h_init: Some(Array2<f32>);
    }
    /// Call `f` with the model's state (and the kept encodings) after every `every` batches:
    /// to save it, and continue later with [`resume_state`](Self::resume_state).
    pub fn checkpoint_state(
        mut self,
        every: usize,
        f: impl Fn(&OnlineState, Option<ArrayView2<'_, f32>>) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.on_state = Some((every, Arc::new(f)));
        self
    }
    /// Continue a fit from a state saved by [`checkpoint_state`](Self::checkpoint_state):
    /// [`fit`](Self::fit) starts from its W and statistics, at the sample after the last one
    /// it learnt from (the batches before it are read and dropped), and runs until
    /// `max_epochs` passes in all, as the interrupted fit would have. With
    /// `fresh_restarts(false)` the saved encodings must be given as [`h_init`](Self::h_init).
    pub fn resume_state(mut self, state: OnlineState) -> Self {
        self.resume_state = Some(Box::new(state));
        self
    }
    /// At most this many passes over the data (default 200; the same as `max_iter`).
    pub fn max_epochs(mut self, epochs: usize) -> Self {
        self.iter.max_iter = epochs;
        self
    }
    /// Where the batches are computed: the CPU engine or a GPU (W and the statistics stay on
    /// the device; batches are uploaded one after another).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }
    /// Called after every batch (progress bars: samples and epochs).
    pub fn on_batch(mut self, f: impl Fn(&OnlineProgress) + Send + Sync + 'static) -> Self {
        self.on_batch = Some(Arc::new(f));
        self
    }

    iter_option_setters!();

    /// The rank.
    pub fn rank(&self) -> usize {
        self.rank
    }
    /// The batch size.
    pub fn get_batch_size(&self) -> usize {
        self.batch_size
    }

    /// The update rule: the chosen solver, or the loss's default.
    pub(crate) fn rule(&self) -> Solver {
        match (self.solver, self.loss) {
            (Some(s), _) => s,
            (None, Loss::Frobenius) => Solver::Hals,
            (None, _) => Solver::MultiplicativeUpdate,
        }
    }

    /// The penalties `(on W, on H_b)` for a batch of `b` samples of `m` features.
    pub(crate) fn penalties(&self, m: usize, b: usize) -> (Regularization, Regularization) {
        let rho = self.l1_ratio;
        let alpha_h = self.alpha_h.unwrap_or(self.alpha_w);
        let (m, b) = (m as f32, b as f32);
        (
            Regularization {
                l1: b * self.alpha_w * rho,
                l2: b * self.alpha_w * (1.0 - rho),
            },
            Regularization {
                l1: m * alpha_h * rho,
                l2: m * alpha_h * (1.0 - rho),
            },
        )
    }

    /// Every rule of an online fit, for data with `m` features and `n` samples.
    pub fn check(&self, m: usize, n: usize) -> Result<()> {
        if m == 0 || n == 0 {
            return Err(NmfError::EmptyInput { rows: m, cols: n });
        }
        if self.rank == 0 {
            return Err(NmfError::ZeroRank);
        }
        // As for a batch fit: any factorization of rank min(m, n) is exact, and far larger
        // ranks only allocate.
        if self.rank > m.max(n) {
            return Err(NmfError::InvalidParameter {
                name: "rank",
                value: self.rank.to_string(),
                expected: format!("at most the larger of the features ({m}) and the samples ({n})"),
            });
        }
        self.iter.check()?;
        if matches!(self.loss, Loss::ItakuraSaito | Loss::Beta(_)) {
            return Err(NmfError::UnsupportedOption {
                option: "β-divergences (Loss::ItakuraSaito, Loss::Beta) in an online fit",
                requires: "Loss::Frobenius or Loss::KullbackLeibler, or a batch fit (Nmf::params)",
            });
        }
        // Every solver named, so that a new one is a compile error here until online fits
        // run it or refuse it.
        match self.rule() {
            Solver::AcceleratedHals => {
                return Err(NmfError::UnsupportedOption {
                    option: "Solver::AcceleratedHals in an online fit",
                    requires: "Solver::Hals or Solver::MultiplicativeUpdate",
                })
            }
            Solver::Hals if self.loss == Loss::KullbackLeibler => {
                return Err(NmfError::UnsupportedLoss {
                    solver: "Solver::Hals",
                    loss: "Loss::KullbackLeibler",
                })
            }
            Solver::Hals | Solver::MultiplicativeUpdate => {}
        }
        let alpha_h = self.alpha_h.unwrap_or(self.alpha_w);
        check_penalty(self.alpha_w, alpha_h, self.l1_ratio)?;
        if self.on_state.as_ref().is_some_and(|(every, _)| *every == 0) {
            return Err(NmfError::InvalidParameter {
                name: "checkpoint_state",
                value: "0".into(),
                expected: "a checkpoint every 1 or more batches".into(),
            });
        }
        if self.resume_state.is_some() && !self.fresh_restarts && self.h_init.is_none() {
            return Err(NmfError::UnsupportedOption {
                option: "resume_state with fresh_restarts(false)",
                requires: "h_init: the kept encodings saved with the state",
            });
        }
        if let Some(h) = &self.h_init {
            if self.fresh_restarts {
                return Err(NmfError::UnsupportedOption {
                    option: "h_init (the start of the kept encodings)",
                    requires: "fresh_restarts(false)",
                });
            }
            check_factor(Factor::H, h.view(), self.rank, n)?;
        }
        self.iter.refuse_resume(
            "resume and checkpoint",
            "a batch fit (Nmf::params); an online fit keeps only W and its statistics (OnlineFactorization::partial_fit continues one)",
        )?;
        crate::error::check_nonzero(self.batch_size, "batch_size", "at least 1 sample per batch")?;
        if !(0.0..=1.0).contains(&self.forget_factor) {
            return Err(NmfError::InvalidParameter {
                name: "forget_factor",
                value: self.forget_factor.to_string(),
                expected: "a number in [0, 1]".into(),
            });
        }
        crate::error::check_nonzero(
            self.inner_max_iter,
            "inner_max_iter",
            "at least 1 sweep per batch",
        )?;
        if self.max_no_improvement == Some(0) {
            return Err(NmfError::InvalidParameter {
                name: "max_no_improvement",
                value: "0".into(),
                expected: "at least 1 batch, or None to turn the rule off".into(),
            });
        }
        if let Some(w) = &self.w_init {
            check_factor(Factor::W, w.view(), m, self.rank)?;
        }
        #[cfg(feature = "gpu")]
        if let Backend::Gpu(_) = self.backend {
            // Batches go to the device whole: one batch must fit in a binding.
        }
        Ok(())
    }
}
