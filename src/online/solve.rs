//! The online loop on an engine: each batch's encodings, its cost, the statistics and the
//! dictionary update, and scikit-learn's stopping rules; written once against [`Engine`].

use ndarray::{s, Array2};

use super::params::{OnlineParams, OnlineProgress};
use super::prefetch::{Batch, Batches};
use super::state::OnlineState;
use crate::engine::{
    Engine, EngineTask, FactorSums, InnerStop, MuDenominator, MuRule, Side, BETA_FLOOR,
};
use crate::error::{NmfError, Result};
use crate::options::{Loss, Progress, Regularization, Solver};
use crate::solver::{hals, mu};

/// W and the statistics, on the host between runs.
#[derive(Debug, Clone)]
pub(crate) struct Stats {
    /// The dictionary W (m x r).
    pub w: Array2<f32>,
    /// What the fit has accumulated, by update rule.
    pub sums: Statistics<Array2<f32>>,
}

/// What an online fit accumulates over its batches, each batch's term weighted by
/// `ρ = forget_factor^(b/n)` once per later batch, by update rule.
#[derive(Debug, Clone)]
pub(crate) enum Statistics<M> {
    /// HALS (Mairal et al. 2010, Algorithm 2): `hht = Σ ρ H_b H_bᵀ` (r x r) and
    /// `vht = Σ ρ V_b H_bᵀ` (m x r), the Gram matrix and numerator of W's sweep
    /// ([`hals::update_w`]).
    Hals { hht: M, vht: M },
    /// The multiplicative rule (scikit-learn's online rule): `numerator = Σ ρ W ⊙ N_b` and
    /// `denominator = Σ ρ D_b` (m x r each), with `N_b`, `D_b` the batch rule's numerator and
    /// denominator of W; W is their ratio.
    Mu { numerator: M, denominator: M },
}

impl Statistics<Array2<f32>> {
    /// The statistics before any batch: zero for HALS; scikit-learn's start for the
    /// multiplicative rule (`numerator₀ = W₀`, `denominator₀ = 1`), so that the first update
    /// keeps the scale of W₀.
    pub fn start(w: &Array2<f32>, rule: Solver) -> Self {
        let (m, r) = w.dim();
        match rule {
            Solver::MultiplicativeUpdate => Statistics::Mu {
                numerator: w.clone(),
                denominator: Array2::ones((m, r)),
            },
            _ => Statistics::Hals {
                hht: Array2::zeros((r, r)),
                vht: Array2::zeros((m, r)),
            },
        }
    }

    /// The statistics of `rule` from the pair [`OnlineState`] stores.
    pub fn from_pair(rule: Solver, first: Array2<f32>, second: Array2<f32>) -> Self {
        match rule {
            Solver::MultiplicativeUpdate => Statistics::Mu {
                numerator: first,
                denominator: second,
            },
            _ => Statistics::Hals {
                hht: first,
                vht: second,
            },
        }
    }
}

impl<M> Statistics<M> {
    /// The pair as [`OnlineState`] stores it: `(hht, vht)` or `(numerator, denominator)`.
    pub fn into_pair(self) -> (M, M) {
        match self {
            Statistics::Hals { hht, vht } => (hht, vht),
            Statistics::Mu {
                numerator,
                denominator,
            } => (numerator, denominator),
        }
    }

    /// Each matrix through `f` (to the engine and back).
    fn try_map<N>(&self, mut f: impl FnMut(&M) -> Result<N>) -> Result<Statistics<N>> {
        Ok(match self {
            Statistics::Hals { hht, vht } => Statistics::Hals {
                hht: f(hht)?,
                vht: f(vht)?,
            },
            Statistics::Mu {
                numerator,
                denominator,
            } => Statistics::Mu {
                numerator: f(numerator)?,
                denominator: f(denominator)?,
            },
        })
    }
}

impl Stats {
    /// W₀ and the statistics before any batch ([`Statistics::start`]).
    pub fn start(w: Array2<f32>, rule: Solver) -> Stats {
        let sums = Statistics::start(&w, rule);
        Stats { w, sums }
    }
}

