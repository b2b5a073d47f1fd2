//! One iteration of each solver, end to end through the public API: `fit` with `max_iter(1)`,
//! `tol(0)` and a fixed custom start (validation, the initial loss and the final copy included).
//!
//! `cargo bench --bench iteration`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nmf_gpu::ndarray::Array2;
use nmf_gpu::{Init, Loss, Nmf, Solver};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// (m, n, r): the faces shape and a square one.
const SHAPES: [(usize, usize, usize); 2] = [(361, 2429, 49), (1024, 1024, 32)];

/// Uniform V in [0, 1) and a start `sqrt(mean(V)/r)·|N(0,1)|` (scikit-learn's random init).
fn data(m: usize, n: usize, r: usize) -> (Array2<f32>, Array2<f32>, Array2<f32>) {
    let mut rng = StdRng::seed_from_u64(0);
    let v = Array2::from_shape_simple_fn((m, n), || rng.random::<f32>());
    let scale = (v.mean().unwrap_or(0.0) / r as f32).sqrt();
    let mut rng = StdRng::seed_from_u64(1);
    let mut start = |rows, cols| {
        Array2::from_shape_simple_fn((rows, cols), || {
            scale * rng.sample::<f32, _>(StandardNormal).abs()
        })
    };
    let w = start(m, r);
    let h = start(r, n);
    (v, w, h)
}

fn one_iteration(c: &mut Criterion) {
    let mut group = c.benchmark_group("one_iteration");
    for (m, n, r) in SHAPES {
        let (v, w, h) = data(m, n, r);
        // Counted as the Frobenius MU flops, 4mnr + 4(m+n)r², for every solver.
        group.throughput(Throughput::Elements(
            (4 * m * n * r + 4 * (m + n) * r * r) as u64,
        ));
        for (solver, loss) in [
            (Solver::MultiplicativeUpdate, Loss::Frobenius),
            (Solver::MultiplicativeUpdate, Loss::KullbackLeibler),
            (Solver::Hals, Loss::Frobenius),
        ] {
            let params = Nmf::params(r)
                .solver(solver)
                .loss(loss)
                .init(Init::Custom {
                    w: w.clone(),
                    h: h.clone(),
                })
                .max_iter(1)
                .tol(0.0);
            let id = BenchmarkId::new(
                format!("{}_{}", solver.name(), loss.name()),
                format!("{m}x{n}r{r}"),
            );
            group.bench_function(id, |b| {
                b.iter(|| black_box(params.fit(black_box(v.view())).expect("fit")))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = one_iteration
}
criterion_main!(benches);
