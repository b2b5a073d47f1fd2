//! Writing host data into matrices the device already holds: a factor block uploaded into
//! the same buffer every iteration ([`GpuEngine::write_matrix`], the distributed fits' gathered
//! blocks), and V replaced batch by batch (online fits): two sets of panel buffers alternate, so that the
//! upload of batch k+1 is queued into one set while the work recorded on batch k still reads
//! the other. Uploads are applied in queue order before the next submission, and the work
//! recorded on the set being overwritten was submitted before the upload is queued, so a
//! buffer is never written while a dispatch that reads it is pending.

use ndarray::{s, ArrayView2};

use super::buffers::{check_shape, storage_buffer, GpuMat};
use super::state::{DeviceData, GpuEngine, Panel};
use crate::engine::data::{unsupported, DataOp};
use crate::error::{NmfError, Result};

impl GpuEngine {
    /// Copy `a` into `out` (the same shape), into its buffer: the work recorded so far is
    /// submitted first, so it reads the old contents (queued writes land before the next
    /// submission).
    pub(super) fn write_matrix(&mut self, a: ArrayView2<'_, f32>, out: &mut GpuMat) -> Result<()> {
        check_shape("the matrix uploaded into", out, a.nrows(), a.ncols())?;
        self.sched.submit(&self.ctx)?;
        self.upload_view(&out.buf, a);
        Ok(())
    }

    /// Queue the upload of `a` (any memory layout) into `buf`.
    pub(super) fn upload_view(&mut self, buf: &wgpu::Buffer, a: ArrayView2<'_, f32>) {
        let a = a.as_standard_layout();
        match a.as_slice() {
            Some(data) => self.sched.upload(&self.ctx, buf, data),
            None => self
                .sched
                .upload(&self.ctx, buf, &a.iter().copied().collect::<Vec<_>>()),
        }
    }

    /// Make `v` (m x n', the same m) the engine's V, in the spare panel set; the panels of the
    /// current V become the spare set. Buffers of the spare set are reused when their panel
    /// sizes match, which they do for every full batch.
    pub(super) fn replace_data(&mut self, v: ArrayView2<'_, f32>) -> Result<()> {
        let (m, n) = v.dim();
        if m != self.m || n == 0 {
            return Err(NmfError::ShapeMismatch {
                what: "a batch of samples",
                expected: format!(
                    "a dense batch of {} rows (features) and at least one column",
                    self.m
                ),
                found: format!("{m} x {n}"),
            });
        }
        // Everything recorded so far (on the current panels, and on the spare set from the
        // batch before) goes to the queue ahead of the upload.
        self.sched.submit(&self.ctx)?;
        let per_col = (m.max(1) as u64) * 4;
        let panel_cols = ((self.ctx.budget.panel_bytes / per_col).max(1) as usize).min(n);
        let DeviceData::Dense(dense) = &mut self.data else {
            return Err(unsupported(DataOp::Batch));
        };
        let mut spare = std::mem::take(&mut dense.spare);
        let mut panels = Vec::new();
        let mut c0 = 0;
        while c0 < n {
            let cols = panel_cols.min(n - c0);
            let reuse = spare
                .iter()
                .position(|p| p.cols == cols)
                .map(|i| spare.swap_remove(i));
            let buf = match reuse {
                Some(p) => p.buf,
                None => storage_buffer(&self.ctx, m * cols, "a column panel of a batch")?,
            };
            let block = v.slice(s![.., c0..c0 + cols]);
            let block = block.as_standard_layout();
            match block.as_slice() {
                Some(data) => self.sched.upload(&self.ctx, &buf, data),
                None => {
                    self.sched
                        .upload(&self.ctx, &buf, &block.iter().copied().collect::<Vec<_>>())
                }
            }
            panels.push(Panel { buf, c0, cols });
            c0 += cols;
        }
        dense.spare = std::mem::replace(&mut dense.panels, panels);
        self.n = n;
        Ok(())
    }
}
