//! Sparse V on the GPU engine: V in CSR form and its transpose (the CSC form of V) uploaded
//! once, each split into row panels of at most one storage binding, and the products with V
//! over the stored entries only.
//!
//! - `V Hᵀ` (m x r): `spmm_rows` over the CSR panels with `x = Hᵀ` (H transposed once per
//!   call into an n x r scratch, so the r invocations of a row read one contiguous row of it);
//! - `Wᵀ V` (r x n) `= (Vᵀ W)ᵀ`: `spmm_rows` over the CSC panels with `x = W`, each row of Vᵀ
//!   giving one column of the result;
//! - the KL numerators `Z Hᵀ` and `Wᵀ Z` with `Z = V ⊘ max(WH, ε)` at the stored entries:
//!   `sparse_entries` forms the ratios of one panel (nnz values), `spmm_rows` multiplies them;
//! - the losses: `½ ‖V − WH‖² = ½ [Σ_nz (v − wh)² + (⟨WᵀW, HHᵀ⟩ − Σ_nz wh²)]` (the stored
//!   entries' terms per row on the device, the Gram matrices r x r on the device, their inner
//!   product on the host in f64), and
//!   `D_KL = Σ_nz [v log(v / wh) − v] + Σ_t (Σ_i W_it)(Σ_j H_tj)`.
//!
//! Panels: a panel is a run of whole rows whose stored entries (4 bytes each, for the indices
//! and for the values) and row offsets each fit the context's panel size; the products run
//! panel by panel, each writing its own rows (of `V Hᵀ`) or columns (of `Wᵀ V`). A single row
//! (or column) with more stored entries than one binding holds is a typed error.

use super::buffers::{check_factors, storage_buffer, GpuMat};
use super::context::GpuContext;
use super::data::{DataOperator, M};
use super::pipelines::Kernel;
use super::scheduler::{Groups, Scheduler};
use super::state::{index, DeviceData, GpuEngine, SparsePanel, SparseV};
use super::uniforms;
use crate::engine::data::{unsupported, DataOp};
use crate::engine::{Blocks, FactorSums, Measure, Product, Side};
use crate::error::{NmfError, Result};
use crate::options::Loss;
use crate::sparse::CsrMatrix;

/// The row ranges of the panels of `a`: whole rows, each panel's stored entries and its
/// `rows + 1` offsets at most `cap` entries; an empty matrix gives one empty panel.
fn panel_ranges(a: &CsrMatrix, cap: usize, what: &str) -> Result<Vec<(usize, usize)>> {
    let ptr = a.indptr();
    let rows = a.rows();
    let cap = cap.max(2);
    let mut out = Vec::new();
    let mut r0 = 0;
    while r0 < rows {
        let mut r1 = r0;
        while r1 < rows && ptr[r1 + 1] - ptr[r0] <= cap && r1 + 2 - r0 <= cap {
            r1 += 1;
        }
        if r1 == r0 {
            let bytes = 4 * (ptr[r0 + 1] - ptr[r0]) as u64;
            return Err(NmfError::GpuBufferTooLarge {
                what: format!("row {r0} of {what} (its stored entries)"),
                bytes,
                limit: 4 * cap as u64,
            });
        }
        out.push((r0, r1));
        r0 = r1;
    }
    if out.is_empty() {
        out.push((0, 0));
    }
    Ok(out)
}

/// Partial sums folded into one value on the device per chunk of this many.
const LOSS_CHUNK: usize = 1024;

