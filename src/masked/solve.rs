//! The masked multiplicative updates on an [`Engine`], and the initial factors.
//!
//! With `C = diag(c)` (m x m) and `D = diag(d)` (n x n) the L2 weights of the rows of W and the
//! columns of H (all 1, or the observed counts), one iteration is
//!
//! ```text
//!   W ← W ⊙ ((M⊙V) Hᵀ) ⊘ ((M⊙WH) Hᵀ + λ₁ + λ₂ C W)
//!   H ← H ⊙ (Wᵀ (M⊙V)) ⊘ (Wᵀ (M⊙WH) + λ₁ + λ₂ H D)
//! ```
//!
//! where the engine's data matrix is `M ⊙ V`, so `(M⊙V) Hᵀ` and `Wᵀ (M⊙V)` are its plain
//! products. Uniform weights go through `mu_step`'s own `l2·X` term; per-observation weights
//! are added to the denominator as `λ₂ C ⊙ W` (C broadcast to m x r), the elementwise product
//! being a `mu_step` with numerator `C` and denominator 1.
//!
//! With sparse data (the mask is the pattern of the stored entries, `Observed::Sparse`) the
//! masked products and the loss are the engine's pattern operations, `O(nnz·r)`.
//!
//! The objective, at each check: `F = ½‖M ⊙ (V − WH)‖² + λ₁(‖W‖₁ + ‖H‖₁) + ½λ₂(⟨CW, W⟩ + ⟨HD, H⟩)`,
//! from `masked_loss`, the traces of r x r products, and the component sums.

use ndarray::{Array1, Array2, Axis};
use rand::Rng;

use super::{MaskedData, MaskedInit, Observed, PenaltyScale};
use crate::engine::cpu::SparseOp;
use crate::engine::{with_engine, with_sparse_engine, EngineTask};
use crate::engine::{Backend, Engine, FactorSums, MuDenominator, MuRule, Side};
use crate::error::Result;
use crate::options::{Init, IterOptions, Regularization};
use crate::report::FitReport;
use crate::solver::history::{History, Iteration};

/// Damping of the row and column offsets of the fill: an offset is the sum of residuals over
/// (count + this), so rows with few observations stay near the global mean.
const FILL_DAMPING: f64 = 5.0;

/// Validated options of one run.
#[derive(Clone)]
pub(crate) struct Config {
    pub rank: usize,
    /// `λ₁` and `λ₂`, unscaled.
    pub reg: Regularization,
    pub penalty_scale: PenaltyScale,
    pub iter: IterOptions,
}

/// What a run produces.
pub(crate) struct Output {
    pub w: Array2<f32>,
    pub h: Array2<f32>,
    /// Losses, iterations, how the run ended and the engine's counters.
    pub report: FitReport,
}

/// The bias estimate of every entry: `μ + b_i + b_j` with damped offsets
/// `b_i = Σ_j∈Ω_i (v_ij − μ) / (|Ω_i| + k)`, `b_j = Σ_i∈Ω_j (v_ij − μ − b_i) / (|Ω_j| + k)`.
fn bias_fill(v: &Array2<f32>, mask: &Array2<f32>, data: &MaskedData) -> Array2<f32> {
    let (m, n) = v.dim();
    let mu = v.iter().map(|&x| x as f64).sum::<f64>() / data.count as f64;
    let mut bi = Array1::<f64>::zeros(m);
    for (i, (vr, mr)) in v
        .axis_iter(Axis(0))
        .zip(mask.axis_iter(Axis(0)))
        .enumerate()
    {
        let s: f64 = vr
            .iter()
            .zip(mr)
            .filter(|(_, &k)| k != 0.0)
            .map(|(&x, _)| x as f64 - mu)
            .sum();
        bi[i] = s / (data.row_counts[i] as f64 + FILL_DAMPING);
    }
    let mut bj = Array1::<f64>::zeros(n);
    for ((i, j), &k) in mask.indexed_iter() {
        if k != 0.0 {
            bj[j] += v[[i, j]] as f64 - mu - bi[i];
        }
    }
    for (j, b) in bj.iter_mut().enumerate() {
        *b /= data.col_counts[j] as f64 + FILL_DAMPING;
    }
    Array2::from_shape_fn((m, n), |(i, j)| {
        if mask[[i, j]] != 0.0 {
            v[[i, j]]
        } else {
            (mu + bi[i] + bj[j]).max(0.0) as f32
        }
    })
}

