//! A dense V on the GPU engine: its column panels (`V = [V_1 … V_P]`) and the products that
//! read them, `V Hᵀ = Σ_p V_p H_pᵀ`, `(Wᵀ V)_p = Wᵀ V_p`, the blocks of `V ⊘ WH`, `M ⊙ WH` and
//! the β rules formed in the matmul's epilogue, and the losses from per-workgroup partials.
//! The engine reaches them through its data operator ([`super::data`]); shapes were checked
//! by the engine's methods.

use ndarray::ArrayView2;

use super::buffers::GpuMat;
use super::data::{DataOperator, Pair, M};
use super::matmul_plan::Operand;
use super::pipelines::Epilogue;
use super::state::GpuEngine;
use crate::engine::data::{unsupported, DataOp};
use crate::engine::{Blocks, Side};
use crate::engine::{Measure, Product};
use crate::error::Result;
use crate::linalg::gemm::Accum;
use crate::options::Loss;

impl GpuEngine {
    /// Rows of V ⊘ WH (or M ⊙ WH) formed at once for a panel of `cols` columns.
    fn kl_rows(&self, cols: usize) -> usize {
        let entries = (self.ctx.budget.kl_block_bytes / 4) as usize;
        (entries / cols.max(1)).clamp(1, self.m.max(1))
    }

    /// Products with a block matrix `Z` formed block by block (never whole) from `W H`:
    /// `Z = V ⊘ max(WH, ε)` without a mask, `Z = M ⊙ WH` with one (M m x n, row-major);
    /// `out = Z Hᵀ` (m x r) for `Side::Left`, `out = Wᵀ Z` (r x n) for `Side::Right`.
    /// Z is formed per V panel and per block of rows by the matmul with a fused epilogue, then
    /// multiplied into `out` by the plain matmul.
    fn blockwise(
        &mut self,
        mask: Option<&wgpu::Buffer>,
        f: Blocks<'_, GpuMat>,
        out: &mut GpuMat,
    ) -> Result<()> {
        let epilogue = match mask {
            None => Epilogue::KlRatio,
            Some(_) => Epilogue::Masked,
        };
        self.blockwise_with(epilogue, 0.0, mask, f, out)
    }

    /// [`blockwise`](Self::blockwise) with the block `Z` formed by any elementwise epilogue
    /// (`scalar` its parameter: β for the β-divergence blocks).
    fn blockwise_with(
        &mut self,
        epilogue: Epilogue,
        scalar: f32,
        mask: Option<&wgpu::Buffer>,
        f: Blocks<'_, GpuMat>,
        out: &mut GpuMat,
    ) -> Result<()> {
        let Blocks { w, h, side } = f;
        let (m, n, r) = (self.m, self.n, w.cols);
        for (p, panel) in self.dense_panels()?.iter().enumerate() {
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

    /// `out = V Hᵀ = Σ_p V_p H_pᵀ` (m x r).
    fn dense_v_ht(&mut self, h: &GpuMat, out: &mut GpuMat) -> Result<()> {
        let (m, n, r) = (self.m, self.n, h.rows);
        for (p, panel) in self.dense_panels()?.iter().enumerate() {
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

    /// `out = Wᵀ V`, panel by panel: `(Wᵀ V)_p = Wᵀ V_p` (r x n).
    fn dense_wt_v(&mut self, w: &GpuMat, out: &mut GpuMat) -> Result<()> {
        let (m, n, r) = (self.m, self.n, w.cols);
        for panel in self.dense_panels()?.iter() {
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

    /// `½ ‖M ⊙ (V − W H)‖²_F` from the masked loss epilogue's partials.
    fn dense_masked_loss(&mut self, mask: &GpuMat, w: &GpuMat, h: &GpuMat) -> Result<f64> {
        let r = w.cols;
        let (m, n) = (self.m, self.n);
        let panels = self.dense_panels()?;
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

    /// `D(V ‖ WH)` from the loss epilogues' partials (Frobenius, KL, β).
    fn dense_loss(&mut self, w: &GpuMat, h: &GpuMat, loss: Loss, eps: f32) -> Result<f64> {
        let r = w.cols;
        let (m, n) = (self.m, self.n);
        let loss = loss.canonical();
        // The β epilogue reads β where the others read ε (its guard is ε_f32, scikit-learn's).
        let (kernel, eps) = match loss {
            Loss::Frobenius => (Epilogue::LossFrobenius, eps),
            Loss::KullbackLeibler => (Epilogue::LossKl, eps),
            Loss::ItakuraSaito | Loss::Beta(_) => (Epilogue::LossBeta, loss.beta_value()),
        };
        let panels = self.dense_panels()?;
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

    /// The β rules' numerator and denominator, each formed block by block by its epilogue.
    fn dense_beta_products(
        &mut self,
        f: Blocks<'_, GpuMat>,
        beta: f32,
        num: &mut GpuMat,
        den: &mut GpuMat,
    ) -> Result<()> {
        self.blockwise_with(Epilogue::BetaNum, beta, None, f, num)?;
        self.blockwise_with(Epilogue::BetaDen, beta, None, f, den)
    }
}

/// The operator of a dense V in column panels.
pub(super) struct Dense;

impl DataOperator for Dense {
    fn product(&self, e: &mut GpuEngine, p: Product<'_, M>, out: &mut M) -> Result<()> {
        match p {
            Product::VHt(h) => e.dense_v_ht(h, out),
            Product::WtV(w) => e.dense_wt_v(w, out),
            Product::Kl(f) => e.blockwise(None, f, out),
            Product::Masked(mask, f) => e.blockwise(Some(&mask.buf), f, out),
            Product::Pattern(_) => Err(unsupported(DataOp::Pattern)),
        }
    }

    fn measure(&self, e: &mut GpuEngine, w: &M, h: &M, what: Measure<'_, M>) -> Result<f64> {
        match what {
            Measure::Divergence(loss, eps) => e.dense_loss(w, h, loss, eps),
            Measure::Masked(mask) => e.dense_masked_loss(mask, w, h),
            Measure::Pattern => Err(unsupported(DataOp::Pattern)),
        }
    }

    fn beta(&self, e: &mut GpuEngine, f: Blocks<'_, M>, beta: f32, out: Pair<'_>) -> Result<()> {
        e.dense_beta_products(f, beta, out.0, out.1)
    }

    fn set_batch(&self, e: &mut GpuEngine, v: ArrayView2<'_, f32>) -> Result<()> {
        e.replace_data(v)
    }
}
