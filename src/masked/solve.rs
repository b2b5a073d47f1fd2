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

/// Per-observation L2 weights on the engine: `λ₂ c` broadcast to m x r and `λ₂ d` to r x n,
/// with ones matrices of both shapes and scratch for the products.
struct Weights<M> {
    cw: M,
    ch: M,
    ones_w: M,
    ones_h: M,
    tmp_w: M,
    tmp_h: M,
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
        let num_w = e.zeros(m, r)?;
        let den_w = e.zeros(m, r)?;
        let num_h = e.zeros(r, n)?;
        let den_h = e.zeros(r, n)?;
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
                cw: e.upload(cw.view())?,
                ch: e.upload(ch.view())?,
                ones_w: e.upload(Array2::from_elem((m, r), 1.0f32).view())?,
                ones_h: e.upload(Array2::from_elem((r, n), 1.0f32).view())?,
                tmp_w: e.zeros(m, r)?,
                tmp_h: e.zeros(r, n)?,
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
            num_w,
            den_w,
            num_h,
            den_h,
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
    num_w: E::Mat,
    den_w: E::Mat,
    num_h: E::Mat,
    den_h: E::Mat,
    small: E::Mat,
    sums: E::Mat,
    weights: Option<Weights<E::Mat>>,
    /// The penalty the multiplicative step applies (the uniform L2 term and L1).
    step_reg: Regularization,
}

impl<E: Engine> Iteration for MaskedIteration<'_, E> {
    fn step(&mut self, _it: usize) -> Result<()> {
        let Self {
            e,
            cfg,
            mask,
            w,
            h,
            num_w,
            den_w,
            num_h,
            den_h,
            weights,
            step_reg,
            ..
        } = self;
        let (e, step_reg) = (&mut **e, *step_reg);
        // W ← W ⊙ ((M⊙V) Hᵀ) ⊘ ((M⊙WH) Hᵀ + λ₁ + λ₂ C W)
        e.v_ht(h, num_w)?;
        masked_product(e, mask, w, h, Side::Left, den_w)?;
        let weight = weights
            .as_mut()
            .map(|wt| (&wt.cw, &wt.ones_w, &mut wt.tmp_w));
        let eps = cfg.iter.epsilon;
        weighted_step(e, w, num_w, den_w, weight, Side::Left, step_reg, eps)?;
        // H ← H ⊙ (Wᵀ (M⊙V)) ⊘ (Wᵀ (M⊙WH) + λ₁ + λ₂ H D)
        e.wt_v(w, num_h)?;
        masked_product(e, mask, w, h, Side::Right, den_h)?;
        let weight = weights
            .as_mut()
            .map(|wt| (&wt.ch, &wt.ones_h, &mut wt.tmp_h));
        weighted_step(e, h, num_h, den_h, weight, Side::Right, step_reg, eps)
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
                    weighted_product(
                        e,
                        w,
                        &wt.cw,
                        &wt.ones_w,
                        &mut wt.tmp_w,
                        Side::Left,
                        cfg.iter.epsilon,
                    )?;
                    e.cross(&wt.tmp_w, w, Side::Left, small)?;
                    let pw = trace(&e.download(small)?);
                    weighted_product(
                        e,
                        h,
                        &wt.ch,
                        &wt.ones_h,
                        &mut wt.tmp_h,
                        Side::Right,
                        cfg.iter.epsilon,
                    )?;
                    e.cross(&wt.tmp_h, h, Side::Right, small)?;
                    let ph = trace(&e.download(small)?);
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

/// The multiplicative update of one factor `x` from its numerator `num` and its masked
/// product `den`: `x ← x ⊙ num ⊘ (den + x ⊙ c + λ₁ + λ₂ x)`, the weight term `x ⊙ c`
/// (formed in `tmp`) only with per-observation weights `(c, ones, tmp)`.
#[allow(clippy::too_many_arguments)]
fn weighted_step<E: Engine>(
    e: &mut E,
    x: &mut E::Mat,
    num: &E::Mat,
    den: &mut E::Mat,
    weight: Option<(&E::Mat, &E::Mat, &mut E::Mat)>,
    side: Side,
    reg: Regularization,
    eps: f32,
) -> Result<()> {
    if let Some((c, ones, tmp)) = weight {
        weighted_product(e, x, c, ones, tmp, side, eps)?;
        e.axpby(1.0, tmp, 1.0, den)?;
    }
    let den = MuDenominator::Elementwise(den);
    e.mu_step(x, num, den, side, reg, eps, MuRule::Plain)
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
