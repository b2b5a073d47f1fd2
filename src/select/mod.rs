//! Which rank? Compare ranks `r = a..=b` by the stability and the predictive power of their
//! factorizations, and recommend one.
//!
//! ```
//! use nmf_gpu::ndarray::Array2;
//! use nmf_gpu::select::{Method, RankSelect};
//!
//! // Three groups of samples, each built from its own part.
//! let v = Array2::from_shape_fn((24, 30), |(i, j)| if i / 8 == j % 3 { 1.0 } else { 0.02 });
//! let sel = RankSelect::params(2..=4)
//!     .runs(6)
//!     .methods(&[Method::Consensus])
//!     .seed(1)
//!     .run(v.view())?;
//! assert_eq!(sel.recommended().rank, 3);
//! # Ok::<(), nmf_gpu::NmfError>(())
//! ```
//!
//! Four methods, each over the same ranks ([`Method`]):
//!
//! - **Consensus** ([`consensus`], Brunet et al. 2004): `runs` fits from random starts per rank;
//!   each clusters the samples (`argmax_k H[k, j]`); the consensus matrix of those clusterings,
//!   its cophenetic correlation and dispersion (Kim & Park 2007), and the residual sum of
//!   squares `RSS = ‖V − WH‖²_F` and explained variance `1 − RSS / ‖V‖²_F` of the best run.
//!   **Rule:** among the most stable ranks (stability = cophenetic correlation × dispersion,
//!   within [`CONSENSUS_TOLERANCE`], 0.005, of the highest), the smallest whose explained
//!   variance is within [`EVAR_TOLERANCE`] (0.01) of the best of them. Stability alone does
//!   not decide: a rank below the data's may merge clusters the same way every run, and one
//!   above may split one the same way; the first explains less, the second no more.
//! - **NMFk** ([`nmfk`], Alexandrov & Vesselinov): `runs` fits per rank on copies of `V` with
//!   multiplicative uniform noise (`noise`, 3%), their basis vectors clustered across runs,
//!   minimum and mean silhouette per rank. **Rule:** the largest rank whose minimum cluster
//!   silhouette is at least `silhouette_threshold` (0.7); when none is, the rank with the
//!   highest minimum silhouette.
//! - **Cross-validation** ([`cv`]): `cv_repeats` masked fits per rank, each with a random
//!   `holdout` share (10%) of the entries hidden (repeat `t` hides the same entries at every
//!   rank, so the ranks are compared on the same entries); the error on the hidden entries,
//!   its mean and standard error over the repeats. **Rule:** one standard error
//!   ([`decide`]): the smallest rank whose mean held-out RMSE is at most the lowest plus its
//!   standard error.
//! - **Bi-cross-validation** ([`bicv`], Owen & Perry 2009): `cv_repeats` fits per rank of the
//!   block left when a third of the rows and a third of the columns are held out (the same
//!   rows and columns at every rank for repeat `t`), the held-out block predicted from the
//!   blocks beside it; the RMSE of that prediction. **Rule:** one standard error, as
//!   cross-validation. Its fits start from NNDSVDa with [`BICV_BUDGET`] times the budget and
//!   [`BICV_TOL_SHARE`] of the tolerance, so that the fit at the data's rank has converged.
//!
//! **The recommendation** ([`decide`]; [`RankSelection::decision`] says how it was reached).
//! Consensus and NMFk measure cluster stability, so they count only when the factors are
//! clustered: when the columns of `H` have a dominant component, measured by the normalised
//! dominance `D̃ = (r·mean_j max_k H̃[k,j]/Σ_k H̃[k,j] − 1)/(r − 1)` (each row of `H` scaled to
//! unit mass; [`decide::dominance`]) reaching [`decide::DOMINANCE_THRESHOLD`] (0.5), reported
//! per rank ([`RankSelection::dominance`]). When the methods that count agree, their rank;
//! when they disagree, the held-out error arbitrates (the one-standard-error rule among the
//! ranks they chose); without it, the rank most of them chose. The disagreement, the methods
//! set aside, the reason, and an ambiguity (a component near the noise level) are named in
//! [`Decision`].
//!
//! **The inner fits** are kept cheap, since a sweep runs hundreds: HALS from a random start
//! (seeded per rank and run), at most 50 iterations, stopping earlier at a relative improvement
//! of 1e-4 between checks every 10 iterations (`max_iter`, `tol`, `solver` change them). On
//! 361 x 2429 data a rank-10 HALS fit has converged to that tolerance by about 50 iterations,
//! and the clusterings and basis directions the measures read are settled well before the
//! last digits of the loss. The masked fits of cross-validation are the masked multiplicative
//! updates ([`MaskedNmf`]) without penalty, from the filled start (a
//! truncated SVD of the observed entries, which starts them near the solution), with
//! [`CV_BUDGET`] times the budget: multiplicative updates converge more slowly than HALS, and
//! an unconverged fit at the data's rank would look worse than a larger one.
//!
//! **Parallelism.** Fits are independent: on the CPU they run side by side, one per rayon
//! thread of the global pool, each single-threaded (its own one-thread pool, so the engine's
//! parallel loops do not oversubscribe the cores); with [`Backend::Gpu`] they run one after the
//! other on the one device context. Each fit's seed is derived from `seed`, the method, the rank
//! and the run, so the result is the same for the same seed whatever the scheduling.

