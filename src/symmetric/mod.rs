//! Symmetric NMF for graphs and similarity matrices: A ≈ H Hᵀ and the tri-factorization A ≈ H S Hᵀ.
//!
//! Given a symmetric nonnegative `A` (n x n: a graph's adjacency, a similarity matrix) and a
//! number of clusters `k`, find a nonnegative `H` (n x k) with
//!
//! ```text
//!   min_{H ≥ 0}  ½ ‖Ã − H Hᵀ‖²_F                 (SymMethod::Anls, SymMethod::Multiplicative)
//!   min_{H ≥ 0, S ≥ 0}  ½ ‖Ã − H S Hᵀ‖²_F        (SymMethod::TriFactor, S is k x k)
//! ```
//!
//! where `Ã` is `A` after the [`Preprocess`] step (by default the normalized adjacency
//! `D^{-1/2} A D^{-1/2}`). Node `i` belongs to cluster `argmax_t H[i, t]`
//! ([`SymFactorization::labels`]).
//!
//! **Methods** (all run on the shared engine, so on the CPU and on a GPU alike):
//!
//! - [`SymMethod::Anls`] (default), Kuang, Ding & Park (SDM 2012) and Kuang, Yun & Park
//!   (J. Global Optim. 2015): split `H` into two factors tied by a penalty,
//!   `min_{W,H ≥ 0} F = ½‖Ã − W Hᵀ‖² + (α/2)‖W − H‖²`, and alternate exact block updates. With
//!   `Ã` symmetric, the W subproblem is a nonnegative least-squares problem with normal
//!   equations `W (HᵀH + αI) = Ã H + α H`, solved here by one HALS sweep (exact coordinate
//!   minimisation of each column in turn):
//!   `W[:,t] ← max(0, W[:,t] − ((W G)[:,t] − P[:,t] + α W[:,t]) / (G[t,t] + α))`,
//!   `P = Ã H + α H`, `G = HᵀH`; then H likewise with `P = Ã W + α W`, `G = WᵀW`. Each sweep
//!   is exact block-coordinate descent, so `F` never increases. `α = max(Ã)²` by default, the
//!   choice of the authors' reference code; H is returned. [`SymFactorization::losses`] records `F`.
//! - [`SymMethod::Multiplicative`], Ding, He & Simon (SDM 2005):
//!   `H ← H ⊙ (½ + ½ (Ã H) ⊘ (H HᵀH))`; the losses are `½‖Ã − H Hᵀ‖²`. The damping (the
//!   arithmetic mean of 1 and the Lee–Seung ratio) keeps each step short enough that the loss
//!   decreases; `tests/suite/symmetric.rs` checks every step on planted graphs, up to f32 rounding.
//! - [`SymMethod::TriFactor`], Ding, Li, Peng & Park (KDD 2006), multiplicative rules for
//!   `Ã ≈ H S Hᵀ`: `S ← S ⊙ (HᵀÃH) ⊘ (HᵀH S HᵀH)`, then
//!   `H ← H ⊙ ((Ã H S) ⊘ (H S HᵀH S))^{1/2}`; the losses are `½‖Ã − H S Hᵀ‖²`. The S update is
//!   a Lee–Seung step for a function quadratic in S and never increases the loss. The objective
//!   is quartic in H, for which the fourth root is the conservative exponent (the one with an
//!   auxiliary-function proof); the square root takes steps twice as long in log scale and
//!   still decreased the loss at every step of every test (checked step by step in
//!   `tests/suite/symmetric.rs`, with both preprocessings), so it is the one used.
//!
//! **Initialisation** (Kuang et al.): `H₀ = 2·sqrt(mean(Ã)/k)·U(0,1)` entrywise, seeded, so that
//! `H₀H₀ᵀ` has the mean of `Ã`; ANLS starts from `W₀ = H₀`, the tri-factorization from `S₀ = I`.
//! With [`SymNmfParams::n_init`] > 1 the fit restarts from new draws and keeps the run with the
//! lowest final residual `½‖Ã − H Hᵀ‖²` (`H S Hᵀ`).
//!
//! **Stopping**: the objective `f` is computed at the start and every `check_every` iterations;
//! the run stops when `(e_prev − e)/e₀ < tol` with `e = sqrt(2 f)`, the rule of the core
//! solvers.
//!
//! ```
//! use nmf_gpu::graph::planted_partition;
//! use nmf_gpu::symmetric::{SymMethod, SymNmf};
//! use nmf_gpu::cluster::normalized_mutual_info;
//!
//! let planted = planted_partition(3, 30, 0.5, 0.02, 1)?;
//! let fit = SymNmf::params(3)
//!     .method(SymMethod::Anls)
//!     .seed(7)
//!     .fit(planted.graph().adjacency())?;
//! assert_eq!(fit.h().dim(), (90, 3));
//! let nmi = normalized_mutual_info(&fit.labels(), planted.labels())?;
//! assert!(nmi > 0.9);
//! # Ok::<(), nmf_gpu::NmfError>(())
//! ```

