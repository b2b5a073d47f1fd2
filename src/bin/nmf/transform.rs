//! `nmf transform`: encode new samples with the W of a fitted model; SIGINT / SIGTERM stop the
//! encoding after its current iteration, write nothing and exit with 130 / 143.

use nmf_gpu::io::{read_matrix, write_npy_atomic, ReadOptions};
use nmf_gpu::{Factorization, Nmf};

use crate::args::TransformArgs;
use crate::backend::backend;
use crate::error::{at, CliError};
use crate::output::check_parent;
use crate::signals::Stop;
use crate::storage::{choose, Input};
use crate::summary::{read_settings, W_FILE};
use crate::{print_stdout, Orientation};

/// Run `nmf transform`.
pub fn run(args: &TransformArgs) -> Result<(), CliError> {
    // Before the GPU is opened: a refused `--storage` comes first.
    let storage = choose(args.input.storage, &args.input.input)?;
    let backend = backend(args.backend)?;
    let is_npy = args
        .output
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if !is_npy {
        return Err(at(
            &args.output,
            "the output must be a .npy file (H is written as float32 .npy)",
        ));
    }
    check_parent(&args.output)?;
    let stop = Stop::install()?;

    let settings = read_settings(&args.model)?;
    let w_path = args.model.join(W_FILE);
    let w = read_matrix(&w_path, &ReadOptions::new())?;
    if w.ncols() != settings.rank {
        return Err(at(
            &w_path,
            format!(
                "W is {} x {} but the model's summary says rank {}; the model directory is inconsistent (fit again)",
                w.nrows(),
                w.ncols(),
                settings.rank
            ),
        ));
    }
    let mut params = Nmf::params(settings.rank)
        .solver(settings.solver)
        .loss(settings.loss)
        .max_iter(settings.max_iter)
        .tol(settings.tol)
        .alpha_h(settings.alpha_h)
        .l1_ratio(settings.l1_ratio)
        .backend(backend)
        .stop_flag(stop.flag());
    if let Some(bytes) = args.input.memory_limit {
        params = params.memory_limit(bytes);
    }
    let m = w.nrows();
    let model = Factorization::from_w(w, &params).map_err(|e| at(&w_path, e))?;

    let input = Input::read(&args.input, storage, settings.orientation)?;
    let input = match &settings.frames {
        Some(steps) => {
            input.preprocess(&steps.clone().stop_flag(stop.flag()), settings.orientation)?
        }
        None => input,
    };
    if let Some(frames) = input.frames() {
        if frames.output_pixels() != m {
            return Err(at(
                input.path(),
                format!(
                    "gives {} pixels per frame after the model's frame preprocessing, but the model's W has {m} rows",
                    frames.output_pixels()
                ),
            ));
        }
        if !args.quiet {
            eprintln!("{} (the model's)", crate::frames::describe(frames));
        }
    }
    if input.shape(settings.orientation).0 != m {
        let (fr, fc) = input.file_shape();
        return Err(at(
            input.path(),
            match settings.orientation {
                Orientation::SamplesAsColumns => format!(
                    "is {fr} x {fc} but the model's W has {m} rows (features): the file needs {m} rows, one column per sample"
                ),
                Orientation::SamplesAsRows => format!(
                    "is {fr} x {fc} but the model was fitted with --samples-as-rows on {m} features: the file needs {m} columns, one row per sample"
                ),
            },
        ));
    }
    if !args.quiet {
        eprintln!(
            "encoding the {} samples of {} with the W of {} (at most {} iterations)",
            input.shape(settings.orientation).1,
            input.path().display(),
            args.model.display(),
            settings.max_iter
        );
    }
    // The stop flag ends the encoding after its current iteration (within a second).
    let h = input.transform(&model, settings.orientation);
    if stop.requested() {
        return Err(CliError::with_code(
            format!("interrupted ({}); nothing written", stop.name()),
            stop.exit_code(),
        ));
    }
    let h = h?;
    write_npy_atomic(&args.output, &h)?;
    if !args.quiet {
        print_stdout(&format!(
            "wrote {} ({} x {}): the encodings of the {} samples of {} with the W of {}\n",
            args.output.display(),
            h.nrows(),
            h.ncols(),
            h.ncols(),
            input.path().display(),
            args.model.display()
        ));
    }
    Ok(())
}