pub mod bicv;
pub mod consensus;
pub mod cv;
pub mod decide;
pub mod nmfk;
#[cfg(feature = "plots")]
pub mod plot;
mod sweep;

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ndarray::{Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::cluster::labels_from_columns;
use crate::engine::{check_data, Backend};
use crate::error::{NmfError, Result};
use crate::masked::{MaskedInit, MaskedNmf};
use crate::options::{Init, Solver};
use crate::params::Nmf;

use self::consensus::{consensus_bytes, Consensus};
pub use self::decide::Decision;
use self::sweep::{job_seed, run_jobs, run_jobs_until_stopped};

/// The consensus rule's stability tolerance: ranks whose `cophenetic × dispersion` is at least
/// the highest minus this count as the most stable.
pub const CONSENSUS_TOLERANCE: f64 = 0.005;

/// The consensus rule's fit tolerance: among the most stable ranks, the smallest whose explained
/// variance is at least the highest of theirs minus this.
pub const EVAR_TOLERANCE: f64 = 0.01;

/// The masked fits of cross-validation get this many times `max_iter`.
pub const CV_BUDGET: usize = 3;

/// The fits of bi-cross-validation get this many times `max_iter`.
pub const BICV_BUDGET: usize = 10;

/// The fits of bi-cross-validation stop at this share of `tol`.
pub const BICV_TOL_SHARE: f32 = 0.1;

/// A way of comparing ranks (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Consensus clustering of restarts: cophenetic correlation, dispersion, RSS.
    Consensus,
    /// NMFk: silhouettes of the basis vectors of perturbed runs.
    Nmfk,
    /// Cross-validation: error on held-out entries.
    CrossValidation,
    /// Bi-cross-validation: error on a held-out block of rows and columns (Owen & Perry).
    BiCrossValidation,
}

impl Method {
    /// Every method, in the order of the tie-break (NMFk, consensus, cross-validation,
    /// bi-cross-validation).
    pub const ALL: [Method; 4] = [
        Method::Nmfk,
        Method::Consensus,
        Method::CrossValidation,
        Method::BiCrossValidation,
    ];

    /// The method whose [`name`](Self::name) is `name`.
    pub fn from_name(name: &str) -> Option<Method> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Short name, as used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Consensus => "consensus",
            Method::Nmfk => "nmfk",
            Method::CrossValidation => "cv",
            Method::BiCrossValidation => "bicv",
        }
    }

    fn tag(self) -> u64 {
        match self {
            Method::Consensus => 1,
            Method::Nmfk => 2,
            Method::CrossValidation => 3,
            Method::BiCrossValidation => 4,
        }
    }
}

/// How far a sweep has got: fits done of the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepProgress {
    /// Fits finished.
    pub done: usize,
    /// Fits in the whole sweep.
    pub total: usize,
}

/// A progress callback, called after each fit of a sweep (from the worker threads).
pub type SweepProgressFn = Arc<dyn Fn(SweepProgress) + Send + Sync>;

/// Entry point: `RankSelect::params(2..=20)` starts a builder.
#[derive(Debug, Clone, Copy)]
pub struct RankSelect;

impl RankSelect {
    /// Compare the ranks of `ranks` (inclusive), with the defaults of [`SelectParams::new`].
    pub fn params(ranks: RangeInclusive<usize>) -> SelectParams {
        SelectParams::new(ranks)
    }
}

/// The options of a rank sweep; [`run`](SelectParams::run) validates them and runs.
#[derive(Clone)]
pub struct SelectParams {
    from: usize,
    to: usize,
    runs: usize,
    methods: Vec<Method>,
    solver: Solver,
    max_iter: usize,
    tol: f32,
    seed: u64,
    backend: Backend,
    noise: f32,
    silhouette_threshold: f64,
    holdout: f64,
    cv_repeats: usize,
    progress: Option<SweepProgressFn>,
    stop: Option<Arc<AtomicBool>>,
    memory_limit: Option<u64>,
}

