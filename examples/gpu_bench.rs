//! MU Frobenius on the GPU against the CPU: milliseconds per iteration, GFLOP/s counted as
//! `4mnr + 4(m+n)r²` per iteration, and the gap between the two engines' relative errors. The
//! GPU runs twice on the same adapter: with the products the engine chooses (`gpu`: the tiled
//! kernel by the fixed heuristic, or the tuner's choice with `NMF_GPU_TUNE=quick|full`) and with
//! every product on the strided kernel (`gpu-strided`, as `NMF_GPU_MATMUL=strided`).
//!
//! `cargo run --release --example gpu_bench [m n r iterations]...`
//! (default: 4096 4096 64 50 and 10000 5000 128 50)

use std::time::Instant;

use nmf_gpu::ndarray::Array2;
use nmf_gpu::{Backend, GpuContext, Init, Nmf, NmfError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn main() -> Result<(), NmfError> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let cases: Vec<[usize; 4]> = if args.len() >= 4 {
        args.chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect()
    } else {
        vec![[4096, 4096, 64, 50], [10000, 5000, 128, 50]]
    };
    let gpu = GpuContext::new()?;
    let info = gpu.adapter_info();
    println!(
        "adapter: {} ({:?}, {:?})",
        info.name, info.backend, info.device_type
    );
    for [m, n, r, iters] in cases {
        let mut rng = StdRng::seed_from_u64(1);
        let w = Array2::from_shape_simple_fn((m, r), || rng.random::<f32>());
        let h = Array2::from_shape_simple_fn((r, n), || rng.random::<f32>());
        let v = w.dot(&h) + Array2::from_shape_simple_fn((m, n), || 0.1 * rng.random::<f32>());
        let w0 = Array2::from_shape_simple_fn((m, r), || 0.1 + rng.random::<f32>());
        let h0 = Array2::from_shape_simple_fn((r, n), || 0.1 + rng.random::<f32>());
        let params = |backend| {
            Nmf::params(r)
                .init(Init::Custom {
                    w: w0.clone(),
                    h: h0.clone(),
                })
                .max_iter(iters)
                .tol(0.0)
                .check_every(iters)
                .backend(backend)
        };
        // Warm-up: compiles the kernels.
        params(Backend::Gpu(gpu.clone()))
            .max_iter(1)
            .fit(v.view())?;
        let flops = (4 * m * n * r + 4 * (m + n) * r * r) as f64;
        let mut errors = Vec::new();
        let strided = gpu.clone().with_strided_matmul(true);
        params(Backend::Gpu(strided.clone()))
            .max_iter(1)
            .fit(v.view())?;
        for (name, backend) in [
            ("gpu", Backend::Gpu(gpu.clone())),
            ("gpu-strided", Backend::Gpu(strided)),
            ("cpu", Backend::Cpu),
        ] {
            let t = Instant::now();
            let fit = params(backend).fit(v.view())?;
            let per_iter = t.elapsed().as_secs_f64() / iters as f64;
            let err = fit.relative_error(v.view())?;
            errors.push(err);
            println!(
                "{m}x{n} r{r} {name}: {:.2} ms/iteration, {:.1} GFLOP/s, relative error {err:.6}{}",
                per_iter * 1e3,
                flops / per_iter / 1e9,
                fit.gpu_stats()
                    .map(|s| format!(", {s:?}"))
                    .unwrap_or_default()
            );
        }
        println!(
            "{m}x{n} r{r}: |gpu - cpu| relative error gap {:.2e}",
            (errors[0] - errors[2]).abs() / errors[2]
        );
    }
    Ok(())
}
