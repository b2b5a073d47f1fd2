//! `--profile`: the CPU engine's products one by one beside the FMA peak measured here, and the
//! share of one MU Frobenius iteration they take.
//!
//! For each case: `V Hᵀ` and `Wᵀ V` (2mnr flops each), `H Hᵀ` and `Wᵀ W` (2nr² and 2mr²), the
//! best of `repeats` calls after a warm-up; the two updates `W ← W ⊙ P ⊘ (W (H Hᵀ))` and
//! `H ← H ⊙ Q ⊘ ((Wᵀ W) H)` with their small products (2mr² and 2nr² flops); then one MU
//! Frobenius fit timed as in the table, so `rest` (the checks, the bookkeeping) is the
//! iteration less these six; the iteration is (fit of N − fit of 1) / (N − 1),
//! without the set-up.

use std::time::Instant;

use nmf_gpu::kernels::{fma_peak_gflops, simd_level, CpuProducts};
use nmf_gpu::ndarray::Array2;
use nmf_gpu::{Backend, Loss, NmfError, Solver};

use crate::cases::{case_data, Shape};
use crate::measure::measure;
use crate::report::fmt_ms;

/// FMA steps per thread of one peak run (about 20–60 ms on a 2020s core).
const PEAK_REPS: usize = 20_000_000;

/// Best time of `repeats` calls of `f` after one warm-up call, in ms.
fn best_ms(repeats: usize, mut f: impl FnMut() -> Result<(), NmfError>) -> Result<f64, NmfError> {
    f()?;
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(best)
}

/// Print the profile of every case; whether everything ran.
pub fn run(cases: &[Shape], threads: usize, repeats: usize, iterations: usize) -> bool {
    let peak = fma_peak_gflops(threads, PEAK_REPS, 5);
    let one = if threads > 1 {
        format!(" ({:.1} on 1 thread)", fma_peak_gflops(1, PEAK_REPS, 5))
    } else {
        String::new()
    };
    println!(
        "profile: kernels {}, FMA peak measured here: {peak:.1} GFLOP/s on {threads} \
         thread(s){one}, best of 5",
        simd_level()
    );
    println!(
        "{:<16}{:<8}{:>10}{:>10}{:>9}{:>9}",
        "case", "product", "ms", "GFLOP/s", "% peak", "% iter"
    );
    let mut ok = true;
    for &shape in cases {
        // On a thread of rayon's pool, as the fits run (`engine::on_pool`): the products'
        // parallel loops then split in place instead of being handed to the pool.
        let res = rayon::scope(|_| profile_case(shape, peak, repeats, iterations));
        if let Err(e) = res {
            println!("{:<16}failed: {e}", shape.name());
            ok = false;
        }
    }
    ok
}

fn profile_case(
    shape: Shape,
    peak: f64,
    repeats: usize,
    iterations: usize,
) -> Result<(), NmfError> {
    let Shape { m, n, r } = shape;
    let data = case_data(shape);
    let mut e = CpuProducts::new(data.v.view());
    let (w, h) = (&data.w0, &data.h0);
    let mut p = Array2::<f32>::zeros((m, r));
    let mut q = Array2::<f32>::zeros((r, n));
    let mut g = Array2::<f32>::zeros((r, r));
    let (mf, nf, rf) = (m as f64, n as f64, r as f64);
    let (big, wide, tall) = (2.0 * mf * nf * rf, 2.0 * nf * rf * rf, 2.0 * mf * rf * rf);
    let rows = [
        ("V Hᵀ", big, best_ms(repeats, || e.v_ht(h, &mut p))?),
        ("Wᵀ V", big, best_ms(repeats, || e.wt_v(w, &mut q))?),
        ("H Hᵀ", wide, best_ms(repeats, || e.h_ht(h, &mut g))?),
        ("Wᵀ W", tall, best_ms(repeats, || e.wt_w(w, &mut g))?),
    ];
    // The two updates with their small products `W (H Hᵀ)` and `(Wᵀ W) H` (2mr² and 2nr²), on
    // copies of the starting factors with the products of the starting point.
    e.v_ht(h, &mut p)?;
    e.h_ht(h, &mut g)?;
    let (mut w1, mut h1) = (w.clone(), h.clone());
    let upd_w = best_ms(repeats, || e.mu_w(&mut w1, &p, &g))?;
    e.wt_v(w, &mut q)?;
    e.wt_w(w, &mut g)?;
    let upd_h = best_ms(repeats, || e.mu_h(&mut h1, &q, &g))?;
    let rows = [
        rows[0],
        rows[1],
        rows[2],
        rows[3],
        ("W upd.", tall, upd_w),
        ("H upd.", wide, upd_h),
    ];
    // One iteration without the set-up: (fit of N − fit of 1) / (N − 1), the fastest fits.
    let fit = |its: usize| {
        let t = measure(
            &data,
            shape,
            &Backend::Cpu,
            Solver::MultiplicativeUpdate,
            Loss::Frobenius,
            its,
            repeats,
        )?;
        Ok::<f64, NmfError>(t.ms_min * its as f64)
    };
    let n_its = iterations.max(2);
    let iter_ms = (fit(n_its)? - fit(1)?) / (n_its - 1) as f64;
    let line = |name: &str, ms: f64, flops: Option<f64>| {
        let rate = flops.map(|f| f / (ms * 1e-3) / 1e9);
        println!(
            "{:<16}{:<8}{:>10}{:>10}{:>9}{:>8.0}%",
            shape.name(),
            name,
            fmt_ms(ms),
            rate.map_or(String::new(), |g| format!("{g:.1}")),
            rate.map_or(String::new(), |g| format!("{:.0}%", 100.0 * g / peak)),
            100.0 * ms / iter_ms
        );
    };
    let mut products_ms = 0.0;
    for (name, flops, ms) in rows {
        products_ms += ms;
        line(name, ms, Some(flops));
    }
    line("rest", iter_ms - products_ms, None);
    line("MU iter", iter_ms, Some(shape.flops_per_iter()));
    Ok(())
}
