//! The kernel registry: one [`KernelSpec`] per kernel (its shader module, entry point,
//! bindings with their access, parameter block and pipeline-overridable constants), from which
//! everything else derives: the bind group layout and pipeline ([`compile`]), the bind groups
//! the scheduler builds, the argument checks of every dispatch, and the reflection tests below,
//! which hold each spec against its WGSL with naga.
//!
//! **Adding a kernel** is one entry in this table: a [`Kernel`] variant, one arm of
//! [`Kernel::spec`] naming a `const` [`KernelSpec`], one arm of [`Kernel::overrides`] if it has
//! constants beyond `WG`, and the kernel in `Kernel::all` (what the tests reflect); its
//! parameter struct goes in `uniforms.rs`, its WGSL in `shaders/` (registered in `shaders.rs`).
//! A variant of an existing entry point that differs only in override constants (a tile shape,
//! an epilogue) is a field of the variant, not a new spec.
//!
//! Every pipeline is created inside an error scope so that a shader or pipeline failure is a
//! typed error. The parameter block is bound with a dynamic offset into the scheduler's
//! parameter arena, so a bind group depends only on the storage buffers and can be reused.

use std::collections::HashMap;
use std::mem::size_of;
use std::sync::{Arc, Mutex};

use super::{shaders, tiled, uniforms};
use crate::error::{NmfError, Result};

/// How a kernel accesses one binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    ReadWrite,
    Uniform,
}

/// One binding of group 0: the WGSL variable's name and the access the kernel has.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Binding {
    pub name: &'static str,
    pub access: Access,
}

const fn read(name: &'static str) -> Binding {
    Binding {
        name,
        access: Access::Read,
    }
}

const fn write(name: &'static str) -> Binding {
    Binding {
        name,
        access: Access::ReadWrite,
    }
}

/// The parameter block (the one uniform binding, always named `p`).
const PARAMS: Binding = Binding {
    name: "p",
    access: Access::Uniform,
};

/// A kernel's parameter block: the WGSL struct's name and the size of the `uniforms` struct
/// the host writes (the tests check the WGSL struct has that size).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParamBlock {
    pub wgsl: &'static str,
    pub size: usize,
}

const fn params<T>(wgsl: &'static str) -> ParamBlock {
    ParamBlock {
        wgsl,
        size: size_of::<T>(),
    }
}

/// Everything the host needs to know about one kernel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KernelSpec {
    /// The shader module (`shaders/<shader>.wgsl`, after the prelude).
    pub shader: &'static str,
    /// The entry point in that module.
    pub entry: &'static str,
    /// The bindings of group 0, in binding order (the parameter block among them).
    pub bindings: &'static [Binding],
    /// The parameter block.
    pub params: ParamBlock,
    /// The names of the pipeline-overridable constants the host sets.
    pub overrides: &'static [&'static str],
}

impl KernelSpec {
    /// The number of storage buffers a dispatch binds (every binding but the parameters).
    pub(crate) fn storage_count(&self) -> usize {
        self.bindings
            .iter()
            .filter(|b| b.access != Access::Uniform)
            .count()
    }
}

/// The override of every one-dimensional kernel: its workgroup size.
const LINEAR: &[&str] = &["WG"];

const MATMUL: KernelSpec = KernelSpec {
    shader: "matmul",
    entry: "matmul",
    bindings: &[
        read("a"),
        read("b"),
        write("c"),
        read("d"),
        PARAMS,
        read("mask"),
    ],
    params: params::<uniforms::Gemm>("Gemm"),
    overrides: &["WG_X", "WG_Y", "EPILOGUE"],
};

/// The tiled matmul: the matmul's bindings; the tile shape and the vec4 loads are in the
/// source's header (tiled.rs), the layout and the epilogue are override constants.
const MATMUL_TILED: KernelSpec = KernelSpec {
    shader: "matmul_tiled",
    entry: "matmul_tiled",
    overrides: &["A_T", "B_T", "EPILOGUE"],
    ..MATMUL
};

const MU_UPDATE: KernelSpec = KernelSpec {
    shader: "mu_update",
    entry: "mu_update",
    bindings: &[
        read("x_in"),
        read("num"),
        read("small"),
        write("x_out"),
        PARAMS,
    ],
    params: params::<uniforms::Mu>("Mu"),
    overrides: LINEAR,
};

const HALS_BINDINGS: &[Binding] = &[write("x"), read("num"), read("gram"), PARAMS];

