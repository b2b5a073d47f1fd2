//! The GPU engine's state (the device context, V's column panels, the scheduler and the
//! buffers reused across calls) and the helpers every part of the engine shares: the
//! conversion of sizes to the shaders' `u32`, one-dimensional grids, and scratch buffers.
//! The operations (`mod.rs`) and the matmul planning (`matmul_plan.rs`) build on it.

use super::buffers::{storage_buffer, GpuMat};
use super::context::GpuContext;
use super::scheduler::{Groups, Scheduler};
use crate::error::{NmfError, Result};

/// One column panel `V[:, c0 .. c0 + cols]`, stored row-major (m x cols).
#[derive(Clone)]
pub(super) struct Panel {
    pub(super) buf: wgpu::Buffer,
    pub(super) c0: usize,
    pub(super) cols: usize,
}

/// The engine over one data matrix V on one device.
pub(crate) struct GpuEngine {
    pub(super) ctx: GpuContext,
    pub(super) m: usize,
    pub(super) n: usize,
    /// V on the device, dense or sparse; the operations read it through its data operator
    /// ([`GpuEngine::op`]).
    pub(super) data: DeviceData,
    pub(super) sched: Scheduler,
    /// Buffers the multiplicative update writes into before swapping them with the factor.
    pub(super) spares: Vec<GpuMat>,
    /// A block of `V ⊘ WH` (KL numerators) or `M ⊙ WH` (masked products).
    pub(super) block: Option<(wgpu::Buffer, usize)>,
    pub(super) partials: Option<(wgpu::Buffer, usize)>,
    pub(super) slices: Option<(wgpu::Buffer, usize)>,
    pub(super) loss_sums: Option<(wgpu::Buffer, usize)>,
    /// The flag, first move and per-invocation moves of inner sweeps decided on the device.
    pub(super) track: Option<(wgpu::Buffer, usize)>,
}

/// V as the engine holds it on the device.
pub(super) enum DeviceData {
    /// Dense column panels.
    Dense(DensePanels),
    /// CSR and CSC row panels.
    Sparse(SparseV),
}

/// A dense V in column panels, with the spare set of an online fit.
pub(super) struct DensePanels {
    pub(super) panels: Vec<Panel>,
    /// The other set of panel buffers of an online fit: the next batch is uploaded into it
    /// while the current one is in use, then the two sets swap (see `batch.rs`).
    pub(super) spare: Vec<Panel>,
}

/// One row panel `A[row0 .. row0 + rows, :]` of a CSR matrix on the device: `rows + 1` row
/// offsets relative to the panel's first stored entry, and its `nnz` column indices and values.
#[derive(Clone)]
pub(super) struct SparsePanel {
    pub(super) ptr: wgpu::Buffer,
    pub(super) col: wgpu::Buffer,
    pub(super) val: wgpu::Buffer,
    pub(super) row0: usize,
    pub(super) rows: usize,
    pub(super) nnz: usize,
}

/// A sparse V on the device: V's row panels and Vᵀ's row panels (V's column panels), with
/// the scratch its operations reuse.
pub(crate) struct SparseV {
    pub(super) csr: Vec<SparsePanel>,
    pub(super) csc: Vec<SparsePanel>,
    /// `Hᵀ` (n x r), refreshed by every operation that reads it.
    pub(super) ht: Option<(wgpu::Buffer, usize)>,
    /// The KL ratios of one panel (its nnz values).
    pub(super) z: Option<(wgpu::Buffer, usize)>,
}

/// The error of an operation reaching the other representation's storage.
fn internal(what: &str) -> NmfError {
    NmfError::GpuInternal {
        message: what.into(),
    }
}

pub(super) fn index(x: usize) -> Result<u32> {
    u32::try_from(x).map_err(|_| NmfError::GpuBufferTooLarge {
        what: "a matrix index".into(),
        bytes: (x as u64).saturating_mul(4),
        limit: u64::from(u32::MAX) * 4,
    })
}

impl GpuEngine {
    /// The column panels of a dense V (an internal error for a sparse V, whose operator never
    /// asks).
    pub(super) fn dense_panels(&self) -> Result<Vec<Panel>> {
        match &self.data {
            DeviceData::Dense(d) => Ok(d.panels.clone()),
            DeviceData::Sparse(_) => Err(internal("dense panels of a sparse V")),
        }
    }

    /// The sparse V (an internal error for a dense V, whose operator never asks).
    pub(super) fn sparse_v(&mut self) -> Result<&mut SparseV> {
        match &mut self.data {
            DeviceData::Sparse(s) => Ok(s),
            DeviceData::Dense(_) => Err(internal("a sparse operation on a dense V")),
        }
    }

    /// Workgroups for a one-dimensional kernel over `count` items (split over two grid
    /// dimensions when one is not enough).
    pub(super) fn linear(&self, count: usize) -> Result<Groups> {
        let t = self.ctx.tuning();
        let groups = count.div_ceil(t.linear_wg as usize);
        let max = t.max_groups as usize;
        Ok(if groups <= max {
            Groups(index(groups)?, 1, 1)
        } else {
            Groups(t.max_groups, index(groups.div_ceil(max))?, 1)
        })
    }

    /// A buffer of at least `len` entries, kept across calls under `slot`.
    pub(super) fn scratch(
        ctx: &GpuContext,
        slot: &mut Option<(wgpu::Buffer, usize)>,
        len: usize,
        what: &str,
    ) -> Result<wgpu::Buffer> {
        match slot {
            Some((buf, cap)) if *cap >= len => Ok(buf.clone()),
            _ => {
                let buf = storage_buffer(ctx, len, what)?;
                *slot = Some((buf.clone(), len));
                Ok(buf)
            }
        }
    }
}
