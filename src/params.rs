//! The builder (`NmfParams`), its options, and every validation rule in one place (`check`).

use std::fmt;
use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use crate::engine::Backend;
use crate::error::{Factor, NmfError, Result};
use crate::model::Factorization;

/// The algorithm that updates W and H.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Solver {
    /// Lee & Seung multiplicative updates (Frobenius or Kullback–Leibler).
    ///
    /// Frobenius: `W ← W ⊙ (V Hᵀ) ⊘ (W H Hᵀ)`, then `H ← H ⊙ (Wᵀ V) ⊘ (Wᵀ W H)`.
    /// KL: `W ← W ⊙ ((V ⊘ WH) Hᵀ) ⊘ (1 Hᵀ)`, then `H ← H ⊙ (Wᵀ (V ⊘ WH)) ⊘ (Wᵀ 1)`.
    #[default]
    MultiplicativeUpdate,
    /// Hierarchical alternating least squares (Cichocki & Phan 2009), the coordinate descent of
    /// scikit-learn's `solver='cd'`: each column of W, then each row of H, is set to its exact
    /// nonnegative least-squares minimiser with the others fixed. Frobenius loss only.
    Hals,
}

impl Solver {
    /// Short name, as used in logs and files.
    pub fn name(self) -> &'static str {
        match self {
            Solver::MultiplicativeUpdate => "mu",
            Solver::Hals => "hals",
        }
    }
}

/// The divergence `D(V ‖ WH)` that is minimised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Loss {
    /// `D = ½ ‖V − WH‖²_F`.
    #[default]
    Frobenius,
    /// Generalised Kullback–Leibler divergence `D = Σ V log(V / WH) − V + WH` (with 0 log 0 = 0).
    KullbackLeibler,
}

impl Loss {
    /// Short name, as used in logs and files.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Frobenius => "frobenius",
            Loss::KullbackLeibler => "kl",
        }
    }
}

/// An orthogonality constraint on one factor (orthogonal NMF, Ding, Li, Peng & Park, KDD 2006).
///
/// Multiplicative updates with the Frobenius loss only. The constrained factor follows the
/// square-root rule derived from the Lagrangian of `½‖V − WH‖²` with the constraint, the other
/// factor the Lee–Seung rule; [`Factorization::orthogonality_residual`] reports how far the
/// constraint is from holding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Orthogonality {
    /// No constraint (plain NMF).
    #[default]
    None,
    /// ONMF-H, `H Hᵀ = I`: each sample is encoded by essentially one component, so H is a soft
    /// clustering of the samples. `H ← H ⊙ √((Wᵀ V) ⊘ (Wᵀ V Hᵀ H))`.
    H,
    /// ONMF-W, `Wᵀ W = I`: the parts do not overlap, so W is a soft clustering of the features.
    /// `W ← W ⊙ √((V Hᵀ) ⊘ (W Wᵀ V Hᵀ))`.
    W,
}

impl Orthogonality {
    /// Short name, as used in logs and files.
    pub fn name(self) -> &'static str {
        match self {
            Orthogonality::None => "none",
            Orthogonality::H => "h",
            Orthogonality::W => "w",
        }
    }
}

/// How W and H are initialised.
#[derive(Clone, PartialEq, Default)]
pub enum Init {
    /// Entries `sqrt(mean(V) / r) · |N(0, 1)|`, seeded (scikit-learn's `init='random'`).
    Random,
    /// Nonnegative double SVD (Boutsidis & Gallopoulos 2008); zeros stay zeros. Best for HALS on sparse data.
    Nndsvd,
    /// NNDSVD with zeros replaced by `mean(V)`: the default, good for multiplicative updates.
    #[default]
    Nndsvda,
    /// NNDSVD with zeros replaced by small random values `mean(V) · |N(0,1)| / 100`.
    Nndsvdar,
    /// Your own starting point: `w` is m x r, `h` is r x n, both finite and nonnegative.
    Custom {
        /// Initial W (m x r).
        w: Array2<f32>,
        /// Initial H (r x n).
        h: Array2<f32>,
    },
}

impl Init {
    /// Short name, as used in logs and files.
    pub fn name(&self) -> &'static str {
        match self {
            Init::Random => "random",
            Init::Nndsvd => "nndsvd",
            Init::Nndsvda => "nndsvda",
            Init::Nndsvdar => "nndsvdar",
            Init::Custom { .. } => "custom",
        }
    }
}

impl fmt::Debug for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Init::Custom { w, h } => write!(f, "Custom {{ w: {:?}, h: {:?} }}", w.dim(), h.dim()),
            other => f.write_str(other.name()),
        }
    }
}

/// What a progress callback sees at each convergence check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Iterations done so far (0 for the initial point).
    pub iteration: usize,
    /// The iteration budget.
    pub max_iter: usize,
    /// The divergence `D(V ‖ WH)` at this point.
    pub loss: f64,
}

