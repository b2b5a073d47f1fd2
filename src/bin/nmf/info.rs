//! `nmf info`: version, CPU threads, GPU adapters, and what `--backend auto` picks.

use crate::print_stdout;

/// Run `nmf info`.
pub fn run() {
    let mut out = String::new();
    out.push_str(&format!("nmf {}\n", env!("CARGO_PKG_VERSION")));
    out.push_str(&format!(
        "CPU threads: {} (RAYON_NUM_THREADS changes it)\n",
        rayon::current_num_threads()
    ));
    gpu_lines(&mut out);
    print_stdout(&out);
}

/// Without the `gpu` feature there is no GPU engine to describe.
#[cfg(not(feature = "gpu"))]
fn gpu_lines(out: &mut String) {
    out.push_str(
        "GPU: not available (built without the `gpu` feature)
--backend auto uses: CPU
",
    );
}

/// The GPU adapters found and the one `--backend auto` opens.
#[cfg(feature = "gpu")]
fn gpu_lines(out: &mut String) {
    use nmf_gpu::GpuContext;

    // The backends the GPU engine searches: WGPU_BACKEND, or wgpu's primary ones.
    let (instance, backends) = GpuContext::instance();
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    let searched: Vec<String> = backends
        .iter_names()
        .filter(|(_, flag)| *flag != wgpu::Backends::BROWSER_WEBGPU)
        .map(|(name, _)| name.to_lowercase())
        .collect();
    out.push_str(&format!(
        "GPU adapters: {} found on {} (WGPU_BACKEND changes the backends searched)\n",
        adapters.len(),
        searched.join(", ")
    ));
    for (k, adapter) in adapters.iter().enumerate() {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let driver = if info.driver.is_empty() {
            String::new()
        } else {
            format!(", driver {} {}", info.driver, info.driver_info)
        };
        out.push_str(&format!(
            "  [{k}] {} ({:?}, {:?}{driver})\n      max_storage_buffer_binding_size {}, max_buffer_size {}, max_compute_invocations_per_workgroup {}\n",
            info.name,
            info.backend,
            info.device_type,
            bytes(limits.max_storage_buffer_binding_size),
            bytes(limits.max_buffer_size),
            limits.max_compute_invocations_per_workgroup,
        ));
    }
    // Exactly what a fit with --backend auto does: open the high-performance adapter, or fall
    // back to the CPU.
    out.push_str(&match GpuContext::new() {
        Ok(ctx) => {
            let info = ctx.adapter_info();
            format!(
                "--backend auto uses: {} ({:?}, {:?})\n",
                info.name, info.backend, info.device_type
            )
        }
        Err(e) => format!("--backend auto uses: none: CPU ({e})\n"),
    });
}

/// A byte count in MiB or GiB.
#[cfg(feature = "gpu")]
fn bytes(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
    }
}
