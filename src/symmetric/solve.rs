//! The symmetric solvers, written once against [`Engine`] (whose data matrix is `Ã`).

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::Rng;

use super::SymMethod;
use crate::engine::EngineTask;
use crate::engine::{Engine, MuDenominator, MuRule, Side};
use crate::error::{NmfError, Result};
use crate::options::{IterOptions, Loss, Regularization};
use crate::report::FitReport;
use crate::solver::history::{History, Iteration};

/// Every initialisation of one fit, run on one engine.
pub(super) struct SymTask {
    pub method: SymMethod,
    pub k: usize,
    pub alpha: f32,
    /// Budget, stopping rule, epsilon, progress and stop flag (no resumption or checkpoints:
    /// restarts do not resume).
    pub iter: IterOptions,
    /// Number of runs.
    pub n_init: usize,
    /// Each run starts from `H₀ = init_scale · U(0,1)` entrywise, drawn from `rng` just before
    /// the run (so only one H₀ is held at a time; the draws do not depend on when they happen).
    pub init_scale: f32,
    pub rng: StdRng,
}

/// The kept run.
pub(super) struct SymOutput {
    pub h: Array2<f32>,
    pub s: Option<Array2<f32>>,
    pub residual: f64,
    pub best_init: usize,
    /// The kept run's losses and iterations; the engine's counters after the last run (every
    /// run counted).
    pub report: FitReport,
}

/// Work space of one run: the factors and every intermediate product, allocated once.
struct Work<M> {
    /// H (n x k) and its transpose (k x n), kept in step.
    h: M,
    ht: M,
    /// ANLS: W (n x k) and its transpose. Tri-factor: `H S` and its transpose.
    w: M,
    wt: M,
    /// `Ã X` for the current X (n x k).
    p: M,
    /// Gram matrix (k x k).
    g: M,
    /// Tri-factor: S, its numerator `HᵀÃH` and two k x k products.
    s: M,
    sn: M,
    t1: M,
    t2: M,
}

impl EngineTask for SymTask {
    type Output = SymOutput;

    fn run<E: Engine>(mut self, e: &mut E) -> Result<SymOutput> {
        let (n, _) = e.dims();
        let k = self.k;
        let mut best: Option<SymOutput> = None;
        let mut work = Work {
            h: e.zeros(n, k)?,
            ht: e.zeros(k, n)?,
            w: e.zeros(n, k)?,
            wt: e.zeros(k, n)?,
            p: e.zeros(n, k)?,
            g: e.zeros(k, k)?,
            s: e.zeros(k, k)?,
            sn: e.zeros(k, k)?,
            t1: e.zeros(k, k)?,
            t2: e.zeros(k, k)?,
        };
        for i in 0..self.n_init {
            let scale = self.init_scale;
            let h0 = Array2::from_shape_simple_fn((n, k), || scale * self.rng.random::<f32>());
            let run = self.run_one(e, &mut work, &h0)?;
            let interrupted = run.report.interrupted;
            let better = match &best {
                None => true,
                Some(b) => run.residual < b.residual,
            };
            if better {
                best = Some(SymOutput {
                    best_init: i,
                    ..run
                });
            }
            if interrupted {
                if let Some(b) = best.as_mut() {
                    b.report.interrupted = true;
                }
                break;
            }
        }
        let mut best = best.ok_or(NmfError::InvalidParameter {
            name: "n_init",
            value: "0".into(),
            expected: "at least 1 initialisation".into(),
        })?;
        best.report.gpu_stats = e.stats();
        Ok(best)
    }
}

/// A symmetric run's iteration for [`History::drive`].
struct SymIteration<'a, E: Engine> {
    task: &'a SymTask,
    e: &'a mut E,
    s: &'a mut Work<E::Mat>,
}

impl<E: Engine> Iteration for SymIteration<'_, E> {
    fn step(&mut self, _it: usize) -> Result<()> {
        let (t, e, s) = (self.task, &mut *self.e, &mut *self.s);
        match t.method {
            SymMethod::Anls => t.anls_step(e, s),
            SymMethod::Multiplicative => t.mu_step(e, s),
            SymMethod::TriFactor => t.tri_step(e, s),
        }
    }

    fn loss(&mut self) -> Result<f64> {
        self.task.objective(self.e, self.s)
    }
}

impl SymTask {
    /// One run from `h0`.
    fn run_one<E: Engine>(
        &self,
        e: &mut E,
        s: &mut Work<E::Mat>,
        h0: &Array2<f32>,
    ) -> Result<SymOutput> {
        let k = self.k;
        s.h = e.upload(h0.view())?;
        e.transpose(&s.h, &mut s.ht)?;
        match self.method {
            SymMethod::Anls => {
                // W₀ = H₀.
                e.axpby(1.0, &s.h, 0.0, &mut s.w)?;
            }
            SymMethod::TriFactor => {
                s.s = e.upload(Array2::<f32>::eye(k).view())?;
            }
            SymMethod::Multiplicative => {}
        }

        let report = History::drive(&mut SymIteration { task: self, e, s }, &self.iter)?;
        let residual = self.residual(e, s)?;
        Ok(SymOutput {
            h: e.download(&s.h)?,
            s: match self.method {
                SymMethod::TriFactor => Some(e.download(&s.s)?),
                _ => None,
            },
            residual,
            best_init: 0,
            report,
        })
    }

