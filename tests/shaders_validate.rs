//! Every WGSL shader parses and validates with naga (no GPU needed), and declares the entry
//! points the engine dispatches.

use std::path::Path;

fn validate(path: &Path) -> naga::Module {
    let src = std::fs::read_to_string(path).expect("readable shader");
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
fn every_shader_validates_with_naga() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut entries = Vec::new();
    let mut count = 0;
    for file in std::fs::read_dir(&dir).expect("shaders/ exists") {
        let path = file.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "wgsl") {
            let module = validate(&path);
            entries.extend(module.entry_points.iter().map(|e| e.name.clone()));
            count += 1;
        }
    }
    assert!(count >= 5, "found {count} shaders in {}", dir.display());
    for wanted in [
        "matmul",
        "matmul_kl_ratio",
        "matmul_loss_frobenius",
        "matmul_loss_kl",
        "mu_update",
        "hals_rows",
        "hals_cols",
        "axis_sums",
        "sum_slices",
    ] {
        assert!(
            entries.iter().any(|e| e == wanted),
            "no entry point {wanted}"
        );
    }
}