impl fmt::Debug for SelectParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectParams")
            .field("ranks", &(self.from..=self.to))
            .field("runs", &self.runs)
            .field("methods", &self.methods)
            .field("solver", &self.solver)
            .field("max_iter", &self.max_iter)
            .field("tol", &self.tol)
            .field("seed", &self.seed)
            .field("noise", &self.noise)
            .field("silhouette_threshold", &self.silhouette_threshold)
            .field("holdout", &self.holdout)
            .field("cv_repeats", &self.cv_repeats)
            .finish()
    }
}

impl SelectParams {
    /// Defaults: 30 runs per rank, every method, HALS with at most 50 iterations and tol 1e-4,
    /// seed 0, 3% noise (NMFk), silhouette threshold 0.7, 10% held out 3 times (CV), CPU.
    pub fn new(ranks: RangeInclusive<usize>) -> Self {
        SelectParams {
            from: *ranks.start(),
            to: *ranks.end(),
            runs: 30,
            methods: Method::ALL.to_vec(),
            solver: Solver::Hals,
            max_iter: 50,
            tol: 1e-4,
            seed: 0,
            backend: Backend::Cpu,
            noise: 0.03,
            silhouette_threshold: 0.7,
            holdout: 0.1,
            cv_repeats: 3,
            progress: None,
            stop: None,
            memory_limit: None,
        }
    }
    /// Fits per rank for consensus and NMFk (at least 2).
    pub fn runs(mut self, runs: usize) -> Self {
        self.runs = runs;
        self
    }
    /// The methods to run (at least one; duplicates are ignored).
    pub fn methods(mut self, methods: &[Method]) -> Self {
        self.methods = Method::ALL
            .into_iter()
            .filter(|m| methods.contains(m))
            .collect();
        self
    }

    crate::options::field_setters! {
        /// The solver of the inner fits (consensus and NMFk). Default HALS.
        solver: Solver;
        /// Iteration budget of each inner fit (cross-validation's masked fits get [`CV_BUDGET`]
        /// times it).
        max_iter: usize;
        /// Stopping tolerance of each inner fit (see [`IterOptions`](crate::IterOptions)).
        tol: f32;
        /// Seed of every random choice of the sweep.
        seed: u64;
        /// Where the fits run ([`Backend::Auto`] is resolved once for the whole sweep).
        backend: Backend;
        /// NMFk's noise level δ: entries are multiplied by `1 + U(−δ, δ)`; in `[0, 1)`.
        noise: f32;
        /// NMFk's threshold on the minimum silhouette, in `[−1, 1]`.
        silhouette_threshold: f64;
        /// Share of the entries held out by cross-validation, in `(0, 0.5]`.
        holdout: f64;
        /// Masked fits per rank for cross-validation (each with its own hold-out mask).
        cv_repeats: usize;
    }
    /// Called after each fit with the fits done and the total.
    pub fn on_progress(mut self, f: impl Fn(SweepProgress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }
    /// Stop early: once `flag` is true no new fit starts and the sweep ends with
    /// [`NmfError::Interrupted`].
    pub fn stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }
    /// The most memory the sweep may take, in bytes (default: the memory available).
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// The ranks compared.
    pub fn ranks(&self) -> RangeInclusive<usize> {
        self.from..=self.to
    }

    /// The fits a sweep on data of any shape runs in all.
    pub fn total_fits(&self) -> usize {
        let per_rank: usize = self
            .methods
            .iter()
            .map(|m| match m {
                Method::CrossValidation | Method::BiCrossValidation => self.cv_repeats,
                _ => self.runs,
            })
            .sum();
        per_rank * (self.to.saturating_sub(self.from) + 1)
    }

