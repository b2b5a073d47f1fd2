//! The distributed iteration (MPI-FAUN, Kannan, Ballard & Park 2016), on rank (i, j):
//!
//! ```text
//! W update:  G = Σ_ranks H_p H_pᵀ                      all-reduce (r x r)
//!            H_j = [H pieces of grid column j]          all-gather over the column
//!            (V Hᵀ)_piece = Σ_j' V_ij' H_j'ᵀ            local product, reduce-scatter over the row
//!            W_piece ← update(W_piece, (V Hᵀ)_piece, G) local (MU or HALS)
//! H update:  K = Σ_ranks W_pᵀ W_p                      all-reduce (r x r)
//!            W_i = [W pieces of grid row i]             all-gather over the row
//!            (Wᵀ V)_piece = Σ_i' W_i'ᵀ V_i'j            local product, reduce-scatter over the column
//!            H_piece ← update(H_piece, (Wᵀ V)_piece, K) local
//! ```
//!
//! KL replaces the products by `Z Hᵀ` and `Wᵀ Z` with `Z = V_ij ⊘ (W_i H_j)` (the block of the
//! ratio lives on the rank that holds `V_ij`, so it needs both `W_i` and `H_j`; `W_i` from the
//! previous H update is reused) and the Grams by the r-vectors `H 1` and `Wᵀ 1`. The other
//! β-divergences (Itakura–Saito, any β) form `A = V ⊙ (WH)^(β−2)` and `B = (WH)^(β−1)` on the
//! block the same way and reduce-scatter both products, numerator and denominator, with
//! nothing small to all-reduce. The updates of
//! a piece are the single-process engine's own (`mu_step`, `hals_step` on the CPU engine); the
//! products with `V_ij` run on this rank's engine (CPU or GPU). Accelerated HALS runs its inner
//! sweeps on the pieces with the single-process budget and stopping rule, the squared move of
//! each sweep all-reduced (one f64, counted apart as `CommStats::inner_bytes`).
//!
//! **Losses at checks** are all-reduced, so every rank stops at the same iteration: the
//! Frobenius loss from the products the iteration has,
//! `½ (‖V‖² + Σ_ranks [⟨K, H_p H_pᵀ⟩ − 2 ⟨(Wᵀ V)_p, H_p⟩])` (one scalar), recomputed exactly
//! from the blocks when it is too small to trust (as the single-process engine does); the KL
//! loss exactly from the blocks, `Σ_blocks D(V_ij ‖ W_i H_j)`.
//!
//! **Volume per iteration** (words received by rank (i, j), see [`super::comm`]), with
//! `m_i`, `n_j` its block's shape, `w`, `h` the lengths of its W and H pieces, and
//! `T = r²` (Frobenius) or `T = r` (KL), `t` its [`split`](super::split) share of T over P:
//!
//! ```text
//! words = 2 r (m_i − w) + 2 r (n_j − h) + 4 (T − t)          (β-divergences: 3 r (m_i − w) + 3 r (n_j − h))
//! bytes = 4 · 2 r (m_i − w + n_j − h) + b · 4 (T − t)      (b = 4 for the f32 Grams, 8 for the f64 KL sums)
//! ```
//!
//! summed over the ranks: `2 r ((pc − 1) m + (pr − 1) n) + 4 (P − 1) T` words. This is MPI-FAUN's
//! bandwidth cost `2 r (m/pr)(pc − 1)/pc + 2 r (n/pc)(pr − 1)/pr + O(r²)` per rank, exact for
//! uneven blocks ([`iteration_bytes`]).
//!
//! **On a GPU rank** `V_ij` is uploaded once and stays on the device. Only what the collectives
//! exchange crosses the bus, through the same device matrices every iteration (uploaded into
//! with [`Engine::upload_into`], computed into, read back; none is allocated after the first
//! iteration): per iteration, with every loss (the KL and β rules reuse the `W_i` of the H
//! update in the next W update),
//!
//! ```text
//! host → device:  W_i (m_i x r) + H_j (r x n_j)                 = 4 r (m_i + n_j) bytes
//! device → host:  (V Hᵀ)_partial (m_i x r) + (Wᵀ V)_partial (r x n_j)
//!                                                               = 4 r (m_i + n_j) bytes
//!                 (β-divergences: numerator and denominator, 8 r (m_i + n_j) bytes)
//! ```
//!
//! the all-gathers' outputs up and the reduce-scatters' inputs down ([`device_bytes`]); the
//! Grams and sums are formed on the host from the pieces. Loss checks add their own (an exact
//! loss uploads `H_j` again and reads a few partial sums). [`DistFit::device`] holds the
//! counters of the fit, of its first iteration and of the later ones.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mpi::topology::Communicator;
use ndarray::{s, Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::comm::{abort, agree, GridComm, Group, Phase};
use super::grid::{split, Layout};
use super::start::{random_pieces, DistOp};
use super::{gather_factors, CommStats, DeviceStats, DistFit, LocalBlock, Timings};
use crate::engine::cpu::{CpuEngine, SparseOp};
use crate::engine::{
    check_data, with_engine, Engine, EngineTask, GpuStats, MuDenominator, MuRule, Side, BETA_FLOOR,
};
use crate::error::{NmfError, Result};
use crate::linalg::LinearOperator;
use crate::options::{Init, Loss, Orthogonality, Regularization, Solver, ValidParams};
use crate::params::NmfParams;
use crate::report::FitReport;
use crate::solver::ahals::{inner_budgets, INNER_TOL};
use crate::solver::history::{History, Iteration, Verdict};
use crate::solver::DataScale;
use crate::solver::{anchor, gram_anchor};

/// Below this squared relative error the trace form of the Frobenius loss is recomputed
/// exactly (the single-process engine's rule).
const TRACE_MIN_REL_SQ: f64 = 1e-2;

/// The bytes rank `layout.rank` receives per iteration (see the module docs).
pub fn iteration_bytes(layout: &Layout, r: usize, loss: Loss) -> u64 {
    let p = layout.grid.size();
    // (reduce-scatters per side + the one gather, the small all-reduced terms T, their width)
    let (passes, t, small_bytes) = match loss {
        // Grams all-reduced as f32.
        Loss::Frobenius => (2, r * r, 4),
        // The KL sums as f64.
        Loss::KullbackLeibler => (2, r, 8),
        // The β rules reduce-scatter a numerator and a denominator per side, and all-reduce
        // nothing small.
        Loss::ItakuraSaito | Loss::Beta(_) => (3, 0, 0),
    };
    let share = split(t, p, layout.rank).len();
    let factor_words = passes * r * (layout.rows.len() - layout.w_rows.len())
        + passes * r * (layout.cols.len() - layout.h_cols.len());
    (factor_words * 4 + 4 * (t - share) * small_bytes) as u64
}

/// The bytes a GPU rank copies per iteration between host and device, `(up, down)` (see the
/// module docs): up `4 r (m_i + n_j)`, `W_i` and `H_j` once each; down `4 r (m_i + n_j)`, the
/// partial products (twice that for the β-divergences, numerator and denominator).
pub fn device_bytes(layout: &Layout, r: usize, loss: Loss) -> (u64, u64) {
    let words = (r * (layout.rows.len() + layout.cols.len())) as u64;
    let products = match loss {
        Loss::Frobenius | Loss::KullbackLeibler => 1,
        Loss::ItakuraSaito | Loss::Beta(_) => 2,
    };
    (4 * words, 4 * products * words)
}

/// Move a block-local entry error to global coordinates.
fn globalize(e: NmfError, layout: &Layout) -> NmfError {
    let (r0, c0) = (layout.rows.start, layout.cols.start);
    match e {
        NmfError::NegativeInput { value, row, col } => NmfError::NegativeInput {
            value,
            row: row + r0,
            col: col + c0,
        },
        NmfError::NonFiniteInput { value, row, col } => NmfError::NonFiniteInput {
            value,
            row: row + r0,
            col: col + c0,
        },
        other => other,
    }
}

/// The whole fit on every rank (collective); see [`super::fit`].
pub(crate) fn fit<C: Communicator>(
    world: &C,
    params: &NmfParams,
    layout: Layout,
    block: LocalBlock,
) -> Result<DistFit> {
    let start = Instant::now();
    let (m, n) = layout.shape;
    // Deterministic checks: every rank reaches the same verdict without talking.
    layout.grid.check(world.size() as usize, m, n)?;
    let valid = params.check(m, n)?;
    let want = (layout.rows.len(), layout.cols.len());
    let local_check = match &block {
        LocalBlock::Dense(v) if v.dim() != want => Err(NmfError::ShapeMismatch {
            what: "this rank's block of V",
            expected: format!("{} x {}", want.0, want.1),
            found: format!("{} x {}", v.nrows(), v.ncols()),
        }),
        LocalBlock::Sparse(v) if v.dim() != want => Err(NmfError::ShapeMismatch {
            what: "this rank's block of V",
            expected: format!("{} x {}", want.0, want.1),
            found: format!("{} x {}", v.dim().0, v.dim().1),
        }),
        LocalBlock::Dense(v) => check_data(v.view()).map_err(|e| globalize(e, &layout)),
        LocalBlock::Sparse(_) => crate::engine::check_sparse_backend(&params.backend),
    };
    agree(world, local_check)?;
    let g = GridComm::new(world, layout)?;

    // Scale extreme data as a single process would (the scale follows from the global max).
    let local_max = match &block {
        LocalBlock::Dense(v) => v.iter().fold(0.0f32, |a, &x| a.max(x)),
        LocalBlock::Sparse(v) => v.values().iter().fold(0.0f32, |a, &x| a.max(x)),
    };
    let scale = DataScale::for_max(g.all_max_f32(local_max));
    let (block, valid) = if scale.is_identity() {
        (block, valid)
    } else {
        let p = scale.params(&valid);
        let b = match block {
            LocalBlock::Dense(v) => LocalBlock::Dense(scale.dense(v.view())),
            LocalBlock::Sparse(v) => LocalBlock::Sparse(agree(world, scale.csr(&v))?),
        };
        (b, p)
    };

    let mut out = match &block {
        LocalBlock::Dense(v) => {
            let task = Task {
                g: &g,
                valid: &valid,
                op: v.view(),
                sums: (
                    v.iter().map(|&x| f64::from(x)).sum(),
                    v.iter().map(|&x| f64::from(x) * f64::from(x)).sum(),
                ),
                entered: std::cell::Cell::new(false),
            };
            match with_engine(v.view(), &params.backend, TaskRef(&task)) {
                Ok((out, _)) => out,
                Err(e) if !task.entered.get() => {
                    // The engine could not start here: release the ranks waiting to start.
                    return Err(agree(world, Err::<(), _>(e))
                        .err()
                        .unwrap_or(NmfError::PeerFailed { rank: g.rank() }));
                }
                Err(e) => return Err(e),
            }
        }
        LocalBlock::Sparse(v) => {
            let vt = v.transpose();
            let mut engine = CpuEngine::new_sparse(v, &vt);
            let op = SparseOp { a: v, at: &vt };
            let task = Task {
                g: &g,
                valid: &valid,
                op,
                sums: (
                    v.values().iter().map(|&x| f64::from(x)).sum(),
                    v.values()
                        .iter()
                        .map(|&x| f64::from(x) * f64::from(x))
                        .sum(),
                ),
                entered: std::cell::Cell::new(false),
            };
            task.go(&mut engine)?
        }
    };
    scale.factor_out(&mut out.w);
    scale.factor_out(&mut out.h);
    scale.report(&mut out.report, valid.loss);
    out.report.elapsed = start.elapsed();
    out.report.engine = out.engine.clone();
    let r = valid.rank;
    let stats = CommStats {
        setup_bytes: g.bytes(Phase::Setup),
        iteration_bytes: iteration_bytes(&g.layout, r, valid.loss),
        measured_iteration_bytes: g.bytes(Phase::Iteration) / (out.iterations.max(1) as u64),
        check_bytes: g.bytes(Phase::Check),
        inner_bytes: g.bytes(Phase::Inner),
        seconds: g.seconds(),
    };
    Ok(DistFit {
        layout: g.layout.clone(),
        w: out.w,
        h: out.h,
        report: out.report,
        engine: out.engine,
        comm: stats,
        timings: out.timings,
        device: out.device,
    })
}

/// What a rank's run produces.
struct Run {
    w: Array2<f32>,
    h: Array2<f32>,
    report: FitReport,
    iterations: usize,
    engine: String,
    timings: Timings,
    device: Option<DeviceStats>,
}

/// The engine matrices a rank reuses every iteration, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// `W_i` (m_i x r), gathered and uploaded into.
    Wi,
    /// `H_j` (r x n_j), gathered and uploaded into.
    Hj,
    /// A partial product with m_i rows (`V Hᵀ`, a KL or β numerator), and the β denominator.
    Rows,
    Rows2,
    /// A partial product with n_j columns (`Wᵀ V`, a KL or β numerator), and the β denominator.
    Cols,
    Cols2,
}