/// The initial `(W, H)` for [`MaskedInit::Filled`] or [`MaskedInit::Random`].
pub(crate) fn initialize(
    data: &MaskedData,
    r: usize,
    init: &MaskedInit,
    rng: &mut impl Rng,
) -> Result<(Array2<f32>, Array2<f32>)> {
    // The mean of the observed entries (the zeros of M ⊙ V are not data).
    let mu = || match &data.obs {
        Observed::Dense { v, .. } => v.iter().map(|&x| x as f64).sum::<f64>(),
        Observed::Sparse { v, .. } => v.values().iter().map(|&x| x as f64).sum::<f64>(),
    } / data.count as f64;
    Ok(match (init, &data.obs) {
        (MaskedInit::Filled, Observed::Dense { v, mask }) => {
            let filled = bias_fill(v, mask, data);
            let mean = || crate::init::mean(filled.view());
            crate::init::start(filled.view(), mean, &Init::Nndsvda, r, rng)
        }
        (MaskedInit::Filled, Observed::Sparse { v, vt }) => {
            let filled = super::sparse::Filled::new(v, vt, FILL_DAMPING)?;
            crate::init::start(filled.op(), || filled.mean(), &Init::Nndsvda, r, rng)
        }
        (MaskedInit::Random | MaskedInit::Custom { .. }, Observed::Dense { v, .. }) => {
            crate::init::start(v.view(), mu, &Init::Random, r, rng)
        }
        (MaskedInit::Random | MaskedInit::Custom { .. }, Observed::Sparse { v, vt }) => {
            crate::init::start(SparseOp { a: v, at: vt }, mu, &Init::Random, r, rng)
        }
    })
}

/// Fit from `(w0, h0)` on the engine `backend` selects; returns the engine's name too.
pub(crate) fn run(
    data: &MaskedData,
    cfg: &Config,
    w0: Array2<f32>,
    h0: Array2<f32>,
    backend: &Backend,
) -> Result<(Output, String)> {
    let task = Task { data, cfg, w0, h0 };
    match &data.obs {
        Observed::Dense { v, .. } => with_engine(v.view(), backend, task),
        Observed::Sparse { v, vt } => with_sparse_engine(v, vt, backend, task),
    }
}

/// The mask on the engine: a dense 0/1 matrix, or (`None`) the pattern of the engine's sparse
/// V.
fn masked_loss<E: Engine>(e: &mut E, mask: &Option<E::Mat>, w: &E::Mat, h: &E::Mat) -> Result<f64> {
    match mask {
        Some(mk) => e.masked_loss(mk, w, h),
        None => e.pattern_loss(w, h),
    }
}

/// `(M ⊙ WH) Hᵀ` or `Wᵀ (M ⊙ WH)` with the mask as in [`masked_loss`].
fn masked_product<E: Engine>(
    e: &mut E,
    mask: &Option<E::Mat>,
    w: &E::Mat,
    h: &E::Mat,
    side: Side,
    out: &mut E::Mat,
) -> Result<()> {
    match mask {
        Some(mk) => e.masked_product(mk, w, h, side, out),
        None => e.pattern_product(w, h, side, out),
    }
}

struct Task<'a> {
    data: &'a MaskedData,
    cfg: &'a Config,
    w0: Array2<f32>,
    h0: Array2<f32>,
}

/// One factor's per-observation L2 weight on the engine: `λ₂ c` (W, m x r) or `λ₂ d` (H,
/// r x n) broadcast to the factor's shape, a ones matrix of that shape and scratch for the
/// products.
struct Weight<M> {
    c: M,
    ones: M,
    tmp: M,
}

impl<M> Weight<M> {
    /// `c` (the broadcast weights) on the engine, with its ones and scratch.
    fn upload<E: Engine<Mat = M>>(e: &mut E, c: Array2<f32>) -> Result<Weight<M>> {
        let dim = c.dim();
        Ok(Weight {
            c: e.upload(c.view())?,
            ones: e.upload(Array2::from_elem(dim, 1.0f32).view())?,
            tmp: e.zeros(dim.0, dim.1)?,
        })
    }
}

/// Per-observation L2 weights of W and of H.
struct Weights<M> {
    w: Weight<M>,
    h: Weight<M>,
}

/// The numerator and the masked product (the denominator) of one factor's update, each shaped
/// like the factor.
struct Ratio<M> {
    num: M,
    den: M,
}

impl<M> Ratio<M> {
    fn zeros<E: Engine<Mat = M>>(e: &mut E, rows: usize, cols: usize) -> Result<Ratio<M>> {
        Ok(Ratio {
            num: e.zeros(rows, cols)?,
            den: e.zeros(rows, cols)?,
        })
    }
}