    /// Validate the options against data of shape `m x n`.
    pub fn check(&self, m: usize, n: usize) -> Result<()> {
        if m == 0 || n == 0 {
            return Err(NmfError::EmptyInput { rows: m, cols: n });
        }
        let range_error = |reason: String| NmfError::InvalidRankRange {
            from: self.from,
            to: self.to,
            reason,
        };
        if self.from < 2 {
            return Err(range_error(
                "the smallest rank compared is 2 (one component clusters nothing); start at 2 or more".into(),
            ));
        }
        if self.from > self.to {
            return Err(range_error(
                "the range is empty; give the smaller rank first, e.g. 2..20".into(),
            ));
        }
        let limit = m.min(n);
        if self.to > limit {
            return Err(range_error(format!(
                "the data is {m} x {n}, so ranks above min(m, n) = {limit} cannot be compared; end at {limit} or less"
            )));
        }
        let invalid = |name: &'static str, value: String, expected: &str| {
            Err(NmfError::InvalidParameter {
                name,
                value,
                expected: expected.into(),
            })
        };
        if self.methods.is_empty() {
            return invalid("methods", "none".into(), "at least one method");
        }
        if self.runs < 2 {
            return invalid(
                "runs",
                self.runs.to_string(),
                "at least 2 runs per rank (30 is usual)",
            );
        }
        if self.max_iter == 0 {
            return Err(NmfError::ZeroMaxIter);
        }
        if !self.tol.is_finite() || self.tol < 0.0 {
            return Err(NmfError::InvalidTol(self.tol));
        }
        if !(0.0..1.0).contains(&self.noise) {
            return invalid(
                "noise",
                self.noise.to_string(),
                "a share in [0, 1) (NMFk uses 0.03)",
            );
        }
        if !(-1.0..=1.0).contains(&self.silhouette_threshold) {
            return invalid(
                "silhouette_threshold",
                self.silhouette_threshold.to_string(),
                "a silhouette in [-1, 1] (0.7 is usual)",
            );
        }
        if !(self.holdout > 0.0 && self.holdout <= 0.5) {
            return invalid(
                "holdout",
                self.holdout.to_string(),
                "a share in (0, 0.5] (0.1 is usual)",
            );
        }
        if self.cv_repeats == 0 {
            return invalid("cv_repeats", "0".into(), "at least 1");
        }
        Ok(())
    }

    /// Run the sweep on `v` (m x n, samples as columns).
    ///
    /// Errors: the options ([`check`](Self::check)), negative or non-finite data, memory (the
    /// consensus of `n` samples takes `12·n²` bytes per rank being summarised), a failed fit,
    /// or the stop flag ([`NmfError::Interrupted`]; see [`run_until_stopped`](Self::run_until_stopped)
    /// to keep the ranks finished).
    pub fn run(&self, v: ArrayView2<'_, f32>) -> Result<RankSelection> {
        let sel = self.sweep(v)?;
        if sel.interrupted {
            return Err(NmfError::Interrupted {
                what: "the rank sweep",
            });
        }
        Ok(sel)
    }

    /// [`run`](Self::run), keeping what finished when the stop flag is raised: the fits already
    /// running finish, no new one starts, and the selection covers the ranks whose fits all
    /// finished (their figures, each method's choice among them), with
    /// [`interrupted`](RankSelection::interrupted) set. [`NmfError::Interrupted`] when no rank
    /// finished.
    pub fn run_until_stopped(&self, v: ArrayView2<'_, f32>) -> Result<RankSelection> {
        self.sweep(v)
    }

    fn sweep(&self, v: ArrayView2<'_, f32>) -> Result<RankSelection> {
        let start = Instant::now();
        let (m, n) = v.dim();
        self.check(m, n)?;
        check_data(v)?;
        let backend = resolve(&self.backend);
        let on_gpu = !matches!(backend, Backend::Cpu);
        let workers = if on_gpu {
            1
        } else {
            rayon::current_num_threads().max(1)
        };
        let limit = crate::memory::fit_limit(self.memory_limit);
        // Per worker: the engine's copies of V (and its transpose), a perturbed or masked copy,
        // the factors; and the consensus summaries, one per worker at a time.
        let mn = (m as u64).saturating_mul(n as u64);
        let per_worker = mn
            .saturating_mul(4 * 4)
            .saturating_add((m as u64 + n as u64).saturating_mul(self.to as u64 * 4 * 4))
            .saturating_add(if self.methods.contains(&Method::Consensus) {
                consensus_bytes(n)
            } else {
                0
            });
        // NMFk keeps every run's unit W (m x r) of every rank, and forms the Gram matrix of the
        // runs·r columns of one rank per worker while summarising.
        let nmfk_bytes = if self.methods.contains(&Method::Nmfk) {
            let ranks_sum: u64 = (self.from as u64..=self.to as u64).sum();
            let points = self.runs as u64 * self.to as u64;
            (self.runs as u64)
                .saturating_mul(ranks_sum)
                .saturating_mul(m as u64 * 4)
                .saturating_add(
                    points
                        .saturating_mul(points.saturating_add(m as u64))
                        .saturating_mul(4 * workers as u64),
                )
        } else {
            0
        };
        let need = per_worker
            .saturating_mul(workers as u64)
            .saturating_add(nmfk_bytes);
        if need > limit {
            return Err(NmfError::FitTooLarge {
                need,
                limit,
                detail: format!(
                    "{workers} fits side by side on {m} x {n} data, the {n} x {n} consensus matrices and the NMFk bases"
                ),
            });
        }

        let asked: Vec<usize> = (self.from..=self.to).collect();
        // Jobs: the largest ranks first (the longest fits start early).
        let mut jobs: Vec<(Method, usize, usize)> = Vec::new();
        for &r in asked.iter().rev() {
            for &method in &self.methods {
                let count = match method {
                    Method::CrossValidation | Method::BiCrossValidation => self.cv_repeats,
                    _ => self.runs,
                };
                jobs.extend((0..count).map(|run| (method, r, run)));
            }
        }
        let total = jobs.len();
        let done = AtomicUsize::new(0);
        let v_sq: f64 = v.iter().map(|&x| x as f64 * x as f64).sum();
        let outcomes = run_jobs_until_stopped(
            total,
            workers,
            !on_gpu,
            |i| {
                let (method, r, run) = jobs[i];
                self.fit_job(v, &backend, method, r, run)
            },
            || {
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(p) = &self.progress {
                    p(SweepProgress { done: d, total });
                }
            },
            || {
                self.stop
                    .as_ref()
                    .is_some_and(|s| s.load(Ordering::Relaxed))
            },
        )?;

        // A fit the stop flag cut short counts as not run.
        let outcomes: Vec<Option<Outcome>> = outcomes.into_iter().map(Option::flatten).collect();
        // The ranks whose fits all finished (all of them unless the stop flag ended the sweep).
        let ranks: Vec<usize> = asked
            .iter()
            .copied()
            .filter(|&r| {
                jobs.iter()
                    .zip(&outcomes)
                    .all(|(job, out)| job.1 != r || out.is_some())
            })
            .collect();
        let interrupted = ranks.len() < asked.len();
        if ranks.is_empty() {
            return Err(NmfError::Interrupted {
                what: "the rank sweep",
            });
        }
        let fits = outcomes.iter().filter(|o| o.is_some()).count();

        // Gather per method and rank, in run order (a finished job of an unfinished rank is
        // dropped).
        let index = |r: usize| ranks.iter().position(|&x| x == r);
        let mut labels: Vec<Vec<Vec<usize>>> = vec![Vec::new(); ranks.len()];
        let mut rss: Vec<Vec<f64>> = vec![Vec::new(); ranks.len()];
        let mut bases: Vec<Vec<Array2<f32>>> = vec![Vec::new(); ranks.len()];
        let mut nmfk_err: Vec<Vec<f64>> = vec![Vec::new(); ranks.len()];
        let mut cv_err: Vec<Vec<(f64, f64)>> = vec![Vec::new(); ranks.len()];
        let mut dominances: Vec<Vec<f64>> = vec![Vec::new(); ranks.len()];
        let mut bicv_err: Vec<Vec<(f64, f64)>> = vec![Vec::new(); ranks.len()];
        let mut order: Vec<usize> = (0..total).collect();
        order.sort_by_key(|&i| (jobs[i].1, jobs[i].0.tag(), jobs[i].2));
        let mut outcomes = outcomes;
        for i in order {
            let Some(k) = index(jobs[i].1) else {
                continue;
            };
            let Some(outcome) = outcomes[i].take() else {
                continue;
            };
            dominances[k].push(outcome.dominance);
            match outcome.figures {
                Figures::Consensus { labels: l, rss: e } => {
                    labels[k].push(l);
                    rss[k].push(e);
                }
                Figures::Nmfk { w, relative_error } => {
                    bases[k].push(w);
                    nmfk_err[k].push(relative_error);
                }
                Figures::Cv { rmse, relative } => cv_err[k].push((rmse, relative)),
                Figures::Bicv { rmse, relative } => bicv_err[k].push((rmse, relative)),
            }
        }

        // Summaries per rank, side by side.
        let with_consensus = self.methods.contains(&Method::Consensus);
        let with_nmfk = self.methods.contains(&Method::Nmfk);
        let summaries = run_jobs(
            ranks.len(),
            if on_gpu {
                rayon::current_num_threads().max(1)
            } else {
                workers
            },
            true,
            |k| -> Result<(Option<ConsensusScore>, Option<NmfkScore>)> {
                let r = ranks[k];
                let cons = if with_consensus {
                    let c = Consensus::of(&labels[k])?;
                    let best = rss[k].iter().copied().fold(f64::INFINITY, f64::min);
                    Some(ConsensusScore {
                        rank: r,
                        cophenetic: c.cophenetic,
                        dispersion: c.dispersion,
                        rss: best,
                        explained_variance: if v_sq > 0.0 { 1.0 - best / v_sq } else { 1.0 },
                    })
                } else {
                    None
                };
                let nmfk = if with_nmfk {
                    let clusters = nmfk::cluster_bases(&bases[k])?;
                    let s = nmfk::silhouettes(&bases[k], &clusters)?;
                    let errs = &nmfk_err[k];
                    Some(NmfkScore {
                        rank: r,
                        min_silhouette: s.min,
                        mean_silhouette: s.mean,
                        cluster_silhouettes: s.per_cluster,
                        mean_relative_error: errs.iter().sum::<f64>() / errs.len().max(1) as f64,
                    })
                } else {
                    None
                };
                Ok((cons, nmfk))
            },
        )?;
        let mut consensus_scores = Vec::new();
        let mut nmfk_scores = Vec::new();
        for (c, k) in summaries {
            consensus_scores.extend(c);
            nmfk_scores.extend(k);
        }
        let held_scores = |method: Method, errs: &[Vec<(f64, f64)>]| -> Vec<CvScore> {
            if !self.methods.contains(&method) {
                return Vec::new();
            }
            ranks
                .iter()
                .zip(errs)
                .map(|(&r, e)| {
                    let count = e.len().max(1) as f64;
                    let rmse: Vec<f64> = e.iter().map(|x| x.0).collect();
                    let (heldout_rmse, heldout_rmse_se) = decide::mean_and_se(&rmse);
                    CvScore {
                        rank: r,
                        heldout_rmse,
                        heldout_rmse_se,
                        heldout_relative_error: e.iter().map(|x| x.1).sum::<f64>() / count,
                    }
                })
                .collect()
        };
        let cv_scores = held_scores(Method::CrossValidation, &cv_err);
        let bicv_scores = held_scores(Method::BiCrossValidation, &bicv_err);

        let mut choices = Vec::new();
        for &method in &self.methods {
            choices.push(match method {
                Method::Nmfk => choose_nmfk(&nmfk_scores, self.silhouette_threshold),
                Method::Consensus => choose_consensus(&consensus_scores),
                Method::CrossValidation => {
                    decide::choose_heldout(Method::CrossValidation, &cv_scores)
                }
                Method::BiCrossValidation => {
                    decide::choose_heldout(Method::BiCrossValidation, &bicv_scores)
                }
            });
        }
        // D̃ per rank: the mean over every fit of the rank.
        let dominance: Vec<(usize, f64)> = ranks
            .iter()
            .zip(&dominances)
            .filter(|(_, d)| !d.is_empty())
            .map(|(&r, d)| (r, d.iter().sum::<f64>() / d.len() as f64))
            .collect();
        let (recommended, decision) =
            decide::decide(&choices, &cv_scores, &bicv_scores, &dominance);
        Ok(RankSelection {
            ranks,
            runs: self.runs,
            silhouette_threshold: self.silhouette_threshold,
            consensus: consensus_scores,
            nmfk: nmfk_scores,
            cv: cv_scores,
            bicv: bicv_scores,
            choices,
            recommended,
            decision,
            dominance,
            labels: if with_consensus { labels } else { Vec::new() },
            fits,
            interrupted,
            elapsed: start.elapsed(),
        })
    }

    /// One fit of the sweep; `None` when the stop flag cut it short.
    fn fit_job(
        &self,
        v: ArrayView2<'_, f32>,
        backend: &Backend,
        method: Method,
        r: usize,
        run: usize,
    ) -> Result<Option<Outcome>> {
        let seed = job_seed(self.seed, method.tag(), r, run);
        let mut params = Nmf::params(r)
            .solver(self.solver)
            .init(Init::Random)
            .max_iter(self.max_iter)
            .tol(self.tol)
            .seed(seed)
            .backend(backend.clone());
        if let Some(stop) = &self.stop {
            params = params.stop_flag(stop.clone());
        }
        let (figures, dominance) = match method {
            Method::Consensus => {
                let fit = params.fit(v)?;
                if fit.interrupted() {
                    return Ok(None);
                }
                let rss = 2.0 * fit.final_loss();
                let figures = Figures::Consensus {
                    labels: labels_from_columns(fit.h()),
                    rss,
                };
                (figures, decide::dominance(fit.h()))
            }
            Method::Nmfk => {
                let mut rng = StdRng::seed_from_u64(seed ^ 0x6e6d_666b);
                let noisy = nmfk::perturb(v, self.noise, &mut rng);
                let fit = params.fit(noisy.view())?;
                if fit.interrupted() {
                    return Ok(None);
                }
                let relative_error = fit.relative_error(noisy.view())?;
                let figures = Figures::Nmfk {
                    w: nmfk::unit_columns(fit.w()),
                    relative_error,
                };
                (figures, decide::dominance(fit.h()))
            }
            Method::CrossValidation => {
                // Repeat `run` hides the same entries at every rank.
                let mut rng = StdRng::seed_from_u64(job_seed(self.seed, method.tag(), 0, run));
                let held = cv::holdout_mask(v.nrows(), v.ncols(), self.holdout, &mut rng);
                let observed = held.mapv(|h| !h);
                let mut masked = MaskedNmf::params(r)
                    .l2(0.0)
                    .init(MaskedInit::Filled)
                    .max_iter(self.max_iter.saturating_mul(CV_BUDGET))
                    .tol(self.tol)
                    .seed(seed)
                    .backend(backend.clone());
                if let Some(stop) = &self.stop {
                    masked = masked.stop_flag(stop.clone());
                }
                let fit = masked.fit(v, observed.view())?;
                if fit.interrupted() {
                    return Ok(None);
                }
                let (rmse, relative) = cv::heldout_error(v, fit.w(), fit.h(), held.view());
                (Figures::Cv { rmse, relative }, decide::dominance(fit.h()))
            }
            Method::BiCrossValidation => {
                // Repeat `run` holds out the same rows and columns at every rank.
                let mut rng = StdRng::seed_from_u64(job_seed(self.seed, method.tag(), 0, run));
                let split = bicv::split(v.nrows(), v.ncols(), self.to, &mut rng);
                let kept = bicv::block(v, &split.rows_in, &split.cols_in);
                // A converged fit: the NNDSVDa start, BICV_BUDGET times the budget and a
                // tolerance BICV_TOL_SHARE of the sweep's (an unconverged fit at the data's rank
                // would predict worse than a larger one).
                let fit = params
                    .init(Init::Nndsvda)
                    .max_iter(self.max_iter.saturating_mul(BICV_BUDGET))
                    .tol(self.tol * BICV_TOL_SHARE)
                    .fit(kept.view())?;
                if fit.interrupted() {
                    return Ok(None);
                }
                let (rmse, relative) = bicv::heldout_block_error(v, &split, fit.w(), fit.h());
                (Figures::Bicv { rmse, relative }, decide::dominance(fit.h()))
            }
        };
        Ok(Some(Outcome { figures, dominance }))
    }
}

