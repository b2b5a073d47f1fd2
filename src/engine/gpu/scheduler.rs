//! The scheduler: one open command encoder that every engine call appends dispatches to,
//! submitted only when results must come back (a loss check, a download) or when the
//! parameter arena is full; plus the counters that prove it.

use bytemuck::Pod;

use super::buffers::{buffer, f32_bytes};
use super::context::GpuContext;
use super::pipelines::{Access, Kernel};
use crate::engine::GpuStats;
use crate::error::{NmfError, Result};

/// Dispatches encoded before a submission is forced (one parameter slot each).
const ARENA_SLOTS: usize = 512;

/// Pending work and the uniform parameter arena of one engine.
pub(crate) struct Scheduler {
    encoder: Option<wgpu::CommandEncoder>,
    /// Host copy of the parameter slots used by the pending dispatches.
    params: Vec<u8>,
    arena: wgpu::Buffer,
    slot: u64,
    pending: usize,
    staging: Option<wgpu::Buffer>,
    pub stats: GpuStats,
}

/// Workgroup counts `(x, y, z)` of one dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Groups(pub u32, pub u32, pub u32);

impl Scheduler {
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        let align = u64::from(ctx.inner.limits.min_uniform_buffer_offset_alignment).max(256);
        let arena = buffer(
            ctx,
            align * ARENA_SLOTS as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            "kernel parameters",
        )?;
        Ok(Scheduler {
            encoder: None,
            params: Vec::new(),
            arena,
            slot: align,
            pending: 0,
            staging: None,
            stats: GpuStats::default(),
        })
    }

    fn encoder(&mut self, ctx: &GpuContext) -> &mut wgpu::CommandEncoder {
        self.encoder.get_or_insert_with(|| {
            ctx.device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("nmf-gpu iterations"),
                })
        })
    }

    /// Encode one dispatch of `kernel` over `storage` (in binding order) with parameters `params`.
    pub fn dispatch<P: Pod>(
        &mut self,
        ctx: &GpuContext,
        kernel: Kernel,
        storage: &[&wgpu::Buffer],
        params: &P,
        groups: Groups,
    ) -> Result<()> {
        if std::mem::size_of::<P>() != kernel.uniform_size()
            || storage.len() != kernel.storage_count()
        {
            return Err(NmfError::GpuInternal {
                message: format!(
                    "kernel {:?} was given {} bytes of parameters and {} buffers; it takes {} and {}",
                    kernel,
                    std::mem::size_of::<P>(),
                    storage.len(),
                    kernel.uniform_size(),
                    kernel.storage_count()
                ),
            });
        }
        if groups.0 == 0 || groups.1 == 0 || groups.2 == 0 {
            return Ok(());
        }
        if self.pending == ARENA_SLOTS {
            self.submit(ctx)?;
        }
        let compiled = ctx.pipeline(kernel)?;
        let offset = self.pending as u64 * self.slot;
        let bytes = bytemuck::bytes_of(params);
        self.params.resize(offset as usize, 0);
        self.params.extend_from_slice(bytes);
        let mut storage = storage.iter();
        let entries: Vec<wgpu::BindGroupEntry> = kernel
            .bindings()
            .iter()
            .enumerate()
            .map(|(i, access)| {
                let resource = match access {
                    Access::Uniform => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &self.arena,
                        offset,
                        size: wgpu::BufferSize::new(bytes.len() as u64),
                    }),
                    Access::Read | Access::ReadWrite => match storage.next() {
                        Some(b) => b.as_entire_binding(),
                        None => return Err(missing_binding(kernel)),
                    },
                };
                Ok(wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource,
                })
            })
            .collect::<Result<_>>()?;
        let bind_group = ctx.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &compiled.layout,
            entries: &entries,
        });
        let encoder = self.encoder(ctx);
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_pipeline(&compiled.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups.0, groups.1, groups.2);
        }
        self.pending += 1;
        self.stats.dispatches += 1;
        Ok(())
    }

    /// Submit the pending work (if any) without waiting for it.
    pub fn submit(&mut self, ctx: &GpuContext) -> Result<()> {
        if let Some(encoder) = self.encoder.take() {
            if !self.params.is_empty() {
                ctx.queue().write_buffer(&self.arena, 0, &self.params);
            }
            ctx.queue().submit([encoder.finish()]);
            self.stats.submissions += 1;
            self.params.clear();
            self.pending = 0;
        }
        ctx.check_faults()
    }

    /// Write host data into `dst` (applied, in queue order, before the next submission).
    pub fn upload(&mut self, ctx: &GpuContext, dst: &wgpu::Buffer, data: &[f32]) {
        if !data.is_empty() {
            ctx.queue().write_buffer(dst, 0, bytemuck::cast_slice(data));
            self.stats.bytes_uploaded += (data.len() * 4) as u64;
        }
    }

    /// Submit everything pending, then copy the first `len` entries of `src` back to the host.
    pub fn read_back(
        &mut self,
        ctx: &GpuContext,
        src: &wgpu::Buffer,
        len: usize,
    ) -> Result<Vec<f32>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let bytes = f32_bytes(len);
        let staging = match self.staging.take() {
            Some(s) if s.size() >= bytes => s,
            _ => buffer(
                ctx,
                bytes.next_power_of_two(),
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                "read-back staging",
            )?,
        };
        self.encoder(ctx)
            .copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
        self.submit(ctx)?;
        let slice = staging.slice(0..bytes);
        // The map's outcome arrives through a oneshot channel: its callback fires during the
        // poll below, and the receiver's future is then ready (a closed channel, when the
        // callback was dropped unrun, resolves to None).
        let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        if let Err(e) = ctx.device().poll(wgpu::PollType::wait_indefinitely()) {
            ctx.check_faults()?;
            return Err(NmfError::GpuMapFailed {
                message: format!("waiting for the device: {e}"),
            });
        }
        let mapped = pollster::block_on(rx.receive()).ok_or_else(|| NmfError::GpuMapFailed {
            message: "the mapping callback never ran".into(),
        })?;
        if let Err(e) = mapped {
            ctx.check_faults()?;
            return Err(NmfError::GpuMapFailed {
                message: e.to_string(),
            });
        }
        let data = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| NmfError::GpuMapFailed {
                    message: e.to_string(),
                })?;
            bytemuck::pod_collect_to_vec::<u8, f32>(&view)
        };
        staging.unmap();
        self.staging = Some(staging);
        self.stats.bytes_read_back += bytes;
        ctx.check_faults()?;
        Ok(data)
    }
}

fn missing_binding(kernel: Kernel) -> NmfError {
    NmfError::GpuInternal {
        message: format!("kernel {kernel:?} was dispatched with too few buffers"),
    }
}
