//! Kernels, their bind group layouts, and the per-context pipeline cache. Every pipeline is
//! created inside an error scope so that a shader or pipeline failure becomes a typed error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{shaders, uniforms};
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
    /// `C = D ⊙ max(AB, ε)^(β−2)` (the clamp for β < 2), β in the `eps` field.
    BetaNum,
    /// `C = max(AB, ε)^(β−1)` (the clamp for β < 1), β in the `eps` field.
    BetaDen,
    /// Per-workgroup β-divergence of `D` from `AB`, β in the `eps` field.
    LossBeta,
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
    /// Sparse x skinny product over one row panel of a CSR matrix (`spmm.wgsl`).
    SpmmRows,
    /// KL ratios or loss terms at the stored entries of a CSR panel (`sparse_entries.wgsl`).
    SparseEntries,
    /// `y ← x` wherever `x` is not the FREE marker.
    Pin,
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
    /// One kernel of each entry point (the matmul at one workgroup shape; the shape is a
    /// pipeline constant, not a binding).
    #[cfg(test)]
    pub(crate) const ALL: &'static [Kernel] = &[
        Kernel::Matmul(Epilogue::Store, TileWg { x: 8, y: 8 }),
        Kernel::Matmul(Epilogue::KlRatio, TileWg { x: 8, y: 8 }),
        Kernel::Matmul(Epilogue::Masked, TileWg { x: 8, y: 8 }),
        Kernel::Matmul(Epilogue::LossFrobenius, TileWg { x: 8, y: 8 }),
        Kernel::Matmul(Epilogue::LossKl, TileWg { x: 8, y: 8 }),
        Kernel::Matmul(Epilogue::LossMasked, TileWg { x: 8, y: 8 }),
        Kernel::Matmul(Epilogue::BetaNum, TileWg { x: 8, y: 8 }),
        Kernel::Matmul(Epilogue::BetaDen, TileWg { x: 8, y: 8 }),
        Kernel::Matmul(Epilogue::LossBeta, TileWg { x: 8, y: 8 }),
        Kernel::MuUpdate,
        Kernel::HalsRows,
        Kernel::HalsCols,
        Kernel::AxisSums,
        Kernel::SumSlices,
        Kernel::Transpose,
        Kernel::Axpby,
        Kernel::SpmmRows,
        Kernel::SparseEntries,
        Kernel::Pin,
    ];

    /// The size in bytes of the kernel's parameter block (its one uniform binding): the
    /// `uniforms` struct the host writes, and the WGSL struct the shader reads.
    pub(crate) fn uniform_size(self) -> usize {
        use std::mem::size_of;
        match self {
            Kernel::Matmul(..) => size_of::<uniforms::Gemm>(),
            Kernel::MuUpdate => size_of::<uniforms::Mu>(),
            Kernel::HalsRows | Kernel::HalsCols => size_of::<uniforms::Hals>(),
            Kernel::AxisSums => size_of::<uniforms::Sums>(),
            Kernel::SumSlices => size_of::<uniforms::Slices>(),
            Kernel::Transpose | Kernel::Axpby | Kernel::Pin => size_of::<uniforms::Ew>(),
            Kernel::SpmmRows | Kernel::SparseEntries => size_of::<uniforms::Sparse>(),
        }
    }

    /// The number of storage buffers a dispatch binds (every binding but the uniform).
    pub(crate) fn storage_count(self) -> usize {
        self.bindings()
            .iter()
            .filter(|a| **a != Access::Uniform)
            .count()
    }

    /// The shader module (a file `shaders/<name>.wgsl`) holding the kernel.
    pub(crate) fn shader(self) -> &'static str {
        match self {
            Kernel::Matmul(..) => "matmul",
            Kernel::MuUpdate => "mu_update",
            Kernel::HalsRows | Kernel::HalsCols => "hals",
            Kernel::AxisSums => "sums",
            Kernel::SumSlices => "slices",
            Kernel::Transpose | Kernel::Axpby | Kernel::Pin => "elementwise",
            Kernel::SpmmRows => "spmm",
            Kernel::SparseEntries => "sparse_entries",
        }
    }

    /// The kernel's entry point in its shader module.
    pub(crate) fn entry(self) -> &'static str {
        match self {
            Kernel::Matmul(Epilogue::Store, _) => "matmul",
            Kernel::Matmul(Epilogue::KlRatio, _) => "matmul_kl_ratio",
            Kernel::Matmul(Epilogue::LossFrobenius, _) => "matmul_loss_frobenius",
            Kernel::Matmul(Epilogue::LossKl, _) => "matmul_loss_kl",
            Kernel::Matmul(Epilogue::Masked, _) => "matmul_masked",
            Kernel::Matmul(Epilogue::LossMasked, _) => "matmul_loss_masked",
            Kernel::Matmul(Epilogue::BetaNum, _) => "matmul_beta_num",
            Kernel::Matmul(Epilogue::BetaDen, _) => "matmul_beta_den",
            Kernel::Matmul(Epilogue::LossBeta, _) => "matmul_loss_beta",
            Kernel::MuUpdate => "mu_update",
            Kernel::HalsRows => "hals_rows",
            Kernel::HalsCols => "hals_cols",
            Kernel::AxisSums => "axis_sums",
            Kernel::SumSlices => "sum_slices",
            Kernel::Transpose => "transpose",
            Kernel::Axpby => "axpby",
            Kernel::SpmmRows => "spmm_rows",
            Kernel::SparseEntries => "sparse_entries",
            Kernel::Pin => "pin",
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
            Kernel::AxisSums
            | Kernel::SumSlices
            | Kernel::Transpose
            | Kernel::Axpby
            | Kernel::Pin => &[Access::Read, Access::ReadWrite, Access::Uniform],
            Kernel::SpmmRows => &[
                Access::Read,
                Access::Read,
                Access::Read,
                Access::Read,
                Access::ReadWrite,
                Access::Uniform,
            ],
            Kernel::SparseEntries => &[
                Access::Read,
                Access::Read,
                Access::Read,
                Access::Read,
                Access::Read,
                Access::ReadWrite,
                Access::Uniform,
            ],
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

impl PipelineCache {
    /// The compiled pipeline of `kernel` on `device` (compiled and cached on first use), with
    /// `linear_wg` the workgroup size of the one-dimensional kernels.
    pub(crate) fn get(
        &self,
        device: &wgpu::Device,
        linear_wg: u32,
        kernel: Kernel,
    ) -> Result<Arc<Compiled>> {
        let mut map = self.map.lock().map_err(|_| NmfError::GpuInternal {
            message: "the pipeline cache lock was poisoned by a panic in another thread".into(),
        })?;
        if let Some(c) = map.get(&kernel) {
            return Ok(Arc::clone(c));
        }
        let compiled = Arc::new(compile(device, linear_wg, kernel)?);
        map.insert(kernel, Arc::clone(&compiled));
        Ok(compiled)
    }
}

/// Compile `kernel` on `device` inside error scopes, so that a shader or pipeline failure is a
/// typed error.
fn compile(device: &wgpu::Device, linear_wg: u32, kernel: Kernel) -> Result<Compiled> {
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
    let uniform_size = wgpu::BufferSize::new(kernel.uniform_size() as u64);
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
                min_binding_size: match access {
                    Access::Uniform => uniform_size,
                    Access::Read | Access::ReadWrite => None,
                },
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
    let constants: Vec<(&str, f64)> = match kernel {
        Kernel::Matmul(_, wg) => vec![("WG_X", f64::from(wg.x)), ("WG_Y", f64::from(wg.y))],
        _ => vec![("WG", f64::from(linear_wg))],
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

#[cfg(test)]
mod tests {
    //! The Rust side of every kernel (entry point, binding list, parameter block) against the
    //! WGSL side, reflected with naga: no GPU needed.

    use super::{Access, Kernel};
    use crate::engine::gpu::{shaders, uniforms};

    fn reflect(name: &str) -> (naga::Module, naga::valid::ModuleInfo) {
        let src = shaders::source(name).unwrap_or_else(|| panic!("no shader {name}"));
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(src)));
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}.wgsl: {e:?}"));
        (module, info)
    }

    /// How the shader declares a global: the access the Rust binding list must give it.
    fn access_of(space: naga::AddressSpace) -> Option<Access> {
        match space {
            naga::AddressSpace::Uniform => Some(Access::Uniform),
            naga::AddressSpace::Storage { access } => {
                if access.contains(naga::StorageAccess::STORE) {
                    Some(Access::ReadWrite)
                } else {
                    Some(Access::Read)
                }
            }
            _ => None,
        }
    }

    /// For every kernel: each binding its entry point uses is in group 0 and in the Rust list
    /// at that index with the same access (read, read-write, uniform); each binding of the Rust
    /// list is declared by the shader with that access (a buffer bound only to fill the slot
    /// still matches the declaration); the uniform's WGSL struct has the size of the Rust
    /// parameter block.
    #[test]
    fn bindings_and_parameter_blocks_match_the_shaders() {
        for &kernel in Kernel::ALL {
            let (module, info) = reflect(kernel.shader());
            let what = format!("{}::{}", kernel.shader(), kernel.entry());
            let (ep_index, _) = module
                .entry_points
                .iter()
                .enumerate()
                .find(|(_, ep)| ep.name == kernel.entry())
                .unwrap_or_else(|| panic!("{what}: no such entry point"));
            let uses = info.get_entry_point(ep_index);
            let rust = kernel.bindings();
            let mut declared = vec![None; rust.len()];
            for (handle, var) in module.global_variables.iter() {
                let Some(binding) = &var.binding else {
                    continue;
                };
                let access = access_of(var.space);
                let used = !uses[handle].is_empty();
                let slot = binding.binding as usize;
                if used {
                    assert_eq!(
                        binding.group, 0,
                        "{what}: binding in group {}",
                        binding.group
                    );
                    assert!(
                        slot < rust.len(),
                        "{what}: uses binding {slot}, beyond the {} of the Rust list",
                        rust.len()
                    );
                }
                if binding.group == 0 && slot < rust.len() {
                    assert_eq!(
                        access,
                        Some(rust[slot]),
                        "{what}: binding {slot} ({:?}) is declared {access:?}, the Rust list says {:?}",
                        var.name,
                        rust[slot]
                    );
                    declared[slot] = Some(var);
                }
                if access == Some(Access::Uniform) && used {
                    let size = module.types[var.ty].inner.size(module.to_ctx()) as usize;
                    assert_eq!(
                        size,
                        kernel.uniform_size(),
                        "{what}: the WGSL parameter struct has {size} bytes, the Rust one {}",
                        kernel.uniform_size()
                    );
                }
            }
            for (slot, d) in declared.iter().enumerate() {
                assert!(
                    d.is_some(),
                    "{what}: the Rust list binds slot {slot}, the shader declares none"
                );
            }
            assert_eq!(
                rust.iter().filter(|a| **a == Access::Uniform).count(),
                1,
                "{what}: one parameter block"
            );
        }
    }

    /// Every entry point of every shader is a kernel of the registry (nothing dead or missing).
    #[test]
    fn every_entry_point_is_a_kernel() {
        for (name, _) in shaders::SHADERS {
            let (module, _) = reflect(name);
            for ep in &module.entry_points {
                assert!(
                    Kernel::ALL
                        .iter()
                        .any(|k| k.shader() == *name && k.entry() == ep.name),
                    "{name}.wgsl: entry point {} is no kernel of the registry",
                    ep.name
                );
            }
        }
    }

    /// The mode codes the host writes into `struct Mu` are the shader's constants.
    #[test]
    fn mu_codes_match_the_shader_constants() {
        codes_match("mu_update", uniforms::MU_CODES);
    }

    /// The mode codes the host writes into `struct Sparse` are the shader's constants.
    #[test]
    fn sparse_codes_match_the_shader_constants() {
        codes_match("sparse_entries", uniforms::SPARSE_CODES);
    }

    fn codes_match(shader: &str, codes: &[(&str, u32)]) {
        let (module, _) = reflect(shader);
        for &(name, value) in codes {
            let (_, c) = module
                .constants
                .iter()
                .find(|(_, c)| c.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("{shader}.wgsl declares no constant {name}"));
            match module.global_expressions[c.init] {
                naga::Expression::Literal(naga::Literal::U32(v)) => {
                    assert_eq!(
                        v, value,
                        "{name}: the shader says {v}, the host writes {value}"
                    )
                }
                ref e => panic!("{name}: not a u32 literal: {e:?}"),
            }
        }
    }
}
