//! The options of a fit, at the bottom of the crate's layers: the enums that choose what is
//! computed ([`Solver`], [`Loss`], [`Init`], [`Orthogonality`]), the iteration options every
//! model shares ([`IterOptions`]: budget, stopping rule, seed, callbacks, interruption and
//! resumption) with their one check, and the validated parameters the solvers read
//! ([`ValidParams`]). This module imports nothing of the crate but its errors, so every layer
//! above (engines, solvers, builders, front ends) can use it.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use crate::error::{Factor, NmfError, Result};

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
    /// Accelerated HALS (Gillis & Glineur, Neural Computation 2012): several HALS sweeps per
    /// computation of `V Hᵀ` / `Wᵀ V`, as many as the products' cost pays for, stopping when a
    /// sweep changes the factor little. Same objective, regularisation and fixed points as
    /// [`Solver::Hals`], usually reached in less time (`nmf-bench --time-to-error`). Frobenius
    /// loss only.
    AcceleratedHals,
}

impl Solver {
    /// Every solver, in a fixed order.
    pub const ALL: [Solver; 3] = [
        Solver::MultiplicativeUpdate,
        Solver::Hals,
        Solver::AcceleratedHals,
    ];

    /// The solver whose [`name`](Self::name) or one of whose [`aliases`](Self::aliases) is
    /// `name`.
    pub fn from_name(name: &str) -> Option<Solver> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name || s.aliases().contains(&name))
    }

    /// Other names accepted for the solver: scikit-learn's `"cd"` (coordinate descent) for
    /// [`Solver::Hals`].
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Solver::Hals => &["cd"],
            _ => &[],
        }
    }

    /// One line for a front end's help.
    pub fn help(self) -> &'static str {
        match self {
            Solver::MultiplicativeUpdate => "Lee–Seung multiplicative updates (every loss)",
            Solver::Hals => {
                "hierarchical alternating least squares, scikit-learn's coordinate descent (Frobenius only)"
            }
            Solver::AcceleratedHals => {
                "accelerated HALS: several HALS sweeps per product (Frobenius only)"
            }
        }
    }

    /// Whether the solver minimises `loss`: the one statement of that rule, which every front
    /// end reports in these words. HALS and accelerated HALS solve nonnegative least-squares
    /// subproblems, which exist for the Frobenius loss only; multiplicative updates minimise
    /// every β-divergence.
    pub fn admits(self, loss: Loss) -> Result<()> {
        let loss = loss.canonical();
        if self == Solver::MultiplicativeUpdate || loss == Loss::Frobenius {
            return Ok(());
        }
        Err(NmfError::UnsupportedLoss {
            solver: self.name(),
            loss: loss.name(),
        })
    }

    /// Short name, as used in logs and files.
    pub fn name(self) -> &'static str {
        match self {
            Solver::MultiplicativeUpdate => "mu",
            Solver::Hals => "hals",
            Solver::AcceleratedHals => "ahals",
        }
    }
}

/// The divergence `D(V ‖ WH)` that is minimised: a β-divergence
/// `D_β = Σ d_β(v | wh)` (Févotte & Idier 2011) with
///
/// ```text
///   d_β(x | y) = (x^β + (β − 1) y^β − β x y^(β−1)) / (β (β − 1))     β ∉ {0, 1}
///   d_1(x | y) = x log(x / y) − x + y                                  (Kullback–Leibler)
///   d_0(x | y) = x / y − log(x / y) − 1                                (Itakura–Saito)
/// ```
///
/// and `d_2(x | y) = ½ (x − y)²` (Frobenius). The three named cases have their own variants
/// and run their own (faster) updates; [`Loss::Beta`] covers every other β with
/// scikit-learn's multiplicative rules. `Loss::Beta(2.0)`, `Beta(1.0)` and `Beta(0.0)` are the
/// named cases (they compare equal to them and run their updates): [`Loss::beta`] builds the
/// canonical value. Equality compares the divergence, so `Loss` stays `Eq`.
#[derive(Debug, Clone, Copy, Default)]
pub enum Loss {
    /// `D = ½ ‖V − WH‖²_F` (β = 2).
    #[default]
    Frobenius,
    /// Generalised Kullback–Leibler divergence `D = Σ V log(V / WH) − V + WH` (with 0 log 0 = 0;
    /// β = 1).
    KullbackLeibler,
    /// Itakura–Saito divergence `D = Σ V / WH − log(V / WH) − 1` (β = 0); the data must have
    /// no zeros. Multiplicative updates only.
    ItakuraSaito,
    /// The β-divergence for any finite β (multiplicative updates only); see the type's docs.
    Beta(f32),
}

