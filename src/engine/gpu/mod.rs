//! The GPU engine: wgpu compute shaders running every solver operation on the device.
//!
//! V is uploaded once, split into column panels of at most one storage binding each
//! (`V = [V_1 … V_P]`, `H = [H_1 … H_P]`), so the products run per panel:
//! `V Hᵀ = Σ_p V_p H_pᵀ`, `(Wᵀ V)_p = Wᵀ V_p`, `(WH)_p = W H_p`. W, H, masks and every
//! intermediate stay on the device (the m x n ratios `V ⊘ WH` and masked products `M ⊙ WH` are
//! only ever formed a block at a time, inside the matmul's epilogue); each engine call only
//! encodes dispatches into one open command encoder, which is submitted when a loss is read back
//! (a few bytes of partial sums) or when a matrix is downloaded.

mod autotune;
mod batch;
mod buffers;
mod context;
mod data;
mod dense;
mod matmul_plan;
mod multi;
mod pipelines;
mod scheduler;
mod shaders;
mod sparse;
#[cfg(test)]
mod sparse_tests;
mod state;
#[cfg(test)]
mod tests;
mod tiled;
#[cfg(test)]
mod tiled_tests;
mod tuner;
mod uniforms;

use ndarray::{s, Array2, ArrayView2};

use self::buffers::{check_shape, storage_buffer, GpuMat};
use self::matmul_plan::Operand;
use self::pipelines::{Epilogue, Kernel};
use self::scheduler::{Groups, Scheduler};
use self::state::{index, DensePanels, DeviceData, Panel};
use super::{Blocks, Measure, Product};
use super::{Engine, FactorSums, InnerStop, MuDenominator, MuRule, Side};
use crate::error::{NmfError, Result};
use crate::linalg::gemm::Accum;
use crate::options::Regularization;

pub use self::autotune::TuneRow;
pub(crate) use self::context::auto_context;
pub use self::context::GpuContext;
pub(crate) use self::multi::MultiGpuEngine;
pub(crate) use self::state::GpuEngine;
pub use self::tuner::TuneEffort;
pub use crate::gpu_stats::GpuStats;

/// Loss partials (one per matmul workgroup) folded into one value on the device, per chunk.
const LOSS_CHUNK: usize = 1024;

impl GpuEngine {
    /// Upload `v` (m x n) to the device in column panels of at most the context's panel size.
    pub(crate) fn new(ctx: &GpuContext, v: ArrayView2<'_, f32>) -> Result<Self> {
        ctx.check_faults()?;
        let (m, n) = v.dim();
        let mut sched = Scheduler::new(ctx)?;
        let per_col = (m.max(1) as u64) * 4;
        let panel_cols = ((ctx.budget.panel_bytes / per_col).max(1) as usize).min(n.max(1));
        let mut panels = Vec::new();
        let mut c0 = 0;
        while c0 < n {
            let cols = panel_cols.min(n - c0);
            let block = v.slice(s![.., c0..c0 + cols]);
            let block = block.as_standard_layout();
            let buf = storage_buffer(ctx, m * cols, "a column panel of V")?;
            match block.as_slice() {
                Some(data) => sched.upload(ctx, &buf, data),
                None => sched.upload(ctx, &buf, &block.iter().copied().collect::<Vec<_>>()),
            }
            panels.push(Panel { buf, c0, cols });
            c0 += cols;
        }
        log::debug!("gpu engine: V {m} x {n} in {} panel(s)", panels.len());
        let data = DeviceData::Dense(DensePanels {
            panels,
            spare: Vec::new(),
        });
        Ok(GpuEngine::over(ctx, sched, (m, n), data))
    }

    /// The engine over `data` (m x n), with no work buffers yet.
    fn over(ctx: &GpuContext, sched: Scheduler, (m, n): (usize, usize), data: DeviceData) -> Self {
        GpuEngine {
            ctx: ctx.clone(),
            m,
            n,
            data,
            sched,
            spares: Vec::new(),
            block: None,
            partials: None,
            slices: None,
            loss_sums: None,
            track: None,
        }
    }

    /// Number of column panels V is stored in.
    #[cfg(test)]
    pub(crate) fn panel_count(&self) -> usize {
        self.dense_panels().map_or(0, |p| p.len())
    }

    fn take_spare(&mut self, rows: usize, cols: usize) -> Result<GpuMat> {
        match self
            .spares
            .iter()
            .position(|s| s.rows == rows && s.cols == cols)
        {
            Some(i) => Ok(self.spares.swap_remove(i)),
            None => Ok(GpuMat {
                buf: storage_buffer(&self.ctx, rows * cols, "an updated factor")?,
                rows,
                cols,
            }),
        }
    }

