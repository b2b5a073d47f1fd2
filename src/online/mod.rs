//! Online (mini-batch) NMF: data that arrives in batches of samples, or that does not fit in
//! memory, factorized with memory bounded by the batch rather than by the number of samples.
//!
//! Samples (columns of V, m x n) arrive in batches `V_b` (m x b) from a [`Source`]. For each
//! batch, with the dictionary W (m x r) fixed, the encodings `H_b` (r x b) are solved from
//! `sqrt(mean(V_b)/r)` (HALS sweeps for Frobenius, multiplicative updates for KL, until
//! `‖ΔH‖ ≤ tol·‖H‖` or `inner_max_iter` sweeps); then the statistics of the past absorb the
//! batch and W is updated from them alone, with `ρ = forget_factor^(b/n)`:
//!
//! ```text
//!  Frobenius (Mairal, Bach, Ponce & Sapiro, JMLR 2010):
//!    A ← ρ A + H_b H_bᵀ        (r x r)
//!    B ← ρ B + V_b H_bᵀ        (m x r)
//!    W[:,t] ← max(0, W[:,t] + (B[:,t] − (W A)[:,t]) / A[t,t])   for t = 1..r (one HALS sweep)
//!  Kullback–Leibler (scikit-learn's MiniBatchNMF, β = 1):
//!    N ← ρ N + W ⊙ ((V_b ⊘ W H_b) H_bᵀ)   (m x r; N₀ = W₀)
//!    d ← ρ d + H_b 1                       (r;     d₀ = 1)
//!    W ← N ⊘ (1 dᵀ)
//! ```
//!
//! Memory is `O(m·r + b·(m + r))`: W and the statistics, and the batches (the one in use and
//! the one read ahead on a second thread). The stopping rules are scikit-learn's: the batch
//! cost `D(V_b ‖ W H_b)/b` is smoothed with weight `min(b/(n+1), 1)`; the fit stops after
//! `max_epochs` passes, when W moves less than `tol` (relative) in one batch, or when the
//! smoothed cost finds no new minimum in `max_no_improvement` batches. The encodings are
//! solved afresh for every batch (a stream does not keep them between epochs: scikit-learn's
//! `fresh_restarts=True`), and H for the data is computed with the final W
//! ([`OnlineFactorization::transform`], [`OnlineFactorization::transform_source`]).
//!
//! ```
//! use nmf_gpu::ndarray::Array2;
//! use nmf_gpu::online::{ArraySource, OnlineNmf};
//!
//! let w0 = Array2::from_shape_fn((40, 3), |(i, j)| ((i * 7 + j * 3) % 5) as f32);
//! let h0 = Array2::from_shape_fn((3, 500), |(i, j)| ((i * 5 + j * 2) % 7) as f32);
//! let v = w0.dot(&h0);
//! let model = OnlineNmf::params(3).batch_size(100).fit(&mut ArraySource::new(v.view()))?;
//! assert_eq!(model.w().dim(), (40, 3));
//! let h = model.transform(v.view())?;
//! assert!(nmf_gpu::relative_error(v.view(), model.w(), h.view())? < 0.05);
//! # Ok::<(), nmf_gpu::NmfError>(())
//! ```

mod params;
mod prefetch;
mod solve;
pub mod source;
mod state;

use std::time::{Duration, Instant};