/// Upload `a` in row panels of at most `cap` entries per array.
fn upload_panels(
    ctx: &GpuContext,
    sched: &mut Scheduler,
    a: &CsrMatrix,
    cap: usize,
    what: &str,
) -> Result<Vec<SparsePanel>> {
    let ptr = a.indptr();
    let mut panels = Vec::new();
    for (r0, r1) in panel_ranges(a, cap, what)? {
        let (s, e) = (ptr[r0], ptr[r1]);
        let offsets = ptr[r0..=r1]
            .iter()
            .map(|&k| index(k - s))
            .collect::<Result<Vec<u32>>>()?;
        let bufs = (
            storage_buffer(ctx, r1 - r0 + 1, "the row offsets of a sparse panel")?,
            storage_buffer(ctx, e - s, "the column indices of a sparse panel")?,
            storage_buffer(ctx, e - s, "the values of a sparse panel")?,
        );
        write_u32(ctx, sched, &bufs.0, &offsets);
        write_u32(ctx, sched, &bufs.1, &a.indices()[s..e]);
        sched.upload(ctx, &bufs.2, &a.values()[s..e]);
        panels.push(SparsePanel {
            ptr: bufs.0,
            col: bufs.1,
            val: bufs.2,
            row0: r0,
            rows: r1 - r0,
            nnz: e - s,
        });
    }
    Ok(panels)
}

/// Write `data` into `dst` (applied, in queue order, before the next submission).
fn write_u32(ctx: &GpuContext, sched: &mut Scheduler, dst: &wgpu::Buffer, data: &[u32]) {
    if !data.is_empty() {
        ctx.queue().write_buffer(dst, 0, bytemuck::cast_slice(data));
        sched.stats.bytes_uploaded += (data.len() * 4) as u64;
    }
}

impl GpuEngine {
    /// Upload a sparse `v` (m x n) and `vt = v.transpose()` to the device in row panels of at
    /// most the context's panel size.
    pub(crate) fn new_sparse(ctx: &GpuContext, v: &CsrMatrix, vt: &CsrMatrix) -> Result<Self> {
        let (m, n) = v.dim();
        if vt.dim() != (n, m) || vt.nnz() != v.nnz() {
            return Err(NmfError::ShapeMismatch {
                what: "the transpose of sparse V",
                expected: format!("{n} x {m} with {} stored entries", v.nnz()),
                found: format!("{} x {} with {}", vt.rows(), vt.cols(), vt.nnz()),
            });
        }
        ctx.check_faults()?;
        let mut sched = Scheduler::new(ctx)?;
        let cap = (ctx.budget.panel_bytes / 4) as usize;
        let csr = upload_panels(ctx, &mut sched, v, cap, "sparse V")?;
        let csc = upload_panels(ctx, &mut sched, vt, cap, "sparse Vᵀ")?;
        log::debug!(
            "gpu engine: sparse V {m} x {n} ({} stored) in {} + {} panel(s)",
            v.nnz(),
            csr.len(),
            csc.len()
        );
        let data = DeviceData::Sparse(SparseV {
            csr,
            csc,
            ht: None,
            z: None,
        });
        Ok(GpuEngine::over(ctx, sched, (m, n), data))
    }

    /// Number of row panels of sparse V and of Vᵀ (`(0, 0)` for dense V).
    #[cfg(test)]
    pub(crate) fn sparse_panel_counts(&self) -> (usize, usize) {
        match &self.data {
            DeviceData::Sparse(s) => (s.csr.len(), s.csc.len()),
            DeviceData::Dense(_) => (0, 0),
        }
    }

    /// `Hᵀ` (n x r) of `h` (r x n) in the scratch buffer, returned.
    fn sparse_ht(&mut self, h: &GpuMat) -> Result<wgpu::Buffer> {
        let ctx = self.ctx.clone();
        let ht = Self::scratch(&ctx, &mut self.sparse_v()?.ht, h.len(), "Hᵀ")?;
        self.elementwise(Kernel::Transpose, h, &ht, (0.0, 0.0))?;
        Ok(ht)
    }

    /// The scratch for one panel's KL ratios.
    fn sparse_z(&mut self, panels: &[SparsePanel]) -> Result<wgpu::Buffer> {
        let ctx = self.ctx.clone();
        let most = panels.iter().map(|p| p.nnz).max().unwrap_or(0);
        Self::scratch(
            &ctx,
            &mut self.sparse_v()?.z,
            most,
            "the KL ratios of a sparse panel",
        )
    }

