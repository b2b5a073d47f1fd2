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

use self::buffers::{check_factors, check_shape, storage_buffer, GpuMat};
use self::matmul_plan::Operand;
use self::pipelines::{Epilogue, Kernel};
use self::scheduler::{Groups, Scheduler};
use self::state::{index, Panel};
use super::{Engine, FactorSums, InnerStop, MuDenominator, MuRule, Side};
use crate::error::{NmfError, Result};
use crate::linalg::gemm::Accum;
use crate::options::{Loss, Regularization};

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
        Ok(GpuEngine {
            ctx: ctx.clone(),
            m,
            n,
            panels,
            spare_panels: Vec::new(),
            sched,
            spares: Vec::new(),
            block: None,
            partials: None,
            slices: None,
            loss_sums: None,
            track: None,
            sparse: None,
        })
    }

    /// Number of column panels V is stored in.
    #[cfg(test)]
    pub(crate) fn panel_count(&self) -> usize {
        self.panels.len()
    }

    /// Rows of V ⊘ WH (or M ⊙ WH) formed at once for a panel of `cols` columns.
    fn kl_rows(&self, cols: usize) -> usize {
        let entries = (self.ctx.budget.kl_block_bytes / 4) as usize;
        (entries / cols.max(1)).clamp(1, self.m.max(1))
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

    /// Products with a block matrix `Z` formed block by block (never whole) from `W H`:
    /// `Z = V ⊘ max(WH, ε)` without a mask, `Z = M ⊙ WH` with one (M m x n, row-major);
    /// `out = Z Hᵀ` (m x r) for `Side::Left`, `out = Wᵀ Z` (r x n) for `Side::Right`.
    /// Z is formed per V panel and per block of rows by the matmul with a fused epilogue, then
    /// multiplied into `out` by the plain matmul.
    fn blockwise(
        &mut self,
        mask: Option<&wgpu::Buffer>,
        w: &GpuMat,
        h: &GpuMat,
        side: Side,
        out: &mut GpuMat,
    ) -> Result<()> {
        let epilogue = match mask {
            None => Epilogue::KlRatio,
            Some(_) => Epilogue::Masked,
        };
        self.blockwise_with(epilogue, 0.0, mask, w, h, side, out)
    }

    /// [`blockwise`](Self::blockwise) with the block `Z` formed by any elementwise epilogue
    /// (`scalar` its parameter: β for the β-divergence blocks).
    #[allow(clippy::too_many_arguments)]
    fn blockwise_with(
        &mut self,
        epilogue: Epilogue,
        scalar: f32,
        mask: Option<&wgpu::Buffer>,
        w: &GpuMat,
        h: &GpuMat,
        side: Side,
        out: &mut GpuMat,
    ) -> Result<()> {
        let (m, n, r) = (self.m, self.n, w.cols);
        for (p, panel) in self.panels.clone().iter().enumerate() {
            let nc = panel.cols;
            let bm = self.kl_rows(nc);
            let z = Self::scratch(
                &self.ctx,
                &mut self.block,
                bm * nc,
                "a block of V ⊘ WH or M ⊙ WH",
            )?;
            for (blk, i0) in (0..m).step_by(bm).enumerate() {
                let rows = bm.min(m - i0);
                // Z = V_p[i0.., :] ⊘ max(W[i0.., :] H_p, ε)  or  M[i0.., panel] ⊙ W[i0.., :] H_p
                let d = match mask {
                    None => Operand::rows(&panel.buf, i0 * nc, nc),
                    Some(mk) => Operand::rows(mk, i0 * n + panel.c0, n),
                };
                self.product(
                    epilogue,
                    (rows, nc, r),
                    Operand::rows(&w.buf, i0 * r, r),
                    Operand::rows(&h.buf, panel.c0, n),
                    Operand::rows(&z, 0, nc),
                    d,
                    None,
                    Accum::Replace,
                    scalar,
                )?;
                let zr = Operand::rows(&z, 0, nc);
                match side {
                    // out[i0.., :] (+)= Z H_pᵀ
                    Side::Left => self.product(
                        Epilogue::Store,
                        (rows, r, nc),
                        zr,
                        Operand::transposed(&h.buf, panel.c0, n),
                        Operand::rows(&out.buf, i0 * r, r),
                        zr,
                        None,
                        if p == 0 { Accum::Replace } else { Accum::Add },
                        0.0,
                    )?,
                    // out[:, panel] (+)= W[i0.., :]ᵀ Z
                    Side::Right => self.product(
                        Epilogue::Store,
                        (r, nc, rows),
                        Operand::transposed(&w.buf, i0 * r, r),
                        zr,
                        Operand::rows(&out.buf, panel.c0, n),
                        zr,
                        None,
                        if blk == 0 { Accum::Replace } else { Accum::Add },
                        0.0,
                    )?,
                };
            }
        }
        Ok(())
    }

    /// The sum of the first `count` per-workgroup loss partials in `partials`: folded in chunks
    /// on the device, so only a few values are read back; the host adds those in f64.
    fn fold_partials(&mut self, partials: &wgpu::Buffer, count: usize) -> Result<f64> {
        let chunks = count.div_ceil(LOSS_CHUNK);
        let folded = Self::scratch(&self.ctx, &mut self.loss_sums, chunks, "loss sums")?;
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
        let sums = self.sched.read_back(&self.ctx, &folded, chunks)?;
        Ok(sums.iter().map(|&s| f64::from(s)).sum())
    }

    /// Encode an elementwise kernel over the `rows x cols` entries of its output.
    fn elementwise(
        &mut self,
        kernel: Kernel,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        params: uniforms::Ew,
    ) -> Result<()> {
        let groups = self.linear(params.rows as usize * params.cols as usize)?;
        self.sched
            .dispatch(&self.ctx, kernel, &[x, y], &params, groups)
    }

    /// `Ok` when `a` (named `what`) has V's shape m x n, as a mask must.
    fn check_data_shaped(&self, what: &'static str, a: &GpuMat) -> Result<()> {
        check_shape(what, a, self.m, self.n)
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
        self.replace_data(v.view())
    }

    fn v_ht(&mut self, h: &GpuMat, out: &mut GpuMat) -> Result<()> {
        if self.sparse.is_some() {
            return self.sparse_v_ht(h, out);
        }
        let (m, n, r) = (self.m, self.n, h.rows);
        check_shape("H (r x n) in V Hᵀ", h, r, n)?;
        check_shape("the output of V Hᵀ", out, m, r)?;
        for (p, panel) in self.panels.clone().iter().enumerate() {
            let a = Operand::rows(&panel.buf, 0, panel.cols);
            let accum = if p == 0 { Accum::Replace } else { Accum::Add };
            self.product(
                Epilogue::Store,
                (m, r, panel.cols),
                a,
                Operand::transposed(&h.buf, panel.c0, n),
                Operand::rows(&out.buf, 0, r),
                a,
                None,
                accum,
                0.0,
            )?;
        }
        Ok(())
    }

    fn wt_v(&mut self, w: &GpuMat, out: &mut GpuMat) -> Result<()> {
        if self.sparse.is_some() {
            return self.sparse_wt_v(w, out);
        }
        let (m, n, r) = (self.m, self.n, w.cols);
        check_shape("W (m x r) in Wᵀ V", w, m, r)?;
        check_shape("the output of Wᵀ V", out, r, n)?;
        for panel in self.panels.clone().iter() {
            let a = Operand::transposed(&w.buf, 0, r);
            self.product(
                Epilogue::Store,
                (r, panel.cols, m),
                a,
                Operand::rows(&panel.buf, 0, panel.cols),
                Operand::rows(&out.buf, panel.c0, n),
                a,
                None,
                Accum::Replace,
                0.0,
            )?;
        }
        Ok(())
    }

    fn gram(&mut self, x: &GpuMat, side: Side, out: &mut GpuMat) -> Result<()> {
        self.cross(x, x, side, out)
    }

    fn kl_numerator(&mut self, w: &GpuMat, h: &GpuMat, side: Side, out: &mut GpuMat) -> Result<()> {
        let r = check_factors(self.m, self.n, w, h)?;
        match side {
            Side::Left => check_shape("the KL numerator of W", out, self.m, r)?,
            Side::Right => check_shape("the KL numerator of H", out, r, self.n)?,
        }
        if self.sparse.is_some() {
            return self.sparse_kl_numerator(w, h, side, out);
        }
        self.blockwise(None, w, h, side, out)
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
        if self.sparse.is_some() {
            return Err(sparse::unsupported("a β-divergence update with sparse V"));
        }
        let r = check_factors(self.m, self.n, w, h)?;
        let (rows, cols) = match side {
            Side::Left => (self.m, r),
            Side::Right => (r, self.n),
        };
        check_shape("the numerator of a β-divergence update", num, rows, cols)?;
        check_shape("the denominator of a β-divergence update", den, rows, cols)?;
        self.blockwise_with(Epilogue::BetaNum, beta, None, w, h, side, num)?;
        self.blockwise_with(Epilogue::BetaDen, beta, None, w, h, side, den)
    }

    fn pin(&mut self, x: &mut GpuMat, anchor: &GpuMat) -> Result<()> {
        check_shape("the anchor of pinned entries", anchor, x.rows, x.cols)?;
        let params = uniforms::Ew {
            rows: index(x.rows)?,
            cols: index(x.cols)?,
            ..Default::default()
        };
        self.elementwise(Kernel::Pin, &anchor.buf, &x.buf, params)
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
        let (a, b, shape) = match side {
            // xᵀ y: (r x m)(m x r')
            Side::Left => {
                check_shape("the second factor of xᵀ y", y, x.rows, y.cols)?;
                (
                    Operand::transposed(&x.buf, 0, x.cols),
                    Operand::rows(&y.buf, 0, y.cols),
                    (x.cols, y.cols, x.rows),
                )
            }
            // x yᵀ: (r x n)(n x r')
            Side::Right => {
                check_shape("the second factor of x yᵀ", y, y.rows, x.cols)?;
                (
                    Operand::rows(&x.buf, 0, x.cols),
                    Operand::transposed(&y.buf, 0, y.cols),
                    (x.rows, y.rows, x.cols),
                )
            }
        };
        check_shape("the output of a small product", out, shape.0, shape.1)?;
        let c = Operand::rows(&out.buf, 0, shape.1);
        self.product(
            Epilogue::Store,
            shape,
            a,
            b,
            c,
            a,
            None,
            Accum::Replace,
            0.0,
        )?;
        Ok(())
    }

    fn mul_small(&mut self, x: &GpuMat, s: &GpuMat, side: Side, out: &mut GpuMat) -> Result<()> {
        let (a, b, shape) = match side {
            // x s: (m x r)(r x r)
            Side::Left => {
                check_shape("the small factor of x s", s, x.cols, x.cols)?;
                (
                    Operand::rows(&x.buf, 0, x.cols),
                    Operand::rows(&s.buf, 0, s.cols),
                    (x.rows, s.cols, x.cols),
                )
            }
            // s x: (r x r)(r x n)
            Side::Right => {
                check_shape("the small factor of s x", s, x.rows, x.rows)?;
                (
                    Operand::rows(&s.buf, 0, s.cols),
                    Operand::rows(&x.buf, 0, x.cols),
                    (s.rows, x.cols, s.cols),
                )
            }
        };
        check_shape(
            "the output of a product with a small matrix",
            out,
            x.rows,
            x.cols,
        )?;
        let c = Operand::rows(&out.buf, 0, shape.1);
        self.product(
            Epilogue::Store,
            shape,
            a,
            b,
            c,
            a,
            None,
            Accum::Replace,
            0.0,
        )?;
        Ok(())
    }

    fn transpose(&mut self, x: &GpuMat, out: &mut GpuMat) -> Result<()> {
        check_shape("the output of a transpose", out, x.cols, x.rows)?;
        let params = uniforms::Ew {
            rows: index(x.rows)?,
            cols: index(x.cols)?,
            ..Default::default()
        };
        self.elementwise(Kernel::Transpose, &x.buf, &out.buf, params)
    }

    fn axpby(&mut self, a: f32, x: &GpuMat, b: f32, y: &mut GpuMat) -> Result<()> {
        check_shape("y in a x + b y", y, x.rows, x.cols)?;
        let params = uniforms::Ew {
            rows: index(x.rows)?,
            cols: index(x.cols)?,
            a,
            b,
        };
        self.elementwise(Kernel::Axpby, &x.buf, &y.buf, params)
    }

    fn masked_product(
        &mut self,
        mask: &GpuMat,
        w: &GpuMat,
        h: &GpuMat,
        side: Side,
        out: &mut GpuMat,
    ) -> Result<()> {
        self.check_data_shaped("the mask (m x n)", mask)?;
        if self.sparse.is_some() {
            return Err(sparse::unsupported("a dense mask with sparse V"));
        }
        let r = check_factors(self.m, self.n, w, h)?;
        match side {
            Side::Left => check_shape("the masked product (M ⊙ WH) Hᵀ", out, self.m, r)?,
            Side::Right => check_shape("the masked product Wᵀ (M ⊙ WH)", out, r, self.n)?,
        }
        self.blockwise(Some(&mask.buf), w, h, side, out)
    }

    fn masked_loss(&mut self, mask: &GpuMat, w: &GpuMat, h: &GpuMat) -> Result<f64> {
        self.check_data_shaped("the mask (m x n)", mask)?;
        if self.sparse.is_some() {
            return Err(sparse::unsupported("a dense mask with sparse V"));
        }
        let r = check_factors(self.m, self.n, w, h)?;
        let (m, n) = (self.m, self.n);
        let panels = self.panels.clone();
        let count: usize = panels.iter().map(|p| self.product_groups(m, p.cols)).sum();
        let partials = Self::scratch(&self.ctx, &mut self.partials, count, "loss partial sums")?;
        let mut base = 0;
        for panel in &panels {
            base += self.product(
                Epilogue::LossMasked,
                (m, panel.cols, r),
                Operand::rows(&w.buf, 0, r),
                Operand::rows(&h.buf, panel.c0, n),
                Operand::rows(&partials, base, 0),
                Operand::rows(&panel.buf, 0, panel.cols),
                Some(Operand::rows(&mask.buf, panel.c0, n)),
                Accum::Replace,
                0.0,
            )?;
        }
        Ok(0.5 * self.fold_partials(&partials, base)?)
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
        let (kernel, count, r) = match side {
            Side::Left => (Kernel::HalsRows, x.rows, x.cols),
            Side::Right => (Kernel::HalsCols, x.cols, x.rows),
        };
        check_shape("the numerator of a HALS sweep", num, x.rows, x.cols)?;
        check_shape("the Gram matrix of a HALS sweep", gram, r, r)?;
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
        let (kernel, count, r) = match side {
            Side::Left => (Kernel::HalsRowsTracked, x.rows, x.cols),
            Side::Right => (Kernel::HalsColsTracked, x.cols, x.rows),
        };
        check_shape("the numerator of a HALS sweep", num, x.rows, x.cols)?;
        check_shape("the Gram matrix of a HALS sweep", gram, r, r)?;
        let (rule, tol) = match stop {
            InnerStop::FirstMove { tol } => (uniforms::StopRule::FirstMove, tol),
            InnerStop::Relative { tol } => (uniforms::StopRule::Relative, tol),
        };
        let track = Self::scratch(
            &self.ctx,
            &mut self.track,
            uniforms::TRACK_HEAD + 2 * count,
            "the moves of inner HALS sweeps",
        )?;
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
            self.sched
                .dispatch(&self.ctx, kernel, &buffers, &params, groups)?;
            self.sched.dispatch(
                &self.ctx,
                Kernel::HalsStop,
                &buffers,
                &params,
                Groups(1, 1, 1),
            )?;
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
        let track = Self::scratch(
            &self.ctx,
            &mut self.track,
            uniforms::TRACK_HEAD + 2 * count,
            "the moves of inner sweeps",
        )?;
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
        self.sched
            .dispatch(&self.ctx, Kernel::TrackCols, &buffers, &params, groups)?;
        self.sched.dispatch(
            &self.ctx,
            Kernel::HalsStop,
            &buffers,
            &params,
            Groups(1, 1, 1),
        )?;
        Ok(false)
    }

    fn loss(&mut self, w: &GpuMat, h: &GpuMat, loss: Loss, eps: f32) -> Result<f64> {
        if self.sparse.is_some() {
            return self.sparse_loss(w, h, loss, eps);
        }
        let r = check_factors(self.m, self.n, w, h)?;
        let (m, n) = (self.m, self.n);
        let loss = loss.canonical();
        // The β epilogue reads β where the others read ε (its guard is ε_f32, scikit-learn's).
        let (kernel, eps) = match loss {
            Loss::Frobenius => (Epilogue::LossFrobenius, eps),
            Loss::KullbackLeibler => (Epilogue::LossKl, eps),
            Loss::ItakuraSaito | Loss::Beta(_) => (Epilogue::LossBeta, loss.beta_value()),
        };
        let panels = self.panels.clone();
        let count: usize = panels.iter().map(|p| self.product_groups(m, p.cols)).sum();
        let partials = Self::scratch(&self.ctx, &mut self.partials, count, "loss partial sums")?;
        let mut base = 0;
        for panel in &panels {
            let wa = Operand::rows(&w.buf, 0, r);
            base += self.product(
                kernel,
                (m, panel.cols, r),
                wa,
                Operand::rows(&h.buf, panel.c0, n),
                Operand::rows(&partials, base, 0),
                Operand::rows(&panel.buf, 0, panel.cols),
                None,
                Accum::Replace,
                eps,
            )?;
        }
        let total = self.fold_partials(&partials, base)?;
        Ok(match loss {
            Loss::Frobenius => 0.5 * total,
            _ => total,
        })
    }

    fn stats(&self) -> Option<GpuStats> {
        Some(self.sched.snapshot(&self.ctx))
    }

    fn upload_into(&mut self, a: ArrayView2<'_, f32>, out: &mut GpuMat) -> Result<()> {
        self.write_matrix(a, out)
    }

    fn pattern_product(
        &mut self,
        w: &GpuMat,
        h: &GpuMat,
        side: Side,
        out: &mut GpuMat,
    ) -> Result<()> {
        if self.sparse.is_none() {
            return Err(super::pattern_unsupported());
        }
        self.sparse_pattern_product(w, h, side, out)
    }

    fn pattern_loss(&mut self, w: &GpuMat, h: &GpuMat) -> Result<f64> {
        if self.sparse.is_none() {
            return Err(super::pattern_unsupported());
        }
        self.sparse_pattern_loss(w, h)
    }
}
