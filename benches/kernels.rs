//! Criterion benches of the CPU engine's GEMM kernels at the shapes an NMF iteration uses:
//! `V Hᵀ` and `Wᵀ V` (2mnr flops each) and the Gram matrices.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nmf_gpu::kernels::CpuProducts;
use nmf_gpu::ndarray::Array2;
use std::time::Duration;

fn matrix(rows: usize, cols: usize, seed: usize) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        ((i * 7919 + j * 104729 + seed) % 1000) as f32 / 1000.0
    })
}

fn kernels(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernels");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for &(m, n, r) in &[(361usize, 2429usize, 49usize), (4096, 4096, 64)] {
        let v = matrix(m, n, 1);
        let w = matrix(m, r, 2);
        let h = matrix(r, n, 3);
        let mut p = Array2::<f32>::zeros((m, r));
        let mut q = Array2::<f32>::zeros((r, n));
        let mut g = Array2::<f32>::zeros((r, r));
        let mut e = CpuProducts::new(v.view());
        let case = format!("{m}x{n}r{r}");
        group.throughput(Throughput::Elements((2 * m * n * r) as u64));
        group.bench_function(format!("v_ht/{case}"), |b| b.iter(|| e.v_ht(&h, &mut p)));
        group.bench_function(format!("wt_v/{case}"), |b| b.iter(|| e.wt_v(&w, &mut q)));
        group.throughput(Throughput::Elements((2 * n * r * r) as u64));
        group.bench_function(format!("h_ht/{case}"), |b| b.iter(|| e.h_ht(&h, &mut g)));
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
