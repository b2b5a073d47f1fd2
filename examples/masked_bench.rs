//! Masked NMF on a generated MovieLens-25M-shaped ratings set (162 541 users x 59 047 items,
//! 25 M ratings of 0.5..5 stars), on the sparse path: seconds per epoch (one W and one H
//! update) and the process's peak resident memory (VmHWM).
//!
//! ```sh
//! cargo run --release --example masked_bench                       # full size, rank 32
//! cargo run --release --example masked_bench -- --scale 0.1        # users, items and ratings / 10
//! cargo run --release --example masked_bench -- --iters 10 --rank 32 --gpu
//! ```
//!
//! The ratings come from user and item biases plus a rank-8 taste component and noise,
//! rounded to half stars; users' and items' activity is heavy-tailed (a few rate thousands,
//! most rate a few). The matrix is made directly in CSR form (8 bytes per rating), then fitted
//! with `MaskedParams::fit_sparse` from a random start (`--filled` times the default filled
//! start too).

use std::time::Instant;

use nmf_gpu::masked::{sparse_fit_bytes, MaskedInit, MaskedNmf};
use nmf_gpu::sparse::CsrMatrix;
use nmf_gpu::{Backend, GpuContext};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const USERS: usize = 162_541;
const ITEMS: usize = 59_047;
const RATINGS: usize = 25_000_095;

struct Args {
    scale: f64,
    iters: usize,
    rank: usize,
    filled: bool,
    gpu: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        scale: 1.0,
        iters: 10,
        rank: 32,
        filled: false,
        gpu: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--scale" => {
                a.scale = value("--scale")?
                    .parse()
                    .map_err(|e| format!("--scale: {e}"))?
            }
            "--iters" => {
                a.iters = value("--iters")?
                    .parse()
                    .map_err(|e| format!("--iters: {e}"))?
            }
            "--rank" => {
                a.rank = value("--rank")?
                    .parse()
                    .map_err(|e| format!("--rank: {e}"))?
            }
            "--filled" => a.filled = true,
            "--gpu" => a.gpu = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if !(a.scale > 0.0 && a.scale <= 1.0) || a.iters == 0 || a.rank == 0 {
        return Err("--scale in (0, 1], --iters and --rank at least 1".into());
    }
    Ok(a)
}

/// Heavy-tailed weights `1 / (k + 10)^0.8` over `n` entities, shuffled.
fn activity(n: usize, rng: &mut StdRng) -> Vec<f64> {
    let mut w: Vec<f64> = (0..n).map(|k| 1.0 / ((k + 10) as f64).powf(0.8)).collect();
    for i in (1..n).rev() {
        w.swap(i, rng.random_range(0..=i));
    }
    w
}

/// The ratings matrix, users x items, about `nnz` ratings, in CSR form.
fn ratings(m: usize, n: usize, nnz: usize, rng: &mut StdRng) -> CsrMatrix {
    let users = activity(m, rng);
    let items = activity(n, rng);
    // Items drawn by popularity through the cumulative weights.
    let mut cum = Vec::with_capacity(n);
    let mut s = 0.0;
    for &w in &items {
        s += w;
        cum.push(s);
    }
    let total_u: f64 = users.iter().sum();
    let taste = 8;
    let uf: Vec<f32> = (0..m * taste).map(|_| rng.random::<f32>() - 0.5).collect();
    let itf: Vec<f32> = (0..n * taste).map(|_| rng.random::<f32>() - 0.5).collect();
    let ub: Vec<f32> = (0..m).map(|_| rng.random::<f32>() - 0.5).collect();
    let ib: Vec<f32> = (0..n)
        .map(|i| 0.8 * (items[i] / items[0]).sqrt() as f32 - 0.3)
        .collect();
    let mut indptr = Vec::with_capacity(m + 1);
    let mut indices: Vec<u32> = Vec::with_capacity(nnz + nnz / 8);
    let mut values: Vec<f32> = Vec::with_capacity(nnz + nnz / 8);
    indptr.push(0);
    let mut row: Vec<u32> = Vec::new();
    for u in 0..m {
        let want = ((users[u] / total_u) * nnz as f64).round().max(1.0) as usize;
        let want = want.min(n / 2);
        row.clear();
        while row.len() < want {
            let x = rng.random::<f64>() * s;
            let j = cum.partition_point(|&c| c < x).min(n - 1);
            row.push(j as u32);
            if row.len() == want {
                row.sort_unstable();
                row.dedup();
            }
        }
        for &j in &row {
            let j = j as usize;
            let dot: f32 = (0..taste)
                .map(|t| uf[u * taste + t] * itf[j * taste + t])
                .sum();
            let noise = rng.random::<f32>() - 0.5;
            let r = 3.5 + ub[u] + ib[j] + 4.0 * dot + 0.8 * noise;
            indices.push(j as u32);
            values.push(((2.0 * r).round() / 2.0).clamp(0.5, 5.0));
        }
        indptr.push(indices.len());
    }
    CsrMatrix::from_parts(m, n, indptr, indices, values).expect("a valid CSR matrix")
}

/// `VmHWM` (peak resident set) of this process, in MiB.
fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    let m = ((USERS as f64) * a.scale).round() as usize;
    let n = ((ITEMS as f64) * a.scale).round() as usize;
    let nnz = ((RATINGS as f64) * a.scale).round() as usize;
    let mut rng = StdRng::seed_from_u64(25);
    let t0 = Instant::now();
    let v = ratings(m, n, nnz, &mut rng);
    println!(
        "ratings: {m} x {n}, {} stored ({:.3}% dense), made in {:.1} s; peak so far {:.0} MiB",
        v.nnz(),
        100.0 * v.density(),
        t0.elapsed().as_secs_f64(),
        peak_mib().unwrap_or(f64::NAN)
    );
    println!(
        "estimate (sparse_fit_bytes, rank {}): {:.0} MiB",
        a.rank,
        sparse_fit_bytes(m, n, v.nnz(), a.rank) as f64 / 1048576.0
    );
    let backend = if a.gpu {
        Backend::Gpu(GpuContext::new()?)
    } else {
        Backend::Cpu
    };
    let p = MaskedNmf::params(a.rank)
        .backend(backend)
        .tol(0.0)
        .check_every(a.iters);
    if a.filled {
        let t = Instant::now();
        let fit = p.clone().max_iter(1).fit_sparse(&v)?;
        println!(
            "filled start + 1 epoch: {:.1} s (engine {})",
            t.elapsed().as_secs_f64(),
            fit.engine()
        );
    }
    let t = Instant::now();
    let fit = p
        .clone()
        .init(MaskedInit::Random)
        .max_iter(a.iters)
        .fit_sparse(&v)?;
    let secs = t.elapsed().as_secs_f64();
    let losses = fit.losses();
    let rmse = |f: f64| (2.0 * f / v.nnz() as f64).sqrt();
    println!(
        "random start, {} epochs: {:.1} s, {:.2} s per epoch (engine {}); objective {:.4e} -> {:.4e} (train RMSE incl. penalty {:.3} -> {:.3})",
        fit.n_iter(),
        secs,
        secs / fit.n_iter().max(1) as f64,
        fit.engine(),
        losses.first().copied().unwrap_or(f64::NAN),
        losses.last().copied().unwrap_or(f64::NAN),
        rmse(losses.first().copied().unwrap_or(f64::NAN)),
        rmse(losses.last().copied().unwrap_or(f64::NAN)),
    );
    println!(
        "peak resident memory (VmHWM): {:.0} MiB",
        peak_mib().unwrap_or(f64::NAN)
    );
    Ok(())
}