use ndarray::{Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::SeedableRng;

pub use self::params::{OnlineNmf, OnlineParams, OnlineProgress, OnlineProgressFn, OnlineStateFn};
pub use self::solve::OnlineStop;
pub use self::state::OnlineState;

pub use self::source::{ArraySource, CsrSource, Source};

use self::prefetch::{stream, stream_from};
use self::solve::{BatchInfo, Kept, Mode, Run, RunEnd, Statistics, Stats, Tracker};
use crate::engine::with_engine;
use crate::error::{Factor, NmfError, Result};
use crate::options::{check_factor, Init, Loss, Solver};
use crate::params::NmfParams;

/// What an online fit did.
#[derive(Debug, Clone)]
pub struct OnlineReport {
    /// Passes over the data begun.
    pub epochs: usize,
    /// Batches used, over all passes (and earlier `partial_fit` calls).
    pub steps: usize,
    /// Samples used (counting repeats across passes).
    pub samples: u64,
    /// The last batch's cost `D(V_b‖W H_b)/b`.
    pub last_batch_cost: f64,
    /// The smoothed batch cost the stopping rule watched (`None` before the second batch).
    pub smoothed_cost: Option<f64>,
    /// Why the fit ended.
    pub stop: OnlineStop,
    /// The engine that ran it.
    pub engine: String,
    /// GPU work counters of the last run (`None` on the CPU).
    pub gpu_stats: Option<crate::GpuStats>,
    /// Wall time.
    pub elapsed: Duration,
}

/// A fitted online model: the dictionary W and the statistics that let it learn more
/// ([`partial_fit`](Self::partial_fit)).
#[derive(Debug, Clone)]
pub struct OnlineFactorization {
    stats: Stats,
    params: OnlineParams,
    encodings: Option<Array2<f32>>,
    tracker: Tracker,
    report: OnlineReport,
}

impl OnlineParams {
    /// Fit W to every sample of `source`, in batches of `batch_size`, for up to `max_epochs`
    /// passes (see the [module docs](self)). The next batch is read (and checked) on a second
    /// thread while the current one computes. Bad data found part-way (a NaN, a negative
    /// value, an unreadable file) ends the fit with [`NmfError::InStream`] naming the sample
    /// and its origin; no model is returned then.
    pub fn fit<S: Source + ?Sized>(&self, source: &mut S) -> Result<OnlineFactorization> {
        let start = Instant::now();
        let (m, n) = source.dim();
        self.check(m, n)?;
        self.check_memory(m, n)?;
        let epochs = self.iter.max_iter;
        let batch = self.batch_size.min(n);
        // A resumed fit: its model, and where in which pass it stopped.
        let resumed = match &self.resume_state {
            Some(state) => Some(self.from_state((**state).clone())?),
            None => None,
        };
        let at = resumed.as_ref().map_or((0, 0), |r| {
            let done = usize::try_from(r.tracker.samples).unwrap_or(usize::MAX);
            (done / n, done % n)
        });
        let mut kept = (!self.fresh_restarts).then(|| Kept {
            h: self
                .h_init
                .clone()
                .unwrap_or_else(|| Array2::zeros((self.rank, n))),
            seen: match (&self.h_init, &resumed) {
                (None, _) => 0,
                (Some(_), Some(_)) if at.0 == 0 => at.1,
                (Some(_), _) => n,
            },
        });
        if at.0 >= epochs {
            // Every pass of the budget was done before the interruption.
            let mut model = resumed.ok_or(NmfError::EmptyInput { rows: m, cols: n })?;
            model.encodings = kept.map(|k| k.h);
            return Ok(model);
        }
        let ran = stream_from(source, batch, at, epochs, |batches| {
            let first = next_or_empty(batches, m, n)?;
            let (stats, tracker) = match &resumed {
                Some(r) => {
                    let mut tracker = r.tracker.clone();
                    tracker.epochs = tracker.epochs.max(first.epoch + 1);
                    (r.stats.clone(), tracker)
                }
                None => (
                    Stats::start(self.initial_w(first.data.view())?, self.rule()),
                    Tracker {
                        epochs: 1,
                        ..Tracker::default()
                    },
                ),
            };
            let run = Run {
                params: self,
                first: BatchInfo::of(&first),
                rest: batches,
                stats,
                tracker,
                mode: Mode::Learn {
                    n,
                    check: true,
                    kept: kept.as_mut(),
                },
            };
            with_engine(first.data.view(), &self.backend, run)
        })?;
        let mut model = self.package(ran, start);
        model.encodings = kept.map(|k| k.h);
        Ok(model)
    }

    /// The model of a saved [`OnlineState`], fitted with these parameters (their rank and
    /// update rule must be the state's: W is m x r, the statistics the rule's shapes).
    pub fn from_state(&self, state: OnlineState) -> Result<OnlineFactorization> {
        let (m, r) = state.w.dim();
        let mut params = self.clone();
        params.h_init = None;
        params.resume_state = None;
        params.check(m, self.rank.max(1))?;
        check_factor(Factor::W, state.w.view(), m, self.rank)?;
        let num_shape = match self.rule() {
            Solver::MultiplicativeUpdate => (m, r),
            _ => (r, r),
        };
        for (what, a, shape) in [
            ("the state's first statistic", &state.num, num_shape),
            ("the state's second statistic", &state.den, (m, r)),
        ] {
            if a.dim() != shape || a.iter().any(|x| !x.is_finite()) {
                return Err(NmfError::ShapeMismatch {
                    what,
                    expected: format!("{} x {} finite entries", shape.0, shape.1),
                    found: format!("{} x {}", a.nrows(), a.ncols()),
                });
            }
        }
        let tracker = Tracker {
            steps: state.steps,
            samples: state.samples,
            ewa: state.smoothed_cost,
            ewa_min: state.smoothed_min,
            no_improvement: state.no_improvement,
            last_cost: state.last_cost,
            epochs: state.epochs,
        };
        let mut report = empty_report();
        report.epochs = state.epochs;
        report.steps = state.steps;
        report.samples = state.samples;
        report.last_batch_cost = state.last_cost;
        report.smoothed_cost = state.smoothed_cost;
        Ok(OnlineFactorization {
            stats: Stats {
                w: state.w,
                sums: Statistics::from_pair(self.rule(), state.num, state.den),
            },
            params,
            encodings: None,
            tracker,
            report,
        })
    }

    /// A model with the dictionary `w` (m x r) that has learnt nothing yet: its
    /// [`transform`](OnlineFactorization::transform) encodes with `w`, its
    /// [`partial_fit`](OnlineFactorization::partial_fit) starts from it.
    pub fn from_w(&self, w: Array2<f32>) -> Result<OnlineFactorization> {
        let Stats { w, sums } = Stats::start(w, self.rule());
        let (num, den) = sums.into_pair();
        self.from_state(OnlineState {
            w,
            num,
            den,
            steps: 0,
            samples: 0,
            epochs: 0,
            smoothed_cost: None,
            smoothed_min: None,
            no_improvement: 0,
            last_cost: 0.0,
        })
    }

    /// Fit W to an in-memory matrix (m x n, features x samples), streamed in batches.
    pub fn fit_array(&self, v: ArrayView2<'_, f32>) -> Result<OnlineFactorization> {
        self.fit(&mut ArraySource::new(v))
    }

    /// Start a model from one batch (m x b) of data that arrives over time: W starts from
    /// it (see [`init`](Self::init)) and learns from it once. Continue with
    /// [`OnlineFactorization::partial_fit`].
    /// The encodings of each batch are solved afresh (`fresh_restarts` and `h_init` do not
    /// apply).
    pub fn partial_fit(&self, batch: ArrayView2<'_, f32>) -> Result<OnlineFactorization> {
        let (m, b) = batch.dim();
        let mut params = self.clone().fresh_restarts(true);
        params.h_init = None;
        params.check(m, b)?;
        crate::engine::check_data(batch)?;
        let w0 = params.initial_w(batch)?;
        let mut model = OnlineFactorization {
            stats: Stats::start(w0, params.rule()),
            encodings: None,
            params,
            tracker: Tracker::default(),
            report: empty_report(),
        };
        model.partial_fit(batch)?;
        Ok(model)
    }

    /// W₀ from the first batch: the custom W, or the configured start (NNDSVD variants need
    /// a batch of at least r samples; random otherwise).
    fn initial_w(&self, first: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        if let Some(w) = &self.w_init {
            return Ok(w.clone());
        }
        let (m, b) = first.dim();
        let r = self.rank;
        let init = match &self.init {
            Init::Custom { w, .. } => {
                crate::options::check_factor(crate::Factor::W, w.view(), m, r)?;
                return Ok(w.clone());
            }
            Init::Nndsvd | Init::Nndsvda | Init::Nndsvdar if r > m.min(b) => Init::Random,
            other => other.clone(),
        };
        let valid = NmfParams::new(r)
            .init(init)
            .loss(self.loss)
            .seed(self.iter.seed)
            .check(m, b)?;
        let mut rng = StdRng::seed_from_u64(self.iter.seed);
        Ok(crate::init::initialize(first, &valid, &mut rng).0)
    }

    /// Refuse, before reading anything, a fit whose batches and factors exceed the limit.
    fn check_memory(&self, m: usize, n: usize) -> Result<()> {
        let (m, r, b) = (m as u128, self.rank as u128, self.batch_size as u128);
        let kept = if self.fresh_restarts {
            0
        } else {
            2 * r * n as u128
        };
        // Three batches (in use, read ahead, being filled) and the first batch's start,
        // W and the statistics with their work matrices, the encodings of two batch widths
        // (and every sample's, when they are kept).
        let floats = 4 * m * b + 11 * m * r + 8 * b * r + 4 * r * r + kept;
        let need = floats * 4;
        let limit = self.iter.memory_limit();
        crate::error::check_need(need, limit, || {
            format!("online: batches of {b} samples of {m} features, rank {r}; lower batch_size")
        })?;
        Ok(())
    }

    fn package(&self, ran: (RunEnd, String), start: Instant) -> OnlineFactorization {
        let (end, engine) = ran;
        let report = OnlineReport {
            epochs: end.tracker.epochs,
            steps: end.tracker.steps,
            samples: end.tracker.samples,
            last_batch_cost: end.tracker.last_cost,
            smoothed_cost: end.tracker.ewa,
            stop: end.stop,
            engine,
            gpu_stats: end.gpu_stats,
            elapsed: start.elapsed(),
        };
        OnlineFactorization {
            stats: end.stats,
            params: self.clone(),
            encodings: None,
            tracker: end.tracker,
            report,
        }
    }
}

/// The first batch, or an error when the source gives none.
fn next_or_empty(batches: &prefetch::Batches, m: usize, n: usize) -> Result<prefetch::Batch> {
    match batches.recv() {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(NmfError::EmptyInput { rows: m, cols: n }),
    }
}

fn empty_report() -> OnlineReport {
    OnlineReport {
        epochs: 0,
        steps: 0,
        samples: 0,
        last_batch_cost: 0.0,
        smoothed_cost: None,
        stop: OnlineStop::MaxEpochs,
        engine: String::new(),
        gpu_stats: None,
        elapsed: Duration::ZERO,
    }
}

impl OnlineFactorization {
    /// The dictionary W (m x r): the parts, one per column.
    pub fn w(&self) -> ArrayView2<'_, f32> {
        self.stats.w.view()
    }
    /// Take W.
    pub fn into_w(self) -> Array2<f32> {
        self.stats.w
    }
    /// The rank r.
    pub fn rank(&self) -> usize {
        self.stats.w.ncols()
    }
    /// The loss W was fitted for.
    pub fn loss(&self) -> Loss {
        self.params.loss
    }
    /// W, the statistics and the stopping rules' state (see [`OnlineState`]).
    pub fn state(&self) -> OnlineState {
        let (first, second) = self.stats.sums.clone().into_pair();
        OnlineState {
            w: self.stats.w.clone(),
            num: first,
            den: second,
            steps: self.tracker.steps,
            samples: self.tracker.samples,
            epochs: self.tracker.epochs,
            smoothed_cost: self.tracker.ewa,
            smoothed_min: self.tracker.ewa_min,
            no_improvement: self.tracker.no_improvement,
            last_cost: self.tracker.last_cost,
        }
    }
    /// The encodings of every sample (r x n) at the end of the fit when they were kept from
    /// pass to pass (`fresh_restarts(false)`); `None` otherwise.
    pub fn encodings(&self) -> Option<ArrayView2<'_, f32>> {
        self.encodings.as_ref().map(|h| h.view())
    }
    /// What the fit did.
    pub fn report(&self) -> &OnlineReport {
        &self.report
    }
    /// The parameters it was fitted with (a later `partial_fit` uses them too).
    pub fn params(&self) -> &OnlineParams {
        &self.params
    }

    /// Learn from one more batch (m x b): its encodings are solved, the statistics absorb it
    /// with `ρ = forget_factor` (the batch counts as a whole pass), and W is updated once.
    /// Returns the batch's cost `D(V_b‖W H_b)/b` before the update. On an error the model is
    /// left as it was.
    pub fn partial_fit(&mut self, batch: ArrayView2<'_, f32>) -> Result<f64> {
        let start = Instant::now();
        let (m, b) = batch.dim();
        self.check_rows(m, "a batch in partial_fit")?;
        if b == 0 {
            return Err(NmfError::EmptyInput { rows: m, cols: b });
        }
        crate::engine::check_data(batch)?;
        let params = self.params.clone().batch_size(b).max_epochs(1);
        let mut source = ArraySource::new(batch);
        let (stats, tracker) = (self.stats.clone(), self.tracker.clone());
        let ran = stream(&mut source, b, 1, |batches| {
            let first = next_or_empty(batches, m, b)?;
            let run = Run {
                params: &params,
                first: BatchInfo::of(&first),
                rest: batches,
                stats,
                tracker,
                mode: Mode::Learn {
                    n: b,
                    check: false,
                    kept: None,
                },
            };
            with_engine(first.data.view(), &params.backend, run)
        })?;
        let mut next = self.params.package(ran, start);
        next.tracker.epochs = next.tracker.steps;
        next.report.epochs = next.tracker.steps;
        let cost = next.tracker.last_cost;
        *self = next;
        Ok(cost)
    }

    /// The encodings H (r x n') of new samples `v` (m x n') with W fixed, solved per batch as
    /// during the fit (up to `inner_max_iter` sweeps, until `‖ΔH‖ ≤ tol·‖H‖`).
    pub fn transform(&self, v: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let (m, n) = v.dim();
        self.check_rows(m, "V in transform")?;
        if n == 0 {
            return Err(NmfError::EmptyInput { rows: m, cols: n });
        }
        let mut h = Array2::<f32>::zeros((self.rank(), n));
        self.transform_source(&mut ArraySource::new(v), |col0, hb| {
            h.slice_mut(ndarray::s![.., col0..col0 + hb.ncols()])
                .assign(&hb);
            Ok(())
        })?;
        Ok(h)
    }

    /// The encodings H (r x n') of `v` (m x n') solved all at once, as one batch, with up to
    /// `max_iter` steps and the relative rule over the whole of H (scikit-learn's
    /// `MiniBatchNMF.transform`, whose `transform_max_iter` is `max_iter`).
    pub fn transform_whole(&self, v: ArrayView2<'_, f32>, max_iter: usize) -> Result<Array2<f32>> {
        self.transform_whole_source(&mut ArraySource::new(v), max_iter)
    }

    /// [`transform_whole`](Self::transform_whole) of the samples of `source` (one batch of
    /// all of them: it holds r x n encodings and the m x n data).
    pub fn transform_whole_source<S: Source + ?Sized>(
        &self,
        source: &mut S,
        max_iter: usize,
    ) -> Result<Array2<f32>> {
        let (m, n) = source.dim();
        self.check_rows(m, "the data in transform_whole")?;
        if n == 0 {
            return Err(NmfError::EmptyInput { rows: m, cols: n });
        }
        let mut whole = self.clone();
        whole.params = whole
            .params
            .batch_size(n.max(1))
            .inner_max_iter(max_iter)
            .fresh_restarts(true);
        whole.params.h_init = None;
        whole.params.check(m, n)?;
        let mut h = Array2::<f32>::zeros((self.rank(), n));
        whole.transform_source(source, |col0, hb| {
            h.slice_mut(ndarray::s![.., col0..col0 + hb.ncols()])
                .assign(&hb);
            Ok(())
        })?;
        Ok(h)
    }

    /// Stream the encodings of every sample of `source`: `sink(col0, H_b)` receives the
    /// r x b encodings of the samples `col0 .. col0 + b`, in order (write them to disk as
    /// they come). An error from the sink or the source ends the pass with it.
    pub fn transform_source<S: Source + ?Sized>(
        &self,
        source: &mut S,
        mut sink: impl FnMut(usize, Array2<f32>) -> Result<()> + Send,
    ) -> Result<()> {
        let (m, n) = source.dim();
        self.check_rows(m, "the source in transform_source")?;
        if n == 0 {
            return Err(NmfError::EmptyInput { rows: m, cols: n });
        }
        let batch = self.params.batch_size.min(n);
        let mut sink_ref: &mut (dyn FnMut(usize, Array2<f32>) -> Result<()> + Send) = &mut sink;
        stream(source, batch, 1, |batches| {
            let first = next_or_empty(batches, m, n)?;
            let run = Run {
                params: &self.params,
                first: BatchInfo::of(&first),
                rest: batches,
                stats: self.stats.clone(),
                tracker: Tracker::default(),
                mode: Mode::Encode(&mut sink_ref),
            };
            with_engine(first.data.view(), &self.params.backend, run)
        })?;
        Ok(())
    }

    /// `‖V − W H‖_F / ‖V‖_F` for in-memory data, with `H` its encodings by
    /// [`transform`](Self::transform).
    pub fn relative_error(&self, v: ArrayView2<'_, f32>) -> Result<f64> {
        let h = self.transform(v)?;
        crate::model::relative_error(v, self.w(), h.view())
    }

    fn check_rows(&self, m: usize, what: &'static str) -> Result<()> {
        if m != self.stats.w.nrows() {
            return Err(NmfError::ShapeMismatch {
                what,
                expected: format!("{} rows (features)", self.stats.w.nrows()),
                found: format!("{m} rows"),
            });
        }
        Ok(())
    }
}
