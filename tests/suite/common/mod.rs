//! Shared test data: planted low-rank matrices and random nonnegative matrices.
#![allow(dead_code)]

use nmf_gpu::ndarray::Array2;
use nmf_gpu::GpuContext;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Uniform [0, 1) entries.
pub fn uniform(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((rows, cols), || rng.random::<f32>())
}

/// Uniform entries with about `zero_frac` of them set to zero.
pub fn sparse_uniform(rows: usize, cols: usize, zero_frac: f64, seed: u64) -> Array2<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((rows, cols), || {
        if rng.random::<f64>() < zero_frac {
            0.0
        } else {
            rng.random::<f32>()
        }
    })
}

/// `V = W₀ H₀` with sparse nonnegative factors (an identifiable planted factorization).
pub fn planted(m: usize, n: usize, r: usize, seed: u64) -> (Array2<f32>, Array2<f32>, Array2<f32>) {
    let w0 = sparse_uniform(m, r, 0.5, seed);
    let h0 = sparse_uniform(r, n, 0.5, seed + 1);
    let v = naive_matmul(&w0, &h0);
    (v, w0, h0)
}

/// Triple-loop product in f64, rounded to f32: the reference for every GEMM.
pub fn naive_matmul(a: &Array2<f32>, b: &Array2<f32>) -> Array2<f32> {
    let (m, k) = a.dim();
    let n = b.ncols();
    let mut c = Array2::<f32>::zeros((m, n));
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f64;
            for l in 0..k {
                s += a[[i, l]] as f64 * b[[l, j]] as f64;
            }
            c[[i, j]] = s as f32;
        }
    }
    c
}

/// Max |a − b| / max |b|.
pub fn max_rel_diff(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    assert_eq!(a.dim(), b.dim());
    let scale = b.iter().fold(1e-30f64, |m, &x| m.max((x as f64).abs()));
    a.iter()
        .zip(b.iter())
        .fold(0.0f64, |m, (&x, &y)| m.max(((x - y) as f64).abs()))
        / scale
}

include!("gpu_available.rs");

/// Deterministic pseudo-random entries in [0, 1) (xorshift), for reproducible test data.
pub fn pseudo(rows: usize, cols: usize, seed: u32) -> Array2<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(12345);
    Array2::from_shape_fn((rows, cols), |_| {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        (s % 100_000) as f32 / 100_000.0
    })
}

/// A nonnegative matrix of rank `r` plus small nonnegative noise: `W₀ H₀ + noise·U`.
pub fn low_rank_plus_noise(m: usize, n: usize, r: usize, noise: f32, seed: u32) -> Array2<f32> {
    let w = pseudo(m, r, seed);
    let h = pseudo(r, n, seed + 1);
    let e = pseudo(m, n, seed + 2);
    w.dot(&h) + e * noise
}
