//! A machine without a matching adapter: typed, actionable errors and the CPU fallback of
//! `Backend::Auto`. (One test in its own binary: it sets process environment variables.)

#[path = "suite/common/mod.rs"]
mod common;

use nmf_gpu::{Backend, GpuContext, Nmf, NmfError};

#[test]
fn missing_adapter_is_a_typed_error_and_auto_falls_back_to_the_cpu() {
    std::env::set_var("WGPU_ADAPTER_NAME", "no adapter is called this");
    match GpuContext::new() {
        Err(e @ NmfError::GpuNoAdapter { .. }) => {
            let message = e.to_string();
            assert!(message.contains("mesa-vulkan-drivers"), "{message}");
            assert!(message.contains("Backend::Cpu"), "{message}");
        }
        other => panic!("expected GpuNoAdapter, got {other:?}"),
    }
    let v = common::low_rank_plus_noise(30, 20, 2, 0.1, 1);
    let fit = Nmf::params(2)
        .max_iter(20)
        .backend(Backend::Auto)
        .fit(v.view())
        .expect("Auto falls back to the CPU");
    assert!(fit.engine().starts_with("cpu"), "{}", fit.engine());
    assert!(fit.gpu_stats().is_none());
}
