//! The scheduler: one open command encoder, and in it one open compute pass, that every
//! engine call appends dispatches to; submitted only when results must come back (a loss check,
//! a download) or when the parameter arena is full; plus the counters that prove it.
//!
//! Each dispatch's parameter block goes to its own slot of one uniform arena (written once per
//! submission) and is bound with a dynamic offset, so a bind group depends only on the kernel
//! and its storage buffers: bind groups are built once per (kernel, buffers) and reused across
//! iterations (the factors, the products and the scratch buffers of a fit are the same buffers
//! every iteration).

use std::collections::HashMap;

use bytemuck::Pod;

use super::buffers::{buffer, f32_bytes};
use super::context::GpuContext;
use super::pipelines::{Access, Kernel};
use crate::engine::GpuStats;
use crate::error::{NmfError, Result};

/// Dispatches encoded before a submission is forced (one parameter slot each).
const ARENA_SLOTS: usize = 512;

/// Bind groups kept before the cache is emptied (each holds its buffers alive, so buffers a fit
/// has dropped are released at the latest when the cache is next emptied).
const BIND_GROUP_CACHE: usize = 256;

/// A bind group's identity: the kernel (its layout) and its storage buffers in binding order.
type BindKey = (Kernel, Vec<wgpu::Buffer>);

/// Pending work and the uniform parameter arena of one engine.
pub(crate) struct Scheduler {
    encoder: Option<wgpu::CommandEncoder>,
    /// The open compute pass of `encoder`, if any: dispatches are appended to it until a copy
    /// or a submission closes it.
    pass: Option<wgpu::ComputePass<'static>>,
    bind_groups: HashMap<BindKey, wgpu::BindGroup>,
    /// Host copy of the parameter slots used by the pending dispatches.
    params: Vec<u8>,
    arena: wgpu::Buffer,
    slot: u64,
    pending: usize,
    staging: Option<wgpu::Buffer>,
    pub stats: GpuStats,
    /// The context's buffer count when this scheduler (its engine) started.
    buffers_base: u64,
}

/// Workgroup counts `(x, y, z)` of one dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Groups(pub u32, pub u32, pub u32);

impl Scheduler {
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        let buffers_base = ctx.buffers_created();
        let align = u64::from(ctx.inner.limits.min_uniform_buffer_offset_alignment).max(256);
        let arena = buffer(
            ctx,
            align * ARENA_SLOTS as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            "kernel parameters",
        )?;
        Ok(Scheduler {
            encoder: None,
            pass: None,
            bind_groups: HashMap::new(),
            params: Vec::new(),
            arena,
            slot: align,
            pending: 0,
            staging: None,
            stats: GpuStats::default(),
            buffers_base,
        })
    }

    /// The counters now, with the buffers allocated on the context since this scheduler
    /// started (an engine's own, when no other engine allocates on the context meanwhile).
    pub fn snapshot(&self, ctx: &GpuContext) -> GpuStats {
        GpuStats {
            buffers_created: ctx.buffers_created().saturating_sub(self.buffers_base),
            ..self.stats
        }
    }

    fn encoder(&mut self, ctx: &GpuContext) -> &mut wgpu::CommandEncoder {
        self.end_pass();
        self.encoder.get_or_insert_with(|| {
            ctx.device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("nmf-gpu iterations"),
                })
        })
    }

    /// Close the open compute pass (before a copy or a submission).
    fn end_pass(&mut self) {
        self.pass = None;
    }

    /// The open compute pass, opened in the open encoder when there is none.
    fn pass(&mut self, ctx: &GpuContext) -> &mut wgpu::ComputePass<'static> {
        if self.pass.is_none() {
            let pass = self
                .encoder(ctx)
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("nmf-gpu kernels"),
                    timestamp_writes: None,
                })
                .forget_lifetime();
            self.stats.compute_passes += 1;
            self.pass = Some(pass);
        }
        match &mut self.pass {
            Some(pass) => pass,
            None => unreachable!("the pass was opened above"),
        }
    }

    /// The bind group of `kernel` over `storage` (its parameter block at a dynamic offset),
    /// built on first use and reused after.
    fn bind_group(
        &mut self,
        ctx: &GpuContext,
        kernel: Kernel,
        layout: &wgpu::BindGroupLayout,
        storage: &[&wgpu::Buffer],
    ) -> Result<wgpu::BindGroup> {
        let key: BindKey = (kernel, storage.iter().map(|b| (*b).clone()).collect());
        if let Some(group) = self.bind_groups.get(&key) {
            return Ok(group.clone());
        }
        let spec = kernel.spec();
        let mut buffers = storage.iter();
        let entries: Vec<wgpu::BindGroupEntry> = spec
            .bindings
            .iter()
            .enumerate()
            .map(|(i, binding)| {
                let resource = match binding.access {
                    Access::Uniform => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &self.arena,
                        offset: 0,
                        size: wgpu::BufferSize::new(spec.params.size as u64),
                    }),
                    Access::Read | Access::ReadWrite => match buffers.next() {
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
        let group = ctx.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(spec.entry),
            layout,
            entries: &entries,
        });
        if self.bind_groups.len() >= BIND_GROUP_CACHE {
            self.bind_groups.clear();
        }
        self.bind_groups.insert(key, group.clone());
        self.stats.bind_groups_created += 1;
        Ok(group)
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
        let spec = kernel.spec();
        if std::mem::size_of::<P>() != spec.params.size || storage.len() != spec.storage_count() {
            return Err(NmfError::GpuInternal {
                message: format!(
                    "kernel {:?} was given {} bytes of parameters and {} buffers; it takes {} (struct {}) and {} ({})",
                    kernel,
                    std::mem::size_of::<P>(),
                    storage.len(),
                    spec.params.size,
                    spec.params.wgsl,
                    spec.storage_count(),
                    spec.bindings
                        .iter()
                        .filter(|b| b.access != Access::Uniform)
                        .map(|b| b.name)
                        .collect::<Vec<_>>()
                        .join(", ")
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
        let bind_group = self.bind_group(ctx, kernel, &compiled.layout, storage)?;
        let offset = self.pending as u64 * self.slot;
        self.params.resize(offset as usize, 0);
        self.params.extend_from_slice(bytemuck::bytes_of(params));
        let dynamic = u32::try_from(offset).map_err(|_| NmfError::GpuInternal {
            message: format!("parameter slot at {offset} bytes is beyond a dynamic offset"),
        })?;
        let pass = self.pass(ctx);
        pass.set_pipeline(&compiled.pipeline);
        pass.set_bind_group(0, &bind_group, &[dynamic]);
        pass.dispatch_workgroups(groups.0, groups.1, groups.2);
        self.pending += 1;
        self.stats.dispatches += 1;
        Ok(())
    }

    /// Submit the pending work (if any) without waiting for it.
    pub fn submit(&mut self, ctx: &GpuContext) -> Result<()> {
        self.end_pass();
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
        self.stats.read_backs += 1;
        ctx.check_faults()?;
        Ok(data)
    }
}

fn missing_binding(kernel: Kernel) -> NmfError {
    NmfError::GpuInternal {
        message: format!("kernel {kernel:?} was dispatched with too few buffers"),
    }
}