/// Every sample's encodings, kept from one pass to the next (`fresh_restarts(false)`).
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    /// The encodings (r x n).
    pub h: Array2<f32>,
    /// The samples of the first pass whose encodings `h` holds (all with `h_init`, those
    /// before the resumed sample for a resumed fit); after the first pass it holds all.
    pub seen: usize,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnlineStop {
    /// Every epoch of the budget ran (or, for `partial_fit`, the batch was used).
    MaxEpochs,
    /// W moved less than `tol` (relative) in one batch.
    Converged,
    /// The smoothed batch cost found no new minimum in `max_no_improvement` batches.
    NoImprovement,
    /// The stop flag was raised; W is the one after the last batch.
    Interrupted,
}

/// The state of the stopping rules (scikit-learn's `_minibatch_convergence`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Tracker {
    /// Batches done, over all epochs (and earlier `partial_fit` calls).
    pub steps: usize,
    /// Samples seen.
    pub samples: u64,
    /// The smoothed batch cost.
    pub ewa: Option<f64>,
    pub ewa_min: Option<f64>,
    pub no_improvement: usize,
    /// The last batch's cost.
    pub last_cost: f64,
    /// Epochs begun.
    pub epochs: usize,
}

/// How a run uses its batches.
pub(crate) enum Mode<'s> {
    /// Learn W (fit, partial_fit); `n` samples per pass; `check`: apply the stopping rules;
    /// `kept`: the encodings kept between passes.
    Learn {
        n: usize,
        check: bool,
        kept: Option<&'s mut Kept>,
    },
    /// Encode each batch with W fixed and hand `(col0, H_b)` to the sink.
    Encode(&'s mut (dyn FnMut(usize, Array2<f32>) -> Result<()> + Send)),
}

/// The work of one run on an engine built over the first batch.
pub(crate) struct Run<'a, 's> {
    pub params: &'a OnlineParams,
    pub first: BatchInfo,
    pub rest: &'a Batches,
    pub stats: Stats,
    pub tracker: Tracker,
    pub mode: Mode<'s>,
}

/// Where a batch lies and its mean (its data are in the engine).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchInfo {
    pub epoch: usize,
    pub col0: usize,
    pub cols: usize,
    pub mean: f64,
}

impl BatchInfo {
    pub fn of(b: &Batch) -> BatchInfo {
        BatchInfo {
            epoch: b.epoch,
            col0: b.col0,
            cols: b.data.ncols(),
            mean: b.mean,
        }
    }
}

/// What a run leaves.
pub(crate) struct RunEnd {
    pub stats: Stats,
    pub tracker: Tracker,
    pub stop: OnlineStop,
    pub gpu_stats: Option<crate::GpuStats>,
}

/// The matrices of one batch width.
struct BatchMats<M> {
    cols: usize,
    h: M,
    q: M,
    prev: M,
    ones: M,
}

const NO_REG: Regularization = Regularization { l1: 0.0, l2: 0.0 };

impl EngineTask for Run<'_, '_> {
    type Output = RunEnd;