mod solve;
mod sparse;

use std::time::Instant;

use ndarray::{Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::cluster::labels_from_rows;
use crate::engine::Backend;
use crate::engine::{check_data, with_engine};
use crate::error::{NmfError, Result};
use crate::options::{iter_option_setters, IterOptions};
use crate::report::{report_accessors, FitReport};

/// The algorithm of a symmetric factorization; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SymMethod {
    /// Alternating nonnegative least squares on `½‖Ã − W Hᵀ‖² + (α/2)‖W − H‖²` (Kuang et al.),
    /// each block solved by a HALS sweep. Fast and monotone; the default.
    #[default]
    Anls,
    /// The damped multiplicative rule `H ← H ⊙ (½ + ½ (Ã H) ⊘ (H HᵀH))` (Ding, He & Simon).
    Multiplicative,
    /// Multiplicative rules for the tri-factorization `Ã ≈ H S Hᵀ` (Ding, Li, Peng & Park).
    TriFactor,
}

impl SymMethod {
    /// Short name, as used in logs and files.
    pub fn name(self) -> &'static str {
        match self {
            SymMethod::Anls => "anls",
            SymMethod::Multiplicative => "mu",
            SymMethod::TriFactor => "tri",
        }
    }
}

/// How `A` is transformed into the matrix `Ã` that is factorized, set with
/// [`SymNmfParams::preprocess`].
///
/// Not re-exported at the crate root, where [`images::Preprocess`](crate::images::Preprocess)
/// (a different step, for image sets) would clash with it: use `nmf_gpu::symmetric::Preprocess`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preprocess {
    /// `Ã = D^{-1/2} A D^{-1/2}`, `D = diag(Σ_j A[i,j])` (rows and columns of nodes with degree 0
    /// stay 0): the normalized adjacency of normalized cut and spectral clustering. It keeps
    /// high-degree nodes from dominating the fit; the default, and the better choice for graphs.
    #[default]
    NormalizedAdjacency,
    /// `Ã = A` as given, e.g. for a similarity matrix that is already scaled.
    None,
}

impl Preprocess {
    /// Short name, as used in logs and files.
    pub fn name(self) -> &'static str {
        match self {
            Preprocess::NormalizedAdjacency => "normalized",
            Preprocess::None => "none",
        }
    }
}

/// Entry point: `SymNmf::params(k)` starts a builder.
#[derive(Debug, Clone, Copy)]
pub struct SymNmf;

impl SymNmf {
    /// Parameters for `k` clusters with default settings (see [`SymNmfParams::new`]).
    pub fn params(k: usize) -> SymNmfParams {
        SymNmfParams::new(k)
    }
}

/// Builder for a symmetric factorization. Every setter takes and returns `self`; `fit`
/// validates everything and runs.
#[derive(Clone, Debug)]
pub struct SymNmfParams {
    k: usize,
    method: SymMethod,
    preprocess: Preprocess,
    n_init: usize,
    alpha: Option<f32>,
    symmetry_tol: f32,
    backend: Backend,
    iter: IterOptions,
}

