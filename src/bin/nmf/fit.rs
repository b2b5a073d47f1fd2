//! `nmf fit`: read, factorize, write W.npy, H.npy and summary.json (as a unit, see
//! [`crate::output`]); on SIGINT/SIGTERM stop after the current iteration and write the model
//! reached; with `--checkpoint-every N` write the current model every N iterations; with
//! `--resume DIR` continue a saved model.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use nmf_gpu::{Backend, Checkpoint, Init, Loss, Nmf, NmfParams, Orthogonality, Progress, Solver};
use serde_json::{json, Map, Value};

use crate::args::FitArgs;
use crate::backend::backend;
use crate::error::CliError;
use crate::output::{prepare_dir, stage_model};
use crate::progress::{Display, Reporter};
use crate::resume::{self, Expected};
use crate::signals::Stop;
use crate::storage::{choose, Input};
use crate::summary::{f32_json, shape_json, H_FILE, SUMMARY_FILE, W_FILE};
use crate::{print_stdout, Orientation};

/// The losses recorded so far: (iteration, loss).
type Recorded = Arc<Mutex<Vec<(usize, f64)>>>;

/// How the model being written came about.
struct State<'a> {
    orthogonality_residual: Option<f64>,
    engine: Option<&'a str>,
    iterations: usize,
    converged: bool,
    interrupted: bool,
    checkpoint: bool,
    initial_loss: f64,
    final_loss: Option<f64>,
    relative_error: Option<f64>,
    losses: Vec<f64>,
    loss_iterations: Vec<usize>,
    seconds: Option<f64>,
    w_shape: (usize, usize),
    h_shape: (usize, usize),
}

/// The summary: the settings (`base`), then what the run did.
fn summary_text(base: &Map<String, Value>, s: &State<'_>) -> String {
    let mut map = base.clone();
    let tail = json!({
        "orthogonality_residual": s.orthogonality_residual,
        "engine": s.engine,
        "iterations": s.iterations,
        "converged": s.converged,
        "interrupted": s.interrupted,
        "checkpoint": s.checkpoint,
        "initial_loss": s.initial_loss,
        "final_loss": s.final_loss,
        "relative_error": s.relative_error,
        "losses": s.losses,
        "loss_iterations": s.loss_iterations,
        "seconds": s.seconds,
        "W": { "file": W_FILE, "shape": shape_json(s.w_shape) },
        "H": { "file": H_FILE, "shape": shape_json(s.h_shape) },
    });
    if let Value::Object(tail) = tail {
        map.extend(tail);
    }
    let value = Value::Object(map);
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}

/// The library's rules of what goes with what (a solver and its losses, orthogonality and
/// its solver and loss), as usage errors in the library's words.
pub fn rules_admit(solver: Solver, loss: Loss, orthogonal: Orthogonality) -> Result<(), CliError> {
    solver
        .admits(loss)
        .and_then(|()| orthogonal.admits(solver, loss))
        .map_err(|e| CliError::usage(e.to_string()))
}

/// Run `nmf fit`; the exit code (0, or 128 + the signal when interrupted).
/// The fit's settings from the command line at rank `r` (one process or every MPI rank):
/// solver, loss, iterations, tolerance, seed, regularization, orthogonality, backend, the stop
/// flag of `stop` and the memory limit; the start (`init`, `resume`) is the caller's.
pub fn fit_params(args: &FitArgs, r: usize, backend: Backend, stop: &Stop) -> NmfParams {
    let params = Nmf::params(r)
        .solver(args.solver)
        .loss(args.loss())
        .max_iter(args.max_iter)
        .tol(args.tol)
        .seed(args.seed)
        .alpha_w(args.alpha_w)
        .alpha_h(args.alpha_h.unwrap_or(args.alpha_w))
        .l1_ratio(args.l1_ratio)
        .orthogonal(args.orthogonal)
        .sparse_order(args.sparse_order)
        .backend(backend)
        .stop_flag(stop.flag());
    match args.input.memory_limit {
        Some(bytes) => params.memory_limit(bytes),
        None => params,
    }
}