    fn run<E: Engine>(self, e: &mut E) -> Result<RunEnd> {
        let Run {
            params,
            first,
            rest,
            stats,
            mut tracker,
            mode,
        } = self;
        let (n, check, mut kept, mut sink) = match mode {
            Mode::Learn { n, check, kept } => (n, check, kept, None),
            Mode::Encode(sink) => (0, false, None, Some(sink)),
        };
        let learn = sink.is_none();
        let (m, _) = e.dims();
        let r = params.rank;
        let loss = params.loss;
        let rule = params.rule();
        let eps = params.iter.epsilon;
        let tol = f64::from(params.iter.tol);
        let mut w = e.upload(stats.w.view())?;
        let mut sums = stats.sums.try_map(|a| e.upload(a.view()))?;
        let kl = loss == Loss::KullbackLeibler;
        // K = WᵀW (Frobenius) or the column sums of W (KL), for the encodings.
        let mut k = e.zeros(r, if kl { 1 } else { r })?;
        let mut small = e.zeros(r, r)?;
        let mut p = e.zeros(m, r)?;
        let mut prev_w = e.zeros(m, r)?;
        let ones_mr = if learn {
            Some(e.upload(Array2::<f32>::ones((m, r)).view())?)
        } else {
            None
        };
        let mut work = if learn && rule == Solver::MultiplicativeUpdate {
            let mut first_col = Array2::<f32>::zeros((m, r));
            first_col.column_mut(0).fill(1.0);
            Some(MuWork {
                t: e.zeros(m, r)?,
                dn: e.zeros(m, r)?,
                first_col: e.upload(first_col.view())?,
            })
        } else {
            None
        };
        let mut mats: Vec<BatchMats<E::Mat>> = Vec::new();
        let mut w_sq = partner(e, &w, kl, &mut k, &mut small)?;
        let mut info = first;
        let (_, reg_h) = params.penalties(m, 1);
        let stop = loop {
            let i = match mats.iter().position(|x| x.cols == info.cols) {
                Some(i) => i,
                None => {
                    let b = info.cols;
                    mats.push(BatchMats {
                        cols: b,
                        h: e.zeros(r, b)?,
                        q: e.zeros(r, b)?,
                        prev: e.zeros(r, b)?,
                        ones: e.upload(Array2::<f32>::ones((r, b)).view())?,
                    });
                    mats.len() - 1
                }
            };
            let bm = &mut mats[i];
            let b = info.cols;
            let cols = info.col0..info.col0 + b;
            // The start of the encodings: the kept ones (one step from them), or
            // sqrt(mean(V_b)/r) everywhere (the whole inner budget).
            let inner = match kept.as_deref() {
                Some(kp) if info.epoch > 0 || info.col0 < kp.seen => {
                    bm.h = e.upload(kp.h.slice(s![.., cols.clone()]))?;
                    1
                }
                _ => {
                    let start = (info.mean.max(0.0) / r as f64).sqrt() as f32;
                    e.axpby(start, &bm.ones, 0.0, &mut bm.h)?;
                    params.inner_max_iter
                }
            };
            let solve = Solve {
                loss,
                rule,
                reg: reg_h,
                eps,
                tol,
                inner_max: inner,
            };
            encode(e, solve, &w, &k, bm, &mut small)?;
            if let Some(kp) = kept.as_deref_mut() {
                let h = e.download(&bm.h)?;
                kp.h.slice_mut(s![.., cols]).assign(&h);
            }
            if let Some(sink) = sink.as_mut() {
                let h = e.download(&bm.h)?;
                sink(info.col0, h)?;
                tracker.samples += b as u64;
                tracker.steps += 1;
                if params.iter.stop_requested() {
                    break OnlineStop::Interrupted;
                }
            } else {
                let Some(ones_mr) = &ones_mr else {
                    return Err(missing_work());
                };
                let (reg_w, _) = params.penalties(m, b);
                // The batch's cost with the new encodings and the W they were solved for,
                // with the penalties as scikit-learn counts them.
                let divergence = match loss {
                    Loss::Frobenius => match e.loss_from_products(&bm.q, &k, &bm.h)? {
                        Some(l) => l,
                        None => e.loss(&w, &bm.h, loss, eps)?,
                    },
                    _ => e.loss(&w, &bm.h, loss, eps)?,
                };
                let mut penalty = 0.0;
                if reg_h.l1 > 0.0 {
                    e.cross(&bm.h, &bm.ones, Side::Right, &mut small)?;
                    penalty += f64::from(reg_h.l1) * trace(e, &small)?;
                }
                if reg_h.l2 > 0.0 {
                    penalty += f64::from(reg_h.l2) * trace_gram(e, &bm.h, Side::Right, &mut small)?;
                }
                if reg_w.l1 > 0.0 {
                    e.cross(&w, ones_mr, Side::Left, &mut small)?;
                    penalty += f64::from(reg_w.l1) * trace(e, &small)?;
                }
                if reg_w.l2 > 0.0 {
                    penalty += f64::from(reg_w.l2) * w_sq;
                }
                let cost = (divergence + penalty) / b as f64;
                if !cost.is_finite() {
                    return Err(NmfError::NumericalBreakdown {
                        iteration: tracker.steps + 1,
                    });
                }
                let rho = params.forget_factor.powf(b as f32 / n.max(1) as f32);
                let dw_sq = match &mut sums {
                    Statistics::Mu {
                        numerator,
                        denominator,
                    } => {
                        let Some(wk) = &mut work else {
                            return Err(missing_work());
                        };
                        // D_b: W (H_b H_bᵀ) (Frobenius) or 1 (H_b 1)ᵀ (KL: the rows of
                        // 1_r (H_b 1)ᵀ = 1 H_bᵀ, picked by a first column of ones), plus the
                        // penalty's gradient; N_b = V_b H_bᵀ or (V_b ⊘ W H_b) H_bᵀ.
                        if kl {
                            e.kl_numerator(&w, &bm.h, Side::Left, &mut p)?;
                            e.cross(&bm.ones, &bm.h, Side::Right, &mut small)?;
                            e.mul_small(&wk.first_col, &small, Side::Left, &mut wk.dn)?;
                        } else {
                            e.v_ht_and_gram(&bm.h, &mut p, &mut small)?;
                            e.mul_small(&w, &small, Side::Left, &mut wk.dn)?;
                        }
                        if reg_w.l1 > 0.0 {
                            e.axpby(reg_w.l1, ones_mr, 1.0, &mut wk.dn)?;
                        }
                        if reg_w.l2 > 0.0 {
                            e.axpby(reg_w.l2, &w, 1.0, &mut wk.dn)?;
                        }
                        // numerator ← ρ·numerator + W ⊙ N_b, denominator ← ρ·denominator +
                        // D_b, W ← numerator ⊘ denominator (scikit-learn's online
                        // multiplicative update; entries below f64's epsilon flushed for KL).
                        e.axpby(1.0, &w, 0.0, &mut wk.t)?;
                        let plain = MuDenominator::Elementwise(ones_mr);
                        e.mu_step(&mut wk.t, &p, plain, Side::Left, NO_REG, eps, MuRule::Plain)?;
                        e.axpby(1.0, &wk.t, rho, numerator)?;
                        e.axpby(1.0, &wk.dn, rho, denominator)?;
                        e.axpby(1.0, &w, 0.0, &mut prev_w)?;
                        e.axpby(1.0, ones_mr, 0.0, &mut w)?;
                        let flush = if kl {
                            MuRule::Power {
                                gamma: 1.0,
                                floor: BETA_FLOOR,
                            }
                        } else {
                            MuRule::Plain
                        };
                        let ratio = MuDenominator::Elementwise(denominator);
                        e.mu_step(&mut w, numerator, ratio, Side::Left, NO_REG, eps, flush)?;
                        e.axpby(1.0, &w, -1.0, &mut prev_w)?;
                        trace_gram(e, &prev_w, Side::Left, &mut small)?
                    }
                    Statistics::Hals { hht, vht } => {
                        // hht ← ρ·hht + H Hᵀ, vht ← ρ·vht + V Hᵀ, then the batch fit's W
                        // sweep against them (Mairal et al. 2010, Algorithm 2).
                        e.v_ht_and_gram(&bm.h, &mut p, &mut small)?;
                        e.axpby(1.0, &small, rho, hht)?;
                        e.axpby(1.0, &p, rho, vht)?;
                        let moved = Some((&mut prev_w, &mut small));
                        hals::update_w(e, &mut w, vht, hht, reg_w, moved)?
                    }
                };
                w_sq = partner(e, &w, kl, &mut k, &mut small)?;
                tracker.samples += b as u64;
                let verdict = if check {
                    tracker.step(params, cost, b, n, dw_sq, w_sq)
                } else {
                    tracker.steps += 1;
                    tracker.last_cost = cost;
                    None
                };
                report(params, &tracker, info, n);
                if let Some((every, f)) = &params.on_state {
                    if tracker.steps % every.max(&1) == 0 {
                        let (num, den) = sums.try_map(|a| e.download(a))?.into_pair();
                        let state = OnlineState {
                            w: e.download(&w)?,
                            num,
                            den,
                            steps: tracker.steps,
                            samples: tracker.samples,
                            epochs: tracker.epochs,
                            smoothed_cost: tracker.ewa,
                            smoothed_min: tracker.ewa_min,
                            no_improvement: tracker.no_improvement,
                            last_cost: tracker.last_cost,
                        };
                        f(&state, kept.as_deref().map(|k| k.h.view()))?;
                    }
                }
                if let Some(v) = verdict {
                    break v;
                }
                if params.iter.stop_requested() {
                    break OnlineStop::Interrupted;
                }
            }
            match rest.recv() {
                Ok(Ok(next)) => {
                    info = BatchInfo::of(&next);
                    if info.epoch + 1 > tracker.epochs {
                        tracker.epochs = info.epoch + 1;
                    }
                    e.set_batch(next.data)?;
                }
                Ok(Err(err)) => return Err(err),
                Err(_) => break OnlineStop::MaxEpochs,
            }
        };
        let _ = w_sq;
        let stats = Stats {
            w: e.download(&w)?,
            sums: sums.try_map(|a| e.download(a))?,
        };
        Ok(RunEnd {
            stats,
            tracker,
            stop,
            gpu_stats: e.stats(),
        })
    }
}