impl PartialEq for Loss {
    fn eq(&self, other: &Loss) -> bool {
        match (self.canonical(), other.canonical()) {
            (Loss::Beta(a), Loss::Beta(b)) => a.to_bits() == b.to_bits(),
            (a, b) => std::mem::discriminant(&a) == std::mem::discriminant(&b),
        }
    }
}

impl Eq for Loss {}

impl Loss {
    /// Every named loss, in a fixed order.
    pub const ALL: [Loss; 3] = [Loss::Frobenius, Loss::KullbackLeibler, Loss::ItakuraSaito];

    /// The loss whose [`name`](Self::name) is `name`, or `beta=<β>` (what `Display` writes
    /// for [`Loss::Beta`]).
    pub fn from_name(name: &str) -> Option<Loss> {
        if let Some(b) = name.strip_prefix("beta=") {
            return b
                .parse::<f32>()
                .ok()
                .filter(|b| b.is_finite())
                .map(Loss::beta);
        }
        Self::ALL
            .into_iter()
            .find(|l| l.name() == name || l.aliases().contains(&name))
    }

    /// Other names accepted for a named loss: scikit-learn's `beta_loss` strings
    /// (`"kullback-leibler"`, `"itakura-saito"`) and `"fro"` for Frobenius.
    pub fn aliases(self) -> &'static [&'static str] {
        match self.canonical() {
            Loss::Frobenius => &["fro"],
            Loss::KullbackLeibler => &["kullback-leibler"],
            Loss::ItakuraSaito => &["itakura-saito"],
            Loss::Beta(_) => &[],
        }
    }

    /// One line for a front end's help.
    pub fn help(self) -> &'static str {
        match self.canonical() {
            Loss::Frobenius => "½‖V − WH‖²_F (β = 2)",
            Loss::KullbackLeibler => "generalised Kullback–Leibler divergence (β = 1)",
            Loss::ItakuraSaito => "Itakura–Saito divergence (β = 0; the data must have no zeros)",
            Loss::Beta(_) => "the β-divergence of this β",
        }
    }

    /// The β-divergence for `beta`: the named variant for 2, 1 and 0, else `Beta(beta)`.
    pub fn beta(beta: f32) -> Loss {
        Loss::Beta(beta).canonical()
    }

    /// The same divergence with β = 2, 1, 0 as their named variants (and `-0.0` as 0).
    pub fn canonical(self) -> Loss {
        match self {
            Loss::Beta(2.0) => Loss::Frobenius,
            Loss::Beta(1.0) => Loss::KullbackLeibler,
            Loss::Beta(0.0) => Loss::ItakuraSaito,
            other => other,
        }
    }

    /// β of the divergence (2 for Frobenius, 1 for KL, 0 for Itakura–Saito).
    pub fn beta_value(self) -> f32 {
        match self {
            Loss::Frobenius => 2.0,
            Loss::KullbackLeibler => 1.0,
            Loss::ItakuraSaito => 0.0,
            Loss::Beta(b) => b,
        }
    }

    /// The exponent γ(β) of the multiplicative rule `X ← X ⊙ (N ⊘ D)^γ` (Févotte & Idier
    /// 2011, scikit-learn): `1/(2 − β)` for β < 1, `1` for 1 ≤ β ≤ 2, `1/(β − 1)` for β > 2.
    pub fn mu_exponent(self) -> f32 {
        let b = self.beta_value();
        if b < 1.0 {
            1.0 / (2.0 - b)
        } else if b > 2.0 {
            1.0 / (b - 1.0)
        } else {
            1.0
        }
    }

    /// Short name, as used in logs and files: `"beta"` for [`Loss::Beta`] (its `Display` adds
    /// the value, `beta=1.5`).
    pub fn name(self) -> &'static str {
        match self.canonical() {
            Loss::Frobenius => "frobenius",
            Loss::KullbackLeibler => "kl",
            Loss::ItakuraSaito => "is",
            Loss::Beta(_) => "beta",
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.canonical() {
            Loss::Beta(b) => write!(f, "beta={b}"),
            other => f.write_str(other.name()),
        }
    }
}

