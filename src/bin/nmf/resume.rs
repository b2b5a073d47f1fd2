//! `--resume DIR`: a saved model (W.npy, H.npy, summary.json) to continue, checked against the
//! command that continues it.

use std::path::{Path, PathBuf};

use nmf_gpu::io::{read_matrix, ReadOptions};
use nmf_gpu::ndarray::Array2;
use nmf_gpu::{Loss, Orthogonality, Resume, Solver};
use serde_json::Value;

use crate::args::PrintArgs;
use crate::error::{at, CliError};
use crate::summary::{SavedSummary, H_FILE, SUMMARY_FILE, W_FILE};

/// What a resumed fit starts from.
#[derive(Debug)]
pub struct SavedModel {
    pub dir: PathBuf,
    pub w: Array2<f32>,
    pub h: Array2<f32>,
    /// Iterations done and the first run's initial loss.
    pub resume: Resume,
    /// The initialisation of the first run.
    pub init: String,
}

/// The settings a resumed fit must share with the saved one.
#[derive(Debug, Clone, Copy)]
pub struct Expected {
    pub rank: usize,
    pub solver: Solver,
    pub loss: Loss,
    pub orthogonal: Orthogonality,
    pub samples_as_rows: bool,
}

/// Read the summary of the model in `dir` and check it against `expected` (before the data is
/// read, so that a mismatch is reported at once).
pub fn read_summary(dir: &Path, expected: Expected) -> Result<Value, CliError> {
    let summary = SavedSummary::read(
        dir,
        "cannot resume: ",
        "--resume takes a directory written by `nmf fit`",
    )?;
    let mismatch = |what: &str, saved: String, asked: String| {
        summary.error(format!(
            "cannot resume: the saved model has {what} {saved} but this command asks for {asked}; --resume continues a fit with the same shape, rank, solver, loss, --orthogonal and --samples-as-rows"
        ))
    };
    let missing = |key: &str| {
        summary.error(format!(
            "cannot resume: '{key}' is missing or malformed in the saved summary"
        ))
    };
    let str_of = |key: &str| summary.str(key).ok_or_else(|| missing(key));
    let rank = summary.u64("rank").ok_or_else(|| missing("rank"))?;
    if rank != expected.rank as u64 {
        return Err(mismatch(
            "rank",
            rank.to_string(),
            format!("--rank {}", expected.rank),
        ));
    }
    // A setting saved by name, checked against the one asked for with `flag`.
    let same_name = |key: &str, what: &str, want: &str, flag: &str| {
        let saved = str_of(key)?;
        if saved == want {
            Ok(())
        } else {
            Err(mismatch(what, saved.to_string(), format!("{flag} {want}")))
        }
    };
    same_name("solver", "solver", expected.solver.name(), "--solver")?;
    let loss = str_of("loss")?;
    if Loss::from_name(loss) != Some(expected.loss) {
        return Err(mismatch(
            "loss",
            loss.to_string(),
            crate::args::loss_flag(expected.loss),
        ));
    }
    same_name(
        "orthogonal",
        "--orthogonal",
        expected.orthogonal.name(),
        "--orthogonal",
    )?;
    let rows = summary
        .bool("samples_as_rows")
        .ok_or_else(|| missing("samples_as_rows"))?;
    if rows != expected.samples_as_rows {
        let say = |b: bool| {
            if b {
                "--samples-as-rows"
            } else {
                "no --samples-as-rows"
            }
        };
        return Err(mismatch(
            "been fitted with",
            say(rows).to_string(),
            say(expected.samples_as_rows).to_string(),
        ));
    }
    Ok(summary.value)
}