/// A progress callback, called at every convergence check.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

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
#[derive(Clone)]
pub struct NmfParams {
    pub(crate) rank: usize,
    pub(crate) solver: Solver,
    pub(crate) loss: Loss,
    pub(crate) init: Init,
    pub(crate) max_iter: usize,
    pub(crate) tol: f32,
    pub(crate) check_every: usize,
    pub(crate) seed: u64,
    pub(crate) alpha_w: f32,
    pub(crate) alpha_h: Option<f32>,
    pub(crate) l1_ratio: f32,
    pub(crate) epsilon: f32,
    pub(crate) orthogonality: Orthogonality,
    pub(crate) backend: Backend,
    pub(crate) progress: Option<ProgressFn>,
}

impl fmt::Debug for NmfParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NmfParams")
            .field("rank", &self.rank)
            .field("solver", &self.solver)
            .field("loss", &self.loss)
            .field("init", &self.init)
            .field("max_iter", &self.max_iter)
            .field("tol", &self.tol)
            .field("check_every", &self.check_every)
            .field("seed", &self.seed)
            .field("alpha_w", &self.alpha_w)
            .field("alpha_h", &self.alpha_h)
            .field("l1_ratio", &self.l1_ratio)
            .field("epsilon", &self.epsilon)
            .field("orthogonality", &self.orthogonality)
            .field("backend", &self.backend)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Default value that replaces zero denominators of the multiplicative updates, and the floor
/// of `WH` in the KL loss (float32 machine epsilon, as scikit-learn).
pub const DEFAULT_EPSILON: f32 = f32::EPSILON;

impl NmfParams {
    /// Defaults for rank `rank`; see [`Nmf::params`].
    pub fn new(rank: usize) -> Self {
        NmfParams {
            rank,
            solver: Solver::default(),
            loss: Loss::default(),
            init: Init::default(),
            max_iter: 200,
            tol: 1e-4,
            check_every: 10,
            seed: 0,
            alpha_w: 0.0,
            alpha_h: None,
            l1_ratio: 0.0,
            epsilon: DEFAULT_EPSILON,
            orthogonality: Orthogonality::None,
            backend: Backend::Cpu,
            progress: None,
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
    /// Maximum number of iterations (one iteration updates W, then H).
    pub fn max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }
    /// Stop when `(e_prev − e) / e_0 < tol` at a check, where `e = sqrt(2·D)` is the error
    /// (scikit-learn's criterion). `0` runs exactly `max_iter` iterations.
    pub fn tol(mut self, tol: f32) -> Self {
        self.tol = tol;
        self
    }
    /// Compute the loss (and test convergence) every this many iterations (default 10).
    pub fn check_every(mut self, check_every: usize) -> Self {
        self.check_every = check_every;
        self
    }
    /// Seed for every random choice (random init, randomized SVD, NNDSVDar). Default 0.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
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
    /// Zero denominators of the multiplicative updates are replaced by this, and the KL loss
    /// reads `max(WH, ε)`; HALS does not use it. Default `f32::EPSILON`.
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }
    /// Where the iterations run.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }
    /// Called at every convergence check with the iteration and the loss.
    pub fn on_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// Validate the options against the data shape `m x n`: every rule lives here.
    pub fn check(&self, m: usize, n: usize) -> Result<ValidParams> {
        if m == 0 || n == 0 {
            return Err(NmfError::EmptyInput { rows: m, cols: n });
        }
        if self.rank == 0 {
            return Err(NmfError::ZeroRank);
        }
        if self.max_iter == 0 {
            return Err(NmfError::ZeroMaxIter);
        }
        if self.check_every == 0 {
            return Err(NmfError::ZeroCheckEvery);
        }
        if !self.tol.is_finite() || self.tol < 0.0 {
            return Err(NmfError::InvalidTol(self.tol));
        }
        let alpha_h = self.alpha_h.unwrap_or(self.alpha_w);
        for (name, value) in [("alpha_w", self.alpha_w), ("alpha_h", alpha_h)] {
            if !value.is_finite() || value < 0.0 {
                return Err(NmfError::InvalidRegularization { name, value });
            }
        }
        if !(0.0..=1.0).contains(&self.l1_ratio) {
            return Err(NmfError::InvalidL1Ratio(self.l1_ratio));
        }
        if !self.epsilon.is_finite() || self.epsilon <= 0.0 {
            return Err(NmfError::InvalidEpsilon(self.epsilon));
        }
        if self.solver == Solver::Hals && self.loss != Loss::Frobenius {
            return Err(NmfError::UnsupportedLoss {
                solver: "Solver::Hals",
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
        }
        let (m_f, n_f) = (m as f32, n as f32);
        let rho = self.l1_ratio;
        Ok(ValidParams {
            rank: r,
            solver: self.solver,
            loss: self.loss,
            init: self.init.clone(),
            max_iter: self.max_iter,
            tol: self.tol,
            check_every: self.check_every,
            seed: self.seed,
            reg_w: Regularization {
                l1: n_f * self.alpha_w * rho,
                l2: n_f * self.alpha_w * (1.0 - rho),
            },
            reg_h: Regularization {
                l1: m_f * alpha_h * rho,
                l2: m_f * alpha_h * (1.0 - rho),
            },
            epsilon: self.epsilon,
            orthogonality: self.orthogonality,
            progress: self.progress.clone(),
        })
    }

    /// Factorize `v` (m x n, features x samples, all entries finite and >= 0): `V ≈ W H`.
    pub fn fit(&self, v: ArrayView2<'_, f32>) -> Result<Factorization> {
        crate::fit::fit(self, v)
    }
}

fn check_factor(factor: Factor, a: ArrayView2<'_, f32>, rows: usize, cols: usize) -> Result<()> {
    if a.dim() != (rows, cols) {
        return Err(NmfError::InitShape {
            factor,
            expected_rows: rows,
            expected_cols: cols,
            found_rows: a.nrows(),
            found_cols: a.ncols(),
        });
    }
    if let Some(((row, col), &value)) = a.indexed_iter().find(|(_, &x)| !x.is_finite() || x < 0.0) {
        return Err(NmfError::InitInvalidEntry {
            factor,
            row,
            col,
            value,
        });
    }
    if a.iter().all(|&x| x == 0.0) {
        return Err(NmfError::InitAllZero { factor });
    }
    Ok(())
}

/// Penalty weights on one factor, already scaled: `l1·‖X‖₁ + ½·l2·‖X‖²_F`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Regularization {
    pub l1: f32,
    pub l2: f32,
}

/// Parameters that passed [`NmfParams::check`] for a given data shape.
#[derive(Clone)]
pub struct ValidParams {
    pub(crate) rank: usize,
    pub(crate) solver: Solver,
    pub(crate) loss: Loss,
    pub(crate) init: Init,
    pub(crate) max_iter: usize,
    pub(crate) tol: f32,
    pub(crate) check_every: usize,
    pub(crate) seed: u64,
    pub(crate) reg_w: Regularization,
    pub(crate) reg_h: Regularization,
    pub(crate) epsilon: f32,
    pub(crate) orthogonality: Orthogonality,
    pub(crate) progress: Option<ProgressFn>,
}

impl fmt::Debug for ValidParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidParams")
            .field("rank", &self.rank)
            .field("solver", &self.solver)
            .field("loss", &self.loss)
            .field("init", &self.init)
            .field("max_iter", &self.max_iter)
            .field("tol", &self.tol)
            .field("check_every", &self.check_every)
            .field("reg_w", &self.reg_w)
            .field("reg_h", &self.reg_h)
            .field("orthogonality", &self.orthogonality)
            .finish()
    }
}