/// The matrices of [`Slot`] between two uses (none before the first).
struct Spare<M> {
    kept: [Option<M>; 6],
}

impl<M> Default for Spare<M> {
    fn default() -> Self {
        Spare {
            kept: std::array::from_fn(|_| None),
        }
    }
}

impl<M> Spare<M> {
    fn take(&mut self, slot: Slot) -> Option<M> {
        self.kept[slot as usize].take()
    }

    fn put(&mut self, slot: Slot, m: M) {
        self.kept[slot as usize] = Some(m);
    }
}

/// The engine's counters over the iteration steps: the first apart (it allocates the reused
/// matrices and builds their bind groups), the others summed.
#[derive(Default)]
struct DeviceSteps {
    first: Option<GpuStats>,
    steady: GpuStats,
    steady_steps: u64,
}

impl DeviceSteps {
    /// Add one step, between the readings `before` and `after` (nothing on a CPU engine).
    fn record(&mut self, before: Option<GpuStats>, after: Option<GpuStats>) {
        let (Some(before), Some(after)) = (before, after) else {
            return;
        };
        let step = after.since(&before);
        if self.first.is_none() {
            self.first = Some(step);
        } else {
            self.steady = self.steady.plus(&step);
            self.steady_steps += 1;
        }
    }
}