/// Load W and H of the model in `dir` whose summary is `summary`, for data V of shape
/// `(m, n)` (features x samples).
pub fn load(dir: &Path, summary: &Value, (m, n): (usize, usize)) -> Result<SavedModel, CliError> {
    let path = dir.join(SUMMARY_FILE);
    let missing = |key: &str| {
        at(
            &path,
            format!("cannot resume: '{key}' is missing or malformed in the saved summary (a model written by an older nmf cannot be resumed)"),
        )
    };
    let shape: Option<Vec<u64>> = summary
        .get("shape")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(Value::as_u64).collect());
    let shape = match shape.as_deref() {
        Some(&[rows, cols]) => (rows as usize, cols as usize),
        _ => return Err(missing("shape")),
    };
    if shape != (m, n) {
        return Err(at(
            &path,
            format!(
                "cannot resume: the saved model was fitted to V of {} x {} (features x samples) but this input gives {m} x {n}",
                shape.0, shape.1
            ),
        ));
    }
    let iterations = summary
        .get("iterations")
        .and_then(Value::as_u64)
        .ok_or_else(|| missing("iterations"))? as usize;
    let initial_loss = summary
        .get("initial_loss")
        .and_then(Value::as_f64)
        .filter(|l| l.is_finite() && *l >= 0.0)
        .ok_or_else(|| missing("initial_loss"))?;
    let init = summary
        .get("init")
        .and_then(Value::as_str)
        .unwrap_or("custom")
        .to_string();
    let rank = summary.get("rank").and_then(Value::as_u64).unwrap_or(0) as usize;
    let factor = |name: &str, rows: usize, cols: usize| -> Result<Array2<f32>, CliError> {
        let p = dir.join(name);
        let a = read_matrix(&p, &ReadOptions::new())?;
        if a.dim() != (rows, cols) {
            return Err(at(
                &p,
                format!(
                    "cannot resume: it is {} x {} but the saved summary says {rows} x {cols}; the model directory is inconsistent",
                    a.nrows(),
                    a.ncols()
                ),
            ));
        }
        Ok(a)
    };
    let w = factor(W_FILE, m, rank)?;
    let h = factor(H_FILE, rank, n)?;
    Ok(SavedModel {
        dir: dir.to_path_buf(),
        w,
        h,
        resume: Resume {
            iterations_done: iterations,
            initial_loss,
        },
        init,
    })
}

/// Whether a resumed fit has nothing to do because its saved model converged: the summary says
/// `"converged": true`, and either `tol` is no smaller than the saved one (the stopping rule
/// that held still holds) or `max_iter` leaves no iteration to run. A smaller `--tol` with
/// budget left continues the fit.
pub fn already_converged(summary: &Value, tol: f32, max_iter: usize) -> bool {
    let converged = summary.get("converged").and_then(Value::as_bool) == Some(true);
    let saved_tol = summary.get("tol").and_then(Value::as_f64);
    let done = summary.get("iterations").and_then(Value::as_u64);
    // The summary holds the tolerance as it prints (`1e-4`); compare at f32's precision.
    let same_rule = saved_tol.is_some_and(|t| f64::from(tol) >= t * (1.0 - 1e-6));
    let no_budget = done.is_some_and(|d| max_iter as u64 <= d);
    converged && (same_rule || no_budget)
}

/// Finish a `--resume` of a converged model without iterating: nothing changes. The model is
/// written again only when the output directory is another one (the saved one, unchanged);
/// `--json` prints its summary. Called when [`already_converged`] holds.
pub fn finish_converged(
    saved: &SavedModel,
    summary: &Value,
    output_dir: &Path,
    print: &PrintArgs,
) -> Result<(), CliError> {
    let iterations = summary
        .get("iterations")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let tol = summary.get("tol").cloned().unwrap_or(Value::Null);
    let same_dir = match (saved.dir.canonicalize(), output_dir.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let mut text = serde_json::to_string_pretty(summary).unwrap_or_else(|_| summary.to_string());
    text.push('\n');
    if !same_dir {
        crate::output::stage_model(output_dir, saved.w.view(), saved.h.view(), &text)?;
    }
    if print.json {
        crate::print_stdout(&text);
    } else if !print.quiet {
        let wrote = if same_dir {
            "nothing changed".to_string()
        } else {
            format!("copied it unchanged to {}", output_dir.display())
        };
        eprintln!(
            "note: {} converged at iteration {iterations} (tol {tol}): no iteration is run, {wrote}; lower --tol (with --max-iter above {iterations}) to continue it",
            saved.dir.display()
        );
    }
    Ok(())
}