impl ValidParams {
    /// The rank r.
    pub fn rank(&self) -> usize {
        self.rank
    }
    /// The solver.
    pub fn solver(&self) -> Solver {
        self.solver
    }
    /// The loss.
    pub fn loss(&self) -> Loss {
        self.loss
    }
    /// The orthogonality constraint.
    pub fn orthogonality(&self) -> Orthogonality {
        self.orthogonality
    }
}

impl NmfParams {
    /// Factorize a sparse `v` (m x n, features x samples): `V ≈ W H`, on the CPU engine, in time
    /// and memory proportional to the stored entries (plus `(m + n)·r` for the factors); V is
    /// never formed densely. The result is the same as [`fit`](Self::fit) on the dense matrix
    /// up to float rounding, for every solver, loss and initialisation (NNDSVD's SVD runs on
    /// sparse products).
    ///
    /// The engine keeps a transposed copy of V (8 bytes per stored entry plus 8 per column),
    /// so that `Wᵀ V` runs column by column in parallel, and splits V and its transpose into
    /// cache-sized column panels with 16-bit indices where that pays: each side's panels are
    /// made only when they take at most 8 bytes per stored entry (6 for the entry, at most 2
    /// for the row offsets), and a sparser side (fewer than 4 entries per row and panel, as in
    /// a very wide matrix) is read unsplit. In all, at most 24 bytes per stored entry plus
    /// `8·(n + 1)` on top of `v` (about 20 per entry on typical data: 2.5 times `v`).
    /// [`Backend::Gpu`] gives [`NmfError::UnsupportedOption`]; [`Backend::Auto`] runs on the CPU.
    pub fn fit_sparse(&self, v: &crate::sparse::CsrMatrix) -> Result<Factorization> {
        crate::fit::fit_sparse(self, v)
    }
}
