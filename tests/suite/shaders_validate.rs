//! Every WGSL shader parses and validates with naga (no GPU needed) after the shared prelude
//! (`shaders/prelude.wgsl`, prepended to every module when it is compiled); every entry point is
//! a compute kernel with a unique name that a spec of the engine's kernel table
//! (src/engine/gpu/pipelines.rs) names, and every shader file is registered
//! (src/engine/gpu/shaders.rs). The entry points are read from the shaders themselves; the
//! bindings, parameter blocks and override constants of each are checked against the table by
//! the unit tests of the crate (`engine::gpu::pipelines::tests`).

use std::path::Path;

const REGISTRY: &str = include_str!("../../src/engine/gpu/pipelines.rs");
const SHADER_LIST: &str = include_str!("../../src/engine/gpu/shaders.rs");

const PRELUDE: &str = include_str!("../../shaders/prelude.wgsl");
/// The shared part of the matrix product modules (registered with `gemm_module!`).
const GEMM: &str = include_str!("../../shaders/gemm.wgsl");

fn validate(path: &Path, stem: &str) -> naga::Module {
    let shared = if SHADER_LIST.contains(&format!("gemm_module!(\"{stem}\")")) {
        format!("{PRELUDE}\n{GEMM}\n")
    } else {
        format!("{PRELUDE}\n")
    };
    let src = format!(
        "{shared}{}",
        std::fs::read_to_string(path).expect("readable shader")
    );
    let module = naga::front::wgsl::parse_str(&src)
        .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&src)));
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
    module
}

#[test]
fn every_shader_validates_and_every_entry_point_is_dispatched() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut entries: Vec<String> = Vec::new();
    let mut count = 0;
    for file in std::fs::read_dir(&dir).expect("shaders/ exists") {
        let path = file.expect("directory entry").path();
        if path.extension().is_none_or(|e| e != "wgsl") {
            continue;
        }
        let stem = path.file_stem().expect("a file name").to_string_lossy();
        if stem == "prelude" || stem == "gemm" {
            continue;
        }
        assert!(
            SHADER_LIST.contains(&format!("module!(\"{stem}\")")),
            "{} is not in the shader registry",
            path.display()
        );
        let module = validate(&path, &stem);
        assert!(
            !module.entry_points.is_empty(),
            "{} has no entry point",
            path.display()
        );
        for ep in &module.entry_points {
            assert_eq!(
                ep.stage,
                naga::ShaderStage::Compute,
                "{}: {}",
                path.display(),
                ep.name
            );
            assert!(
                REGISTRY.contains(&format!("entry: \"{}\"", ep.name)),
                "{}: entry point {} is not dispatched by the kernel registry",
                path.display(),
                ep.name
            );
            assert!(
                !entries.contains(&ep.name),
                "entry point {} is declared twice",
                ep.name
            );
            entries.push(ep.name.clone());
        }
        count += 1;
    }
    assert!(count >= 1, "no shaders in {}", dir.display());
}