/// What one fit of a sweep leaves.
struct Outcome {
    /// What its method measures.
    figures: Figures,
    /// The normalised cluster dominance `D̃` of its `H` ([`decide::dominance`]).
    dominance: f64,
}

/// The figures of one fit that its method measures.
enum Figures {
    /// The sample clustering of `H` and the residual sum of squares `‖V − WH‖²_F`.
    Consensus { labels: Vec<usize>, rss: f64 },
    /// The unit-column `W` of the fit of the perturbed data and its relative error.
    Nmfk { w: Array2<f32>, relative_error: f64 },
    /// The held-out RMSE and relative error of a masked fit.
    Cv { rmse: f64, relative: f64 },
    /// The held-out block's RMSE and relative error.
    Bicv { rmse: f64, relative: f64 },
}

/// [`Backend::Auto`] resolved once: a usable hardware GPU, or the CPU.
fn resolve(backend: &Backend) -> Backend {
    match backend {
        #[cfg(feature = "gpu")]
        Backend::Auto => crate::engine::gpu::auto_context()
            .map(Backend::Gpu)
            .unwrap_or(Backend::Cpu),
        #[cfg(not(feature = "gpu"))]
        Backend::Auto => Backend::Cpu,
        other => other.clone(),
    }
}

/// The consensus figures of one rank.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsensusScore {
    /// The rank.
    pub rank: usize,
    /// Cophenetic correlation of the consensus matrix.
    pub cophenetic: f64,
    /// Dispersion of the consensus matrix.
    pub dispersion: f64,
    /// `‖V − WH‖²_F` of the best run.
    pub rss: f64,
    /// `1 − RSS / ‖V‖²_F` of the best run.
    pub explained_variance: f64,
}

