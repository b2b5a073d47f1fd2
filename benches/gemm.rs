//! The dense products behind a fit, through the public API:
//! - `w_h`: the W·H GEMM (m x r times r x n) of `Factorization::inverse_transform`;
//! - `relative_error`: ‖V − WH‖_F / ‖V‖_F, a blocked W·H pass fused with the residual norm.
//!
//! Throughput is reported in elements per second, with 2mnr flops counted as elements, so
//! the rate reads as FLOP/s.
//!
//! `cargo bench --bench gemm`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nmf_gpu::ndarray::Array2;
use nmf_gpu::{relative_error, Init, Nmf};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// (m, n, r): the faces shape, a square one, and the 4096² shape of the benchmark cases.
const SHAPES: [(usize, usize, usize); 3] = [(361, 2429, 49), (1024, 1024, 32), (4096, 4096, 64)];

fn uniform(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((rows, cols), || rng.random::<f32>())
}

fn products(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    for (m, n, r) in SHAPES {
        let v = uniform(m, n, 0);
        let w = uniform(m, r, 1);
        let h = uniform(r, n, 2);
        let case = format!("{m}x{n}r{r}");
        group.throughput(Throughput::Elements((2 * m * n * r) as u64));

        // A one-iteration fit only to obtain a `Factorization` holding W; its product is timed.
        let fit = Nmf::params(r)
            .init(Init::Custom {
                w: w.clone(),
                h: h.clone(),
            })
            .max_iter(1)
            .tol(0.0)
            .fit(v.view())
            .expect("fit");
        group.bench_function(BenchmarkId::new("w_h", &case), |b| {
            b.iter(|| black_box(fit.inverse_transform(black_box(h.view())).expect("W·H")))
        });
        group.bench_function(BenchmarkId::new("relative_error", &case), |b| {
            b.iter(|| {
                black_box(
                    relative_error(black_box(v.view()), w.view(), h.view())
                        .expect("relative_error"),
                )
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = products
}
criterion_main!(benches);