/// The work matrices of the multiplicative rule (m x r each).
struct MuWork<M> {
    /// `W ⊙ N_b`.
    t: M,
    /// `D_b`.
    dn: M,
    /// Ones in the first column, zeros elsewhere.
    first_col: M,
}

fn missing_work() -> NmfError {
    NmfError::GpuInternal {
        message: "the work matrices of an online fit are missing".into(),
    }
}

/// The progress callbacks after a batch.
fn report(params: &OnlineParams, tracker: &Tracker, info: BatchInfo, n: usize) {
    let smoothed = tracker.ewa.unwrap_or(tracker.last_cost);
    if let Some(f) = &params.on_batch {
        f(&OnlineProgress {
            epoch: info.epoch,
            max_epochs: params.iter.max_iter,
            samples: info.col0 + info.cols,
            samples_per_epoch: n,
            batch_cost: tracker.last_cost,
            smoothed_cost: smoothed,
        });
    }
    if let Some(f) = &params.iter.progress {
        let per_epoch = n.div_ceil(params.batch_size.max(1));
        f(&Progress {
            iteration: tracker.steps,
            max_iter: params.iter.max_iter.saturating_mul(per_epoch),
            loss: smoothed,
        });
    }
}

impl Tracker {
    /// scikit-learn's `_minibatch_convergence` after a batch of `b` of `n` samples with cost
    /// `cost`, W having moved by `‖ΔW‖² = dw_sq` to `‖W‖² = w_sq`: the first batch is not
    /// judged; the cost is smoothed with weight `min(b / (n + 1), 1)`; the run stops when
    /// `‖ΔW‖ ≤ tol·‖W‖`, or when the smoothed cost has found no new minimum in
    /// `max_no_improvement` batches.
    fn step(
        &mut self,
        params: &OnlineParams,
        cost: f64,
        b: usize,
        n: usize,
        dw_sq: f64,
        w_sq: f64,
    ) -> Option<OnlineStop> {
        self.steps += 1;
        self.last_cost = cost;
        if self.steps == 1 {
            return None;
        }
        self.ewa = Some(match self.ewa {
            None => cost,
            Some(ewa) => {
                let alpha = (b as f64 / (n as f64 + 1.0)).min(1.0);
                ewa * (1.0 - alpha) + cost * alpha
            }
        });
        let tol = f64::from(params.iter.tol);
        if tol > 0.0 && dw_sq <= tol * tol * w_sq {
            return Some(OnlineStop::Converged);
        }
        let ewa = self.ewa.unwrap_or(cost);
        if self.ewa_min.is_none_or(|min| ewa < min) {
            self.no_improvement = 0;
            self.ewa_min = Some(ewa);
        } else {
            self.no_improvement += 1;
        }
        match params.max_no_improvement {
            Some(limit) if self.no_improvement >= limit => Some(OnlineStop::NoImprovement),
            _ => None,
        }
    }
}

