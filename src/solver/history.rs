//! The loss history of a run, the stopping rule every solver shares, the run's hooks
//! (progress, stop flag, resumption, checkpoints), and the one loop that drives every fit
//! ([`History::drive`] over an [`Iteration`]): plain, masked, symmetric and distributed fits
//! supply their step and their loss, and share the checks, the stopping rule and the hooks.
//!
//! The loss is recorded at the start and every `check_every` iterations (and after the last
//! one); with `e = sqrt(2·D)`, the run stops at a check when `(e_prev − e) / e_0 < tol`
//! (scikit-learn's rule; `tol = 0` runs every iteration). A non-finite loss is a
//! [`NmfError::NumericalBreakdown`]. A resumed run starts counting at the iterations already
//! done and keeps the first run's `e_0`; a raised stop flag ends the run after the current
//! iteration, with its loss recorded.

use std::ops::RangeInclusive;

use ndarray::Array2;

use crate::error::{NmfError, Result};
use crate::options::{IterOptions, Progress};
use crate::report::FitReport;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Keep iterating.
    Continue,
    /// The stopping rule holds.
    Converged,
    /// The stop flag was raised.
    Interrupted,
}

/// One fit's iteration, as [`History::drive`] runs it: a step, the objective at a check, and
/// (where the fit has them) the factors for a checkpoint and an agreement among processes.
pub(crate) trait Iteration {
    /// Iteration `it` (1-based, counting a resumed run's earlier iterations).
    fn step(&mut self, it: usize) -> Result<()>;

    /// The objective at the current factors (after a step, or at the start).
    fn loss(&mut self) -> Result<f64>;

    /// The current W and H for a checkpoint callback (`None` where this process does not hold
    /// them, e.g. a distributed rank other than the one that gathers them).
    fn factors(&mut self) -> Result<Option<(Array2<f32>, Array2<f32>)>> {
        Ok(None)
    }

    /// The verdict every process agrees on at a check (a single process: its own). A
    /// distributed fit stops when any rank's stop flag is raised.
    fn agree_verdict(&mut self, verdict: Verdict) -> Result<Verdict> {
        Ok(verdict)
    }

    /// A checkpoint callback's result, agreed among processes (a single process: as it is).
    fn agree_saved(&mut self, saved: Result<()>) -> Result<()> {
        saved
    }
}

/// Losses recorded so far, and where the stopping rule stands.
pub(crate) struct History {
    opts: IterOptions,
    first: usize,
    err0: f64,
    initial_loss: f64,
    prev_err: f64,
    losses: Vec<f64>,
    iterations: Vec<usize>,
}

impl History {
    /// Start from the loss of the start point (iteration 0, or the iteration a resumed run
    /// picks up at).
    pub fn start(loss0: f64, opts: &IterOptions) -> Result<Self> {
        let first = opts.resume.map_or(0, |r| r.iterations_done);
        let initial_loss = opts.resume.map_or(loss0, |r| r.initial_loss);
        let mut h = History {
            opts: opts.clone(),
            first,
            err0: (2.0 * initial_loss).sqrt(),
            initial_loss,
            prev_err: 0.0,
            losses: Vec::new(),
            iterations: Vec::new(),
        };
        h.push(first, loss0)?;
        h.prev_err = (2.0 * loss0).sqrt();
        Ok(h)
    }