struct Task<'a, 'g, 'c, C: Communicator, A> {
    g: &'g GridComm<'c, C>,
    valid: &'a ValidParams,
    op: A,
    /// `(Σ v, Σ v²)` of this rank's block.
    sums: (f64, f64),
    entered: std::cell::Cell<bool>,
}

struct TaskRef<'t, 'a, 'g, 'c, C: Communicator, A>(&'t Task<'a, 'g, 'c, C, A>);

impl<C: Communicator, A: LinearOperator + Clone> EngineTask for TaskRef<'_, '_, '_, '_, C, A> {
    type Output = Run;
    fn run<E: Engine>(self, e: &mut E) -> Result<Run> {
        self.0.go(e)
    }
}

impl<C: Communicator, A: LinearOperator + Clone> Task<'_, '_, '_, C, A> {
    fn go<E: Engine>(&self, e: &mut E) -> Result<Run> {
        self.entered.set(true);
        agree(self.g.world, Ok(()))?;
        let engine = e.name();
        let mut run = Iter::new(self.g, self.valid, e, self.op.clone(), self.sums)?.run()?;
        run.engine = engine;
        Ok(run)
    }
}

/// The state of one rank's run.
struct Iter<'a, 'g, 'c, C: Communicator, E: Engine> {
    g: &'g GridComm<'c, C>,
    p: &'a ValidParams,
    e: &'a mut E,
    /// The CPU engine that updates the pieces (its V is empty; the updates never read it).
    host: CpuEngine<'static>,
    r: usize,
    /// This rank's piece of W (w x r) and of H (r x h).
    w: Array2<f32>,
    h: Array2<f32>,
    /// W_i gathered for the current W, if it is (KL reuses it).
    wi: Option<E::Mat>,
    /// The engine matrices reused by every iteration (uploaded into, computed into).
    spare: Spare<E::Mat>,
    /// The engine's counters over the iterations.
    device: DeviceSteps,
    /// The last (Wᵀ V) piece (r x h) and K = WᵀW of the current W (Frobenius trace loss).
    q: Array2<f32>,
    k: Array2<f32>,
    /// Whether `k` is WᵀW of the current W (the H-orthogonal iteration leaves it to the check).
    k_current: bool,
    v_sq_norm: f64,
    init_seconds: f64,
    /// Fixed components: the anchors of this rank's W and H pieces, and HALS's Gram anchors.
    fixed: Pieces,
}