impl SymNmfParams {
    /// Defaults for `k` clusters: ANLS, normalized adjacency, 500 iterations, tol 1e-4, a check
    /// every 10 iterations, seed 0, 1 initialisation, `α = max(Ã)²`, symmetry tolerance 1e-5,
    /// epsilon `f32::EPSILON`, CPU.
    pub fn new(k: usize) -> Self {
        SymNmfParams {
            k,
            method: SymMethod::default(),
            preprocess: Preprocess::default(),
            n_init: 1,
            alpha: None,
            symmetry_tol: 1e-5,
            backend: Backend::Cpu,
            iter: IterOptions::new(500, 1e-4),
        }
    }

    crate::options::field_setters! {
        /// The algorithm.
        method: SymMethod;
        /// How `A` is transformed before the fit.
        preprocess: Preprocess;
        /// Number of random initialisations; the run with the lowest final residual is kept.
        /// Default 1.
        n_init: usize;
        /// The ANLS penalty weight `α` on `‖W − H‖²` (default `max(Ã)²`). Larger values tie W
        /// and H sooner; ignored by the other methods. `fit` refuses a weight (given or default)
        /// so large that the ANLS terms `α H` would overflow f32.
        alpha: Some(f32);
        /// `A` is accepted as symmetric when `|A[i,j] − A[j,i]| ≤ symmetry_tol · max(A)` for all
        /// pairs (default 1e-5); it is then replaced by `(A + Aᵀ)/2`.
        symmetry_tol: f32;
        /// Where the iterations run.
        backend: Backend;
    }

    iter_option_setters!();
    // Progress: the method's objective (the value recorded in the losses, not a divergence to
    // `A`); with `n_init` > 1 every initialisation reports in turn, counting from 0 again.
    // Resumption and checkpoints are refused (restarts do not resume).

    /// Check the options that do not depend on the data.
    fn check(&self) -> Result<()> {
        if self.k == 0 {
            return Err(NmfError::ZeroRank);
        }
        self.iter.check()?;
        self.iter.refuse_resume(
            "resume or checkpoint in a symmetric factorization",
            "NmfParams or MaskedParams (a symmetric fit restarts instead)",
        )?;
        crate::error::check_nonzero(self.n_init, "n_init", "at least 1 initialisation")?;
        if let Some(alpha) = self.alpha {
            if !alpha.is_finite() || alpha < 0.0 {
                return Err(NmfError::InvalidRegularization {
                    name: "alpha",
                    value: alpha,
                });
            }
        }
        if !self.symmetry_tol.is_finite() || self.symmetry_tol < 0.0 {
            return Err(NmfError::InvalidParameter {
                name: "symmetry_tol",
                value: self.symmetry_tol.to_string(),
                expected: "a finite tolerance >= 0 (relative to the largest entry of A)".into(),
            });
        }
        Ok(())
    }

    /// The order n of a square, non-empty A of shape `(rows, cols)` with `k ≤ n`; the shape
    /// errors of [`fit`](Self::fit) and [`fit_sparse`](Self::fit_sparse) otherwise.
    pub(crate) fn check_shape(&self, (rows, cols): (usize, usize)) -> Result<usize> {
        if rows == 0 || cols == 0 {
            return Err(NmfError::EmptyInput { rows, cols });
        }
        if rows != cols {
            return Err(NmfError::NotSquare {
                what: "the matrix A of a symmetric factorization",
                rows,
                cols,
            });
        }
        if self.k > rows {
            return Err(NmfError::InvalidParameter {
                name: "k",
                value: self.k.to_string(),
                expected: format!(
                    "at most n = {rows}, the number of rows of A (nodes); ask for fewer clusters"
                ),
            });
        }
        Ok(rows)
    }

    /// Factorize the symmetric nonnegative `a` (n x n). Errors name what is wrong: a matrix that
    /// is empty, not square, has a negative or non-finite entry, is not symmetric (the most
    /// asymmetric pair), or is all zeros; `k` of 0 or more than n; invalid options.
    pub fn fit(&self, a: ArrayView2<'_, f32>) -> Result<SymFactorization> {
        let start = Instant::now();
        self.check()?;
        self.check_shape(a.dim())?;
        check_data(a)?;
        let a_sym = symmetrized(a, self.symmetry_tol)?;
        let a_t = preprocess(a_sym, self.preprocess);
        let max = a_t.iter().fold(0.0f32, |m, &x| m.max(x));
        if max == 0.0 {
            return Err(NmfError::InvalidParameter {
                name: "A",
                value: "all zeros".into(),
                expected: "a matrix with at least one positive entry (a graph with at least one edge with a weight > 0)".into(),
            });
        }
        let task = self.task(max, crate::init::mean(a_t.view()))?;
        let alpha = task.alpha;
        let (out, engine_name) = with_engine(a_t.view(), &self.backend, task)?;
        let a_sq: f64 = a_t.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        Ok(self.factorization(out, engine_name, start, alpha, a_sq))
    }

