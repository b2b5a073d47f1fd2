//! Device matrices and storage buffer allocation (inside an out-of-memory error scope).

use super::context::GpuContext;
use crate::engine::Shaped;
use crate::error::{NmfError, Result};

/// A dense row-major f32 matrix in a device storage buffer.
#[derive(Debug)]
pub(crate) struct GpuMat {
    pub buf: wgpu::Buffer,
    pub rows: usize,
    pub cols: usize,
}

impl Shaped for GpuMat {
    fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
}

impl GpuMat {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }
}

/// Bytes of `len` f32 entries (at least 4: wgpu buffers are never empty).
pub(crate) fn f32_bytes(len: usize) -> u64 {
    (len.max(1) as u64) * 4
}

/// A zeroed storage buffer of `len` f32 entries that can be copied to and from.
pub(crate) fn storage_buffer(ctx: &GpuContext, len: usize, what: &str) -> Result<wgpu::Buffer> {
    let bytes = f32_bytes(len);
    let limit = ctx.max_binding_bytes();
    if bytes > limit {
        return Err(NmfError::GpuBufferTooLarge {
            what: what.to_string(),
            bytes,
            limit,
        });
    }
    buffer(
        ctx,
        bytes,
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        what,
    )
}

/// A buffer of `bytes` bytes with `usage`, or a typed error when the device is out of memory.
pub(crate) fn buffer(
    ctx: &GpuContext,
    bytes: u64,
    usage: wgpu::BufferUsages,
    what: &str,
) -> Result<wgpu::Buffer> {
    let device = ctx.device();
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let buf = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(what),
        size: bytes,
        usage,
        mapped_at_creation: false,
    });
    ctx.count_buffer();
    let invalid = pollster::block_on(validation.pop());
    let out_of_memory = pollster::block_on(oom.pop());
    if out_of_memory.is_some() {
        return Err(NmfError::GpuOutOfMemory {
            what: what.to_string(),
            bytes,
        });
    }
    if let Some(e) = invalid {
        return Err(NmfError::GpuInternal {
            message: format!("creating a {bytes}-byte buffer for {what}: {e}"),
        });
    }
    Ok(buf)
}

/// `Ok` when `a` is `rows x cols`, else [`NmfError::ShapeMismatch`] naming `what`.
pub(super) fn check_shape(what: &'static str, a: &GpuMat, rows: usize, cols: usize) -> Result<()> {
    crate::engine::data::check_shape(what, a, (rows, cols))
}

/// `Ok(r)` when the factors `w` (m x r) and `h` (r x n) fit V (m x n) and each other.
pub(super) fn check_factors(m: usize, n: usize, w: &GpuMat, h: &GpuMat) -> Result<usize> {
    let r = w.cols;
    check_shape("W (m x r) on the GPU engine", w, m, r)?;
    check_shape("H (r x n) on the GPU engine", h, r, n)?;
    Ok(r)
}