/// The fixed components of one rank (see [`crate::solver`]'s anchors): a factor whose every
/// component is fixed is not updated; a partly fixed one is pinned back to its anchor after
/// each update (and HALS skips its fixed components through a pinned Gram diagonal).
#[derive(Default)]
struct Pieces {
    all_w: bool,
    all_h: bool,
    w: Option<Array2<f32>>,
    h: Option<Array2<f32>>,
    gram_w: Option<Array2<f32>>,
    gram_h: Option<Array2<f32>>,
}

impl Pieces {
    fn new(p: &ValidParams, w: &Array2<f32>, h: &Array2<f32>) -> Self {
        let r = p.rank;
        let partly = |fixed: &[usize]| !fixed.is_empty() && fixed.len() < r;
        let hals = p.solver == Solver::Hals;
        let (pin_w, pin_h) = (partly(&p.fixed_w), partly(&p.fixed_h));
        Pieces {
            all_w: p.fixed_w.len() == r,
            all_h: p.fixed_h.len() == r,
            w: pin_w.then(|| anchor(w, &p.fixed_w, Side::Left)),
            h: pin_h.then(|| anchor(h, &p.fixed_h, Side::Right)),
            gram_w: (pin_w && hals).then(|| gram_anchor(r, &p.fixed_w, p.reg_w.l2)),
            gram_h: (pin_h && hals).then(|| gram_anchor(r, &p.fixed_h, p.reg_h.l2)),
        }
    }

    /// Whether every component of the factor on `side` is fixed.
    fn all(&self, side: Side) -> bool {
        match side {
            Side::Left => self.all_w,
            Side::Right => self.all_h,
        }
    }
}

/// The empty data matrix of the host engine.
static EMPTY: [f32; 0] = [];

