//! The builder of an online fit (`OnlineNmf::params`) and its one check.

use std::sync::Arc;

use ndarray::Array2;

use crate::engine::Backend;
use crate::error::{Factor, NmfError, Result};
use crate::options::{check_factor, iter_option_setters, Init, IterOptions, Loss};

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

/// Builder of an online (mini-batch) NMF fit; see the [module docs](crate::online) for the
/// algorithm. `max_iter` counts epochs (passes over the data); `tol` and `seed`, `epsilon`,
/// `stop_flag`, `memory_limit` and `on_progress` (called after each batch with the steps
/// done and the smoothed cost) work as for [`Nmf`](crate::Nmf); `resume` and `checkpoint`
/// are refused.
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
    /// How W starts, computed from the first batch: [`Init::Nndsvda`] (default; random when
    /// the first batch has fewer samples than the rank), [`Init::Random`], ... A custom start
    /// is given with [`w_init`](Self::w_init) instead.
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }
    /// Start from this W (m x r, finite, nonnegative, not all zero).
    pub fn w_init(mut self, w: Array2<f32>) -> Self {
        self.w_init = Some(w);
        self
    }
    /// Samples per batch (default 1024); the last batch of a pass may be smaller.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }
    /// How much of the past the statistics keep, in `[0, 1]` (default 0.7): after each batch of
    /// `b` samples out of `n` they are scaled by `ρ = forget_factor^(b/n)` (scikit-learn's
    /// rule), so a whole pass scales the past by `forget_factor`. 0 keeps only the last batch.
    pub fn forget_factor(mut self, forget_factor: f32) -> Self {
        self.forget_factor = forget_factor;
        self
    }
    /// At most this many sweeps of each batch's encoding solve (default 30, scikit-learn's
    /// `fresh_restarts_max_iter`); the solve stops earlier once `‖ΔH‖ ≤ tol·‖H‖`.
    pub fn inner_max_iter(mut self, inner_max_iter: usize) -> Self {
        self.inner_max_iter = inner_max_iter;
        self
    }
    /// Stop after this many consecutive batches without a new minimum of the smoothed batch
    /// cost (default 10); `None` turns the rule off.
    pub fn max_no_improvement(mut self, batches: Option<usize>) -> Self {
        self.max_no_improvement = batches;
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

    /// Every rule of an online fit, for data with `m` features and `n` samples.
    pub fn check(&self, m: usize, n: usize) -> Result<()> {
        if m == 0 || n == 0 {
            return Err(NmfError::EmptyInput { rows: m, cols: n });
        }
        if self.rank == 0 {
            return Err(NmfError::ZeroRank);
        }
        if self.rank > m {
            return Err(NmfError::InvalidParameter {
                name: "rank",
                value: self.rank.to_string(),
                expected: format!("at most the number of features, {m}"),
            });
        }
        self.iter.check()?;
        if matches!(self.loss, Loss::ItakuraSaito | Loss::Beta(_)) {
            return Err(NmfError::UnsupportedOption {
                option: "β-divergences (Loss::ItakuraSaito, Loss::Beta) in an online fit",
                requires: "Loss::Frobenius or Loss::KullbackLeibler, or a batch fit (Nmf::params)",
            });
        }
        if self.iter.resume.is_some() || self.iter.checkpoint.is_some() {
            return Err(NmfError::UnsupportedOption {
                option: "resume and checkpoint",
                requires: "a batch fit (Nmf::params); an online fit keeps only W and its statistics (OnlineFactorization::partial_fit continues one)",
            });
        }
        if self.batch_size == 0 {
            return Err(NmfError::InvalidParameter {
                name: "batch_size",
                value: "0".into(),
                expected: "at least 1 sample per batch".into(),
            });
        }
        if !(0.0..=1.0).contains(&self.forget_factor) {
            return Err(NmfError::InvalidParameter {
                name: "forget_factor",
                value: self.forget_factor.to_string(),
                expected: "a number in [0, 1]".into(),
            });
        }
        if self.inner_max_iter == 0 {
            return Err(NmfError::InvalidParameter {
                name: "inner_max_iter",
                value: "0".into(),
                expected: "at least 1 sweep per batch".into(),
            });
        }
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