/// Which components of a factor keep their starting values during a fit: columns of W
/// ([`NmfParams::fix_w`](crate::NmfParams::fix_w)) or rows of H
/// ([`NmfParams::fix_h`](crate::NmfParams::fix_h)). The values come from the custom start
/// ([`Init::Custom`]), which a fit with fixed components requires.
///
/// `fix_w(..)` fixes all of W (`Fixed::All`), `fix_w([0, 3])` or `fix_w(vec![0, 3])` the
/// components 0 and 3.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Fixed {
    /// Every component is updated.
    #[default]
    None,
    /// The whole factor is fixed.
    All,
    /// These components (indices below the rank) are fixed.
    Components(Vec<usize>),
}

impl Fixed {
    /// The sorted, deduplicated fixed components of a rank-`r` factor, or the first index out
    /// of range.
    pub(crate) fn resolve(&self, r: usize) -> std::result::Result<Vec<usize>, usize> {
        match self {
            Fixed::None => Ok(Vec::new()),
            Fixed::All => Ok((0..r).collect()),
            Fixed::Components(c) => {
                if let Some(&bad) = c.iter().find(|&&t| t >= r) {
                    return Err(bad);
                }
                let mut c = c.clone();
                c.sort_unstable();
                c.dedup();
                Ok(c)
            }
        }
    }
}

impl From<std::ops::RangeFull> for Fixed {
    fn from(_: std::ops::RangeFull) -> Fixed {
        Fixed::All
    }
}

impl From<Vec<usize>> for Fixed {
    fn from(c: Vec<usize>) -> Fixed {
        Fixed::Components(c)
    }
}

impl From<&[usize]> for Fixed {
    fn from(c: &[usize]) -> Fixed {
        Fixed::Components(c.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for Fixed {
    fn from(c: [usize; N]) -> Fixed {
        Fixed::Components(c.to_vec())
    }
}

/// The order in which a sparse fit ([`NmfParams::fit_sparse`](crate::NmfParams::fit_sparse))
/// holds V's rows and columns while it iterates: a matter of speed only, the result comes back
/// in V's own order and equals the stored order's up to float rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SparseOrder {
    /// V as stored.
    #[default]
    Stored,
    /// Rows and columns by descending number of stored entries, so that the factor rows the
    /// sparse products gather most often lie together in memory: faster on power-law data
    /// (text, graphs with hubs), no help on uniformly scattered entries. Costs a permuted copy
    /// of V and its transpose (8 bytes per stored entry each).
    Degree,
}

impl SparseOrder {
    /// Every value, in a fixed order.
    pub const ALL: [SparseOrder; 2] = [SparseOrder::Stored, SparseOrder::Degree];

    /// Short name, as used in logs and files.
    pub fn name(self) -> &'static str {
        match self {
            SparseOrder::Stored => "stored",
            SparseOrder::Degree => "degree",
        }
    }

    /// The value named `name`.
    pub fn from_name(name: &str) -> Option<SparseOrder> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }

