//! `nmf fit`: read, factorize, write W.npy, H.npy and summary.json.

use std::time::Instant;

use nmf_gpu::{Init, Loss, Nmf, Orthogonality, Solver};
use serde_json::json;

use crate::args::{FitArgs, LossArg, OrthogonalArg, SolverArg};
use crate::backend::backend;
use crate::error::CliError;
use crate::output::{prepare_dir, write_model};
use crate::progress::{Display, Reporter};
use crate::storage::{choose, Input};
use crate::summary::{f32_json, shape_json, H_FILE, SUMMARY_FILE, W_FILE};
use crate::{print_stdout, Orientation};

/// Run `nmf fit`.
pub fn run(args: &FitArgs) -> Result<(), CliError> {
    let orientation = Orientation::from_flag(args.samples_as_rows);
    if args.solver == SolverArg::Hals && args.loss == LossArg::Kl {
        return Err(CliError::usage(
            "--loss kl needs --solver mu (HALS minimises the Frobenius loss only)",
        ));
    }
    if args.orthogonal != OrthogonalArg::None
        && (args.solver != SolverArg::Mu || args.loss != LossArg::Frobenius)
    {
        return Err(CliError::usage(
            "--orthogonal needs --solver mu and --loss frobenius (the orthogonal rules are multiplicative)",
        ));
    }
    // Before the GPU is opened: `--storage sparse --backend gpu` is refused first.
    let storage = choose(args.input.storage, &args.input.input, args.backend)?;
    let backend = backend(args.backend)?;
    let chatty = !args.quiet && !args.json;

    let read_start = Instant::now();
    let input = Input::read(&args.input, storage, orientation)?;
    let read_seconds = read_start.elapsed().as_secs_f64();
    // Checked before the fit, so that a long run never ends in "cannot write".
    prepare_dir(&args.output_dir)?;
    let file_shape = input.file_shape();
    let (m, n) = input.shape(orientation);
    let r = args.rank;
    if orientation == Orientation::SamplesAsRows && !args.quiet {
        eprintln!(
            "note: --samples-as-rows: {} is {} samples x {} features (scikit-learn's X); factorizing its transpose V ({m} features x {n} samples), so W.npy is {m} x {r} (basis vectors) and H.npy is {r} x {n} (one column per sample); scikit-learn's components_ is W.T and its transform(X) is H.T",
            input.path().display(),
            file_shape.0,
            file_shape.1,
        );
    }

    let solver: Solver = args.solver.into();
    let loss: Loss = args.loss.into();
    let init: Init = args.init.into();
    let alpha_h = args.alpha_h.unwrap_or(args.alpha_w);
    let mut params = Nmf::params(r)
        .solver(solver)
        .loss(loss)
        .init(init.clone())
        .max_iter(args.max_iter)
        .tol(args.tol)
        .seed(args.seed)
        .alpha_w(args.alpha_w)
        .alpha_h(alpha_h)
        .l1_ratio(args.l1_ratio)
        .orthogonal(args.orthogonal.into())
        .backend(backend);
    let reporter = Reporter::new(Display::choose(args.quiet), args.max_iter);
    if let Some(callback) = reporter.callback() {
        params = params.on_progress(callback);
    }
    let fit = input.fit(&params, orientation)?;
    drop(reporter);
    let relative_error = input.relative_error(&fit, orientation)?;

    let summary = json!({
        "nmf_version": env!("CARGO_PKG_VERSION"),
        "input": input.path().display().to_string(),
        "format": input.format_name(),
        "storage": input.storage_name(),
        "file_shape": shape_json(file_shape),
        "samples_as_rows": orientation == Orientation::SamplesAsRows,
        "shape": shape_json((m, n)),
        "rank": r,
        "solver": solver.name(),
        "loss": loss.name(),
        "init": init.name(),
        "max_iter": args.max_iter,
        "tol": f32_json(args.tol),
        "seed": args.seed,
        "alpha_w": f32_json(args.alpha_w),
        "alpha_h": f32_json(alpha_h),
        "l1_ratio": f32_json(args.l1_ratio),
        "orthogonal": Orthogonality::from(args.orthogonal).name(),
        "orthogonality_residual": fit.orthogonality_residual(),
        "backend": args.backend.name(),
        "engine": fit.engine(),
        "iterations": fit.n_iter(),
        "converged": fit.converged(),
        "final_loss": fit.final_loss(),
        "relative_error": relative_error,
        "losses": fit.losses(),
        "loss_iterations": fit.loss_iterations(),
        "seconds": fit.elapsed().as_secs_f64(),
        "read_seconds": read_seconds,
        "W": { "file": W_FILE, "shape": shape_json(fit.w().dim()) },
        "H": { "file": H_FILE, "shape": shape_json(fit.h().dim()) },
    });
    let mut text = serde_json::to_string_pretty(&summary)
        .map_err(|e| CliError::new(format!("could not format the summary: {e}")))?;
    text.push('\n');

    // Written into a temporary directory, then renamed into place as a unit.
    let dir = &args.output_dir;
    write_model(dir, fit.w(), fit.h(), &text)?;

    if args.json {
        print_stdout(&text);
    } else if chatty {
        let status = if fit.converged() {
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
        print_stdout(&format!(
            "read {} ({} x {}, {}{held}) in {read_seconds:.2} s\n\
             fit V ({m} x {n}) with rank {r}: {}, {} loss, {} init, {} iterations ({status}) in {:.2} s on {}\n\
             relative error ‖V − WH‖/‖V‖ = {relative_error:.4e}\n\
             wrote {} ({m} x {r}), {} ({r} x {n}), {}\n",
            input.path().display(),
            file_shape.0,
            file_shape.1,
            input.format_name(),
            solver.name(),
            loss.name(),
            init.name(),
            fit.n_iter(),
            fit.elapsed().as_secs_f64(),
            fit.engine(),
            dir.join(W_FILE).display(),
            dir.join(H_FILE).display(),
            dir.join(SUMMARY_FILE).display(),
        ));
    }
    Ok(())
}