    fn csr_panels(&mut self) -> Result<Vec<SparsePanel>> {
        Ok(self.sparse_v()?.csr.clone())
    }

    fn csc_panels(&mut self) -> Result<Vec<SparsePanel>> {
        Ok(self.sparse_v()?.csc.clone())
    }

    /// `out[(row0 + i)·out_rs + t·out_cs] = Σ_k val[k]·x[col[k]·x_rs + t·x_cs]` over one
    /// panel, with `val` the panel's values or the ratios in `z`.
    fn spmm_panel(
        &mut self,
        panel: &SparsePanel,
        val: Option<&wgpu::Buffer>,
        x: &wgpu::Buffer,
        out: &wgpu::Buffer,
        r: usize,
        params: uniforms::Sparse,
    ) -> Result<()> {
        let groups = self.linear(panel.rows * r)?;
        let params = uniforms::Sparse {
            rows: index(panel.rows)?,
            r: index(r)?,
            row0: index(panel.row0)?,
            ..params
        };
        let val = val.unwrap_or(&panel.val);
        self.sched.dispatch(
            &self.ctx,
            Kernel::SpmmRows,
            &[&panel.ptr, &panel.col, val, x, out],
            &params,
            groups,
        )
    }

    /// `sparse_entries` over one panel (see `shaders/sparse_entries.wgsl`).
    #[allow(clippy::too_many_arguments)]
    fn entries_panel(
        &mut self,
        panel: &SparsePanel,
        a: &wgpu::Buffer,
        b: &wgpu::Buffer,
        out: &wgpu::Buffer,
        r: usize,
        mode: uniforms::SparseMode,
        params: uniforms::Sparse,
    ) -> Result<()> {
        let groups = self.linear(panel.rows)?;
        let params = uniforms::Sparse {
            rows: index(panel.rows)?,
            r: index(r)?,
            row0: index(panel.row0)?,
            mode: mode as u32,
            ..params
        };
        self.sched.dispatch(
            &self.ctx,
            Kernel::SparseEntries,
            &[&panel.ptr, &panel.col, &panel.val, a, b, out],
            &params,
            groups,
        )
    }

    /// `out = V Hᵀ` (m x r) for sparse V.
    fn sparse_v_ht(&mut self, h: &GpuMat, out: &mut GpuMat) -> Result<()> {
        let r = h.rows;
        let ht = self.sparse_ht(h)?;
        for panel in self.csr_panels()? {
            let params = row_major_x(r, (r, 1))?;
            self.spmm_panel(&panel, None, &ht, &out.buf, r, params)?;
        }
        Ok(())
    }

    /// `out = Wᵀ V` (r x n) for sparse V, column by column of V.
    fn sparse_wt_v(&mut self, w: &GpuMat, out: &mut GpuMat) -> Result<()> {
        let (n, r) = (self.n, w.cols);
        for panel in self.csc_panels()? {
            let params = row_major_x(r, (1, n))?;
            self.spmm_panel(&panel, None, &w.buf, &out.buf, r, params)?;
        }
        Ok(())
    }

    /// The KL numerators for sparse V: `Z Hᵀ` (Left) or `Wᵀ Z` (Right), with
    /// `Z = V ⊘ max(WH, ε)` (`ε = f32::EPSILON`) at the stored entries.
    fn sparse_kl_numerator(&mut self, f: Blocks<'_, GpuMat>, out: &mut GpuMat) -> Result<()> {
        self.entry_product(f, out, uniforms::SparseMode::KlRatio)
    }

    /// Masked products with the pattern of V as the mask: `(P ⊙ WH) Hᵀ` (Left) or
    /// `Wᵀ (P ⊙ WH)` (Right), the model formed at the stored entries only.
    fn sparse_pattern_product(&mut self, f: Blocks<'_, GpuMat>, out: &mut GpuMat) -> Result<()> {
        self.entry_product(f, out, uniforms::SparseMode::Model)
    }