const HALS_ROWS: KernelSpec = KernelSpec {
    shader: "hals",
    entry: "hals_rows",
    bindings: HALS_BINDINGS,
    params: params::<uniforms::Hals>("Hals"),
    overrides: LINEAR,
};

const HALS_COLS: KernelSpec = KernelSpec {
    entry: "hals_cols",
    ..HALS_ROWS
};

/// The sweeps and the stopping rule of inner sweeps decided on the device: the HALS bindings
/// and the tracking buffer (the flag, the first move, the per-invocation moves and norms).
const HALS_TRACKED_BINDINGS: &[Binding] = &[
    write("x"),
    read("num"),
    read("gram"),
    PARAMS,
    write("track"),
];

const HALS_ROWS_TRACKED: KernelSpec = KernelSpec {
    entry: "hals_rows_tracked",
    bindings: HALS_TRACKED_BINDINGS,
    ..HALS_ROWS
};

const HALS_COLS_TRACKED: KernelSpec = KernelSpec {
    entry: "hals_cols_tracked",
    ..HALS_ROWS_TRACKED
};

const TRACK_COLS: KernelSpec = KernelSpec {
    entry: "track_cols",
    ..HALS_ROWS_TRACKED
};

const HALS_STOP: KernelSpec = KernelSpec {
    entry: "hals_stop",
    ..HALS_ROWS_TRACKED
};

const AXIS_SUMS: KernelSpec = KernelSpec {
    shader: "sums",
    entry: "axis_sums",
    bindings: &[read("x"), write("out"), PARAMS],
    params: params::<uniforms::Sums>("Sums"),
    overrides: LINEAR,
};

const SUM_SLICES: KernelSpec = KernelSpec {
    shader: "slices",
    entry: "sum_slices",
    bindings: &[read("x"), write("c"), PARAMS],
    params: params::<uniforms::Slices>("Slices"),
    overrides: LINEAR,
};

const ELEMENTWISE_BINDINGS: &[Binding] = &[read("x"), write("y"), PARAMS];

const TRANSPOSE: KernelSpec = KernelSpec {
    shader: "elementwise",
    entry: "transpose",
    bindings: ELEMENTWISE_BINDINGS,
    params: params::<uniforms::Ew>("Ew"),
    overrides: LINEAR,
};

const AXPBY: KernelSpec = KernelSpec {
    entry: "axpby",
    ..TRANSPOSE
};

const PIN: KernelSpec = KernelSpec {
    entry: "pin",
    ..TRANSPOSE
};

const SPMM_ROWS: KernelSpec = KernelSpec {
    shader: "spmm",
    entry: "spmm_rows",
    bindings: &[
        read("ptr"),
        read("col"),
        read("val"),
        read("x"),
        write("out"),
        PARAMS,
    ],
    params: params::<uniforms::Sparse>("Sparse"),
    overrides: LINEAR,
};

const SPARSE_ENTRIES: KernelSpec = KernelSpec {
    shader: "sparse_entries",
    entry: "sparse_entries",
    bindings: &[
        read("ptr"),
        read("col"),
        read("val"),
        read("a"),
        read("b"),
        write("out"),
        PARAMS,
    ],
    params: params::<uniforms::Sparse>("Sparse"),
    overrides: LINEAR,
};

/// What the matmul kernel does with the product `Y = AB` it forms: the value of its
/// `EPILOGUE` override constant (`EPI_*` in `matmul.wgsl`; a test checks the codes agree).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Epilogue {
    /// `C = Y` or `C += Y`.
    Store = 0,
    /// `C = D ⊘ max(Y, ε)`.
    KlRatio = 1,
    /// `C = D ⊙ Y` (D a 0/1 mask).
    Masked = 2,
    /// `C = D ⊙ max(Y, ε)^(β−2)` (the clamp for β < 2), β in `Gemm::beta`.
    BetaNum = 3,
    /// `C = max(Y, ε)^(β−1)` (the clamp for β < 1), β in `Gemm::beta`.
    BetaDen = 4,
    /// Per-workgroup `Σ (D − Y)²`.
    LossFrobenius = 5,
    /// Per-workgroup generalised KL divergence of `D` from `Y`, ε in `Gemm::eps`.
    LossKl = 6,
    /// Per-workgroup `Σ (M ⊙ (D − Y))²`, with the mask M in the sixth binding.
    LossMasked = 7,
    /// Per-workgroup β-divergence of `D` from `Y`, β in `Gemm::beta`.
    LossBeta = 8,
}