    /// One line on what it does, for help texts.
    pub fn help(self) -> &'static str {
        match self {
            SparseOrder::Stored => "V's rows and columns as stored",
            SparseOrder::Degree => {
                "rows and columns by descending number of stored entries during the fit \
                 (faster on power-law data; W and H come back in V's order)"
            }
        }
    }
}

/// An orthogonality constraint on one factor (orthogonal NMF, Ding, Li, Peng & Park, KDD 2006).
///
/// Multiplicative updates with the Frobenius loss only. The constrained factor follows the
/// square-root rule derived from the Lagrangian of `½‖V − WH‖²` with the constraint, the other
/// factor the Lee–Seung rule; [`Factorization::orthogonality_residual`](crate::Factorization::orthogonality_residual) reports how far the
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
    /// Every value, in a fixed order.
    pub const ALL: [Orthogonality; 3] = [Orthogonality::None, Orthogonality::H, Orthogonality::W];

    /// Short name, as used in logs and files.
    pub fn name(self) -> &'static str {
        match self {
            Orthogonality::None => "none",
            Orthogonality::H => "h",
            Orthogonality::W => "w",
        }
    }

    /// Other names accepted: scikit-learn-style capitals `"H"` and `"W"`.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Orthogonality::None => &[],
            Orthogonality::H => &["H"],
            Orthogonality::W => &["W"],
        }
    }

    /// The value whose name or alias is `name`.
    pub fn from_name(name: &str) -> Option<Orthogonality> {
        Self::ALL
            .into_iter()
            .find(|o| o.name() == name || o.aliases().contains(&name))
    }

    /// One line for a front end's help.
    pub fn help(self) -> &'static str {
        match self {
            Orthogonality::None => "plain NMF",
            Orthogonality::H => "H Hᵀ = I: clusters the samples",
            Orthogonality::W => "Wᵀ W = I: clusters the features",
        }
    }

    /// Whether the constraint can be fitted with `solver` and `loss`: the one statement of
    /// that rule. The orthogonal rules are multiplicative updates derived for the Frobenius
    /// loss (Ding et al. 2006).
    pub fn admits(self, solver: Solver, loss: Loss) -> Result<()> {
        if self == Orthogonality::None {
            return Ok(());
        }
        if solver != Solver::MultiplicativeUpdate {
            return Err(NmfError::UnsupportedOption {
                option: "orthogonal NMF",
                requires: "the solver mu (the orthogonal rules are multiplicative)",
            });
        }
        if loss.canonical() != Loss::Frobenius {
            return Err(NmfError::UnsupportedOption {
                option: "orthogonal NMF",
                requires: "the frobenius loss (the orthogonal rules are derived for it)",
            });
        }
        Ok(())
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
    /// Every start that has a name (all but [`Init::Custom`]), in a fixed order.
    pub const NAMED: &'static [Init] = &[Init::Random, Init::Nndsvd, Init::Nndsvda, Init::Nndsvdar];

    /// The named start whose name is `name` (`"custom"` is not one: it needs its factors).
    pub fn from_name(name: &str) -> Option<Init> {
        Self::NAMED.iter().find(|i| i.name() == name).cloned()
    }

    /// One line for a front end's help.
    pub fn help(&self) -> &'static str {
        match self {
            Init::Random => "scaled absolute Gaussian entries",
            Init::Nndsvd => "nonnegative double SVD (zeros kept; good for HALS on sparse data)",
            Init::Nndsvda => "NNDSVD with zeros filled by the mean",
            Init::Nndsvdar => "NNDSVD with zeros filled by small random values",
            Init::Custom { .. } => "your own W and H",
        }
    }

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

/// Default value that replaces zero denominators of the multiplicative updates, and the floor
/// of `WH` in the KL loss (float32 machine epsilon, as scikit-learn).
pub const DEFAULT_EPSILON: f32 = f32::EPSILON;

