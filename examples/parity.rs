//! Fit V.npy from a given start W0.npy, H0.npy with each solver and print the results as JSON:
//! the Rust half of `benches/compare_sklearn.py`.
//!
//! `cargo run --release --example parity -- DIR [ITERATIONS]`: MU Frobenius, KL, Itakura–Saito
//! and β = 1.5, and HALS, for ITERATIONS (default 200) with `tol = 0`; final relative error,
//! loss and ms per iteration of a fit that follows a 5-iteration warm-up fit of the same case.
//!
//! `cargo run --release --example parity -- DIR ITERATIONS --only mu_frobenius,hals`: only those
//! cases (keys as in the JSON).
//!
//! `cargo run --release --example parity -- DIR BUDGET --time-to-error E`: HALS and accelerated
//! HALS (at most BUDGET iterations, the loss checked after every iteration): the wall time from
//! the call of `fit` until the relative error `‖V − WH‖_F / ‖V‖_F` first reaches E, and the
//! iterations it took; the fit stops there (its stop flag). One warm-up fit precedes each timed
//! one.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ndarray_npy::read_npy;
use nmf_gpu::ndarray::Array2;
use nmf_gpu::{Init, Loss, Nmf, Solver};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: parity DIR [ITERATIONS] [--time-to-error E | --only KEY,KEY]";
    let dir = PathBuf::from(args.first().ok_or(usage)?);
    let iters: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(200);
    let (mut target, mut only) = (None::<f64>, None::<String>);
    match args.get(2).map(String::as_str) {
        Some("--time-to-error") => target = Some(args.get(3).ok_or(usage)?.parse()?),
        Some("--only") => only = Some(args.get(3).ok_or(usage)?.clone()),
        Some(_) => return Err(usage.into()),
        None => {}
    }
    let v: Array2<f32> = read_npy(dir.join("V.npy"))?;
    let w0: Array2<f32> = read_npy(dir.join("W0.npy"))?;
    let h0: Array2<f32> = read_npy(dir.join("H0.npy"))?;
    let start = Init::Custom { w: w0, h: h0 };
    let line = match target {
        None => fixed_iterations(&v, &start, iters, only.as_deref())?,
        Some(e) => time_to_error(&v, &start, iters, e)?,
    };
    println!("{{{}}}", line.join(", "));
    Ok(())
}

fn params(start: &Init, solver: Solver, loss: Loss, iters: usize) -> nmf_gpu::NmfParams {
    let r = match start {
        Init::Custom { w, .. } => w.ncols(),
        _ => 1,
    };
    Nmf::params(r)
        .solver(solver)
        .loss(loss)
        .init(start.clone())
        .max_iter(iters)
        .tol(0.0)
}

fn fixed_iterations(
    v: &Array2<f32>,
    start: &Init,
    iters: usize,
    only: Option<&str>,
) -> Res<Vec<String>> {
    let mut parts = Vec::new();
    for (key, solver, loss) in [
        (
            "mu_frobenius",
            Solver::MultiplicativeUpdate,
            Loss::Frobenius,
        ),
        ("mu_kl", Solver::MultiplicativeUpdate, Loss::KullbackLeibler),
        ("mu_is", Solver::MultiplicativeUpdate, Loss::ItakuraSaito),
        ("mu_beta1.5", Solver::MultiplicativeUpdate, Loss::Beta(1.5)),
        ("hals", Solver::Hals, Loss::Frobenius),
    ] {
        if only.is_some_and(|keys| !keys.split(',').any(|k| k == key)) {
            continue;
        }
        // A short warm-up fit first (thread pool, first-touch pages), as the other side's
        // fits run in a process that has already run one.
        params(start, solver, loss, iters.min(5)).fit(v.view())?;
        let fit = params(start, solver, loss, iters).fit(v.view())?;
        let rel = fit.relative_error(v.view())?;
        let ms = fit.elapsed().as_secs_f64() * 1e3 / iters as f64;
        parts.push(format!(
            "\"{key}\": {{\"rel_error\": {rel:.9}, \"loss\": {:.9e}, \"ms_per_iter\": {ms:.4}}}",
            fit.final_loss()
        ));
    }
    Ok(parts)
}

fn time_to_error(v: &Array2<f32>, start: &Init, budget: usize, target: f64) -> Res<Vec<String>> {
    let v_norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    let mut parts = Vec::new();
    for (key, solver) in [("hals", Solver::Hals), ("ahals", Solver::AcceleratedHals)] {
        // (iteration, relative error, ms since the call) after every iteration.
        let trace: Arc<Mutex<Vec<(usize, f64, f64)>>> = Arc::default();
        for record in [false, true] {
            let sink = trace.clone();
            let stop = Arc::new(AtomicBool::new(false));
            let reached = stop.clone();
            let clock = Instant::now();
            params(start, solver, Loss::Frobenius, budget)
                .check_every(1)
                .stop_flag(stop)
                .on_progress(move |p| {
                    let rel = (2.0 * p.loss).max(0.0).sqrt() / v_norm;
                    if record {
                        let ms = clock.elapsed().as_secs_f64() * 1e3;
                        if let Ok(mut t) = sink.lock() {
                            t.push((p.iteration, rel, ms));
                        }
                    }
                    if rel <= target {
                        reached.store(true, Ordering::Relaxed);
                    }
                })
                .fit(v.view())?;
        }
        let t = trace.lock().map(|t| t.clone()).unwrap_or_default();
        let best = t.iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
        let json = match t.iter().find(|(_, rel, _)| *rel <= target) {
            Some(&(it, rel, ms)) => format!(
                "{{\"reached\": true, \"iterations\": {it}, \"rel_error\": {rel:.9}, \"ms\": {ms:.3}}}"
            ),
            None => format!("{{\"reached\": false, \"best_rel_error\": {best:.9}}}"),
        };
        parts.push(format!("\"{key}\": {json}"));
    }
    Ok(parts)
}