    /// `out = a b` for a product of `shape` (rows, cols, inner), stored whole.
    fn store_product(
        &mut self,
        shape: (usize, usize, usize),
        a: Operand<'_>,
        b: Operand<'_>,
        out: &GpuMat,
    ) -> Result<()> {
        let c = Operand::rows(&out.buf, 0, shape.1);
        let replace = Accum::Replace;
        self.product(Epilogue::Store, shape, a, b, c, a, None, replace, 0.0)?;
        Ok(())
    }

    /// `out = op(a) op(b)`, `op` the transpose where its flag is set, stored whole; `out` must
    /// have the product's shape (`what` names it in the error).
    fn small_product(
        &mut self,
        (a, at): (&GpuMat, bool),
        (b, bt): (&GpuMat, bool),
        what: &'static str,
        out: &GpuMat,
    ) -> Result<()> {
        let (rows, inner) = if at {
            (a.cols, a.rows)
        } else {
            (a.rows, a.cols)
        };
        let cols = if bt { b.rows } else { b.cols };
        check_shape(what, out, rows, cols)?;
        let (a, b) = (operand(a, at), operand(b, bt));
        self.store_product((rows, cols, inner), a, b, out)
    }

    /// The tracking buffer of the inner loops decided on the device, for `count` invocations
    /// ([`uniforms::TRACK_HEAD`] entries, then a move and a norm per invocation).
    fn track_buffer(&mut self, count: usize, what: &str) -> Result<wgpu::Buffer> {
        let len = uniforms::TRACK_HEAD + 2 * count;
        Self::scratch(&self.ctx, &mut self.track, len, what)
    }

    /// `kernel` (a tracked sweep or `track_cols`) over `groups`, then `hals_stop` (one
    /// workgroup) on the moves it wrote, with the same bindings and parameters.
    fn dispatch_then_stop(
        &mut self,
        kernel: Kernel,
        buffers: &[&wgpu::Buffer],
        params: &uniforms::Hals,
        groups: Groups,
    ) -> Result<()> {
        self.sched
            .dispatch(&self.ctx, kernel, buffers, params, groups)?;
        let one = Groups(1, 1, 1);
        self.sched
            .dispatch(&self.ctx, Kernel::HalsStop, buffers, params, one)
    }

    /// The sum of the first `count` per-workgroup loss partials in `partials`: folded in chunks
    /// on the device, so only a few values are read back; the host adds those in f64.
    fn fold_partials(&mut self, partials: &wgpu::Buffer, count: usize) -> Result<f64> {
        let sums = self.fold_chunks(partials, count)?;
        Ok(sums.iter().map(|&s| f64::from(s)).sum())
    }

    /// The sums of `count` partials in chunks of [`LOSS_CHUNK`], folded on the device and read
    /// back (one value per chunk).
    fn fold_chunks(&mut self, partials: &wgpu::Buffer, count: usize) -> Result<Vec<f32>> {
        let chunks = count.div_ceil(LOSS_CHUNK);
        let ctx = self.ctx.clone();
        let folded = Self::scratch(&ctx, &mut self.loss_sums, chunks, "loss sums")?;
        let params = uniforms::Sums {
            count: index(chunks)?,
            len: index(LOSS_CHUNK)?,
            outer: index(LOSS_CHUNK)?,
            inner: 1,
            zero_to_one: 0,
            bound: index(count)?,
            ..Default::default()
        };
        self.sched.dispatch(
            &self.ctx,
            Kernel::AxisSums,
            &[partials, &folded],
            &params,
            Groups(params.count, 1, 1),
        )?;
        self.sched.read_back(&self.ctx, &folded, chunks)
    }

    /// Encode the elementwise kernel `kernel` over the entries of `x` (its shape in the
    /// parameters, with the coefficients `(a, b)`, zero for a kernel that takes none), reading
    /// `x` and writing `y`.
    fn elementwise(
        &mut self,
        kernel: Kernel,
        x: &GpuMat,
        y: &wgpu::Buffer,
        (a, b): (f32, f32),
    ) -> Result<()> {
        let params = uniforms::Ew {
            rows: index(x.rows)?,
            cols: index(x.cols)?,
            a,
            b,
        };
        let groups = self.linear(x.len())?;
        self.sched
            .dispatch(&self.ctx, kernel, &[&x.buf, y], &params, groups)
    }
}