    /// One ANLS iteration: a HALS sweep on W, then one on H, each the exact minimiser of
    /// `½‖Ã − W Hᵀ‖² + (α/2)‖W − H‖²` column by column.
    fn anls_step<E: Engine>(&self, e: &mut E, s: &mut Work<E::Mat>) -> Result<()> {
        let reg = Regularization {
            l1: 0.0,
            l2: self.alpha,
        };
        // W: P = Ã H + α H, G = HᵀH.
        e.v_ht(&s.ht, &mut s.p)?;
        e.axpby(self.alpha, &s.h, 1.0, &mut s.p)?;
        e.gram(&s.h, Side::Left, &mut s.g)?;
        e.hals_step(&mut s.w, &s.p, &s.g, Side::Left, reg)?;
        e.transpose(&s.w, &mut s.wt)?;
        // H: P = Ã W + α W, G = WᵀW (Ã is symmetric, so ‖Ã − W Hᵀ‖ = ‖Ã − H Wᵀ‖).
        e.v_ht(&s.wt, &mut s.p)?;
        e.axpby(self.alpha, &s.w, 1.0, &mut s.p)?;
        e.gram(&s.w, Side::Left, &mut s.g)?;
        e.hals_step(&mut s.h, &s.p, &s.g, Side::Left, reg)?;
        e.transpose(&s.h, &mut s.ht)
    }

    /// The multiplicative update `x ← x ⊙ f(num ⊘ den)` of [`Engine::mu_step`] on the left,
    /// without penalties, `f` by `rule`.
    fn update<E: Engine>(
        &self,
        e: &mut E,
        x: &mut E::Mat,
        num: &E::Mat,
        den: MuDenominator<'_, E::Mat>,
        rule: MuRule,
    ) -> Result<()> {
        let none = Regularization::default();
        e.mu_step(x, num, den, Side::Left, none, self.iter.epsilon, rule)
    }

    /// One multiplicative step `H ← H ⊙ (½ + ½ (Ã H) ⊘ (H HᵀH))`.
    fn mu_step<E: Engine>(&self, e: &mut E, s: &mut Work<E::Mat>) -> Result<()> {
        e.v_ht(&s.ht, &mut s.p)?;
        e.gram(&s.h, Side::Left, &mut s.g)?;
        self.update(e, &mut s.h, &s.p, MuDenominator::Gram(&s.g), MuRule::Damped)?;
        e.transpose(&s.h, &mut s.ht)
    }

    /// One tri-factor step: `S ← S ⊙ (HᵀÃH) ⊘ (G S G)`, then
    /// `H ← H ⊙ √((Ã H S) ⊘ (H S G S))`, with `G = HᵀH`.
    fn tri_step<E: Engine>(&self, e: &mut E, s: &mut Work<E::Mat>) -> Result<()> {
        // S update.
        e.v_ht(&s.ht, &mut s.p)?; // Ã H
        e.cross(&s.h, &s.p, Side::Left, &mut s.sn)?; // Hᵀ Ã H
        e.gram(&s.h, Side::Left, &mut s.g)?; // G = HᵀH
        sandwich(e, &s.g, &s.s, &mut s.t1, &mut s.t2)?; // G S G
        self.update(
            e,
            &mut s.s,
            &s.sn,
            MuDenominator::Elementwise(&s.t2),
            MuRule::Plain,
        )?;
        // H update with the new S (G is still HᵀH).
        e.mul_small(&s.h, &s.s, Side::Left, &mut s.w)?; // H S
        e.transpose(&s.w, &mut s.wt)?;
        e.v_ht(&s.wt, &mut s.p)?; // Ã H S
        sandwich(e, &s.s, &s.g, &mut s.t1, &mut s.t2)?; // S G S
        self.update(
            e,
            &mut s.h,
            &s.p,
            MuDenominator::Product(&s.t2),
            MuRule::Sqrt,
        )?;
        e.transpose(&s.h, &mut s.ht)
    }

    /// The method's objective at the current point (see `SymFactorization::losses`).
    fn objective<E: Engine>(&self, e: &mut E, s: &mut Work<E::Mat>) -> Result<f64> {
        match self.method {
            SymMethod::Anls => {
                let fit = e.loss(&s.w, &s.ht, Loss::Frobenius, self.iter.epsilon)?;
                // ‖W − H‖² = trace((W − H)ᵀ(W − H)), with the difference in P.
                e.axpby(1.0, &s.w, 0.0, &mut s.p)?;
                e.axpby(-1.0, &s.h, 1.0, &mut s.p)?;
                e.gram(&s.p, Side::Left, &mut s.g)?;
                let g = e.download(&s.g)?;
                let trace: f64 = g.diag().iter().map(|&x| f64::from(x)).sum();
                Ok(fit + 0.5 * f64::from(self.alpha) * trace)
            }
            SymMethod::Multiplicative => e.loss(&s.h, &s.ht, Loss::Frobenius, self.iter.epsilon),
            SymMethod::TriFactor => self.residual(e, s),
        }
    }

    /// `½‖Ã − H Hᵀ‖²`, or `½‖Ã − H S Hᵀ‖²` for the tri-factorization.
    fn residual<E: Engine>(&self, e: &mut E, s: &mut Work<E::Mat>) -> Result<f64> {
        match self.method {
            SymMethod::TriFactor => {
                e.mul_small(&s.h, &s.s, Side::Left, &mut s.w)?;
                e.loss(&s.w, &s.ht, Loss::Frobenius, self.iter.epsilon)
            }
            _ => e.loss(&s.h, &s.ht, Loss::Frobenius, self.iter.epsilon),
        }
    }
}

/// `out = a b a` for k x k `a` and `b`, through `a b` in `ab`.
fn sandwich<E: Engine>(
    e: &mut E,
    a: &E::Mat,
    b: &E::Mat,
    ab: &mut E::Mat,
    out: &mut E::Mat,
) -> Result<()> {
    e.mul_small(a, b, Side::Left, ab)?;
    e.mul_small(ab, a, Side::Left, out)
}