impl Epilogue {
    /// Every epilogue (the matmul's override values the tests compile).
    #[cfg(test)]
    pub(crate) const ALL: [Epilogue; 9] = [
        Epilogue::Store,
        Epilogue::KlRatio,
        Epilogue::Masked,
        Epilogue::BetaNum,
        Epilogue::BetaDen,
        Epilogue::LossFrobenius,
        Epilogue::LossKl,
        Epilogue::LossMasked,
        Epilogue::LossBeta,
    ];
}

/// The WGSL constant of `matmul.wgsl` each epilogue code stands for: `(name, value)`.
#[cfg(test)]
const EPILOGUE_CODES: &[(&str, u32)] = &[
    ("EPI_STORE", Epilogue::Store as u32),
    ("EPI_KL_RATIO", Epilogue::KlRatio as u32),
    ("EPI_MASKED", Epilogue::Masked as u32),
    ("EPI_BETA_NUM", Epilogue::BetaNum as u32),
    ("EPI_BETA_DEN", Epilogue::BetaDen as u32),
    ("EPI_LOSS_FROBENIUS", Epilogue::LossFrobenius as u32),
    ("EPI_LOSS_KL", Epilogue::LossKl as u32),
    ("EPI_LOSS_MASKED", Epilogue::LossMasked as u32),
    ("EPI_LOSS_BETA", Epilogue::LossBeta as u32),
    ("EPI_LOSS_FIRST", Epilogue::LossFrobenius as u32),
];

/// The matmul workgroup: `x · y` invocations, each owning a register block of C, so a
/// workgroup covers `4y` rows and `4x` columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TileWg {
    pub x: u32,
    pub y: u32,
}

/// Every compute pipeline of the engine: a spec (one entry point) and the values of its
/// override constants. The pipeline cache is keyed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kernel {
    /// The register-blocked matmul with an epilogue and a workgroup shape.
    Matmul(Epilogue, TileWg),
    /// The tiled matmul with an epilogue, a tile shape, a layout and its vec4 loads.
    MatmulTiled(Epilogue, tiled::Tiled),
    /// Multiplicative update of W or H.
    MuUpdate,
    /// HALS sweep over the rows of W.
    HalsRows,
    /// HALS sweep over the columns of H.
    HalsCols,
    /// HALS sweep over the rows of W while the device's stop flag is set, writing the moves.
    HalsRowsTracked,
    /// HALS sweep over the columns of H likewise.
    HalsColsTracked,
    /// The inner stopping rule on the moves of the last tracked sweep (one workgroup).
    HalsStop,
    /// The moves of another update of H's columns (or its undoing once the flag is cleared).
    TrackCols,
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

impl Kernel {
    /// Every kernel the tests reflect: each entry point once per value of its
    /// non-shape override constants (the matmul once per epilogue, at one workgroup shape).
    #[cfg(test)]
    pub(crate) fn all() -> Vec<Kernel> {
        let wg = TileWg { x: 8, y: 8 };
        Epilogue::ALL
            .iter()
            .map(|&e| Kernel::Matmul(e, wg))
            .chain(
                Epilogue::ALL
                    .iter()
                    .map(|&e| Kernel::MatmulTiled(e, tiled::Tiled::DEFAULT)),
            )
            .chain([
                Kernel::MuUpdate,
                Kernel::HalsRows,
                Kernel::HalsCols,
                Kernel::HalsRowsTracked,
                Kernel::HalsColsTracked,
                Kernel::HalsStop,
                Kernel::TrackCols,
                Kernel::AxisSums,
                Kernel::SumSlices,
                Kernel::Transpose,
                Kernel::Axpby,
                Kernel::SpmmRows,
                Kernel::SparseEntries,
                Kernel::Pin,
            ])
            .collect()
    }