impl GpuEngine {
    /// The data operator of this engine's V: the one place the representation is looked at.
    fn op(&self) -> &'static dyn data::DataOperator {
        match self.data {
            DeviceData::Dense(_) => &dense::Dense,
            DeviceData::Sparse(_) => &sparse::Csr,
        }
    }
}

impl Engine for GpuEngine {
    type Mat = GpuMat;

    fn name(&self) -> String {
        let info = &self.ctx.inner.info;
        format!("gpu ({}, {:?})", info.name, info.backend)
    }

    fn dims(&self) -> (usize, usize) {
        (self.m, self.n)
    }

    fn upload(&mut self, a: ArrayView2<'_, f32>) -> Result<GpuMat> {
        let (rows, cols) = a.dim();
        let buf = storage_buffer(&self.ctx, rows * cols, "a factor")?;
        self.upload_view(&buf, a);
        Ok(GpuMat { buf, rows, cols })
    }

    fn zeros(&mut self, rows: usize, cols: usize) -> Result<GpuMat> {
        Ok(GpuMat {
            buf: storage_buffer(&self.ctx, rows * cols, "a work matrix")?,
            rows,
            cols,
        })
    }

    fn download(&mut self, a: &GpuMat) -> Result<Array2<f32>> {
        let data = self.sched.read_back(&self.ctx, &a.buf, a.len())?;
        Array2::from_shape_vec((a.rows, a.cols), data).map_err(|e| NmfError::GpuInternal {
            message: format!("read back a matrix of the wrong size: {e}"),
        })
    }

    fn set_batch(&mut self, v: Array2<f32>) -> Result<()> {
        self.op().set_batch(self, v.view())
    }

    fn product(&mut self, p: Product<'_, GpuMat>, out: &mut GpuMat) -> Result<()> {
        p.check(self.dims(), out)?;
        self.op().product(self, p, out)
    }

    fn measure(&mut self, w: &GpuMat, h: &GpuMat, what: Measure<'_, GpuMat>) -> Result<f64> {
        what.check(self.dims(), w, h)?;
        self.op().measure(self, w, h, what)
    }

    fn beta_products(
        &mut self,
        w: &GpuMat,
        h: &GpuMat,
        side: Side,
        beta: f32,
        num: &mut GpuMat,
        den: &mut GpuMat,
    ) -> Result<()> {
        let f = Blocks { w, h, side };
        Product::Kl(f).check(self.dims(), num)?;
        Product::Kl(f).check(self.dims(), den)?;
        self.op().beta(self, f, beta, (num, den))
    }

    fn pin(&mut self, x: &mut GpuMat, anchor: &GpuMat) -> Result<()> {
        check_shape("the anchor of pinned entries", anchor, x.rows, x.cols)?;
        self.elementwise(Kernel::Pin, anchor, &x.buf, (0.0, 0.0))
    }

    fn factor_sums(&mut self, x: &GpuMat, which: FactorSums, out: &mut GpuMat) -> Result<()> {
        let params = match which {
            // Row sums of H (r x n).
            FactorSums::RowsOfH => {
                check_shape("the row sums of H", out, x.rows, 1)?;
                uniforms::Sums {
                    count: index(x.rows)?,
                    len: index(x.cols)?,
                    outer: index(x.cols)?,
                    inner: 1,
                    zero_to_one: 0,
                    bound: index(x.len())?,
                    ..Default::default()
                }
            }
            // Column sums of W (m x r), zero sums replaced by 1.
            FactorSums::ColumnsOfW => {
                check_shape("the column sums of W", out, x.cols, 1)?;
                uniforms::Sums {
                    count: index(x.cols)?,
                    len: index(x.rows)?,
                    outer: 1,
                    inner: index(x.cols)?,
                    zero_to_one: 1,
                    bound: index(x.len())?,
                    ..Default::default()
                }
            }
        };
        let groups = Groups(params.count, 1, 1);
        self.sched.dispatch(
            &self.ctx,
            Kernel::AxisSums,
            &[&x.buf, &out.buf],
            &params,
            groups,
        )
    }

    fn cross(&mut self, x: &GpuMat, y: &GpuMat, side: Side, out: &mut GpuMat) -> Result<()> {
        // xᵀ y: (r x m)(m x r') on the left, x yᵀ: (r x n)(n x r') on the right.
        let left = side == Side::Left;
        let (what, rows, cols) = match side {
            Side::Left => ("the second factor of xᵀ y", x.rows, y.cols),
            Side::Right => ("the second factor of x yᵀ", y.rows, x.cols),
        };
        check_shape(what, y, rows, cols)?;
        self.small_product((x, left), (y, !left), "the output of a small product", out)
    }