/// The NMFk figures of one rank.
#[derive(Debug, Clone, PartialEq)]
pub struct NmfkScore {
    /// The rank.
    pub rank: usize,
    /// The smallest cluster silhouette (the least stable basis vector).
    pub min_silhouette: f64,
    /// The mean silhouette over every basis vector of every run.
    pub mean_silhouette: f64,
    /// The mean silhouette of each cluster.
    pub cluster_silhouettes: Vec<f64>,
    /// The mean of `‖V' − WH‖_F / ‖V'‖_F` over the perturbed runs.
    pub mean_relative_error: f64,
}

/// The cross-validation figures of one rank.
#[derive(Debug, Clone, PartialEq)]
pub struct CvScore {
    /// The rank.
    pub rank: usize,
    /// Root-mean-square error on the held-out entries (mean over repeats).
    pub heldout_rmse: f64,
    /// The standard error of that mean, `sd / √repeats` (0 with one repeat).
    pub heldout_rmse_se: f64,
    /// `sqrt(Σ (V − WH)² / Σ V²)` over the held-out entries (mean over repeats).
    pub heldout_relative_error: f64,
}

/// A rank chosen by a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The method whose figures the rule read.
    pub method: Method,
    /// The rank chosen.
    pub rank: usize,
    /// The rule, in words.
    pub rule: String,
}