    /// The kernel's spec: the one table of the registry.
    pub(crate) fn spec(self) -> &'static KernelSpec {
        match self {
            Kernel::Matmul(..) => &MATMUL,
            Kernel::MatmulTiled(..) => &MATMUL_TILED,
            Kernel::MuUpdate => &MU_UPDATE,
            Kernel::HalsRows => &HALS_ROWS,
            Kernel::HalsCols => &HALS_COLS,
            Kernel::HalsRowsTracked => &HALS_ROWS_TRACKED,
            Kernel::HalsColsTracked => &HALS_COLS_TRACKED,
            Kernel::HalsStop => &HALS_STOP,
            Kernel::TrackCols => &TRACK_COLS,
            Kernel::AxisSums => &AXIS_SUMS,
            Kernel::SumSlices => &SUM_SLICES,
            Kernel::Transpose => &TRANSPOSE,
            Kernel::Axpby => &AXPBY,
            Kernel::SpmmRows => &SPMM_ROWS,
            Kernel::SparseEntries => &SPARSE_ENTRIES,
            Kernel::Pin => &PIN,
        }
    }

    /// The values of the spec's override constants, in the order of `spec().overrides`, with
    /// `linear_wg` the workgroup size of the one-dimensional kernels.
    pub(crate) fn overrides(self, linear_wg: u32) -> Vec<f64> {
        match self {
            Kernel::Matmul(epilogue, wg) => {
                vec![f64::from(wg.x), f64::from(wg.y), f64::from(epilogue as u32)]
            }
            Kernel::MatmulTiled(epilogue, t) => vec![
                f64::from(u8::from(t.layout.a_t())),
                f64::from(u8::from(t.layout.b_t())),
                f64::from(epilogue as u32),
            ],
            _ => vec![f64::from(linear_wg)],
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

/// The bind group layout entries of a spec: storage buffers read-only or read-write, the
/// parameter block a uniform with a dynamic offset (its slot in the parameter arena).
fn layout_entries(spec: &KernelSpec) -> Vec<wgpu::BindGroupLayoutEntry> {
    let uniform_size = wgpu::BufferSize::new(spec.params.size as u64);
    spec.bindings
        .iter()
        .enumerate()
        .map(|(i, binding)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match binding.access {
                    Access::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    Access::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    Access::Uniform => wgpu::BufferBindingType::Uniform,
                },
                has_dynamic_offset: binding.access == Access::Uniform,
                min_binding_size: match binding.access {
                    Access::Uniform => uniform_size,
                    Access::Read | Access::ReadWrite => None,
                },
            },
            count: None,
        })
        .collect()
}

/// Compile `kernel` on `device` inside error scopes, so that a shader or pipeline failure is a
/// typed error.
fn compile(device: &wgpu::Device, linear_wg: u32, kernel: Kernel) -> Result<Compiled> {
    let spec = kernel.spec();
    let name = spec.shader;
    let source = shaders::source(name).ok_or_else(|| NmfError::GpuShader {
        kernel: spec.entry,
        message: format!("no shader named {name} in the registry"),
    })?;
    // The tiled matmul's tile shape and operand types are in its source's header.
    let source: std::borrow::Cow<'static, str> = match kernel {
        Kernel::MatmulTiled(_, t) => tiled::source(source, t)?.into(),
        _ => source.into(),
    };
    let values = kernel.overrides(linear_wg);
    if values.len() != spec.overrides.len() {
        return Err(NmfError::GpuInternal {
            message: format!(
                "kernel {kernel:?} sets {} override constants, its spec names {}",
                values.len(),
                spec.overrides.len()
            ),
        });
    }
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(source),
    });
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(spec.entry),
        entries: &layout_entries(spec),
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(spec.entry),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let constants: Vec<(&str, f64)> = spec.overrides.iter().copied().zip(values).collect();
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(spec.entry),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some(spec.entry),
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
            kernel: spec.entry,
            message: e.to_string(),
        });
    }
    Ok(Compiled { pipeline, layout })
}

#[cfg(test)]
mod tests {
    //! Every spec of the table against its WGSL, reflected with naga: no GPU needed.

    use super::{Access, Kernel, EPILOGUE_CODES};
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

    /// How the shader declares a global: the access the spec must give it.
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

