//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ndarray::Array2;
use nmf_gpu::ndarray;
use nmf_gpu::GpuContext;

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
