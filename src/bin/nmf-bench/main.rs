//! `nmf-bench`: time NMF fits per case, backend, solver and loss; print an aligned table and,
//! with `--json FILE`, one JSON object per measurement.
//!
//! `cargo run --release --bin nmf-bench -- --help` lists the options.

mod args;
mod cases;
mod measure;
mod profile;
mod report;
mod time_to_error;

use std::fs::File;
use std::io::Write as _;
use std::process::ExitCode;

use nmf_gpu::Backend;

use crate::args::{Device, Options};
use crate::cases::{case_data, sparse_case_data};
use crate::measure::{cpu_model, gpu_backend, measure, measure_sparse, reset_peak_rss};
use crate::report::{fmt_ms, render_json, render_table, Outcome, Row};

/// Run and print the sparse cases; whether every fit ran.
fn run_sparse_cases(opts: &Options) -> bool {
    let iterations = opts.iterations();
    let mut ok = true;
    for &case in &opts.sparse {
        eprintln!("nmf-bench: generating sparse {}", case.name());
        let (v, w0, h0) = match sparse_case_data(case, opts.sparse_law) {
            Ok(d) => d,
            Err(e) => {
                println!("sparse {}: cannot build: {e}", case.name());
                ok = false;
                continue;
            }
        };
        println!(
            "sparse {}x{} r{} {:?}: {} stored entries ({:.3}%), {iterations} iterations, {} timed fits",
            case.m,
            case.n,
            case.r,
            opts.sparse_law,
            v.nnz(),
            100.0 * v.density(),
            opts.repeats
        );
        let orders = &opts.sparse_order;
        for &(solver, loss) in &opts.combos() {
            match measure_sparse(&v, &w0, &h0, solver, loss, iterations, opts.repeats, orders) {
                Ok(timings) => {
                    for (t, order) in timings.iter().zip(orders) {
                        println!(
                            "  {:<4} {:<9} {:<6} {}: {} ms/iter (min {}, max {}), set-up {} ms, rel error {:.6}",
                            solver.name(),
                            loss.name(),
                            order.name(),
                            t.engine,
                            fmt_ms(t.ms[0]),
                            fmt_ms(t.ms[1]),
                            fmt_ms(t.ms[2]),
                            fmt_ms(t.setup_ms),
                            t.rel_error
                        );
                    }
                }
                Err(e) => {
                    ok = false;
                    println!("  {:<4} {:<9} failed: {e}", solver.name(), loss.name());
                }
            }
        }
    }
    ok
}

/// The dense rows: every case x (solver, loss) x device.
fn run_dense_cases(opts: &Options, cpu: &str, peak_scope: &str) -> (Vec<Row>, bool) {
    let cases = opts.cases();
    let devices = opts.devices();
    let combos = opts.combos();
    let (iterations, repeats) = (opts.iterations(), opts.repeats);
    let gpu = devices.contains(&Device::Gpu).then(gpu_backend);
    let total = cases.len() * combos.len() * devices.len();
    let mut rows = Vec::with_capacity(total);
    let mut failed = false;
    let mut done = 0;
    for &shape in &cases {
        eprintln!("nmf-bench: generating {}", shape.name());
        let data = case_data(shape);
        for &(solver, loss) in &combos {
            for &device in &devices {
                done += 1;
                let (backend, adapter) = match device {
                    Device::Cpu => (Ok(Backend::Cpu), cpu.to_string()),
                    Device::Gpu => match &gpu {
                        Some(Ok((b, name))) => (Ok(b.clone()), name.clone()),
                        Some(Err(why)) => (Err(why.clone()), String::new()),
                        None => continue,
                    },
                };
                let outcome = match backend {
                    Err(why) => Outcome::Unavailable(why),
                    Ok(backend) => {
                        if peak_scope == "measurement" {
                            reset_peak_rss();
                        }
                        match measure(&data, shape, &backend, solver, loss, iterations, repeats) {
                            Ok(t) => Outcome::Done(t),
                            Err(e) => {
                                failed = true;
                                Outcome::Failed(e.to_string())
                            }
                        }
                    }
                };
                let what = format!(
                    "[{done}/{total}] {} {} {} {}",
                    shape.name(),
                    device.name(),
                    solver.name(),
                    loss.name()
                );
                match &outcome {
                    Outcome::Done(t) => eprintln!(
                        "{what}: {} ms/iter, rel error {:.6}",
                        fmt_ms(t.ms_median),
                        t.rel_error
                    ),
                    Outcome::Unavailable(why) => eprintln!("{what}: unavailable: {why}"),
                    Outcome::Failed(why) => eprintln!("{what}: failed: {why}"),
                }
                rows.push(Row {
                    shape,
                    device,
                    solver,
                    loss,
                    iterations,
                    adapter,
                    outcome,
                });
            }
        }
    }
    (rows, failed)
}

fn run(opts: &Options) -> ExitCode {
    if let Some(t) = opts.threads {
        std::env::set_var("RAYON_NUM_THREADS", t.to_string());
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
        {
            eprintln!("nmf-bench: cannot set up {t} threads: {e}");
            return ExitCode::from(1);
        }
    }
    let mut json_file = match &opts.json {
        Some(path) => match File::create(path) {
            Ok(f) => Some((path, f)),
            Err(e) => {
                eprintln!("nmf-bench: cannot write {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => None,
    };

    let threads = rayon::current_num_threads();
    let cpu = cpu_model();
    let peak_scope = if reset_peak_rss() {
        "measurement"
    } else {
        "process"
    };
    println!("nmf-bench: {threads} threads; CPU: {cpu}");
    if opts.devices().contains(&Device::Gpu) && !opts.cases().is_empty() {
        match gpu_backend() {
            Ok((_, adapter)) => println!("GPU: {adapter}"),
            Err(why) => println!("GPU: unavailable: {why}"),
        }
    }
    println!(
        "{} iterations per fit (tol 0), 1 warm-up + {} timed fits per row; \
         ms/iter = fit wall time / iterations (median, min, max)",
        opts.iterations(),
        opts.repeats
    );
    println!(
        "GFLOP/s counts 4mnr + 4(m+n)r² per iteration (the Frobenius MU count) for every row; \
         gpu/cpu = CPU ms / GPU ms; gap = GPU − CPU rel error"
    );
    println!(
        "peak MiB = host VmHWM {}",
        if peak_scope == "measurement" {
            "during the row's fits (case data included)"
        } else {
            "of the process so far"
        }
    );
    println!();

    if opts.profile {
        let ok = profile::run(&opts.cases(), threads, opts.repeats, opts.iterations());
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    if let Some(target) = opts.time_to_error {
        return if time_to_error::run(opts, target) {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    let (rows, mut failed) = run_dense_cases(opts, &cpu, peak_scope);
    if !rows.is_empty() {
        print!("{}", render_table(&rows));
    }
    if !opts.sparse.is_empty() && !run_sparse_cases(opts) {
        failed = true;
    }
    if let Some((path, file)) = json_file.as_mut() {
        let text = render_json(&rows, threads, opts.repeats, peak_scope);
        if let Err(e) = file.write_all(text.as_bytes()).and_then(|()| file.flush()) {
            eprintln!("nmf-bench: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
        eprintln!("nmf-bench: wrote {}", path.display());
    }
    if failed {
        eprintln!("nmf-bench: some fits failed (see the table)");
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    run(&Options::from_command_line())
}