    /// For every kernel: its entry point exists; each binding the entry point uses is in
    /// group 0 and in the spec at that index; each binding of the spec is declared by the shader
    /// under the spec's name with the spec's access; the parameter block is one uniform whose
    /// WGSL struct has the spec's name and the Rust struct's size; every override constant the
    /// spec names is declared, with as many values as names.
    #[test]
    fn every_spec_matches_its_shader() {
        for kernel in Kernel::all() {
            let spec = kernel.spec();
            let (module, info) = reflect(spec.shader);
            let what = format!("{}::{}", spec.shader, spec.entry);
            let (ep_index, _) = module
                .entry_points
                .iter()
                .enumerate()
                .find(|(_, ep)| ep.name == spec.entry)
                .unwrap_or_else(|| panic!("{what}: no such entry point"));
            let uses = info.get_entry_point(ep_index);
            let mut declared = vec![false; spec.bindings.len()];
            for (handle, var) in module.global_variables.iter() {
                let Some(binding) = &var.binding else {
                    continue;
                };
                let access = access_of(var.space);
                let slot = binding.binding as usize;
                if !uses[handle].is_empty() {
                    assert_eq!(
                        binding.group, 0,
                        "{what}: a binding in group {}",
                        binding.group
                    );
                    assert!(
                        slot < spec.bindings.len(),
                        "{what}: uses binding {slot}, beyond the spec's {}",
                        spec.bindings.len()
                    );
                }
                if binding.group != 0 || slot >= spec.bindings.len() {
                    continue;
                }
                let want = spec.bindings[slot];
                assert_eq!(
                    var.name.as_deref(),
                    Some(want.name),
                    "{what}: binding {slot} is named differently in the spec"
                );
                assert_eq!(
                    access,
                    Some(want.access),
                    "{what}: binding {slot} ({}) is declared {access:?}, the spec says {:?}",
                    want.name,
                    want.access
                );
                if access == Some(Access::Uniform) {
                    let ty = &module.types[var.ty];
                    let size = ty.inner.size(module.to_ctx()) as usize;
                    assert_eq!(ty.name.as_deref(), Some(spec.params.wgsl), "{what}");
                    assert_eq!(
                        size, spec.params.size,
                        "{what}: the WGSL parameter struct has {size} bytes, the Rust one {}",
                        spec.params.size
                    );
                }
                declared[slot] = true;
            }
            for (slot, d) in declared.iter().enumerate() {
                assert!(
                    d,
                    "{what}: the spec binds slot {slot}, the shader declares none"
                );
            }
            let uniforms = spec.bindings.iter().filter(|b| b.access == Access::Uniform);
            assert_eq!(uniforms.count(), 1, "{what}: one parameter block");
            for name in spec.overrides {
                assert!(
                    module
                        .overrides
                        .iter()
                        .any(|(_, o)| o.name.as_deref() == Some(*name)),
                    "{what}: the shader declares no override {name}"
                );
            }
            assert_eq!(kernel.overrides(64).len(), spec.overrides.len(), "{what}");
        }
    }

    /// Every entry point of every shader is the entry of a spec (nothing dead or missing).
    #[test]
    fn every_entry_point_is_a_kernel() {
        let kernels = Kernel::all();
        for (name, _) in shaders::SHADERS {
            let (module, _) = reflect(name);
            for ep in &module.entry_points {
                assert!(
                    kernels
                        .iter()
                        .any(|k| k.spec().shader == *name && k.spec().entry == ep.name),
                    "{name}.wgsl: entry point {} is no kernel of the registry",
                    ep.name
                );
            }
        }
    }

    /// The epilogue codes the host sets as `EPILOGUE` are the shader's constants.
    #[test]
    fn epilogue_codes_match_the_shader_constants() {
        codes_match("matmul", EPILOGUE_CODES);
    }

    /// The mode codes the host writes into `struct Mu` are the shader's constants.
    #[test]
    fn mu_codes_match_the_shader_constants() {
        codes_match("mu_update", uniforms::MU_CODES);
    }

    /// The stopping rule codes and the tracking layout the host uses are the shader's.
    #[test]
    fn hals_codes_match_the_shader_constants() {
        codes_match("hals", uniforms::HALS_CODES);
    }

    /// The mode codes the host writes into `struct Sparse` are the shader's constants.
    #[test]
    fn sparse_codes_match_the_shader_constants() {
        codes_match("sparse_entries", uniforms::SPARSE_CODES);
    }

    /// Every matmul pipeline, one per epilogue, specialises and validates with naga's override
    /// processing (what wgpu does when it compiles the pipeline): the switch on `EPILOGUE` is
    /// constant after it.
    #[test]
    fn every_epilogue_specialises() {
        let (module, info) = reflect("matmul");
        for kernel in Kernel::all() {
            let spec = kernel.spec();
            if spec.shader != "matmul" {
                continue;
            }
            let constants: naga::back::PipelineConstants = spec
                .overrides
                .iter()
                .map(|n| n.to_string())
                .zip(kernel.overrides(64))
                .collect();
            naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants)
                .unwrap_or_else(|e| panic!("{kernel:?}: {e:?}"));
        }
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