/// The consensus rule: among the most stable ranks (`cophenetic × dispersion` within
/// [`CONSENSUS_TOLERANCE`] of the highest), the smallest whose explained variance is within
/// [`EVAR_TOLERANCE`] of the highest among them.
fn choose_consensus(scores: &[ConsensusScore]) -> Choice {
    let stability = |s: &ConsensusScore| s.cophenetic * s.dispersion;
    let best = scores
        .iter()
        .map(stability)
        .fold(f64::NEG_INFINITY, f64::max);
    let stable: Vec<&ConsensusScore> = scores
        .iter()
        .filter(|s| stability(s) >= best - CONSENSUS_TOLERANCE)
        .collect();
    let best_evar = stable
        .iter()
        .map(|s| s.explained_variance)
        .fold(f64::NEG_INFINITY, f64::max);
    let rank = stable
        .iter()
        .find(|s| s.explained_variance >= best_evar - EVAR_TOLERANCE)
        .map_or(0, |s| s.rank);
    Choice {
        method: Method::Consensus,
        rank,
        rule: format!(
            "consensus: the smallest r among the most stable (cophenetic x dispersion within {CONSENSUS_TOLERANCE} of the highest, {best:.4}) whose explained variance is within {EVAR_TOLERANCE} of the best of them"
        ),
    }
}