impl EngineTask for Task<'_> {
    type Output = Output;

    fn run<E: Engine>(self, e: &mut E) -> Result<Output> {
        let Task { data, cfg, w0, h0 } = self;
        let (m, n) = e.dims();
        let r = cfg.rank;
        let Regularization { l1, l2 } = cfg.reg;
        let mask = match &data.obs {
            Observed::Dense { mask, .. } => Some(e.upload(mask.view())?),
            Observed::Sparse { .. } => None,
        };
        let w = e.upload(w0.view())?;
        let h = e.upload(h0.view())?;
        let ratio_w = Ratio::zeros(e, m, r)?;
        let ratio_h = Ratio::zeros(e, r, n)?;
        let small = e.zeros(r, r)?;
        let sums = e.zeros(r, 1)?;

        // The uniform L2 term rides in mu_step; per-observation weights go in the denominator.
        let weighted = cfg.penalty_scale == PenaltyScale::PerObservation && l2 > 0.0;
        let step_reg = Regularization {
            l1,
            l2: if weighted { 0.0 } else { l2 },
        };
        let weights = if weighted {
            let cw = Array2::from_shape_fn((m, r), |(i, _)| l2 * data.row_counts[i] as f32);
            let ch = Array2::from_shape_fn((r, n), |(_, j)| l2 * data.col_counts[j] as f32);
            Some(Weights {
                w: Weight::upload(e, cw)?,
                h: Weight::upload(e, ch)?,
            })
        } else {
            None
        };

        let mut fit = MaskedIteration {
            e,
            cfg,
            mask,
            w,
            h,
            ratio_w,
            ratio_h,
            small,
            sums,
            weights,
            step_reg,
        };
        let mut report = History::drive(&mut fit, &cfg.iter)?;
        let MaskedIteration { e, w, h, .. } = fit;
        let (w, h) = (e.download(&w)?, e.download(&h)?);
        report.gpu_stats = e.stats();
        Ok(Output { w, h, report })
    }
}

/// A masked fit's iteration for [`History::drive`]: the multiplicative updates of W and H
/// from the observed entries, and the penalised objective at checks.
struct MaskedIteration<'a, E: Engine> {
    e: &'a mut E,
    cfg: &'a Config,
    /// The dense mask (a sparse V is its own mask).
    mask: Option<E::Mat>,
    w: E::Mat,
    h: E::Mat,
    ratio_w: Ratio<E::Mat>,
    ratio_h: Ratio<E::Mat>,
    small: E::Mat,
    sums: E::Mat,
    weights: Option<Weights<E::Mat>>,
    /// The penalty the multiplicative step applies (the uniform L2 term and L1).
    step_reg: Regularization,
}

impl<E: Engine> Iteration for MaskedIteration<'_, E> {
    fn step(&mut self, _it: usize) -> Result<()> {
        // W ← W ⊙ ((M⊙V) Hᵀ) ⊘ ((M⊙WH) Hᵀ + λ₁ + λ₂ C W)
        self.update(Side::Left)?;
        // H ← H ⊙ (Wᵀ (M⊙V)) ⊘ (Wᵀ (M⊙WH) + λ₁ + λ₂ H D)
        self.update(Side::Right)
    }

    /// `½‖M ⊙ (V − WH)‖² + λ₁(‖W‖₁ + ‖H‖₁) + ½ λ₂ (‖W‖² + ‖H‖²)` (per-observation weights in
    /// place of the uniform L2 term when asked for).
    fn loss(&mut self) -> Result<f64> {
        let Self {
            e,
            cfg,
            mask,
            w,
            h,
            small,
            sums,
            weights,
            ..
        } = self;
        let (e, w, h) = (&mut **e, &*w, &*h);
        let Regularization { l1, l2 } = cfg.reg;
        let mut f = masked_loss(e, mask, w, h)?;
        if l2 > 0.0 || l1 > 0.0 {
            e.gram(w, Side::Left, small)?;
            let k = e.download(small)?;
            e.gram(h, Side::Right, small)?;
            let g = e.download(small)?;
            if l1 > 0.0 {
                // ‖H‖₁ from H's row sums; ‖W‖₁ from W's column sums, where the engine
                // reports 1 for a zero column (which has a zero Gram diagonal).
                e.factor_sums(h, FactorSums::RowsOfH, sums)?;
                let sh: f64 = e.download(sums)?.iter().map(|&x| x as f64).sum();
                e.factor_sums(w, FactorSums::ColumnsOfW, sums)?;
                let sw: f64 = e
                    .download(sums)?
                    .iter()
                    .enumerate()
                    .filter(|&(t, _)| k[[t, t]] != 0.0)
                    .map(|(_, &x)| x as f64)
                    .sum();
                f += l1 as f64 * (sw + sh);
            }
            match weights {
                Some(wt) if l2 > 0.0 => {
                    // ⟨λ₂C ⊙ W, W⟩ = tr((λ₂C ⊙ W)ᵀ W), likewise for H.
                    let eps = cfg.iter.epsilon;
                    let pw = weighted_norm(e, w, &mut wt.w, Side::Left, eps, small)?;
                    let ph = weighted_norm(e, h, &mut wt.h, Side::Right, eps, small)?;
                    f += 0.5 * (pw + ph);
                }
                _ if l2 > 0.0 => f += 0.5 * l2 as f64 * (trace(&k) + trace(&g)),
                _ => {}
            }
        }
        Ok(f)
    }

    fn factors(&mut self) -> Result<Option<(Array2<f32>, Array2<f32>)>> {
        Ok(Some((self.e.download(&self.w)?, self.e.download(&self.h)?)))
    }
}

