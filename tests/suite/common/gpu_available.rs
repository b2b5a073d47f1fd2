// Shared by the GPU tests of the library (src/engine/gpu/tests.rs) and of tests/: `GpuContext`
// must be in scope where this file is included.

/// The GPU context for a test, opened once per test binary, or `None` (with a message saying
/// why the test is skipped) when no adapter exists and `NMF_REQUIRE_GPU` is unset. With
/// `NMF_REQUIRE_GPU` set, a missing adapter fails the test.
pub fn gpu_or_skip() -> Option<GpuContext> {
    static CONTEXT: std::sync::OnceLock<Result<GpuContext, String>> = std::sync::OnceLock::new();
    match CONTEXT.get_or_init(|| GpuContext::new().map_err(|e| e.to_string())) {
        Ok(ctx) => Some(ctx.clone()),
        Err(e) if std::env::var_os("NMF_REQUIRE_GPU").is_some() => {
            panic!("NMF_REQUIRE_GPU is set but no GPU is usable: {e}")
        }
        Err(e) => {
            eprintln!("skipping: no GPU adapter ({e})");
            None
        }
    }
}