    fn mul_small(&mut self, x: &GpuMat, s: &GpuMat, side: Side, out: &mut GpuMat) -> Result<()> {
        // x s: (m x r)(r x r) on the left, s x: (r x r)(r x n) on the right.
        let (what, r, (a, b)) = match side {
            Side::Left => ("the small factor of x s", x.cols, (x, s)),
            Side::Right => ("the small factor of s x", x.rows, (s, x)),
        };
        check_shape(what, s, r, r)?;
        let what = "the output of a product with a small matrix";
        self.small_product((a, false), (b, false), what, out)
    }

    fn transpose(&mut self, x: &GpuMat, out: &mut GpuMat) -> Result<()> {
        check_shape("the output of a transpose", out, x.cols, x.rows)?;
        self.elementwise(Kernel::Transpose, x, &out.buf, (0.0, 0.0))
    }

    fn axpby(&mut self, a: f32, x: &GpuMat, b: f32, y: &mut GpuMat) -> Result<()> {
        check_shape("y in a x + b y", y, x.rows, x.cols)?;
        self.elementwise(Kernel::Axpby, x, &y.buf, (a, b))
    }

    fn mu_step(
        &mut self,
        x: &mut GpuMat,
        num: &GpuMat,
        den: MuDenominator<'_, GpuMat>,
        side: Side,
        reg: Regularization,
        eps: f32,
        rule: MuRule,
    ) -> Result<()> {
        let (rows, cols) = (x.rows, x.cols);
        let r = match side {
            Side::Left => cols,
            Side::Right => rows,
        };
        check_shape("the numerator of a multiplicative update", num, rows, cols)?;
        // The kernel forms D = X P (Left) or P X (Right) itself from any r x r matrix, so a
        // Gram matrix is only the symmetric case of a general product.
        let (kind, small) = match den {
            MuDenominator::Gram(g) | MuDenominator::Product(g) => {
                check_shape("the r x r matrix of a multiplicative update", g, r, r)?;
                (uniforms::MuDen::Product, &g.buf)
            }
            MuDenominator::Sums(s) => {
                check_shape("the sums (r x 1) of a multiplicative update", s, r, 1)?;
                (uniforms::MuDen::Sums, &s.buf)
            }
            MuDenominator::Elementwise(d) => {
                check_shape("the denominator of a multiplicative update", d, rows, cols)?;
                (uniforms::MuDen::Elementwise, &d.buf)
            }
        };
        let params = uniforms::Mu {
            rows: index(rows)?,
            cols: index(cols)?,
            r: index(r)?,
            side: uniforms::MuSide::from(side) as u32,
            den: kind as u32,
            l1: reg.l1,
            l2: reg.l2,
            eps,
            rule: uniforms::MuRuleCode::from(rule) as u32,
            gamma: match rule {
                MuRule::Power { gamma, .. } => gamma,
                _ => 1.0,
            },
            floor: match rule {
                MuRule::Power { floor, .. } => floor,
                _ => 0.0,
            },
            ..Default::default()
        };
        let mut spare = self.take_spare(rows, cols)?;
        let groups = self.linear(rows * cols)?;
        self.sched.dispatch(
            &self.ctx,
            Kernel::MuUpdate,
            &[&x.buf, &num.buf, small, &spare.buf],
            &params,
            groups,
        )?;
        std::mem::swap(&mut x.buf, &mut spare.buf);
        self.spares.push(spare);
        Ok(())
    }

    fn hals_step(
        &mut self,
        x: &mut GpuMat,
        num: &GpuMat,
        gram: &GpuMat,
        side: Side,
        reg: Regularization,
    ) -> Result<()> {
        let (count, r) = hals_shape(x, num, gram, side)?;
        let kernel = match side {
            Side::Left => Kernel::HalsRows,
            Side::Right => Kernel::HalsCols,
        };
        let params = uniforms::Hals {
            rows: index(x.rows)?,
            cols: index(x.cols)?,
            r: index(r)?,
            l1: reg.l1,
            l2: reg.l2,
            ..Default::default()
        };
        let groups = self.linear(count)?;
        self.sched.dispatch(
            &self.ctx,
            kernel,
            &[&x.buf, &num.buf, &gram.buf],
            &params,
            groups,
        )
    }

