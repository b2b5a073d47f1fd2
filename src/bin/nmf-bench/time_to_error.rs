//! `--time-to-error E`: the wall time a fit takes until its relative error
//! `‖V − WH‖_F / ‖V‖_F` first reaches `E`, per case, device and solver (Frobenius loss).
//!
//! Each fit starts from the case's starting point and runs up to the iteration budget with the
//! loss computed after every iteration (from the products the solvers already hold: a trace,
//! not a pass over V); the clock starts when the fit is called, so the engine's set-up counts.
//! One warm-up fit precedes the timed one.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use nmf_gpu::{Backend, Init, Loss, Nmf};

use crate::args::{Device, Options};
use crate::cases::case_data;
use crate::measure::gpu_backend;
use crate::report::fmt_ms;

/// Run every case; print one line per (case, device, solver); whether every fit ran.
pub fn run(opts: &Options, target: f64) -> bool {
    let mut ok = true;
    let budget = opts.iterations();
    let gpu = opts.devices().contains(&Device::Gpu).then(gpu_backend);
    println!(
        "time to relative error {target:e} (Frobenius loss, at most {budget} iterations, \
         loss checked every iteration)"
    );
    for shape in opts.cases() {
        let data = case_data(shape);
        let v_norm = data
            .v
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        for (solver, loss) in opts.combos() {
            if loss != Loss::Frobenius {
                continue;
            }
            for device in opts.devices() {
                let backend = match (device, &gpu) {
                    (Device::Cpu, _) => Backend::Cpu,
                    (Device::Gpu, Some(Ok((b, _)))) => b.clone(),
                    (Device::Gpu, _) => continue,
                };
                let trace: Arc<Mutex<Vec<(usize, f64, f64)>>> = Arc::default();
                let fit = |record: bool| {
                    let sink = trace.clone();
                    let clock = Instant::now();
                    Nmf::params(data.w0.ncols())
                        .solver(solver)
                        .loss(loss)
                        .init(Init::Custom {
                            w: data.w0.clone(),
                            h: data.h0.clone(),
                        })
                        .max_iter(budget)
                        .tol(0.0)
                        .check_every(1)
                        .backend(backend.clone())
                        .on_progress(move |p| {
                            if record {
                                let rel = (2.0 * p.loss).max(0.0).sqrt() / v_norm;
                                let ms = clock.elapsed().as_secs_f64() * 1e3;
                                if let Ok(mut t) = sink.lock() {
                                    t.push((p.iteration, rel, ms));
                                }
                            }
                        })
                        .fit(data.v.view())
                };
                let run = fit(false).and_then(|_| fit(true));
                let what = format!("{} {} {:<5}", shape.name(), device.name(), solver.name());
                match run {
                    Err(e) => {
                        ok = false;
                        println!("  {what} failed: {e}");
                    }
                    Ok(_) => {
                        let t = trace.lock().map(|t| t.clone()).unwrap_or_default();
                        match t.iter().find(|(_, rel, _)| *rel <= target) {
                            Some(&(it, rel, ms)) => println!(
                                "  {what} reached {rel:.6} after {it} iterations in {} ms",
                                fmt_ms(ms)
                            ),
                            None => println!(
                                "  {what} did not reach it in {budget} iterations (best {:.6})",
                                t.iter().map(|x| x.1).fold(f64::INFINITY, f64::min)
                            ),
                        }
                    }
                }
            }
        }
    }
    ok
}
