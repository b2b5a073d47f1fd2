//! The report every fit returns beside its factors: the loss history, the iterations, how the
//! run ended, where it ran and how long it took. One type for every model
//! ([`Factorization`](crate::Factorization), [`SymFactorization`](crate::SymFactorization),
//! [`MaskedFactorization`](crate::MaskedFactorization)), each of which embeds one and exposes it
//! through `report()` and the accessors of [`report_accessors`].

use std::time::Duration;

use crate::gpu_stats::GpuStats;

/// What a fit did: losses, iterations, convergence, interruption, engine and timings.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FitReport {
    /// The loss at each check, starting with the start point (for a resumed fit: the point it
    /// resumed from). For NMF the divergence `D(V‖WH)`; the other models document theirs.
    pub losses: Vec<f64>,
    /// The iteration of each entry of `losses` (0 = the initial point of the first run).
    pub loss_iterations: Vec<usize>,
    /// Iterations done (resumed ones included).
    pub n_iter: usize,
    /// Whether the stopping rule ended the run before the budget.
    pub converged: bool,
    /// Whether a stop flag ended the run early (its factors are those of the last iteration).
    pub interrupted: bool,
    /// The loss at iteration 0 of the first run: the reference `e₀` of the stopping rule, and
    /// what a [`Resume`](crate::Resume) carries over.
    pub initial_loss: f64,
    /// The engine that ran the fit, e.g. `"cpu (2 threads)"`.
    pub engine: String,
    /// What the fit asked of the GPU (dispatches, submissions, bytes moved); `None` on the CPU.
    pub gpu_stats: Option<GpuStats>,
    /// Wall time of the whole fit (validation and initialisation included).
    pub elapsed: Duration,
}

impl FitReport {
    /// This report with the engine that ran the fit and the time since `start`.
    pub(crate) fn finished(mut self, engine: String, start: std::time::Instant) -> Self {
        self.engine = engine;
        self.elapsed = start.elapsed();
        self
    }
    /// An empty report (no iterations, no losses), e.g. of a model built from given factors.
    pub(crate) fn empty(engine: &str) -> Self {
        FitReport {
            losses: Vec::new(),
            loss_iterations: Vec::new(),
            n_iter: 0,
            converged: false,
            interrupted: false,
            initial_loss: f64::NAN,
            engine: engine.to_string(),
            gpu_stats: None,
            elapsed: Duration::ZERO,
        }
    }

    /// The last recorded loss (NaN when none was).
    pub fn final_loss(&self) -> f64 {
        self.losses.last().copied().unwrap_or(f64::NAN)
    }
}

/// The factors' accessors on a result type with fields `w` (m x r) and `h` (r x n), with
/// the docs of W and H.
macro_rules! factor_accessors {
    ($w:literal, $h:literal) => {
        #[doc = $w]
        pub fn w(&self) -> ndarray::ArrayView2<'_, f32> {
            self.w.view()
        }
        #[doc = $h]
        pub fn h(&self) -> ndarray::ArrayView2<'_, f32> {
            self.h.view()
        }
        /// Take ownership of `(W, H)`.
        pub fn into_parts(self) -> (ndarray::Array2<f32>, ndarray::Array2<f32>) {
            (self.w, self.h)
        }
        /// The rank r.
        pub fn rank(&self) -> usize {
            self.w.ncols()
        }
    };
}

/// The report's accessors on a result type with a field `report: FitReport`.
macro_rules! report_accessors {
    () => {
        /// The fit's report: losses, iterations, convergence, interruption, engine, timings.
        pub fn report(&self) -> &$crate::FitReport {
            &self.report
        }
        /// Iterations run (resumed ones included).
        pub fn n_iter(&self) -> usize {
            self.report.n_iter
        }
        /// Whether the tolerance test stopped the run before `max_iter`.
        pub fn converged(&self) -> bool {
            self.report.converged
        }
        /// Whether a stop flag ended the run early.
        pub fn interrupted(&self) -> bool {
            self.report.interrupted
        }
        /// The loss at each check, starting with the initial point.
        pub fn losses(&self) -> &[f64] {
            &self.report.losses
        }
        /// The iteration of each entry of [`losses`](Self::losses) (0 = initial point).
        pub fn loss_iterations(&self) -> &[usize] {
            &self.report.loss_iterations
        }
        /// The final loss (the last entry of [`losses`](Self::losses)).
        pub fn final_loss(&self) -> f64 {
            self.report.final_loss()
        }
        /// The engine that ran the fit, e.g. `"cpu (2 threads)"`.
        pub fn engine(&self) -> &str {
            &self.report.engine
        }
        /// What the fit asked of the GPU (dispatches, submissions, bytes moved); `None` on
        /// the CPU.
        pub fn gpu_stats(&self) -> Option<$crate::GpuStats> {
            self.report.gpu_stats
        }
        /// Wall time of the fit (validation and initialisation included).
        pub fn elapsed(&self) -> std::time::Duration {
            self.report.elapsed
        }
    };
}
pub(crate) use factor_accessors;
pub(crate) use report_accessors;