    /// `½ Σ_nz (v − wh)²` over the stored entries.
    fn sparse_pattern_loss(&mut self, w: &GpuMat, h: &GpuMat) -> Result<f64> {
        let (stored, _) = self.stored_terms(w, h, Loss::Frobenius, 0.0)?;
        Ok(0.5 * stored)
    }

    /// `Z X` at the stored entries, `z = f(v, wh)` by `mode` (the KL ratio or the model):
    /// `Z Hᵀ` (Left) or `Wᵀ Z` (Right).
    fn entry_product(
        &mut self,
        f: Blocks<'_, GpuMat>,
        out: &mut GpuMat,
        mode: uniforms::SparseMode,
    ) -> Result<()> {
        let Blocks { w, h, side } = f;
        let r = w.cols;
        let n = self.n;
        let ht = self.sparse_ht(h)?;
        let (panels, a, b, out_strides) = match side {
            // Row i of V: W[i, :]·Hᵀ[j, :], out = Z Hᵀ (m x r).
            Side::Left => (self.csr_panels()?, &w.buf, &ht, (r, 1)),
            // Row j of Vᵀ: Hᵀ[j, :]·W[i, :], out = (Zᵀ W)ᵀ (r x n).
            Side::Right => (self.csc_panels()?, &ht, &w.buf, (1, n)),
        };
        let z = self.sparse_z(&panels)?;
        let ratio = uniforms::Sparse {
            x_rs: index(r)?,
            x_cs: 1,
            a_rs: index(r)?,
            a_cs: 1,
            eps: f32::EPSILON,
            ..Default::default()
        };
        for panel in &panels {
            self.entries_panel(panel, a, b, &z, r, mode, ratio)?;
            self.spmm_panel(
                panel,
                Some(&z),
                b,
                &out.buf,
                r,
                row_major_x(r, out_strides)?,
            )?;
        }
        Ok(())
    }

    /// The loss `D(V ‖ WH)` for sparse V (see the module's formulas), in f64 on the host from
    /// partial sums folded on the device.
    fn sparse_loss(&mut self, w: &GpuMat, h: &GpuMat, loss: Loss, eps: f32) -> Result<f64> {
        let r = check_factors(self.m, self.n, w, h)?;
        let loss = loss.canonical();
        if matches!(loss, Loss::ItakuraSaito | Loss::Beta(_)) {
            return Err(unsupported(DataOp::Beta));
        }
        let (stored, sq) = self.stored_terms(w, h, loss, eps)?;
        Ok(match loss {
            Loss::Frobenius => {
                let quad = self.gram_inner(w, h, r)?;
                0.5 * (stored + (quad - sq).max(0.0))
            }
            _ => stored + self.sums_product(w, h, r)?,
        })
    }

    /// The stored entries' loss terms: `(Σ_nz (v − wh)², Σ_nz wh²)` for Frobenius,
    /// `(Σ_{nz, v > ε} v log(v / max(wh, ε)) − v, 0)` for KL; per-row partials on the device,
    /// folded there in chunks, added in f64 here.
    fn stored_terms(&mut self, w: &GpuMat, h: &GpuMat, loss: Loss, eps: f32) -> Result<(f64, f64)> {
        let r = check_factors(self.m, self.n, w, h)?;
        let m = self.m;
        let ht = self.sparse_ht(h)?;
        // Frobenius: Σ (v − wh)² per row in [0, m), Σ wh² per row in [half, half + m), with
        // `half` a whole number of fold chunks so each chunk sums one kind only.
        let half = m.div_ceil(LOSS_CHUNK) * LOSS_CHUNK;
        let (mode, len) = match loss {
            Loss::Frobenius => (uniforms::SparseMode::Frobenius, half + m),
            Loss::KullbackLeibler => (uniforms::SparseMode::KlLoss, m),
            Loss::ItakuraSaito | Loss::Beta(_) => return Err(unsupported(DataOp::Beta)),
        };
        let ctx = self.ctx.clone();
        let partials = Self::scratch(&ctx, &mut self.partials, len, "loss partial sums")?;
        for panel in self.csr_panels()? {
            let params = uniforms::Sparse {
                x_rs: index(r)?,
                x_cs: 1,
                a_rs: index(r)?,
                a_cs: 1,
                out_off: index(panel.row0)?,
                out_stride2: index(half)?,
                eps,
                ..Default::default()
            };
            self.entries_panel(&panel, &w.buf, &ht, &partials, r, mode, params)?;
        }
        let chunks = self.fold_chunks(&partials, len)?;
        let (first, second) = chunks.split_at(chunks.len().min(half / LOSS_CHUNK));
        let sum = |c: &[f32]| c.iter().map(|&s| f64::from(s)).sum::<f64>();
        Ok((sum(first), sum(second)))
    }