/// Where an interrupted fit picks up: the iterations already done and the loss of the point
/// the first run started from (the reference `e₀` of the stopping rule).
///
/// Used with a custom start (the saved W and H), a resumed run numbers its iterations from
/// `iterations_done + 1`, stops at the same `max_iter` budget, checks the loss at the same
/// iterations, and measures the relative decrease against the same `e₀`, so that a run
/// interrupted at a check and resumed equals the uninterrupted run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resume {
    /// Iterations done before the interruption.
    pub iterations_done: usize,
    /// The loss `D(V‖WH)` at the very first start (iteration 0 of the first run).
    pub initial_loss: f64,
}

/// The state handed to a checkpoint callback ([`IterOptions`]' `checkpoint`).
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint<'a> {
    /// Iterations done so far (resumed ones included).
    pub iteration: usize,
    /// The current W (m x r).
    pub w: ArrayView2<'a, f32>,
    /// The current H (r x n).
    pub h: ArrayView2<'a, f32>,
    /// The loss at iteration 0, what a [`Resume`] needs.
    pub initial_loss: f64,
}

/// A checkpoint callback; an error it returns stops the fit with that error.
pub type CheckpointFn = Arc<dyn Fn(&Checkpoint<'_>) -> Result<()> + Send + Sync>;

/// The iteration options every model shares: the budget, the stopping rule, the seed, the
/// floor of the multiplicative updates, and the hooks that let a long run report, save and
/// stop.
///
/// Each model's builder ([`NmfParams`](crate::NmfParams), [`SymNmfParams`](crate::SymNmfParams),
/// [`MaskedParams`](crate::MaskedParams)) holds one and exposes its setters; the defaults of
/// `max_iter` and `tol` differ per model. The stopping rule: the loss `D` is computed at the
/// start and after every `check_every` iterations (and after the last one); with
/// `e = sqrt(2·D)` the run stops at a check when `(e_prev − e) / e₀ < tol`.
#[derive(Clone)]
pub struct IterOptions {
    pub(crate) max_iter: usize,
    pub(crate) tol: f32,
    pub(crate) check_every: usize,
    pub(crate) seed: u64,
    pub(crate) epsilon: f32,
    pub(crate) progress: Option<ProgressFn>,
    pub(crate) stop: Option<Arc<AtomicBool>>,
    pub(crate) resume: Option<Resume>,
    pub(crate) checkpoint: Option<(usize, CheckpointFn)>,
    pub(crate) memory_limit: Option<u64>,
}

impl fmt::Debug for IterOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IterOptions")
            .field("max_iter", &self.max_iter)
            .field("tol", &self.tol)
            .field("check_every", &self.check_every)
            .field("seed", &self.seed)
            .field("epsilon", &self.epsilon)
            .field("progress", &self.progress.is_some())
            .field("stop", &self.stop.is_some())
            .field("resume", &self.resume)
            .field(
                "checkpoint",
                &self.checkpoint.as_ref().map(|(every, _)| *every),
            )
            .finish()
    }
}

impl IterOptions {
    /// Defaults with the given budget and tolerance: a check every 10 iterations, seed 0,
    /// [`DEFAULT_EPSILON`], no callbacks.
    pub fn new(max_iter: usize, tol: f32) -> Self {
        IterOptions {
            max_iter,
            tol,
            check_every: 10,
            seed: 0,
            epsilon: DEFAULT_EPSILON,
            progress: None,
            stop: None,
            resume: None,
            checkpoint: None,
            memory_limit: None,
        }
    }

    /// The iteration budget (resumed iterations included).
    pub fn max_iter(&self) -> usize {
        self.max_iter
    }
    /// The tolerance of the stopping rule.
    pub fn tol(&self) -> f32 {
        self.tol
    }
    /// Iterations between loss checks.
    pub fn check_every(&self) -> usize {
        self.check_every
    }
    /// The seed of the random parts (initialisation).
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// The value that replaces zero denominators.
    pub fn epsilon(&self) -> f32 {
        self.epsilon
    }
    /// Where a resumed fit picks up, if it is one.
    pub fn resume(&self) -> Option<Resume> {
        self.resume
    }

