//! Planning and encoding of the matrix product: how one product `C = A B` (any strides, with an
//! epilogue) is cut into dispatches of the configuration chosen for it.
//!
//! - The configuration ([`MatmulConfig`]: the strided kernel of `matmul.wgsl` at a workgroup
//!   shape, or the tiled kernel of `matmul_tiled.wgsl` at a tile shape, split over the inner
//!   dimension or not) comes from `matmul_config` (autotune.rs): the fixed heuristic, or the
//!   tuner's choice for the product's shape class. An output larger than the grid limit is cut
//!   into chunks of whole tiles, one dispatch each.
//! - The tiled kernel is specialised for the operands' layout (A and B each row-major or
//!   transposed: pipeline constants) and reads an operand as vec4 when its offset, leading
//!   dimension and buffer are multiples of 4 entries.
//! - An output too small to fill the device (e.g. the r x r Gram matrices, fewer than
//!   [`TARGET_GROUPS`] workgroups) is split over the inner dimension when the configuration
//!   says so: `s` slices, each `C_s = A[:, K_s] B[K_s, :]` over a chunk `K_s` of at least
//!   [`MIN_K_CHUNK`] terms, in one dispatch (the slice in the grid's z dimension), then
//!   `C (+)= Σ_s C_s` by `sum_slices`.
//! - The loss epilogues write one partial per workgroup; [`GpuEngine::product`] returns how many.

use super::pipelines::{Epilogue, Kernel};
use super::scheduler::Groups;
use super::state::{index, GpuEngine};
use super::tiled::{vec4_ok, Layout, Tiled};
use super::tuner::{heuristic, MatmulConfig, MatmulKernel};
use super::uniforms;
use crate::error::{NmfError, Result};
use crate::linalg::gemm::Accum;

/// Products whose output spans fewer workgroups than this are split over the inner dimension
/// (e.g. the r x r Gram matrices), so that the whole device works on them.
const TARGET_GROUPS: usize = 256;
/// Shortest inner-dimension chunk of a split product.
const MIN_K_CHUNK: usize = 256;
/// Most slices of a split product.
const MAX_SLICES: usize = 64;
/// Most entries of the slices of a split product, all together (64 MiB).
const MAX_SLICE_ENTRIES: usize = 1 << 24;

/// A strided view of a device matrix: entry `(i, j)` is `buf[off + i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub(super) struct Operand<'a> {
    pub(super) buf: &'a wgpu::Buffer,
    pub(super) off: usize,
    pub(super) rs: usize,
    pub(super) cs: usize,
}

