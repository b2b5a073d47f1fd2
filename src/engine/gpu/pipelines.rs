//! Kernels, their bind group layouts, and the per-context pipeline cache. Every pipeline is
//! created inside an error scope so that a shader or pipeline failure becomes a typed error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::context::GpuContext;
use super::shaders;
use crate::error::{NmfError, Result};

/// How a kernel accesses one binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    ReadWrite,
    Uniform,
}

/// What the matmul kernel does with the product `AB` it forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Epilogue {
    /// `C = AB` or `C += AB`.
    Store,
    /// `C = D ⊘ max(AB, ε)`.
    KlRatio,
    /// `C = D ⊙ AB` (D a 0/1 mask).
    Masked,
    /// Per-workgroup `Σ (D − AB)²`.
    LossFrobenius,
    /// Per-workgroup generalised KL divergence of `D` from `AB`.
    LossKl,
    /// Per-workgroup `Σ (M ⊙ (D − AB))²`, with the mask M in a sixth binding.
    LossMasked,
}

/// The matmul workgroup: `x · y` invocations, each owning a register block of C, so a
/// workgroup covers `4y` rows and `4x` columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TileWg {
    pub x: u32,
    pub y: u32,
}

/// Every compute pipeline of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kernel {
    /// The register-blocked matmul with an epilogue and a workgroup shape.
    Matmul(Epilogue, TileWg),
    /// Multiplicative update of W or H.
    MuUpdate,
    /// HALS sweep over the rows of W.
    HalsRows,
    /// HALS sweep over the columns of H.
    HalsCols,
    /// Strided sums (row sums of H, column sums of W).
    AxisSums,
    /// Sum of the slices of a product split over its inner dimension.
    SumSlices,
    /// `out = xᵀ`.
    Transpose,
    /// `y ← a x + b y`.
    Axpby,
}

const MATMUL_BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::Read,
    Access::Uniform,
];

/// The matmul bindings plus the mask of [`Epilogue::LossMasked`].
const MATMUL_MASKED_BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::Read,
    Access::Uniform,
    Access::Read,
];

impl Kernel {
    fn shader(self) -> &'static str {
        match self {
            Kernel::Matmul(..) => "matmul",
            Kernel::MuUpdate => "mu_update",
            Kernel::HalsRows | Kernel::HalsCols => "hals",
            Kernel::AxisSums => "sums",
            Kernel::SumSlices => "slices",
            Kernel::Transpose | Kernel::Axpby => "elementwise",
        }
    }

    fn entry(self) -> &'static str {
        match self {
            Kernel::Matmul(Epilogue::Store, _) => "matmul",
            Kernel::Matmul(Epilogue::KlRatio, _) => "matmul_kl_ratio",
            Kernel::Matmul(Epilogue::LossFrobenius, _) => "matmul_loss_frobenius",
            Kernel::Matmul(Epilogue::LossKl, _) => "matmul_loss_kl",
            Kernel::Matmul(Epilogue::Masked, _) => "matmul_masked",
            Kernel::Matmul(Epilogue::LossMasked, _) => "matmul_loss_masked",
            Kernel::MuUpdate => "mu_update",
            Kernel::HalsRows => "hals_rows",
            Kernel::HalsCols => "hals_cols",
            Kernel::AxisSums => "axis_sums",
            Kernel::SumSlices => "sum_slices",
            Kernel::Transpose => "transpose",
            Kernel::Axpby => "axpby",
        }
    }

    /// The bindings of group 0, in binding order.
    pub(crate) fn bindings(self) -> &'static [Access] {
        match self {
            Kernel::Matmul(Epilogue::LossMasked, _) => MATMUL_MASKED_BINDINGS,
            Kernel::Matmul(..) => MATMUL_BINDINGS,
            Kernel::MuUpdate => &[
                Access::Read,
                Access::Read,
                Access::Read,
                Access::ReadWrite,
                Access::Uniform,
            ],
            Kernel::HalsRows | Kernel::HalsCols => &[
                Access::ReadWrite,
                Access::Read,
                Access::Read,
                Access::Uniform,
            ],
            Kernel::AxisSums | Kernel::SumSlices | Kernel::Transpose | Kernel::Axpby => {
                &[Access::Read, Access::ReadWrite, Access::Uniform]
            }
        }
    }
}

/// A compiled kernel and the layout its bind groups follow.
pub(crate) struct Compiled {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// Compiled kernels of one device, built on first use.
#[derive(Default)]
pub(crate) struct PipelineCache {
    map: Mutex<HashMap<Kernel, Arc<Compiled>>>,
}

impl GpuContext {
    /// The compiled pipeline of `kernel` (compiled and cached on first use).
    pub(crate) fn pipeline(&self, kernel: Kernel) -> Result<Arc<Compiled>> {
        let cache = &self.inner.pipelines;
        let mut map = cache.map.lock().map_err(|_| NmfError::GpuInternal {
            message: "the pipeline cache lock was poisoned by a panic in another thread".into(),
        })?;
        if let Some(c) = map.get(&kernel) {
            return Ok(Arc::clone(c));
        }
        let compiled = Arc::new(self.compile(kernel)?);
        map.insert(kernel, Arc::clone(&compiled));
        Ok(compiled)
    }

    fn compile(&self, kernel: Kernel) -> Result<Compiled> {
        let device = self.device();
        let name = kernel.shader();
        let source = shaders::source(name).ok_or_else(|| NmfError::GpuShader {
            kernel: kernel.entry(),
            message: format!("no shader named {name} in the registry"),
        })?;
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let entries: Vec<wgpu::BindGroupLayoutEntry> = kernel
            .bindings()
            .iter()
            .enumerate()
            .map(|(i, access)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match access {
                        Access::Read => wgpu::BufferBindingType::Storage { read_only: true },
                        Access::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                        Access::Uniform => wgpu::BufferBindingType::Uniform,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(kernel.entry()),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(kernel.entry()),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let tuning = self.tuning();
        let constants: Vec<(&str, f64)> = match kernel {
            Kernel::Matmul(_, wg) => vec![("WG_X", f64::from(wg.x)), ("WG_Y", f64::from(wg.y))],
            _ => vec![("WG", f64::from(tuning.linear_wg))],
        };
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.entry()),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(kernel.entry()),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        let internal_error = pollster::block_on(internal.pop());
        let validation_error = pollster::block_on(validation.pop());
        if let Some(e) = validation_error.or(internal_error) {
            return Err(NmfError::GpuShader {
                kernel: kernel.entry(),
                message: e.to_string(),
            });
        }
        Ok(Compiled { pipeline, layout })
    }
}