    /// The model of the kept run `out` on Ã (`‖Ã‖²_F = a_sq_norm`, penalty `alpha`), run by
    /// `engine` since `start`.
    fn factorization(
        &self,
        out: solve::SymOutput,
        engine: String,
        start: Instant,
        alpha: f32,
        a_sq_norm: f64,
    ) -> SymFactorization {
        SymFactorization {
            h: out.h,
            s: out.s,
            residual: out.residual,
            a_sq_norm,
            best_init: out.best_init,
            method: self.method,
            preprocess: self.preprocess,
            alpha,
            report: out.report.finished(engine, start),
        }
    }

    /// The ANLS penalty weight: the one set, or `max(Ã)²` (computed in f64). For ANLS it must
    /// leave room in f32 for `α H`, whose entries are about `α sqrt(max(Ã))` (the scale of H
    /// when `H Hᵀ ≈ Ã`), with a margin of 16; the other methods ignore it.
    /// The solve of Ã, whose largest entry is `max` and mean `mean`: its penalty, and its
    /// starts scaled by `2 sqrt(mean / k)`.
    fn task(&self, max: f32, mean: f64) -> Result<solve::SymTask> {
        let alpha = self.penalty(max)?;
        let scale = (2.0 * (mean / self.k as f64).sqrt()) as f32;
        Ok(solve::SymTask {
            method: self.method,
            k: self.k,
            alpha,
            iter: self.iter.clone(),
            n_init: self.n_init,
            init_scale: scale,
            rng: StdRng::seed_from_u64(self.iter.seed),
        })
    }

    fn penalty(&self, max: f32) -> Result<f32> {
        let max = f64::from(max);
        let alpha = self.alpha.map_or(max * max, f64::from);
        if self.method != SymMethod::Anls {
            return Ok(alpha as f32);
        }
        let representable = |x: f64| x.is_finite() && x <= f64::from(f32::MAX);
        if representable(alpha) && representable(16.0 * alpha * max.sqrt()) {
            return Ok(alpha as f32);
        }
        let origin = if self.alpha.is_some() {
            "the alpha set"
        } else {
            "the default max(Ã)²"
        };
        Err(NmfError::InvalidParameter {
            name: "alpha",
            value: format!("{alpha:e} ({origin}, with max(Ã) = {max:e})"),
            expected: format!(
                "an ANLS penalty with α·sqrt(max(Ã)) well inside the f32 range (up to about {:e}), so that the updates do not overflow; rescale A (e.g. divide it by its largest entry), use Preprocess::NormalizedAdjacency, or set a smaller alpha",
                f64::from(f32::MAX) / 16.0
            ),
        })
    }
}

/// `(A + Aᵀ)/2` when `A` is symmetric within `tol · max(A)`; otherwise the error names the
/// most asymmetric pair. `a` is square, finite and nonnegative.
fn symmetrized(a: ArrayView2<'_, f32>, tol: f32) -> Result<Array2<f32>> {
    let n = a.nrows();
    let max = a.iter().fold(0.0f32, |m, &x| m.max(x));
    let abs_tol = tol * max;
    let mut worst = (0usize, 0usize, 0.0f32);
    for i in 0..n {
        for j in (i + 1)..n {
            let d = (a[[i, j]] - a[[j, i]]).abs();
            if d > worst.2 {
                worst = (i, j, d);
            }
        }
    }
    let (i, j, d) = worst;
    if d > abs_tol {
        return Err(NmfError::NotSymmetric {
            row: i,
            col: j,
            value: a[[i, j]],
            mirror: a[[j, i]],
            tol: abs_tol,
        });
    }
    let mut s = a.to_owned();
    if d > 0.0 {
        for i in 0..n {
            for j in (i + 1)..n {
                let m = 0.5 * (a[[i, j]] + a[[j, i]]);
                s[[i, j]] = m;
                s[[j, i]] = m;
            }
        }
    }
    Ok(s)
}