    /// The bytes a fit may take: the limit set (lowered to the process's hard limits:
    /// `RLIMIT_AS`, `RLIMIT_DATA`, its cgroup's), or the memory it may take now.
    pub fn memory_limit(&self) -> u64 {
        crate::memory::fit_limit(self.memory_limit)
    }

    /// Refuse a resumption or checkpoints where the fit offers neither (`option` names them,
    /// `requires` says what does offer them).
    pub(crate) fn refuse_resume(&self, option: &'static str, requires: &'static str) -> Result<()> {
        if self.resume.is_some() || self.checkpoint.is_some() {
            return Err(NmfError::UnsupportedOption { option, requires });
        }
        Ok(())
    }

    /// The one check of the shared options.
    pub(crate) fn check(&self) -> Result<()> {
        if self.max_iter == 0 {
            return Err(NmfError::ZeroMaxIter);
        }
        if self.check_every == 0 {
            return Err(NmfError::ZeroCheckEvery);
        }
        if !self.tol.is_finite() || self.tol < 0.0 {
            return Err(NmfError::InvalidTol(self.tol));
        }
        if !self.epsilon.is_finite() || self.epsilon <= 0.0 {
            return Err(NmfError::InvalidEpsilon(self.epsilon));
        }
        if let Some((0, _)) = self.checkpoint {
            return Err(NmfError::InvalidParameter {
                name: "checkpoint",
                value: "0".into(),
                expected: "a checkpoint every 1 or more iterations".into(),
            });
        }
        if let Some(r) = self.resume {
            if !r.initial_loss.is_finite() || r.initial_loss < 0.0 {
                return Err(NmfError::InvalidParameter {
                    name: "resume.initial_loss",
                    value: r.initial_loss.to_string(),
                    expected: "the finite, nonnegative loss saved with the model".into(),
                });
            }
        }
        Ok(())
    }

