//! Solvers: *what* is computed each iteration, written once against [`Engine`].
//!
//! One iteration updates W, then H (scikit-learn's order). The loss is computed at the start and
//! every `check_every` iterations (and after the last one); the run stops when
//! `(e_prev − e) / e_0 < tol` with `e = sqrt(2·D)`, the criterion scikit-learn uses.

pub(crate) mod ahals;
mod budget;
pub(crate) mod hals;
pub(crate) mod history;
mod launch;
pub(crate) mod mu;
mod order;
mod scale;

pub(crate) use self::launch::{check_sparse_budget, solve, Data};
pub(crate) use self::scale::DataScale;

use ndarray::Array2;

use self::history::{History, Iteration};
use crate::engine::{Engine, Side, FREE};
use crate::error::Result;
use crate::options::{Loss, Solver, ValidParams};
use crate::report::FitReport;

/// Which factors a run updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Update {
    /// Fit: W and H.
    Both,
    /// Transform: H only, with W fixed.
    HOnly,
    /// W only, with H fixed (every row of H fixed).
    WOnly,
}

impl Update {
    /// Whether W is updated.
    pub fn w(self) -> bool {
        self != Update::HOnly
    }
    /// Whether H is updated.
    pub fn h(self) -> bool {
        self != Update::WOnly
    }
}

/// The anchors of fixed components ([`Engine::pin`](crate::engine::Engine::pin)): the fixed
/// entries with their starting values, every other entry [`FREE`].
pub(crate) struct Anchors<M> {
    /// Anchor of W (m x r) when some but not all of its columns are fixed.
    pub w: Option<M>,
    /// Anchor of H (r x n) when some but not all of its rows are fixed.
    pub h: Option<M>,
    /// HALS: anchors of the Gram matrices (r x r) that skip the fixed components in a sweep
    /// (diagonal `−l2`, so that `G[t,t] + l2 = 0`), and a copy of `Wᵀ W` to pin (the loss
    /// reads the unpinned one).
    pub gram_w: Option<M>,
    pub gram_h: Option<M>,
    pub scratch: Option<M>,
}

/// An anchor of a `rows x cols` factor: `x0` on the fixed columns (`Side::Left`) or rows
/// (`Side::Right`), [`FREE`] elsewhere.
pub(crate) fn anchor(x0: &Array2<f32>, fixed: &[usize], side: Side) -> Array2<f32> {
    let mut a = Array2::from_elem(x0.dim(), FREE);
    for &t in fixed {
        match side {
            Side::Left => a.column_mut(t).assign(&x0.column(t)),
            Side::Right => a.row_mut(t).assign(&x0.row(t)),
        }
    }
    a
}

/// The Gram anchor (r x r) that makes a HALS sweep skip the fixed components.
pub(crate) fn gram_anchor(r: usize, fixed: &[usize], l2: f32) -> Array2<f32> {
    let mut a = Array2::from_elem((r, r), FREE);
    for &t in fixed {
        a[[t, t]] = -l2;
    }
    a
}

/// What a solver run produces.
#[derive(Debug, Clone)]
pub(crate) struct RunOutput {
    pub w: Array2<f32>,
    pub h: Array2<f32>,
    /// Losses, iterations and how the run ended (engine and timings are filled in by the fit).
    pub report: FitReport,
}

/// Workspace of one run: the factors and every intermediate product, allocated once.
pub(crate) struct State<M> {
    pub w: M,
    pub h: M,
    /// `V Hᵀ` or the KL numerator for W (m x r).
    pub p: M,
    /// `Wᵀ V` or the KL numerator for H (r x n).
    pub q: M,
    /// `H Hᵀ` or row sums of H (r x r or r x 1).
    pub g: M,
    /// `Wᵀ W` or column sums of W.
    pub k: M,
    /// Accelerated HALS: the inner loops' work space.
    pub ahals: Option<ahals::Work<M>>,
    /// β-divergence: the denominators of the W (m x r) and H (r x n) updates.
    pub beta_den: Option<(M, M)>,
    /// The fixed components.
    pub anchors: Anchors<M>,
}

/// One solver iteration on an engine.
trait Step<E: Engine> {
    /// One iteration of the factors `u` names on `s`, with the parameters `p`.
    fn step(&self, e: &mut E, s: &mut State<E::Mat>, p: &ValidParams, u: Update) -> Result<()>;
}

