//! The loss history of a run and the stopping rule every solver shares.
//!
//! The loss is recorded at the start and every `check_every` iterations (and after the last
//! one); with `e = sqrt(2·D)`, the run stops at a check when `(e_prev − e) / e_0 < tol`
//! (scikit-learn's rule; `tol = 0` runs every iteration). A non-finite loss is a
//! [`NmfError::NumericalBreakdown`].

use crate::error::{NmfError, Result};
use crate::params::{Progress, ProgressFn};

/// Losses recorded so far, and where the stopping rule stands.
pub(crate) struct History {
    tol: f64,
    check_every: usize,
    max_iter: usize,
    progress: Option<ProgressFn>,
    err0: f64,
    prev_err: f64,
    losses: Vec<f64>,
    iterations: Vec<usize>,
}

impl History {
    /// Start from the loss of the initial point (iteration 0).
    pub fn start(
        loss0: f64,
        tol: f32,
        check_every: usize,
        max_iter: usize,
        progress: Option<ProgressFn>,
    ) -> Result<Self> {
        let mut h = History {
            tol: f64::from(tol),
            check_every: check_every.max(1),
            max_iter,
            progress,
            err0: 0.0,
            prev_err: 0.0,
            losses: Vec::new(),
            iterations: Vec::new(),
        };
        h.push(0, loss0)?;
        h.err0 = (2.0 * loss0).sqrt();
        h.prev_err = h.err0;
        Ok(h)
    }

    /// Whether the loss is due after iteration `it`.
    pub fn due(&self, it: usize) -> bool {
        it.is_multiple_of(self.check_every) || it == self.max_iter
    }

    /// Record the loss after iteration `it`; true when the run has converged.
    pub fn record(&mut self, it: usize, loss: f64) -> Result<bool> {
        self.push(it, loss)?;
        if self.tol > 0.0 && it.is_multiple_of(self.check_every) {
            let err = (2.0 * loss).sqrt();
            if self.err0 == 0.0 || (self.prev_err - err) / self.err0 < self.tol {
                return Ok(true);
            }
            self.prev_err = err;
        }
        Ok(false)
    }

    /// The recorded losses and the iterations they were taken after.
    pub fn into_parts(self) -> (Vec<f64>, Vec<usize>) {
        (self.losses, self.iterations)
    }

    fn push(&mut self, iteration: usize, loss: f64) -> Result<()> {
        if !loss.is_finite() {
            return Err(NmfError::NumericalBreakdown { iteration });
        }
        self.losses.push(loss);
        self.iterations.push(iteration);
        if let Some(cb) = &self.progress {
            cb(&Progress {
                iteration,
                max_iter: self.max_iter,
                loss,
            });
        }
        Ok(())
    }
}