impl<'a, 'g, 'c, C: Communicator, E: Engine> Iter<'a, 'g, 'c, C, E> {
    fn new<A: LinearOperator + Clone>(
        g: &'g GridComm<'c, C>,
        p: &'a ValidParams,
        e: &'a mut E,
        op: A,
        local_sums: (f64, f64),
    ) -> Result<Self> {
        let t0 = Instant::now();
        let l = &g.layout;
        let (m, n) = l.shape;
        g.set_phase(Phase::Setup);
        // Σ v and Σ v² of V (one all-reduce).
        let mut sums = [local_sums.0, local_sums.1];
        g.all_reduce_f64(&mut sums);
        let mean = sums[0] / ((m as f64) * (n as f64)).max(1.0);
        let mut rng = StdRng::seed_from_u64(p.iter.seed);
        let dist = DistOp {
            g,
            local: op,
            t: false,
        };
        let (w, h) = match &p.init {
            Init::Random => {
                let scale = (mean / p.rank as f64).sqrt() as f32;
                random_pieces(l, p.rank, scale, &mut rng)
            }
            init => {
                let (w0, h0) = crate::init::start(dist, || mean, init, p.rank, &mut rng);
                (
                    w0.slice(s![l.w_rows.clone(), ..]).to_owned(),
                    h0.slice(s![.., l.h_cols.clone()]).to_owned(),
                )
            }
        };
        let empty =
            ArrayView2::from_shape((0, 0), &EMPTY[..]).map_err(|_| NmfError::ShapeMismatch {
                what: "the empty host matrix",
                expected: "0 x 0".into(),
                found: "?".into(),
            })?;
        let r = p.rank;
        let fixed = Pieces::new(p, &w, &h);
        Ok(Iter {
            fixed,
            g,
            p,
            e,
            host: CpuEngine::new(empty),
            r,
            q: Array2::zeros((r, h.ncols())),
            k: Array2::zeros((r, r)),
            k_current: false,
            w,
            h,
            wi: None,
            spare: Spare::default(),
            device: DeviceSteps::default(),
            v_sq_norm: sums[1],
            init_seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// The lengths of the pieces of W (`Side::Left`, over the grid row) or of Hᵀ (`Right`, over
    /// the grid column) in the collectives: r per row.
    fn counts(&self, side: Side) -> Vec<usize> {
        let pieces = match side {
            Side::Left => self.g.layout.w_pieces(),
            Side::Right => self.g.layout.h_pieces(),
        };
        pieces.iter().map(|p| p.len() * self.r).collect()
    }

    /// W_i (m_i x r, `Side::Left`: all-gather of the W pieces over the grid row) or H_j
    /// (r x n_j, `Right`: of the H pieces, as Hᵀ rows, over the grid column) on the engine.
    fn gather(&mut self, side: Side) -> Result<E::Mat> {
        let (group, len, what, slot) = match side {
            Side::Left => (Group::Row, self.g.layout.rows.len(), "W_i", Slot::Wi),
            Side::Right => (Group::Col, self.g.layout.cols.len(), "H_j", Slot::Hj),
        };
        let x = match side {
            Side::Left => self.w.view(),
            Side::Right => self.h.t(),
        };
        let local = x.as_standard_layout();
        let flat = local.as_slice().unwrap_or(&[]);
        let all = or_abort(
            self.g.world,
            self.g.all_gather(group, flat, &self.counts(side)),
        );
        let rows =
            ArrayView2::from_shape((len, self.r), &all[..]).map_err(|e| shape_error(what, e))?;
        let (mut mat, res);
        match side {
            Side::Left => {
                mat = self.staged(slot, rows.nrows(), self.r);
                res = self.e.upload_into(rows, &mut mat);
            }
            Side::Right => {
                mat = self.staged(slot, self.r, rows.nrows());
                res = self.e.upload_into(rows.t(), &mut mat);
            }
        }
        self.local_ok(res)?;
        Ok(mat)
    }

    /// The engine matrix kept in `slot` (`rows x cols`), or a new one the first time.
    fn staged(&mut self, slot: Slot, rows: usize, cols: usize) -> E::Mat {
        let kept = self.spare.take(slot);
        match kept {
            Some(m) => m,
            None => or_abort(self.g.world, self.e.zeros(rows, cols)),
        }
    }

    fn local_ok<T>(&self, r: Result<T>) -> Result<T> {
        Ok(or_abort(self.g.world, r))
    }

    /// This rank's rows of Σ_row (`Side::Left`: m_i x r partial products) or columns of
    /// Σ_column (`Right`: r x n_j).
    fn scatter(&mut self, side: Side, part: &E::Mat) -> Result<Array2<f32>> {
        let full = self.e.download(part);
        let full = or_abort(self.g.world, full);
        let (group, len, what, x) = match side {
            Side::Left => (Group::Row, self.w.nrows(), "W piece", full.view()),
            Side::Right => (Group::Col, self.h.ncols(), "H piece", full.t()),
        };
        let x = x.as_standard_layout();
        let piece = or_abort(
            self.g.world,
            self.g
                .reduce_scatter(group, x.as_slice().unwrap_or(&[]), &self.counts(side)),
        );
        let p = Array2::from_shape_vec((len, self.r), piece).map_err(|e| shape_error(what, e))?;
        Ok(match side {
            Side::Left => p,
            Side::Right => p.reversed_axes().as_standard_layout().into_owned(),
        })
    }

    /// The shape of a partial product on this rank's block: m_i x r for `Side::Left` (a
    /// product for the W update), r x n_j for `Right`.
    fn part_shape(&self, side: Side) -> (usize, usize) {
        match side {
            Side::Left => (self.g.layout.rows.len(), self.r),
            Side::Right => (self.r, self.g.layout.cols.len()),
        }
    }

    /// The partial product `product` forms on this rank's block (in the engine matrix of
    /// [`Slot::Rows`] for `Side::Left`, [`Slot::Cols`] for `Right`), reduce-scattered to this
    /// rank's piece ([`scatter`](Self::scatter)).
    fn reduced(
        &mut self,
        side: Side,
        product: impl FnOnce(&mut E, &mut E::Mat) -> Result<()>,
    ) -> Result<Array2<f32>> {
        let slot = match side {
            Side::Left => Slot::Rows,
            Side::Right => Slot::Cols,
        };
        let (rows, cols) = self.part_shape(side);
        let mut part = self.staged(slot, rows, cols);
        let res = product(self.e, &mut part);
        or_abort(self.g.world, res);
        let piece = self.scatter(side, &part)?;
        self.spare.put(slot, part);
        Ok(piece)
    }

    /// Σ over ranks of a local r x r Gram (Side::Left: WᵀW of the W piece; Right: H Hᵀ).
    fn gram(&mut self, side: Side) -> Array2<f32> {
        let r = self.r;
        let mut g = Array2::<f32>::zeros((r, r));
        let x = match side {
            Side::Left => &self.w,
            Side::Right => &self.h,
        };
        let res = self.host.gram(x, side, &mut g);
        or_abort(self.g.world, res);
        if let Some(buf) = g.as_slice_mut() {
            self.g.all_reduce_f32(buf);
        }
        g
    }

    /// Σ over ranks of the KL sums (r x 1): row sums of H, or column sums of W with zero
    /// sums replaced by 1 (after the sum, as the single process does).
    fn kl_sums(&mut self, side: Side) -> Array2<f32> {
        let mut s: Vec<f64> = match side {
            Side::Right => self
                .h
                .rows()
                .into_iter()
                .map(|row| row.iter().map(|&v| v as f64).sum())
                .collect(),
            Side::Left => self
                .w
                .columns()
                .into_iter()
                .map(|c| c.iter().map(|&v| v as f64).sum())
                .collect(),
        };
        self.g.all_reduce_f64(&mut s);
        Array2::from_shape_fn((self.r, 1), |(t, _)| {
            let x = s[t] as f32;
            if side == Side::Left && x == 0.0 {
                1.0
            } else {
                x
            }
        })
    }

    fn update(&mut self, side: Side, num: &Array2<f32>, den: &Array2<f32>) {
        let p = self.p;
        if self.fixed.all(side) {
            return;
        }
        let (x, reg, gram_anchor) = match side {
            Side::Left => (&mut self.w, p.reg_w, &self.fixed.gram_w),
            Side::Right => (&mut self.h, p.reg_h, &self.fixed.gram_h),
        };
        let res = match (p.solver, p.loss) {
            (Solver::Hals, _) => match gram_anchor {
                Some(a) => {
                    let mut pinned = den.clone();
                    self.host
                        .pin(&mut pinned, a)
                        .and_then(|()| self.host.hals_step(x, num, &pinned, side, reg))
                }
                None => self.host.hals_step(x, num, den, side, reg),
            },
            (Solver::AcceleratedHals, _) => {
                let (m, n) = self.g.layout.shape;
                let (budget_w, budget_h) = inner_budgets(m, n, self.r);
                let budget = match side {
                    Side::Left => budget_w,
                    Side::Right => budget_h,
                };
                inner_sweeps(&mut self.host, self.g, x, num, den, side, reg, budget)
            }
            (_, loss) => {
                let den = match loss {
                    Loss::Frobenius => MuDenominator::Gram(den),
                    _ => MuDenominator::Sums(den),
                };
                let eps = p.iter.epsilon;
                self.host
                    .mu_step(x, num, den, side, reg, eps, MuRule::Plain)
            }
        };
        or_abort(self.g.world, res);
        self.pin(side);
    }

    /// The orthogonal rule of Ding et al. on this rank's piece (see [`crate::solver`]'s MU):
    /// `W ← W ⊙ √(P ⊘ (W C))` with `C = Wᵀ P = Σ_ranks W_pᵀ P_p`, or `H ← H ⊙ √(Q ⊘ (C H))`
    /// with `C = Q Hᵀ = Σ_ranks Q_p H_pᵀ` (one r x r all-reduce either way).
    fn orthogonal_update(&mut self, side: Side, num: &Array2<f32>) {
        let r = self.r;
        let p = self.p;
        let mut c = Array2::<f32>::zeros((r, r));
        let (res, x, reg) = match side {
            Side::Left => (
                self.host.cross(&self.w, num, Side::Left, &mut c),
                &mut self.w,
                p.reg_w,
            ),
            Side::Right => (
                self.host.cross(num, &self.h, Side::Right, &mut c),
                &mut self.h,
                p.reg_h,
            ),
        };
        or_abort(self.g.world, res);
        if let Some(buf) = c.as_slice_mut() {
            self.g.all_reduce_f32(buf);
        }
        let res = self.host.mu_step(
            x,
            num,
            MuDenominator::Product(&c),
            side,
            reg,
            p.iter.epsilon,
            MuRule::Sqrt,
        );
        or_abort(self.g.world, res);
    }

    /// Set the fixed components of the piece on `side` back to their anchor.
    fn pin(&mut self, side: Side) {
        let (x, a) = match side {
            Side::Left => (&mut self.w, &self.fixed.w),
            Side::Right => (&mut self.h, &self.fixed.h),
        };
        if let Some(a) = a {
            let res = self.host.pin(x, a);
            or_abort(self.g.world, res);
        }
    }

    /// One iteration: W, then H.
    fn step(&mut self) -> Result<()> {
        match self.p.loss {
            Loss::Frobenius => {
                let ortho = self.p.orthogonality;
                // The W-orthogonal rule needs Wᵀ P instead of H Hᵀ (the same r x r volume).
                let gmat = (ortho != Orthogonality::W).then(|| self.gram(Side::Right));
                let hj = self.gather(Side::Right)?;
                let num = self.reduced(Side::Left, |e, part| e.v_ht(&hj, part))?;
                self.spare.put(Slot::Hj, hj);
                match gmat {
                    Some(gmat) => self.update(Side::Left, &num, &gmat),
                    None => self.orthogonal_update(Side::Left, &num),
                }
                // The H-orthogonal rule needs Q Hᵀ instead of K = Wᵀ W, which the loss
                // check then forms itself (so the volume per iteration stays the same).
                self.k_current = ortho != Orthogonality::H;
                if self.k_current {
                    self.k = self.gram(Side::Left);
                }
                let wi = self.gather(Side::Left)?;
                self.q = self.reduced(Side::Right, |e, part| e.wt_v(&wi, part))?;
                self.spare.put(Slot::Wi, wi);
                let q = self.q.clone();
                if ortho == Orthogonality::H {
                    self.orthogonal_update(Side::Right, &q);
                } else {
                    let k = self.k.clone();
                    self.update(Side::Right, &q, &k);
                }
            }
            Loss::ItakuraSaito | Loss::Beta(_) => self.beta_step()?,
            Loss::KullbackLeibler => {
                let wi = match self.wi.take() {
                    Some(wi) => wi,
                    None => self.gather(Side::Left)?,
                };
                let hj = self.gather(Side::Right)?;
                let num = self.reduced(Side::Left, |e, part| {
                    e.kl_numerator(&wi, &hj, Side::Left, part)
                })?;
                self.spare.put(Slot::Wi, wi);
                let sums = self.kl_sums(Side::Right);
                self.update(Side::Left, &num, &sums);
                let sums = self.kl_sums(Side::Left);
                let wi = self.gather(Side::Left)?;
                let num = self.reduced(Side::Right, |e, part| {
                    e.kl_numerator(&wi, &hj, Side::Right, part)
                })?;
                self.spare.put(Slot::Hj, hj);
                self.update(Side::Right, &num, &sums);
                self.wi = Some(wi);
            }
        }
        Ok(())
    }

    /// One iteration of the β-divergence rules (β ∉ {1, 2}; see [`Engine::beta_products`]):
    /// the block products `A_ij Hⱼᵀ`, `B_ij Hⱼᵀ` (then `Wᵢᵀ A_ij`, `Wᵢᵀ B_ij`) with
    /// `A = V ⊙ (WH)^(β−2)`, `B = (WH)^(β−1)` formed on this rank's block, numerator and
    /// denominator reduce-scattered over the grid row (column), and the piece updated by
    /// `X ← X ⊙ (N ⊘ D)^γ(β)` on the host, as a single process does. `W_i` is gathered once
    /// per iteration (after the W update, and reused by the next W update), `H_j` once.
    fn beta_step(&mut self) -> Result<()> {
        let p = self.p;
        let beta = p.loss.beta_value();
        let floor = if beta < 1.0 { BETA_FLOOR } else { 0.0 };
        let rule = MuRule::Power {
            gamma: p.loss.mu_exponent(),
            floor,
        };
        let wi = match self.wi.take() {
            Some(wi) => wi,
            None => self.gather(Side::Left)?,
        };
        let hj = self.gather(Side::Right)?;
        self.beta_update(Side::Left, &wi, &hj, beta, rule)?;
        self.spare.put(Slot::Wi, wi);
        let wi = self.gather(Side::Left)?;
        self.beta_update(Side::Right, &wi, &hj, beta, rule)?;
        self.spare.put(Slot::Hj, hj);
        self.wi = Some(wi);
        Ok(())
    }

    /// The β update of the piece on `side` (see [`beta_step`](Self::beta_step)) from the
    /// blocks `W_i` and `H_j`: the block's numerator and denominator products, each
    /// reduce-scattered, then `X ← X ⊙ (N ⊘ D)^γ(β)` by `rule` unless every component of X is
    /// fixed.
    fn beta_update(
        &mut self,
        side: Side,
        wi: &E::Mat,
        hj: &E::Mat,
        beta: f32,
        rule: MuRule,
    ) -> Result<()> {
        let (rows, cols) = self.part_shape(side);
        let slots = match side {
            Side::Left => (Slot::Rows, Slot::Rows2),
            Side::Right => (Slot::Cols, Slot::Cols2),
        };
        let mut num_d = self.staged(slots.0, rows, cols);
        let mut den_d = self.staged(slots.1, rows, cols);
        let res = self
            .e
            .beta_products(wi, hj, side, beta, &mut num_d, &mut den_d);
        or_abort(self.g.world, res);
        let (num, den) = (self.scatter(side, &num_d)?, self.scatter(side, &den_d)?);
        self.spare.put(slots.0, num_d);
        self.spare.put(slots.1, den_d);
        if self.fixed.all(side) {
            return Ok(());
        }
        let p = self.p;
        let (x, reg) = match side {
            Side::Left => (&mut self.w, p.reg_w),
            Side::Right => (&mut self.h, p.reg_h),
        };
        let den = MuDenominator::Elementwise(&den);
        let res = self
            .host
            .mu_step(x, &num, den, side, reg, p.iter.epsilon, rule);
        or_abort(self.g.world, res);
        self.pin(side);
        Ok(())
    }

    /// The exact loss Σ_blocks D(V_ij ‖ W_i H_j) (gathers the factor blocks it lacks).
    fn exact_loss(&mut self) -> Result<f64> {
        let wi = match self.wi.take() {
            Some(wi) => wi,
            None => self.gather(Side::Left)?,
        };
        let hj = self.gather(Side::Right)?;
        let l = self.e.loss(&wi, &hj, self.p.loss, self.p.iter.epsilon);
        let mut total = [or_abort(self.g.world, l)];
        self.spare.put(Slot::Hj, hj);
        if self.p.loss != Loss::Frobenius {
            self.wi = Some(wi);
        } else {
            self.spare.put(Slot::Wi, wi);
        }
        self.g.all_reduce_f64(&mut total);
        Ok(total[0])
    }

    /// The loss after an iteration (see the module docs).
    fn check_loss(&mut self) -> Result<f64> {
        if self.p.loss == Loss::Frobenius && !self.k_current {
            self.k = self.gram(Side::Left);
            self.k_current = true;
        }
        if self.p.loss == Loss::Frobenius {
            let mut hh = Array2::<f32>::zeros((self.r, self.r));
            let res = self.host.gram(&self.h, Side::Right, &mut hh);
            or_abort(self.g.world, res);
            let quad: f64 = self
                .k
                .iter()
                .zip(&hh)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum();
            let cross: f64 = self
                .q
                .iter()
                .zip(&self.h)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum();
            let mut t = [quad - 2.0 * cross];
            self.g.all_reduce_f64(&mut t);
            let loss = 0.5 * (self.v_sq_norm + t[0]);
            if loss.is_finite() && 2.0 * loss >= TRACE_MIN_REL_SQ * self.v_sq_norm {
                return Ok(loss);
            }
        }
        self.exact_loss()
    }

    /// The iterations, with the single-process stopping rule, resumption and checkpoints.
    ///
    /// The stop flag is read collectively: a flag seen by some ranks only (a signal delivered
    /// to one process) must not split the job, so at each loss check the ranks all-reduce
    /// their flags and all stop after that check if any was raised (within `check_every`
    /// iterations of the signal). A checkpoint gathers W and H on rank 0, which hands them to
    /// the callback; its result is agreed, so an error there stops every rank.
    fn run(mut self) -> Result<Run> {
        let t0 = Instant::now();
        let mut opts = self.p.iter.clone();
        let stop = opts.stop.take();
        let mut report = History::drive(
            &mut Collective {
                fit: &mut self,
                stop,
                started: false,
            },
            &opts,
        )?;
        let n_iter = report.n_iter;
        let iterate_seconds = t0.elapsed().as_secs_f64();
        report.engine = String::new();
        let (up, down) = device_bytes(&self.g.layout, self.r, self.p.loss);
        let device = self.e.stats().map(|fit| DeviceStats {
            fit,
            first_iteration: self.device.first.unwrap_or_default(),
            steady: self.device.steady,
            steady_iterations: self.device.steady_steps,
            upload_bytes_per_iteration: up,
            read_back_bytes_per_iteration: down,
        });
        Ok(Run {
            device,
            iterations: n_iter - opts.resume.map_or(0, |r| r.iterations_done),
            w: self.w,
            h: self.h,
            report,
            engine: String::new(),
            timings: Timings {
                read_seconds: 0.0,
                init_seconds: self.init_seconds,
                iterate_seconds,
                comm_seconds: self.g.seconds(),
            },
        })
    }
}

/// A rank's iteration for [`History::drive`]: the collective step, the loss all-reduced, the
/// stop flag and a checkpoint's result agreed by every rank, the factors gathered on rank 0.
struct Collective<'s, 'a, 'g, 'c, C: Communicator, E: Engine> {
    fit: &'s mut Iter<'a, 'g, 'c, C, E>,
    /// This process's stop flag, read collectively at each check.
    stop: Option<Arc<AtomicBool>>,
    /// Whether the start's loss has been taken (it is exact; checks may use the trace form).
    started: bool,
}

impl<C: Communicator, E: Engine> Iteration for Collective<'_, '_, '_, '_, C, E> {
    fn step(&mut self, _it: usize) -> Result<()> {
        self.fit.g.set_phase(Phase::Iteration);
        let before = self.fit.e.stats();
        self.fit.step()?;
        self.fit.device.record(before, self.fit.e.stats());
        Ok(())
    }

    fn loss(&mut self) -> Result<f64> {
        if self.started {
            self.fit.g.set_phase(Phase::Check);
            return self.fit.check_loss();
        }
        self.started = true;
        let loss0 = self.fit.exact_loss()?;
        if self.fit.p.loss == Loss::Frobenius {
            if let Some(wi) = self.fit.wi.take() {
                self.fit.spare.put(Slot::Wi, wi);
            }
        }
        Ok(loss0)
    }

    fn factors(&mut self) -> Result<Option<(Array2<f32>, Array2<f32>)>> {
        let fit = &mut *self.fit;
        fit.g.set_phase(Phase::Check);
        Ok(gather_factors(fit.g.world, &fit.g.layout, &fit.w, &fit.h))
    }

    fn agree_verdict(&mut self, verdict: Verdict) -> Result<Verdict> {
        let raised = self
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed));
        if self.fit.g.all_max_f32(if raised { 1.0 } else { 0.0 }) > 0.0
            && verdict == Verdict::Continue
        {
            return Ok(Verdict::Interrupted);
        }
        Ok(verdict)
    }

    fn agree_saved(&mut self, saved: Result<()>) -> Result<()> {
        agree(self.fit.g.world, saved)
    }
}

/// Accelerated HALS's inner loop on this rank's piece `x` (see [`crate::solver`]'s
/// accelerated HALS): up to `budget` HALS sweeps on the fixed products `num`, `gram`, stopping
/// once a sweep moves the whole factor by at most `δ` times the first sweep's move. A sweep
/// updates each row of W (column of H) from that row of the product alone, so the pieces sweep
/// independently; only the stopping rule is global: the squared move
/// `‖X^(k+1) − X^(k)‖²_F = Σ_ranks ‖x^(k+1) − x^(k)‖²_F` is all-reduced (one f64 per sweep,
/// charged to [`Phase::Inner`]), so every rank stops after the sweep a single process would.
#[allow(clippy::too_many_arguments)]
fn inner_sweeps<C: Communicator>(
    host: &mut CpuEngine<'static>,
    g: &GridComm<'_, C>,
    x: &mut Array2<f32>,
    num: &Array2<f32>,
    gram: &Array2<f32>,
    side: Side,
    reg: Regularization,
    budget: usize,
) -> Result<()> {
    if budget <= 1 {
        return host.hals_step(x, num, gram, side, reg);
    }
    let r = gram.nrows();
    let mut prev = Array2::<f32>::zeros(x.dim());
    let mut small = Array2::<f32>::zeros((r, r));
    let mut first = None;
    for _ in 0..budget {
        let mut moved = [host.hals_step_tracked(x, num, gram, side, reg, &mut prev, &mut small)?];
        g.set_phase(Phase::Inner);
        g.all_reduce_f64(&mut moved);
        g.set_phase(Phase::Iteration);
        match first {
            None => first = Some(moved[0]),
            Some(f) if moved[0] <= INNER_TOL * INNER_TOL * f => break,
            Some(_) => {}
        }
    }
    Ok(())
}

/// An error of this rank alone in the middle of the collectives: print it and abort the job.
fn or_abort<C: Communicator, T>(world: &C, r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => abort(world, &e),
    }
}

fn shape_error(what: &'static str, e: ndarray::ShapeError) -> NmfError {
    NmfError::ShapeMismatch {
        what,
        expected: "a gathered block".into(),
        found: e.to_string(),
    }
}
