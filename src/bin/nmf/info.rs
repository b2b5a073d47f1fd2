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
--backend auto uses: the CPU engine at every size
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
        "GPU adapters: {} found on {} (WGPU_BACKEND changes the backends searched; [K] is the index that --backend gpu:K and NMF_GPU_ADAPTER=K select; gpu:K,L or gpu:all run one fit on several)\n",
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
    // Exactly what a fit with --backend auto does: open the high-performance adapter; take it
    // for data above the size thresholds if it is a hardware one, else run the CPU engine.
    out.push_str(&match GpuContext::new() {
        Ok(ctx) if ctx.is_software() => {
            let info = ctx.adapter_info();
            format!(
                "--backend auto uses: the CPU engine at every size (the adapter opened, {} ({:?}), is a software one; --backend gpu runs on it)\n",
                info.name, info.backend
            )
        }
        Ok(ctx) => {
            let info = ctx.adapter_info();
            format!(
                "--backend auto uses: {} ({:?}, {:?}) for dense data of at least {} entries and sparse data of at least {} stored entries; the CPU engine below\n",
                info.name,
                info.backend,
                info.device_type,
                nmf_gpu::AUTO_GPU_MIN_DENSE_ENTRIES,
                nmf_gpu::AUTO_GPU_MIN_SPARSE_NNZ
            )
        }
        Err(e) => format!("--backend auto uses: the CPU engine at every size (no usable GPU: {e})\n"),
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

/// `nmf info --tune`: the matmul tuner's candidate table on the adapter a fit opens.
#[cfg(feature = "gpu")]
pub fn tune() -> Result<(), crate::error::CliError> {
    use nmf_gpu::GpuContext;

    let ctx = GpuContext::new()?;
    let info = ctx.adapter_info();
    // Products of one iteration at a size the adapter runs in seconds: m = n = s, r = s / 16
    // (W H, V Hᵀ, Wᵀ V, Wᵀ W), and a square product.
    let s = if info.device_type == wgpu::DeviceType::Cpu {
        256
    } else {
        4096
    };
    let r = s / 16;
    let shapes = [
        ("AB", (s, s, r)),
        ("ABt", (s, r, s)),
        ("AtB", (r, s, s)),
        ("AtB", (r, r, s)),
        ("AB", (s / 2, s / 2, s / 2)),
    ];
    let rows = ctx.tune_table(&shapes)?;
    let mut out = format!(
        "matmul tuning table on {} ({:?}, {:?}); tuning in force: {} (NMF_GPU_TUNE)\n\
         {:>16} {:>5} {:<28} {:>10} {:>9}\n",
        info.name,
        info.backend,
        info.device_type,
        ctx.tuning_effort(),
        "rows x cols x k",
        "ops",
        "configuration",
        "ms",
        "GFLOP/s"
    );
    for shape in shapes {
        let group: Vec<_> = rows
            .iter()
            .filter(|row| row.shape == shape.1 && row.layout == shape.0)
            .collect();
        let best = group.iter().map(|row| row.ms).fold(f64::INFINITY, f64::min);
        for row in group {
            let (m, n, k) = row.shape;
            let mark = match (row.ms == best, row.heuristic) {
                (true, true) => "  fastest, default",
                (true, false) => "  fastest",
                (false, true) => "  default",
                (false, false) => "",
            };
            out.push_str(&format!(
                "{:>16} {:>5} {:<28} {:>10.3} {:>9.1}{mark}\n",
                format!("{m}x{n}x{k}"),
                row.layout,
                row.config,
                row.ms,
                row.gflops
            ));
        }
    }
    if info.device_type == wgpu::DeviceType::Cpu {
        out.push_str("(a software adapter: these times say nothing about a GPU)\n");
    }
    crate::print_stdout(&out);
    Ok(())
}

/// Without the `gpu` feature there is nothing to tune.
#[cfg(not(feature = "gpu"))]
pub fn tune() -> Result<(), crate::error::CliError> {
    crate::print_stdout("GPU: not available (built without the `gpu` feature); nothing to tune\n");
    Ok(())
}