impl<E: Engine> MaskedIteration<'_, E> {
    /// The update of W (`Side::Left`) or H (`Right`): its numerator `(M⊙V) Hᵀ` or
    /// `Wᵀ (M⊙V)`, its masked product, then [`weighted_step`].
    fn update(&mut self, side: Side) -> Result<()> {
        let e = &mut *self.e;
        let eps = self.cfg.iter.epsilon;
        let (ratio, weight) = match side {
            Side::Left => (&mut self.ratio_w, self.weights.as_mut().map(|wt| &mut wt.w)),
            Side::Right => (&mut self.ratio_h, self.weights.as_mut().map(|wt| &mut wt.h)),
        };
        match side {
            Side::Left => e.v_ht(&self.h, &mut ratio.num)?,
            Side::Right => e.wt_v(&self.w, &mut ratio.num)?,
        }
        masked_product(e, &self.mask, &self.w, &self.h, side, &mut ratio.den)?;
        let x = match side {
            Side::Left => &mut self.w,
            Side::Right => &mut self.h,
        };
        weighted_step(e, x, ratio, weight, side, self.step_reg, eps)
    }
}

/// The multiplicative update of one factor `x` from its numerator `num` and its masked
/// product `den` (`ratio`): `x ← x ⊙ num ⊘ (den + x ⊙ c + λ₁ + λ₂ x)`, the weight term
/// `x ⊙ c` (formed in its `tmp`) only with a per-observation `weight`.
fn weighted_step<E: Engine>(
    e: &mut E,
    x: &mut E::Mat,
    ratio: &mut Ratio<E::Mat>,
    weight: Option<&mut Weight<E::Mat>>,
    side: Side,
    reg: Regularization,
    eps: f32,
) -> Result<()> {
    if let Some(wt) = weight {
        weighted_product(e, x, &wt.c, &wt.ones, &mut wt.tmp, side, eps)?;
        e.axpby(1.0, &wt.tmp, 1.0, &mut ratio.den)?;
    }
    let den = MuDenominator::Elementwise(&ratio.den);
    e.mu_step(x, &ratio.num, den, side, reg, eps, MuRule::Plain)
}

/// `⟨c ⊙ x, x⟩ = tr((c ⊙ x)ᵀ x)` for one factor `x` and its `weight` (`small`, r x r, is
/// work space).
fn weighted_norm<E: Engine>(
    e: &mut E,
    x: &E::Mat,
    weight: &mut Weight<E::Mat>,
    side: Side,
    eps: f32,
    small: &mut E::Mat,
) -> Result<f64> {
    weighted_product(e, x, &weight.c, &weight.ones, &mut weight.tmp, side, eps)?;
    e.cross(&weight.tmp, x, side, small)?;
    Ok(trace(&e.download(small)?))
}

/// `out ← x ⊙ c`, as the multiplicative step `out ← out ⊙ c ⊘ 1` from `out = x`
/// (`side` says whether x is shaped like W or like H).
fn weighted_product<E: Engine>(
    e: &mut E,
    x: &E::Mat,
    c: &E::Mat,
    ones: &E::Mat,
    out: &mut E::Mat,
    side: Side,
    eps: f32,
) -> Result<()> {
    e.axpby(1.0, x, 0.0, out)?;
    e.mu_step(
        out,
        c,
        MuDenominator::Elementwise(ones),
        side,
        Regularization::default(),
        eps,
        MuRule::Plain,
    )
}

fn trace(a: &Array2<f32>) -> f64 {
    a.diag().iter().map(|&x| x as f64).sum()
}