impl<'a> Operand<'a> {
    /// Row-major with `cols` columns, starting at entry `off`.
    pub(super) fn rows(buf: &'a wgpu::Buffer, off: usize, cols: usize) -> Self {
        Operand {
            buf,
            off,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose of a row-major matrix with `cols` columns, starting at entry `off`.
    pub(super) fn transposed(buf: &'a wgpu::Buffer, off: usize, cols: usize) -> Self {
        Operand {
            buf,
            off,
            rs: 1,
            cs: cols,
        }
    }
    /// The sub-view starting at row `i`, column `j`.
    pub(super) fn at(self, i: usize, j: usize) -> Self {
        Operand {
            off: self.off + i * self.rs + j * self.cs,
            ..self
        }
    }
}

/// The pipeline of `config` with `epilogue` for operands `a`, `b` of `layout` (`None`: the
/// strided kernel, whatever the configuration says).
fn kernel_of(
    config: MatmulConfig,
    epilogue: Epilogue,
    layout: Option<Layout>,
    a: &Operand<'_>,
    b: &Operand<'_>,
) -> Result<Kernel> {
    Ok(match (config.kernel, layout) {
        (MatmulKernel::Tiled(shape), Some(layout)) => {
            let a_lead = if layout.a_t() { a.cs } else { a.rs };
            let b_lead = if layout.b_t() { b.cs } else { b.rs };
            Kernel::MatmulTiled(
                epilogue,
                Tiled {
                    shape,
                    layout,
                    a_vec: vec4_ok(a.off, a_lead, a.buf.size()),
                    b_vec: vec4_ok(b.off, b_lead, b.buf.size()),
                },
            )
        }
        (MatmulKernel::Strided(wg), _) => Kernel::Matmul(epilogue, wg),
        (MatmulKernel::Tiled(_), None) => {
            return Err(NmfError::GpuInternal {
                message: "the tiled matmul was planned for operands without unit strides".into(),
            })
        }
    })
}

impl GpuEngine {
    /// The rows and columns one workgroup of `config` covers, and the largest chunk (rows,
    /// cols) one dispatch covers within the grid limit.
    fn tile_of(&self, config: MatmulConfig) -> ((usize, usize), (usize, usize)) {
        let (tr, tc) = config.tile();
        let g = self.ctx.tuning().max_groups as usize;
        ((tr, tc), (g * tr, g * tc))
    }

    /// The configuration of `config` that actually runs on operands of `layout`: the strided
    /// kernel at the heuristic's workgroup when the operands have no unit strides.
    fn runnable(
        &self,
        config: MatmulConfig,
        layout: Option<Layout>,
        rows: usize,
        cols: usize,
    ) -> MatmulConfig {
        match (config.kernel, layout) {
            (MatmulKernel::Tiled(_), None) => {
                heuristic(self.device_shape(rows, cols), None, (rows, cols))
            }
            _ => config,
        }
    }

    /// Workgroups (= loss partials) a loss product over a `rows x cols` output takes (the loss
    /// epilogues run the heuristic's configuration for row-major W and H).
    pub(super) fn product_groups(&self, rows: usize, cols: usize) -> usize {
        let config = self.fixed_config(Some(Layout::AB), rows, cols);
        self.groups_of(config, rows, cols)
    }

    fn groups_of(&self, config: MatmulConfig, rows: usize, cols: usize) -> usize {
        let ((tr, tc), (cr, cc)) = self.tile_of(config);
        let mut total = 0;
        for r0 in (0..rows).step_by(cr) {
            let rr = cr.min(rows - r0);
            for c0 in (0..cols).step_by(cc) {
                let ccols = cc.min(cols - c0);
                total += rr.div_ceil(tr) * ccols.div_ceil(tc);
            }
        }
        total
    }

    /// Encode the matmul with `epilogue` on the product `A B` (`rows x cols`, inner dimension
    /// `k`), with C the output (or the loss partials), D the data block of the fused epilogues
    /// and `mask` the mask of [`Epilogue::LossMasked`] (aligned with D), in the configuration
    /// chosen for it. Returns the number of workgroups (one loss partial each).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn product(
        &mut self,
        epilogue: Epilogue,
        dims: (usize, usize, usize),
        a: Operand<'_>,
        b: Operand<'_>,
        c: Operand<'_>,
        d: Operand<'_>,
        mask: Option<Operand<'_>>,
        accum: Accum,
        eps: f32,
    ) -> Result<usize> {
        let config = self.matmul_config(epilogue, dims, &a, &b)?;
        self.product_with(config, epilogue, dims, a, b, c, d, mask, accum, eps)
    }

    /// [`product`](Self::product) in the configuration `config`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn product_with(
        &mut self,
        config: MatmulConfig,
        epilogue: Epilogue,
        (rows, cols, k): (usize, usize, usize),
        a: Operand<'_>,
        b: Operand<'_>,
        c: Operand<'_>,
        d: Operand<'_>,
        mask: Option<Operand<'_>>,
        accum: Accum,
        eps: f32,
    ) -> Result<usize> {
        let layout = Layout::of((a.rs, a.cs), (b.rs, b.cs), (rows, cols, k));
        let config = self.runnable(config, layout, rows, cols);
        if epilogue == Epilogue::Store && config.split {
            let slices = self.k_slices(config, rows, cols, k);
            if slices > 1 {
                self.split_product(config, layout, (rows, cols, k), slices, a, b, c, accum)?;
                return Ok(0);
            }
        }
        let reduces = matches!(
            epilogue,
            Epilogue::LossFrobenius | Epilogue::LossKl | Epilogue::LossMasked | Epilogue::LossBeta
        );
        if (epilogue == Epilogue::LossMasked) != mask.is_some() {
            return Err(NmfError::GpuInternal {
                message: format!("the {epilogue:?} product was encoded with the wrong operands"),
            });
        }
        let ((tr, tc), (cr, cc)) = self.tile_of(config);
        let mut groups = 0usize;
        for r0 in (0..rows).step_by(cr) {
            let rr = cr.min(rows - r0);
            for c0 in (0..cols).step_by(cc) {
                let ccols = cc.min(cols - c0);
                let (ai, bi, di) = (a.at(r0, 0), b.at(0, c0), d.at(r0, c0));
                let mi = mask.map_or(di, |mk| mk.at(r0, c0));
                let ci = if reduces {
                    Operand {
                        off: c.off + groups,
                        ..c
                    }
                } else {
                    c.at(r0, c0)
                };
                let params = uniforms::Gemm {
                    m: index(rr)?,
                    n: index(ccols)?,
                    k: index(k)?,
                    accumulate: u32::from(accum == Accum::Add),
                    a_off: index(ai.off)?,
                    a_rs: index(ai.rs)?,
                    a_cs: index(ai.cs)?,
                    // ε for the KL loss, β for the β epilogues (each reads its own field).
                    eps,
                    beta: eps,
                    b_off: index(bi.off)?,
                    b_rs: index(bi.rs)?,
                    b_cs: index(bi.cs)?,
                    k_chunk: index(k)?,
                    c_off: index(ci.off)?,
                    c_rs: index(ci.rs)?,
                    c_cs: index(ci.cs)?,
                    d_off: index(di.off)?,
                    d_rs: index(di.rs)?,
                    d_cs: index(di.cs)?,
                    mask_off: index(mi.off)?,
                    mask_rs: index(mi.rs)?,
                    mask_cs: index(mi.cs)?,
                    ..Default::default()
                };
                let kernel = kernel_of(config, epilogue, layout, &ai, &bi)?;
                let g = Groups(index(ccols.div_ceil(tc))?, index(rr.div_ceil(tr))?, 1);
                // A, B, C, D and the mask (read by Epilogue::LossMasked only; D elsewhere).
                let buffers = [a.buf, b.buf, c.buf, d.buf, mi.buf];
                self.sched
                    .dispatch(&self.ctx, kernel, &buffers, &params, g)?;
                groups += rr.div_ceil(tr) * ccols.div_ceil(tc);
            }
        }
        Ok(groups)
    }