/// A plain fit's iteration for [`History::drive`]: the solver's step on the engine's state.
struct Plain<'a, E: Engine> {
    e: &'a mut E,
    s: State<E::Mat>,
    solver: &'a dyn Step<E>,
    params: &'a ValidParams,
    update: Update,
    /// Whether a step has run (before it, the products do not hold the current factors).
    stepped: bool,
}

impl<E: Engine> Iteration for Plain<'_, E> {
    fn step(&mut self, _it: usize) -> Result<()> {
        self.solver
            .step(self.e, &mut self.s, self.params, self.update)?;
        self.stepped = true;
        Ok(())
    }

    fn loss(&mut self) -> Result<f64> {
        let (e, s, p) = (&mut *self.e, &self.s, self.params);
        // After a Frobenius step, q = WᵀV and k = WᵀW hold the current W: the loss follows
        // from them without another pass over V when it is accurate enough.
        let from_products = match p.loss {
            Loss::Frobenius if self.stepped => e.loss_from_products(&s.q, &s.k, &s.h)?,
            _ => None,
        };
        match from_products {
            Some(l) => Ok(l),
            None => e.loss(&s.w, &s.h, p.loss, p.iter.epsilon),
        }
    }

    fn factors(&mut self) -> Result<Option<(Array2<f32>, Array2<f32>)>> {
        Ok(Some((
            self.e.download(&self.s.w)?,
            self.e.download(&self.s.h)?,
        )))
    }
}

/// Run the configured solver from `(w0, h0)`.
pub(crate) fn run<E: Engine>(
    e: &mut E,
    params: &ValidParams,
    w0: &Array2<f32>,
    h0: &Array2<f32>,
    update: Update,
) -> Result<RunOutput> {
    let (m, n) = e.dims();
    let r = params.rank;
    let update = match update {
        Update::Both if params.fixed_w.len() == r => Update::HOnly,
        Update::Both if params.fixed_h.len() == r => Update::WOnly,
        u => u,
    };
    // Partly fixed factors are pinned after each update.
    let partly = |fixed: &[usize]| !fixed.is_empty() && fixed.len() < r;
    let pin_w = update.w() && partly(&params.fixed_w);
    let pin_h = update.h() && partly(&params.fixed_h);
    // HALS and accelerated HALS skip a component whose Gram diagonal is pinned.
    let hals = matches!(params.solver, Solver::Hals | Solver::AcceleratedHals);
    let anchors = Anchors {
        w: pin_w
            .then(|| e.upload(anchor(w0, &params.fixed_w, Side::Left).view()))
            .transpose()?,
        h: pin_h
            .then(|| e.upload(anchor(h0, &params.fixed_h, Side::Right).view()))
            .transpose()?,
        gram_w: (pin_w && hals)
            .then(|| e.upload(gram_anchor(r, &params.fixed_w, params.reg_w.l2).view()))
            .transpose()?,
        gram_h: (pin_h && hals)
            .then(|| e.upload(gram_anchor(r, &params.fixed_h, params.reg_h.l2).view()))
            .transpose()?,
        scratch: (pin_h && hals).then(|| e.zeros(r, r)).transpose()?,
    };
    let general_beta = matches!(params.loss, Loss::ItakuraSaito | Loss::Beta(_));
    let sums = params.loss == Loss::KullbackLeibler;
    let small = if sums { 1 } else { r };
    let s = State {
        w: e.upload(w0.view())?,
        h: e.upload(h0.view())?,
        p: e.zeros(m, r)?,
        q: e.zeros(r, n)?,
        g: e.zeros(r, small)?,
        k: e.zeros(r, small)?,
        ahals: match params.solver {
            Solver::AcceleratedHals => Some(ahals::Work {
                prev_w: e.zeros(m, r)?,
                prev_h: e.zeros(r, n)?,
                small: e.zeros(r, r)?,
            }),
            _ => None,
        },
        beta_den: match general_beta {
            true => Some((e.zeros(m, r)?, e.zeros(r, n)?)),
            false => None,
        },
        anchors,
    };
    let step: &dyn Step<E> = match params.solver {
        Solver::MultiplicativeUpdate => &mu::Mu,
        Solver::Hals => &hals::Hals,
        Solver::AcceleratedHals => &ahals::AcceleratedHals,
    };

    let mut fit = Plain {
        e,
        s,
        solver: step,
        params,
        update,
        stepped: false,
    };
    let mut report = History::drive(&mut fit, &params.iter)?;
    let Plain { e, s, .. } = fit;
    let (w, h) = (e.download(&s.w)?, e.download(&s.h)?);
    report.gpu_stats = e.stats();
    Ok(RunOutput { w, h, report })
}