/// The NMFk rule: the largest rank whose minimum silhouette reaches the threshold.
fn choose_nmfk(scores: &[NmfkScore], threshold: f64) -> Choice {
    match scores.iter().rev().find(|s| s.min_silhouette >= threshold) {
        Some(s) => Choice {
            method: Method::Nmfk,
            rank: s.rank,
            rule: format!("nmfk: the largest r whose minimum silhouette is at least {threshold}"),
        },
        None => {
            let best = scores.iter().fold(None::<&NmfkScore>, |acc, s| match acc {
                Some(a) if a.min_silhouette >= s.min_silhouette => Some(a),
                _ => Some(s),
            });
            Choice {
                method: Method::Nmfk,
                rank: best.map_or(0, |s| s.rank),
                rule: format!(
                    "nmfk: no r has a minimum silhouette of {threshold}; the r with the highest"
                ),
            }
        }
    }
}

/// What a rank sweep found: the figures of every method per rank, each method's choice and the
/// recommended rank.
#[derive(Debug, Clone)]
pub struct RankSelection {
    /// The ranks compared, in increasing order.
    pub ranks: Vec<usize>,
    /// Runs per rank (consensus, NMFk).
    pub runs: usize,
    /// NMFk's threshold on the minimum silhouette.
    pub silhouette_threshold: f64,
    /// Consensus figures per rank (empty when not run).
    pub consensus: Vec<ConsensusScore>,
    /// NMFk figures per rank (empty when not run).
    pub nmfk: Vec<NmfkScore>,
    /// Cross-validation figures per rank (empty when not run).
    pub cv: Vec<CvScore>,
    /// Bi-cross-validation figures per rank (empty when not run).
    pub bicv: Vec<CvScore>,
    /// Each method's choice, in the order of [`Method::ALL`].
    pub choices: Vec<Choice>,
    recommended: Choice,
    /// How the recommendation was reached: the methods that counted, those set aside, the
    /// disagreement, the reason, the ambiguity and the warnings.
    pub decision: Decision,
    /// The normalised cluster dominance `D̃` of `H` per rank, `(rank, D̃)`, the mean over
    /// every fit of the rank ([`decide::dominance`]).
    pub dominance: Vec<(usize, f64)>,
    /// Per rank, the cluster of each sample in each consensus run.
    labels: Vec<Vec<Vec<usize>>>,
    /// Fits run in all.
    pub fits: usize,
    /// Whether the stop flag ended the sweep early
    /// ([`run_until_stopped`](SelectParams::run_until_stopped)): `ranks` then holds only the
    /// ranks whose fits all finished.
    pub interrupted: bool,
    /// Wall time of the sweep.
    pub elapsed: Duration,
}

impl RankSelection {
    /// The recommended rank and the rule that chose it.
    pub fn recommended(&self) -> &Choice {
        &self.recommended
    }

    /// The consensus of rank `r` (matrix, clustering, measures), recomputed from the runs'
    /// clusterings; `None` when consensus was not run or `r` was not compared.
    pub fn consensus_of(&self, r: usize) -> Option<Result<Consensus>> {
        let k = self.ranks.iter().position(|&x| x == r)?;
        let runs = self.labels.get(k)?;
        Some(Consensus::of(runs))
    }
}