/// `Ã` from a symmetric nonnegative `a`.
fn preprocess(mut a: Array2<f32>, how: Preprocess) -> Array2<f32> {
    match how {
        Preprocess::None => a,
        Preprocess::NormalizedAdjacency => {
            let inv_sqrt: Vec<f32> = a
                .rows()
                .into_iter()
                .map(|r| {
                    let d: f64 = r.iter().map(|&x| f64::from(x)).sum();
                    if d > 0.0 {
                        (1.0 / d.sqrt()) as f32
                    } else {
                        0.0
                    }
                })
                .collect();
            for ((i, j), x) in a.indexed_iter_mut() {
                *x *= inv_sqrt[i] * inv_sqrt[j];
            }
            a
        }
    }
}

/// A fitted symmetric factorization `Ã ≈ H Hᵀ` (or `H S Hᵀ`).
#[derive(Debug, Clone)]
pub struct SymFactorization {
    h: Array2<f32>,
    s: Option<Array2<f32>>,
    residual: f64,
    a_sq_norm: f64,
    best_init: usize,
    method: SymMethod,
    preprocess: Preprocess,
    alpha: f32,
    report: FitReport,
}

impl SymFactorization {
    /// The factor H (n x k): row `i` holds node `i`'s membership in each cluster.
    pub fn h(&self) -> ArrayView2<'_, f32> {
        self.h.view()
    }
    /// The k x k middle factor S of the tri-factorization `Ã ≈ H S Hᵀ`; `None` for the other
    /// methods.
    pub fn s(&self) -> Option<ArrayView2<'_, f32>> {
        self.s.as_ref().map(|s| s.view())
    }
    /// Take ownership of `(H, S)`.
    pub fn into_parts(self) -> (Array2<f32>, Option<Array2<f32>>) {
        (self.h, self.s)
    }
    /// The number of clusters k.
    pub fn k(&self) -> usize {
        self.h.ncols()
    }
    /// The cluster of each node: `argmax_t H[i, t]` (ties, e.g. isolated nodes with a zero
    /// row, go to cluster 0).
    pub fn labels(&self) -> Vec<usize> {
        labels_from_rows(self.h.view())
    }
    report_accessors!();
    // The report is the kept initialisation's; its losses are the method's objective: ANLS
    // `½‖Ã − W Hᵀ‖² + (α/2)‖W − H‖²`, multiplicative `½‖Ã − H Hᵀ‖²`, tri-factor
    // `½‖Ã − H S Hᵀ‖²`. GPU counters and wall time cover every initialisation.
    /// `½‖Ã − H Hᵀ‖²` (`½‖Ã − H S Hᵀ‖²` for the tri-factorization) of the returned factors.
    pub fn residual(&self) -> f64 {
        self.residual
    }
    /// `‖Ã − H Hᵀ‖_F / ‖Ã‖_F` (with `H S Hᵀ` for the tri-factorization), computed from
    /// [`residual`](Self::residual): the residual of the matrix that was factorized, i.e. of
    /// `Ã` after the [`Preprocess`] step (the normalized adjacency by default), not of the `A`
    /// given to `fit`. (Unlike [`Factorization::relative_error`](crate::Factorization::relative_error),
    /// it takes no data: `Ã` is fixed by the fit.)
    pub fn relative_residual(&self) -> f64 {
        if self.a_sq_norm > 0.0 {
            (2.0 * self.residual / self.a_sq_norm).sqrt()
        } else {
            0.0
        }
    }
    /// Which initialisation (0-based) was kept.
    pub fn best_init(&self) -> usize {
        self.best_init
    }
    /// The method used.
    pub fn method(&self) -> SymMethod {
        self.method
    }
    /// The preprocessing applied to `A`.
    pub fn preprocess(&self) -> Preprocess {
        self.preprocess
    }
    /// The ANLS penalty weight α used (computed as `max(Ã)²` unless set); the other methods
    /// do not use it.
    pub fn alpha(&self) -> f32 {
        self.alpha
    }
}
