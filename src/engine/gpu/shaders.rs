//! The WGSL sources of every kernel, compiled into the library.

/// `(name, source)` of each shader module in `shaders/`.
pub(crate) const SHADERS: &[(&str, &str)] = &[
    ("matmul", include_str!("../../../shaders/matmul.wgsl")),
    ("mu_update", include_str!("../../../shaders/mu_update.wgsl")),
    ("hals", include_str!("../../../shaders/hals.wgsl")),
    ("sums", include_str!("../../../shaders/sums.wgsl")),
    ("slices", include_str!("../../../shaders/slices.wgsl")),
    (
        "elementwise",
        include_str!("../../../shaders/elementwise.wgsl"),
    ),
    ("spmm", include_str!("../../../shaders/spmm.wgsl")),
    (
        "sparse_entries",
        include_str!("../../../shaders/sparse_entries.wgsl"),
    ),
];

/// The source of the shader module `name`, if it exists.
pub(crate) fn source(name: &str) -> Option<&'static str> {
    SHADERS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::SHADERS;

    /// Every registered shader parses and validates; every file in `shaders/` is registered.
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
        let mut registered: Vec<String> =
            SHADERS.iter().map(|(n, _)| format!("{n}.wgsl")).collect();
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