    /// The sweeps and their stopping rule on the device: per sweep, the tracked sweep kernel
    /// (skipped by the device once the flag is cleared) and `hals_stop` (one workgroup) that
    /// sums the moves and clears the flag when the rule is met. Nothing is read back; all
    /// `budget` pairs are encoded.
    fn hals_sweeps(
        &mut self,
        x: &mut GpuMat,
        num: &GpuMat,
        gram: &GpuMat,
        side: Side,
        reg: Regularization,
        budget: usize,
        stop: InnerStop,
        _prev: &mut GpuMat,
        _small: &mut GpuMat,
    ) -> Result<()> {
        if !stop.tracks(budget) {
            for _ in 0..budget {
                self.hals_step(x, num, gram, side, reg)?;
            }
            return Ok(());
        }
        let (count, r) = hals_shape(x, num, gram, side)?;
        let kernel = match side {
            Side::Left => Kernel::HalsRowsTracked,
            Side::Right => Kernel::HalsColsTracked,
        };
        let (rule, tol) = match stop {
            InnerStop::FirstMove { tol } => (uniforms::StopRule::FirstMove, tol),
            InnerStop::Relative { tol } => (uniforms::StopRule::Relative, tol),
        };
        let track = self.track_buffer(count, "the moves of inner HALS sweeps")?;
        let groups = self.linear(count)?;
        let buffers = [&x.buf, &num.buf, &gram.buf, &track];
        for sweep in 0..budget {
            let params = uniforms::Hals {
                rows: index(x.rows)?,
                cols: index(x.cols)?,
                r: index(r)?,
                sweep: index(sweep)?,
                l1: reg.l1,
                l2: reg.l2,
                tol_sq: (tol * tol) as f32,
                rule: rule as u32,
                count: index(count)?,
                ..Default::default()
            };
            self.dispatch_then_stop(kernel, &buffers, &params, groups)?;
        }
        Ok(())
    }

    /// The relative rule on the device for H (`track_cols` then `hals_stop`); W by the host.
    fn relative_check(
        &mut self,
        x: &mut GpuMat,
        prev: &mut GpuMat,
        side: Side,
        sweep: usize,
        tol: f64,
        small: &mut GpuMat,
    ) -> Result<bool> {
        if side == Side::Left {
            return super::inner::host_relative_check(self, x, prev, side, tol, small);
        }
        check_shape("the previous H of an inner check", prev, x.rows, x.cols)?;
        let count = x.cols;
        let track = self.track_buffer(count, "the moves of inner sweeps")?;
        let params = uniforms::Hals {
            rows: index(x.rows)?,
            cols: index(x.cols)?,
            r: index(x.rows)?,
            sweep: index(sweep)?,
            tol_sq: (tol * tol) as f32,
            rule: uniforms::StopRule::Relative as u32,
            count: index(count)?,
            ..Default::default()
        };
        // The Gram binding is not read by these two kernels; `prev` fills it.
        let buffers = [&x.buf, &prev.buf, &prev.buf, &track];
        let groups = self.linear(count)?;
        self.dispatch_then_stop(Kernel::TrackCols, &buffers, &params, groups)?;
        Ok(false)
    }

    fn stats(&self) -> Option<GpuStats> {
        Some(self.sched.snapshot(&self.ctx))
    }

    fn upload_into(&mut self, a: ArrayView2<'_, f32>, out: &mut GpuMat) -> Result<()> {
        self.write_matrix(a, out)
    }
}

/// `m` as an operand of a product: itself (row-major), or its transpose when `transposed`.
fn operand(m: &GpuMat, transposed: bool) -> Operand<'_> {
    if transposed {
        Operand::transposed(&m.buf, 0, m.cols)
    } else {
        Operand::rows(&m.buf, 0, m.cols)
    }
}

/// The invocations (rows of W, columns of H) and the rank of a HALS sweep of `x` on `side`,
/// with `num` (shaped like `x`) and `gram` (r x r) checked.
fn hals_shape(x: &GpuMat, num: &GpuMat, gram: &GpuMat, side: Side) -> Result<(usize, usize)> {
    let (count, r) = match side {
        Side::Left => (x.rows, x.cols),
        Side::Right => (x.cols, x.rows),
    };
    check_shape("the numerator of a HALS sweep", num, x.rows, x.cols)?;
    check_shape("the Gram matrix of a HALS sweep", gram, r, r)?;
    Ok((count, r))
}