    /// Run `fit` from its start to the end of the budget, the stopping rule or a stop:
    ///
    /// ```text
    /// D₀ = fit.loss()                       (recorded as iteration `first`)
    /// for it in first + 1 ..= max_iter:
    ///     fit.step(it)
    ///     at a check (every check_every, the last iteration, a raised stop flag):
    ///         record D = fit.loss(); stop if (e_prev − e) / e₀ < tol (e = √(2D)) or stopped
    ///     at a checkpoint: hand fit.factors() to the callback
    /// ```
    ///
    /// The report holds the losses, the iterations done, and whether the rule or a stop ended
    /// the run (engine, counters and time are filled in by the caller).
    pub fn drive(fit: &mut impl Iteration, opts: &IterOptions) -> Result<FitReport> {
        let loss0 = fit.loss()?;
        let mut history = History::start(loss0, opts)?;
        let mut verdict = Verdict::Continue;
        let mut n_iter = history.first();
        for it in history.iterations() {
            fit.step(it)?;
            n_iter = it;
            if history.due(it) {
                let own = history.record(it, fit.loss()?)?;
                verdict = fit.agree_verdict(own)?;
                if verdict != Verdict::Continue {
                    break;
                }
            }
            if history.checkpoint_due(it) {
                let saved = match fit.factors()? {
                    Some((w, h)) => history.checkpoint(it, w.view(), h.view()),
                    None => Ok(()),
                };
                fit.agree_saved(saved)?;
            }
        }
        Ok(history.into_report(n_iter, verdict))
    }

    /// The iterations this run is to do.
    pub fn iterations(&self) -> RangeInclusive<usize> {
        self.first + 1..=self.opts.max_iter
    }

    /// The iteration the run starts after (0, or the iterations a resumed run had done).
    pub fn first(&self) -> usize {
        self.first
    }

    /// Whether the loss is due after iteration `it` (a check, the last iteration, or a stop).
    pub fn due(&self, it: usize) -> bool {
        it.is_multiple_of(self.opts.check_every)
            || it == self.opts.max_iter
            || self.opts.stop_requested()
    }

    /// Record the loss after iteration `it` (when [`due`](Self::due)), and say whether the
    /// run goes on.
    pub fn record(&mut self, it: usize, loss: f64) -> Result<Verdict> {
        self.push(it, loss)?;
        if self.opts.tol > 0.0 && it.is_multiple_of(self.opts.check_every) {
            let err = (2.0 * loss).sqrt();
            if self.err0 == 0.0 || (self.prev_err - err) / self.err0 < f64::from(self.opts.tol) {
                return Ok(Verdict::Converged);
            }
            self.prev_err = err;
        }
        if self.opts.stop_requested() {
            return Ok(Verdict::Interrupted);
        }
        Ok(Verdict::Continue)
    }

    /// Whether a checkpoint is due after iteration `it`.
    pub fn checkpoint_due(&self, it: usize) -> bool {
        self.opts
            .checkpoint
            .as_ref()
            .is_some_and(|(every, _)| it.is_multiple_of(*every))
    }

    /// Hand the current factors to the checkpoint callback.
    pub fn checkpoint<'a>(
        &self,
        it: usize,
        w: ndarray::ArrayView2<'a, f32>,
        h: ndarray::ArrayView2<'a, f32>,
    ) -> Result<()> {
        match &self.opts.checkpoint {
            Some((_, f)) => f(&crate::options::Checkpoint {
                iteration: it,
                w,
                h,
                initial_loss: self.initial_loss,
            }),
            None => Ok(()),
        }
    }

    /// The report of the run (engine, GPU counters and wall time are filled in by the fit).
    pub fn into_report(self, n_iter: usize, verdict: Verdict) -> FitReport {
        let mut report = FitReport::empty("");
        report.losses = self.losses;
        report.loss_iterations = self.iterations;
        report.n_iter = n_iter;
        report.converged = verdict == Verdict::Converged;
        report.interrupted = verdict == Verdict::Interrupted;
        report.initial_loss = self.initial_loss;
        report
    }

    fn push(&mut self, iteration: usize, loss: f64) -> Result<()> {
        if !loss.is_finite() {
            return Err(NmfError::NumericalBreakdown { iteration });
        }
        self.losses.push(loss);
        self.iterations.push(iteration);
        if let Some(cb) = &self.opts.progress {
            cb(&Progress {
                iteration,
                max_iter: self.opts.max_iter,
                loss,
            });
        }
        Ok(())
    }
}