    /// Whether the stop flag has been raised.
    pub(crate) fn stop_requested(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// The same budget and rule without the hooks of a fit (for `transform`'s inner runs).
    pub(crate) fn without_hooks(&self) -> Self {
        IterOptions {
            progress: None,
            stop: None,
            resume: None,
            checkpoint: None,
            ..self.clone()
        }
    }
}

/// The setters of [`IterOptions`] on a builder with a field `iter: IterOptions`.
macro_rules! iter_option_setters {
    () => {
        $crate::options::field_setters! {
            /// Maximum number of iterations (the whole budget: resumed iterations count).
            iter.max_iter: usize;
            /// Stop when `(e_prev − e) / e₀ < tol` at a check, `e = sqrt(2·D)` (scikit-learn's
            /// rule); `0` runs the whole budget.
            iter.tol: f32;
            /// Compute the loss (and test convergence) every this many iterations (default 10).
            iter.check_every: usize;
            /// Seed of the random parts (initialisation). Default 0.
            iter.seed: u64;
            /// The value that replaces zero denominators of the multiplicative updates
            /// (default [`DEFAULT_EPSILON`](crate::DEFAULT_EPSILON)).
            iter.epsilon: f32;
        }
        /// Called at every loss check with the iteration and the loss.
        pub fn on_progress(
            mut self,
            f: impl Fn(&$crate::Progress) + Send + Sync + 'static,
        ) -> Self {
            self.iter.progress = Some(std::sync::Arc::new(f));
            self
        }
        /// Stop early, cleanly: once `flag` is true (set it from a signal handler or another
        /// thread) the fit ends after the current iteration, records the loss there, and
        /// returns the factors it has, with `report().interrupted` set.
        pub fn stop_flag(mut self, flag: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Self {
            self.iter.stop = Some(flag);
            self
        }
        $crate::options::field_setters! {
            /// Continue an interrupted fit from its saved factors (given as the custom start);
            /// see [`Resume`](crate::Resume).
            iter.resume: Some($crate::Resume);
        }
        /// Call `f` with the current factors every `every` iterations (e.g. to save them).
        /// An error from `f` ends the fit with that error.
        pub fn checkpoint(
            mut self,
            every: usize,
            f: impl Fn(&$crate::Checkpoint<'_>) -> $crate::Result<()> + Send + Sync + 'static,
        ) -> Self {
            self.iter.checkpoint = Some((every, std::sync::Arc::new(f)));
            self
        }
        $crate::options::field_setters! {
            /// The most memory the fit may take, in bytes (default: the memory available when
            /// it starts). The fit estimates its peak from the shapes first and refuses with
            /// [`NmfError::FitTooLarge`](crate::NmfError::FitTooLarge) when it would exceed
            /// this.
            iter.memory_limit: Some(u64);
        }
        /// The iteration options as set.
        pub fn iter_options(&self) -> &$crate::IterOptions {
            &self.iter
        }
    };
}
pub(crate) use iter_option_setters;

/// Builder setters that store their argument in the field of their name: `name: T;` makes
/// `pub fn name(mut self, name: T) -> Self` setting `self.name = name`, `name: Some(T);` one
/// setting `self.name = Some(name)`; `group.name: T;` and `group.name: Some(T);` set the field
/// `self.group.name` likewise. Each keeps the doc comment written above it.
macro_rules! field_setters {
    () => {};
    ($(#[$doc:meta])* $group:ident . $name:ident: Some($ty:ty); $($rest:tt)*) => {
        $(#[$doc])*
        pub fn $name(mut self, $name: $ty) -> Self {
            self.$group.$name = Some($name);
            self
        }
        $crate::options::field_setters!($($rest)*);
    };
    ($(#[$doc:meta])* $group:ident . $name:ident: $ty:ty; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn $name(mut self, $name: $ty) -> Self {
            self.$group.$name = $name;
            self
        }
        $crate::options::field_setters!($($rest)*);
    };
    ($(#[$doc:meta])* $name:ident: Some($ty:ty); $($rest:tt)*) => {
        $(#[$doc])*
        pub fn $name(mut self, $name: $ty) -> Self {
            self.$name = Some($name);
            self
        }
        $crate::options::field_setters!($($rest)*);
    };
    ($(#[$doc:meta])* $name:ident: $ty:ty; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn $name(mut self, $name: $ty) -> Self {
            self.$name = $name;
            self
        }
        $crate::options::field_setters!($($rest)*);
    };
}
pub(crate) use field_setters;

/// The penalty's strengths `alpha_w`, `alpha_h` (finite, ≥ 0) and its share of L1, `l1_ratio`
/// (in `[0, 1]`).
pub(crate) fn check_penalty(alpha_w: f32, alpha_h: f32, l1_ratio: f32) -> Result<()> {
    for (name, value) in [("alpha_w", alpha_w), ("alpha_h", alpha_h)] {
        if !value.is_finite() || value < 0.0 {
            return Err(NmfError::InvalidRegularization { name, value });
        }
    }
    if !(0.0..=1.0).contains(&l1_ratio) {
        return Err(NmfError::InvalidL1Ratio(l1_ratio));
    }
    Ok(())
}

pub(crate) fn check_factor(
    factor: Factor,
    a: ArrayView2<'_, f32>,
    rows: usize,
    cols: usize,
) -> Result<()> {
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

/// Parameters that passed [`NmfParams::check`](crate::NmfParams::check) for a given data shape.
#[derive(Debug, Clone)]
pub struct ValidParams {
    pub(crate) rank: usize,
    pub(crate) solver: Solver,
    pub(crate) loss: Loss,
    pub(crate) init: Init,
    pub(crate) reg_w: Regularization,
    pub(crate) reg_h: Regularization,
    pub(crate) orthogonality: Orthogonality,
    pub(crate) iter: IterOptions,
    /// The fixed columns of W (sorted; every column: W is not updated).
    pub(crate) fixed_w: Vec<usize>,
    /// The fixed rows of H (sorted; every row: H is not updated).
    pub(crate) fixed_h: Vec<usize>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Solver::ALL {
            assert_eq!(Solver::from_name(s.name()), Some(s));
        }
        for l in Loss::ALL {
            assert_eq!(Loss::from_name(l.name()), Some(l));
        }
        assert_eq!(Solver::from_name("cd"), Some(Solver::Hals));
        assert_eq!(Solver::from_name("CD"), None);
        assert_eq!(Loss::from_name("itakura"), None);
        for b in [0.5f32, -1.0, 1.5, 3.0] {
            let l = Loss::beta(b);
            assert_eq!(Loss::from_name(&l.to_string()), Some(l));
        }
        assert_eq!(Loss::from_name("beta=nan"), None);
        for o in Orthogonality::ALL {
            assert_eq!(Orthogonality::from_name(o.name()), Some(o));
            for a in o.aliases() {
                assert_eq!(Orthogonality::from_name(a), Some(o));
            }
        }
        for i in Init::NAMED {
            assert_eq!(Init::from_name(i.name()).as_ref(), Some(i));
        }
        assert_eq!(Init::from_name("custom"), None);
        // Every alias names exactly one value, and no alias is another value's name.
        let mut solver_names: Vec<&str> = Solver::ALL
            .iter()
            .flat_map(|s| std::iter::once(s.name()).chain(s.aliases().iter().copied()))
            .collect();
        let mut loss_names: Vec<&str> = Loss::ALL
            .iter()
            .flat_map(|l| std::iter::once(l.name()).chain(l.aliases().iter().copied()))
            .collect();
        for names in [&mut solver_names, &mut loss_names] {
            let count = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), count, "a name given twice: {names:?}");
        }
        for l in Loss::ALL {
            for a in l.aliases() {
                assert_eq!(Loss::from_name(a), Some(l));
            }
        }
    }

    #[test]
    fn the_rules_of_solver_loss_and_orthogonality() {
        for s in Solver::ALL {
            for l in [
                Loss::Frobenius,
                Loss::KullbackLeibler,
                Loss::ItakuraSaito,
                Loss::beta(1.5),
            ] {
                let admitted = s.admits(l).is_ok();
                assert_eq!(
                    admitted,
                    s == Solver::MultiplicativeUpdate || l == Loss::Frobenius
                );
                for o in Orthogonality::ALL {
                    let ok = o.admits(s, l).is_ok();
                    let expected = o == Orthogonality::None
                        || (s == Solver::MultiplicativeUpdate && l == Loss::Frobenius);
                    assert_eq!(ok, expected, "{o:?} with {s:?} and {l}");
                }
            }
        }
    }

    #[test]
    fn beta_special_cases_are_the_named_losses() {
        assert_eq!(Loss::Beta(2.0), Loss::Frobenius);
        assert_eq!(Loss::Beta(1.0), Loss::KullbackLeibler);
        assert_eq!(Loss::Beta(-0.0), Loss::ItakuraSaito);
        assert!(matches!(Loss::beta(0.0), Loss::ItakuraSaito));
        assert_ne!(Loss::Beta(1.5), Loss::Beta(1.25));
        assert_eq!(Loss::Beta(f32::NAN), Loss::Beta(f32::NAN));
        assert_eq!(Loss::ItakuraSaito.mu_exponent(), 0.5);
        assert_eq!(Loss::Beta(3.0).mu_exponent(), 0.5);
        assert_eq!(Loss::Beta(1.5).mu_exponent(), 1.0);
        assert_eq!(Loss::Beta(0.5).mu_exponent(), 1.0 / 1.5);
    }

    #[test]
    fn fixed_components_resolve() {
        assert_eq!(Fixed::from(..).resolve(3), Ok(vec![0, 1, 2]));
        assert_eq!(Fixed::from([2, 0, 2]).resolve(3), Ok(vec![0, 2]));
        assert_eq!(Fixed::from(vec![3]).resolve(3), Err(3));
        assert_eq!(Fixed::None.resolve(3), Ok(vec![]));
    }
}