/// How a batch's encodings are solved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Solve {
    pub loss: Loss,
    pub rule: Solver,
    /// The encodings' penalty.
    pub reg: Regularization,
    pub eps: f32,
    pub tol: f64,
    pub inner_max: usize,
}

/// Solve the batch's encodings H (r x b, holding the start) with W fixed: HALS sweeps over
/// H's rows (Frobenius, with `Q = Wᵀ V_b`, `K = Wᵀ W`) or multiplicative updates
/// (`H ← H ⊙ Q ⊘ (K H + l1 + l2 H)` for Frobenius, `H ← H ⊙ (Wᵀ (V_b ⊘ W H)) ⊘ (Wᵀ 1 + l1 +
/// l2 H)` for KL), until `‖ΔH‖ ≤ tol·‖H‖` or `inner_max` steps.
fn encode<E: Engine>(
    e: &mut E,
    solve: Solve,
    w: &E::Mat,
    k: &E::Mat,
    bm: &mut BatchMats<E::Mat>,
    small: &mut E::Mat,
) -> Result<()> {
    let Solve {
        loss,
        rule,
        reg,
        eps,
        tol,
        inner_max,
    } = solve;
    if loss == Loss::Frobenius {
        e.wt_v(w, &mut bm.q)?;
        if rule != Solver::MultiplicativeUpdate {
            // The sweeps and their stopping rule in one engine call: the GPU engine decides
            // on the device, without reading a move back.
            let stop = InnerStop::Relative { tol };
            return e.hals_sweeps(
                &mut bm.h,
                &bm.q,
                k,
                Side::Right,
                reg,
                inner_max,
                stop,
                &mut bm.prev,
                small,
            );
        }
    }
    // The batch fit's multiplicative H update, the relative rule after each (on the device on
    // the GPU engine, which then runs the whole budget, undoing the steps after the rule is
    // met).
    for sweep in 0..inner_max {
        e.axpby(1.0, &bm.h, 0.0, &mut bm.prev)?;
        mu::update_h(e, w, &mut bm.h, &mut bm.q, k, loss, reg, eps)?;
        if tol > 0.0 && e.relative_check(&mut bm.h, &mut bm.prev, Side::Right, sweep, tol, small)? {
            break;
        }
    }
    Ok(())
}

/// Update the encodings' partner of W in `k` (`Wᵀ W`, or W's column sums for KL) and return
/// `‖W‖²_F`.
fn partner<E: Engine>(
    e: &mut E,
    w: &E::Mat,
    kl: bool,
    k: &mut E::Mat,
    small: &mut E::Mat,
) -> Result<f64> {
    if kl {
        e.factor_sums(w, FactorSums::ColumnsOfW, k)?;
        trace_gram(e, w, Side::Left, small)
    } else {
        e.gram(w, Side::Left, k)?;
        trace(e, k)
    }
}

/// `‖x‖²_F` as the trace of its Gram matrix (formed in `small`, r x r).
fn trace_gram<E: Engine>(e: &mut E, x: &E::Mat, side: Side, small: &mut E::Mat) -> Result<f64> {
    e.gram(x, side, small)?;
    trace(e, small)
}

fn trace<E: Engine>(e: &mut E, s: &E::Mat) -> Result<f64> {
    let s = e.download(s)?;
    Ok((0..s.nrows().min(s.ncols()))
        .map(|t| f64::from(s[[t, t]]))
        .sum())
}