    /// Slices of the inner dimension for `C = A B` (`rows x cols`, inner `k`) in `config`:
    /// enough to give the device about [`TARGET_GROUPS`] workgroups, each summing at least
    /// [`MIN_K_CHUNK`] terms.
    fn k_slices(&self, config: MatmulConfig, rows: usize, cols: usize, k: usize) -> usize {
        let groups = self.groups_of(config, rows, cols).max(1);
        if groups >= TARGET_GROUPS {
            return 1;
        }
        (TARGET_GROUPS / groups)
            .min(k / MIN_K_CHUNK)
            .min(MAX_SLICES)
            .min(MAX_SLICE_ENTRIES / (rows * cols).max(1))
            .max(1)
    }

    /// `C (+)= A B` in two passes: `slices` partial products over chunks of the inner
    /// dimension (one dispatch, the chunk in the z grid dimension; a multiple of 4 terms for
    /// the tiled kernel, whose vec4 loads start on chunk boundaries), then their sum into C.
    #[allow(clippy::too_many_arguments)]
    fn split_product(
        &mut self,
        config: MatmulConfig,
        layout: Option<Layout>,
        (rows, cols, k): (usize, usize, usize),
        slices: usize,
        a: Operand<'_>,
        b: Operand<'_>,
        c: Operand<'_>,
        accum: Accum,
    ) -> Result<()> {
        let k_chunk = k.div_ceil(slices).next_multiple_of(4);
        let slices = k.div_ceil(k_chunk);
        let len = rows * cols;
        let parts = Self::scratch(&self.ctx, &mut self.slices, slices * len, "product slices")?;
        let ((tr, tc), _) = self.tile_of(config);
        let params = uniforms::Gemm {
            m: index(rows)?,
            n: index(cols)?,
            k: index(k)?,
            accumulate: 0,
            a_off: index(a.off)?,
            a_rs: index(a.rs)?,
            a_cs: index(a.cs)?,
            b_off: index(b.off)?,
            b_rs: index(b.rs)?,
            b_cs: index(b.cs)?,
            k_chunk: index(k_chunk)?,
            c_rs: index(cols)?,
            c_cs: 1,
            c_slice: index(len)?,
            ..Default::default()
        };
        let groups = Groups(
            index(cols.div_ceil(tc))?,
            index(rows.div_ceil(tr))?,
            index(slices)?,
        );
        let kernel = kernel_of(config, Epilogue::Store, layout, &a, &b)?;
        self.sched.dispatch(
            &self.ctx,
            kernel,
            &[a.buf, b.buf, &parts, a.buf, a.buf],
            &params,
            groups,
        )?;
        let sum = uniforms::Slices {
            rows: index(rows)?,
            cols: index(cols)?,
            slices: index(slices)?,
            slice_len: index(len)?,
            c_off: index(c.off)?,
            c_rs: index(c.rs)?,
            c_cs: index(c.cs)?,
            accumulate: u32::from(accum == Accum::Add),
        };
        let groups = self.linear(len)?;
        self.sched
            .dispatch(&self.ctx, Kernel::SumSlices, &[&parts, c.buf], &sum, groups)
    }
}