    /// `⟨WᵀW, HHᵀ⟩`: both Gram matrices on the device, their inner product in f64.
    fn gram_inner(&mut self, w: &GpuMat, h: &GpuMat, r: usize) -> Result<f64> {
        use crate::engine::Engine;
        let mut k = self.zeros(r, r)?;
        let mut g = self.zeros(r, r)?;
        self.gram(w, Side::Left, &mut k)?;
        self.gram(h, Side::Right, &mut g)?;
        let (k, g) = (self.download(&k)?, self.download(&g)?);
        Ok(crate::linalg::dot_in_order(k.iter(), g.iter()))
    }

    /// `Σ_all WH = Σ_t (Σ_i W_it)(Σ_j H_tj)`: the sums on the device, their products in f64.
    fn sums_product(&mut self, w: &GpuMat, h: &GpuMat, r: usize) -> Result<f64> {
        use crate::engine::Engine;
        let ws = self.zeros(r, 1)?;
        let mut hs = self.zeros(r, 1)?;
        // Column sums of W without the KL update's guard (a zero sum stays zero).
        let col_sums = uniforms::Sums {
            count: index(r)?,
            len: index(w.rows)?,
            outer: 1,
            inner: index(r)?,
            zero_to_one: 0,
            bound: index(w.len())?,
            ..Default::default()
        };
        self.sched.dispatch(
            &self.ctx,
            Kernel::AxisSums,
            &[&w.buf, &ws.buf],
            &col_sums,
            Groups(col_sums.count, 1, 1),
        )?;
        self.factor_sums(h, FactorSums::RowsOfH, &mut hs)?;
        let (a, b) = (self.download(&ws)?, self.download(&hs)?);
        Ok(crate::linalg::dot_in_order(a.iter(), b.iter()))
    }
}

/// The parameters of `spmm_rows` with `x` read row-major (`x_rs = r`, `x_cs = 1`) and the
/// output strides `(out_rs, out_cs)`.
fn row_major_x(r: usize, (out_rs, out_cs): (usize, usize)) -> Result<uniforms::Sparse> {
    Ok(uniforms::Sparse {
        x_rs: index(r)?,
        x_cs: 1,
        out_rs: index(out_rs)?,
        out_cs: index(out_cs)?,
        ..Default::default()
    })
}

/// The operator of a sparse V in CSR and CSC row panels.
pub(super) struct Csr;

impl DataOperator for Csr {
    fn product(&self, e: &mut GpuEngine, p: Product<'_, M>, out: &mut M) -> Result<()> {
        match p {
            Product::VHt(h) => e.sparse_v_ht(h, out),
            Product::WtV(w) => e.sparse_wt_v(w, out),
            Product::Kl(f) => e.sparse_kl_numerator(f, out),
            Product::Masked(..) => Err(unsupported(DataOp::DenseMask)),
            Product::Pattern(f) => e.sparse_pattern_product(f, out),
        }
    }

    fn measure(&self, e: &mut GpuEngine, w: &M, h: &M, what: Measure<'_, M>) -> Result<f64> {
        match what {
            Measure::Divergence(loss, eps) => e.sparse_loss(w, h, loss, eps),
            Measure::Masked(_) => Err(unsupported(DataOp::DenseMask)),
            Measure::Pattern => e.sparse_pattern_loss(w, h),
        }
    }
}
