//! The WGSL sources of every kernel, compiled into the library. Each shader module is the
//! shared prelude (`shaders/prelude.wgsl`: the structs, constants and pure functions more than
//! one module reads) followed by the module's own file, joined at build time.

/// One shader module: the prelude, then `shaders/<name>.wgsl`.
macro_rules! module {
    ($name:literal) => {
        (
            $name,
            concat!(
                include_str!("../../../shaders/prelude.wgsl"),
                "\n",
                include_str!(concat!("../../../shaders/", $name, ".wgsl"))
            ),
        )
    };
}

/// A matrix product module: the prelude, the products' shared part (`shaders/gemm.wgsl`: the
/// parameter block, the bindings besides A and B, the epilogues), then `shaders/<name>.wgsl`.
macro_rules! gemm_module {
    ($name:literal) => {
        (
            $name,
            concat!(
                include_str!("../../../shaders/prelude.wgsl"),
                "\n",
                include_str!("../../../shaders/gemm.wgsl"),
                "\n",
                include_str!(concat!("../../../shaders/", $name, ".wgsl"))
            ),
        )
    };
}

/// The products' shared part's file name (for the registry's completeness test).
#[cfg(test)]
pub(crate) const GEMM: &str = "gemm";

/// The prelude's file name (for the registry's completeness test).
#[cfg(test)]
pub(crate) const PRELUDE: &str = "prelude";

/// `(name, source with the prelude)` of each shader module in `shaders/`.
pub(crate) const SHADERS: &[(&str, &str)] = &[
    gemm_module!("matmul"),
    gemm_module!("matmul_tiled"),
    module!("mu_update"),
    module!("hals"),
    module!("sums"),
    module!("slices"),
    module!("elementwise"),
    module!("spmm"),
    module!("sparse_entries"),
];

/// The source of the shader module `name` (prelude included), if it exists.
pub(crate) fn source(name: &str) -> Option<&'static str> {
    SHADERS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::{GEMM, PRELUDE, SHADERS};

    /// Every registered shader parses and validates; every file in `shaders/` is registered
    /// (the prelude as the prelude).
    #[test]
    fn registry_validates_and_is_complete() {
        for (name, src) in SHADERS {
            let module = naga::front::wgsl::parse_str(src)
                .unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(src)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::default(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}.wgsl: {e:?}"));
        }
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("shaders/ exists")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".wgsl"))
            .collect();
        files.sort();
        let mut registered: Vec<String> = SHADERS
            .iter()
            .map(|(n, _)| *n)
            .chain([PRELUDE, GEMM])
            .map(|n| format!("{n}.wgsl"))
            .collect();
        registered.sort();
        assert_eq!(files, registered);
    }

    /// The host's idea of the matmul register block is the shader's.
    #[test]
    fn register_block_matches_the_matmul_shader() {
        let src = super::source("matmul").expect("matmul registered");
        let b = crate::engine::gpu::context::REGISTER_BLOCK;
        assert!(src.contains(&format!("const TM: u32 = {b}u;")));
        assert!(src.contains(&format!("const TN: u32 = {b}u;")));
        assert!(src.contains(&format!("array<f32, {}>", b * b)));
    }
}