pub fn run(args: &FitArgs) -> Result<u8, CliError> {
    if args.online {
        return crate::online::run(args);
    }
    let orientation = Orientation::from_flag(args.samples_as_rows);
    let loss: Loss = args.loss();
    rules_admit(args.solver, loss, args.orthogonal)?;
    let stop = Stop::install()?;
    let solver = args.solver;
    let orthogonal = args.orthogonal;
    let r = args.rank;
    // A saved model to continue is checked before anything is read.
    let saved_summary = match &args.resume {
        Some(dir) => Some(resume::read_summary(
            dir,
            Expected {
                rank: r,
                solver,
                loss,
                orthogonal,
                samples_as_rows: args.samples_as_rows,
            },
        )?),
        None => None,
    };
    // Before the GPU is opened: a refused `--storage` comes first.
    let storage = choose(args.input.storage, &args.input.input)?;
    let backend = backend(args.backend)?;
    let chatty = args.print.chatty();

    let read_start = Instant::now();
    let input = Input::read(&args.input, storage, orientation)?;
    let input = match args.frames.steps_within(args.input.memory_limit) {
        Some(steps) => input.preprocess(&steps, orientation)?,
        None => input,
    };
    let read_seconds = read_start.elapsed().as_secs_f64();
    // Checked before the fit, so that a long run never ends in "cannot write".
    prepare_dir(&args.output_dir)?;
    let file_shape = input.file_shape();
    let (m, n) = input.shape(orientation);
    let saved = match (&args.resume, &saved_summary) {
        (Some(dir), Some(summary)) => Some(resume::load(dir, summary, (m, n))?),
        _ => None,
    };
    if orientation == Orientation::SamplesAsRows && !args.print.quiet {
        eprintln!(
            "note: --samples-as-rows: {} is {} samples x {} features (scikit-learn's X); factorizing its transpose V ({m} features x {n} samples), so W.npy is {m} x {r} (basis vectors) and H.npy is {r} x {n} (one column per sample); scikit-learn's components_ is W.T and its transform(X) is H.T",
            input.path().display(),
            file_shape.0,
            file_shape.1,
        );
    }
    if let (Some(frames), false) = (input.frames(), args.print.quiet) {
        eprintln!("{}", crate::frames::describe(frames));
    }
    if let Some(s) = saved
        .as_ref()
        .filter(|s| s.resume.iterations_done >= args.max_iter)
    {
        if !args.print.quiet {
            eprintln!(
                "note: {} has done {} iterations, no fewer than --max-iter {}: no iteration is run (--max-iter is the total budget; raise it to continue)",
                s.dir.display(),
                s.resume.iterations_done,
                args.max_iter
            );
        }
    }
    if let (Some(s), Some(summary)) = (&saved, &saved_summary) {
        if resume::already_converged(summary, args.tol, args.max_iter) {
            resume::finish_converged(s, summary, &args.output_dir, &args.print)?;
            return Ok(0);
        }
    }
    if stop.requested() {
        return Err(CliError::with_code(
            format!(
                "interrupted ({}) before the fit started; nothing written",
                stop.name()
            ),
            stop.exit_code(),
        ));
    }

    let init = args.init.clone();
    let init_name = match &saved {
        Some(s) => s.init.clone(),
        None => init.name().to_string(),
    };
    let alpha_h = args.alpha_h.unwrap_or(args.alpha_w);
    let mut params = fit_params(args, r, backend, &stop);
    params = match &saved {
        Some(s) => params
            .init(Init::Custom {
                w: s.w.clone(),
                h: s.h.clone(),
            })
            .resume(s.resume),
        None => params.init(init),
    };

    let mut base = Map::new();
    for (key, value) in [
        ("nmf_version", json!(env!("CARGO_PKG_VERSION"))),
        ("input", json!(input.path().display().to_string())),
        ("dataset", json!(args.input.dataset)),
        ("format", json!(input.format_name())),
        ("storage", json!(input.storage_name())),
        ("file_shape", shape_json(file_shape)),
        (
            "samples_as_rows",
            json!(orientation == Orientation::SamplesAsRows),
        ),
        ("shape", shape_json((m, n))),
        (
            crate::frames::KEY,
            input
                .frames()
                .map_or(Value::Null, crate::frames::summary_json),
        ),
        ("rank", json!(r)),
        ("solver", json!(solver.name())),
        ("loss", json!(loss.to_string())),
        ("init", json!(init_name)),
        ("max_iter", json!(args.max_iter)),
        ("tol", f32_json(args.tol)),
        ("seed", json!(args.seed)),
        ("alpha_w", f32_json(args.alpha_w)),
        ("alpha_h", f32_json(alpha_h)),
        ("l1_ratio", f32_json(args.l1_ratio)),
        ("orthogonal", json!(orthogonal.name())),
        ("sparse_order", json!(args.sparse_order.name())),
        ("backend", json!(args.backend.name())),
        ("checkpoint_every", json!(args.checkpoint_every)),
        (
            "resumed_from",
            match &saved {
                Some(s) => json!({
                    "dir": s.dir.display().to_string(),
                    "iterations": s.resume.iterations_done,
                }),
                None => Value::Null,
            },
        ),
        ("read_seconds", json!(read_seconds)),
    ] {
        base.insert(key.to_string(), value);
    }

    // Every recorded loss, for the summaries of checkpoints; then the progress display.
    let recorded: Recorded = Arc::new(Mutex::new(Vec::new()));
    let reporter = Reporter::new(Display::choose(args.print.quiet), args.max_iter);
    let show = reporter.callback();
    let record = recorded.clone();
    params = params.on_progress(move |p: &Progress| {
        if let Ok(mut rec) = record.lock() {
            rec.push((p.iteration, p.loss));
        }
        if let Some(show) = &show {
            show(p);
        }
    });
    if let Some(every) = args.checkpoint_every {
        let dir: PathBuf = args.output_dir.clone();
        let base = base.clone();
        let recorded = recorded.clone();
        params = params.checkpoint(every, move |c: &Checkpoint<'_>| {
            let (losses, loss_iterations): (Vec<f64>, Vec<usize>) = recorded
                .lock()
                .map(|rec| {
                    rec.iter()
                        .filter(|(it, _)| *it <= c.iteration)
                        .map(|&(it, l)| (l, it))
                        .unzip()
                })
                .unwrap_or_default();
            let final_loss = (loss_iterations.last() == Some(&c.iteration))
                .then(|| losses.last().copied())
                .flatten();
            let text = summary_text(
                &base,
                &State {
                    orthogonality_residual: None,
                    engine: None,
                    iterations: c.iteration,
                    converged: false,
                    interrupted: false,
                    checkpoint: true,
                    initial_loss: c.initial_loss,
                    final_loss,
                    relative_error: None,
                    losses,
                    loss_iterations,
                    seconds: None,
                    w_shape: c.w.dim(),
                    h_shape: c.h.dim(),
                },
            );
            stage_model(&dir, c.w, c.h, &text)
        });
    }
    let fit = input.fit(&params, orientation)?;
    drop(reporter);
    let relative_error = input.relative_error(&fit, orientation)?;
    let report = fit.report();

    let text = summary_text(
        &base,
        &State {
            orthogonality_residual: fit.orthogonality_residual(),
            engine: Some(fit.engine()),
            iterations: report.n_iter,
            converged: report.converged,
            interrupted: report.interrupted,
            checkpoint: false,
            initial_loss: report.initial_loss,
            final_loss: Some(fit.final_loss()),
            relative_error: Some(relative_error),
            losses: report.losses.clone(),
            loss_iterations: report.loss_iterations.clone(),
            seconds: Some(report.elapsed.as_secs_f64()),
            w_shape: fit.w().dim(),
            h_shape: fit.h().dim(),
        },
    );
    // Written into a temporary directory, then renamed into place as a unit.
    let dir = &args.output_dir;
    stage_model(dir, fit.w(), fit.h(), &text)?;

    if args.print.json {
        print_stdout(&text);
    } else if chatty {
        let status = if report.interrupted {
            format!("interrupted by {}", stop.name())
        } else if report.converged {
            "converged".to_string()
        } else if args.tol == 0.0 {
            "tol 0: ran every iteration".to_string()
        } else {
            "not converged: raise --max-iter or --tol".to_string()
        };
        let held = match input.sparsity() {
            Some((nnz, density)) => format!(
                ", sparse: {nnz} stored entries, density {:.3}%",
                100.0 * density
            ),
            None => String::new(),
        };
        let resumed = match &saved {
            Some(s) => format!(
                " (resumed from {} at iteration {})",
                s.dir.display(),
                s.resume.iterations_done
            ),
            None => String::new(),
        };
        print_stdout(&format!(
            "read {} ({} x {}, {}{held}) in {read_seconds:.2} s\n\
             fit V ({m} x {n}) with rank {r}: {}, {} loss, {init_name} init{resumed}, {} iterations ({status}) in {:.2} s on {}\n\
             relative error ‖V − WH‖/‖V‖ = {relative_error:.4e}\n\
             wrote {} ({m} x {r}), {} ({r} x {n}), {}\n",
            input.path().display(),
            file_shape.0,
            file_shape.1,
            input.format_name(),
            solver.name(),
            loss,
            report.n_iter,
            report.elapsed.as_secs_f64(),
            fit.engine(),
            dir.join(W_FILE).display(),
            dir.join(H_FILE).display(),
            dir.join(SUMMARY_FILE).display(),
        ));
    }
    if report.interrupted {
        if !args.print.quiet {
            eprintln!(
                "interrupted by {} at iteration {} of {}: wrote the model reached to {}; add `--resume {}` to the same command to finish the fit",
                stop.name(),
                report.n_iter,
                args.max_iter,
                dir.display(),
                dir.display()
            );
        }
        return Ok(stop.exit_code());
    }
    Ok(0)
}
