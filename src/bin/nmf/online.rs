//! `nmf fit --online`: stream the samples in batches (a .npy read piece by piece, an image
//! directory decoded batch by batch, other formats read whole and then streamed), learn W,
//! then write W.npy, H.npy (r x n, Fortran order, written batch by batch with the final W in
//! one more pass) and summary.json. SIGINT / SIGTERM stop it after the current batch: W reached
//! and the H columns written so far (none when it stopped while learning W) are written, with
//! `"interrupted": true` and the samples seen in summary.json, exiting with 130 / 143.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use nmf_gpu::frames::FrameSource;
use nmf_gpu::io::{
    read_located, write_npy_atomic, FileFormat, NpyColumnWriter, NpySource, ReadOptions,
};
use nmf_gpu::online::{ArraySource, OnlineNmf, OnlineProgress, OnlineStop, Source};
use nmf_gpu::{Loss, NmfError, Orthogonality, Solver};
use serde_json::json;

use crate::args::FitArgs;
use crate::backend::backend;
use crate::error::{at, CliError};
use crate::output::prepare_dir;
use crate::print_stdout;
use crate::progress::Display;
use crate::signals::Stop;
use crate::summary::{f32_json, H_FILE, SUMMARY_FILE, W_FILE};

/// Run `nmf fit --online`; the exit code.
pub fn run(args: &FitArgs) -> Result<u8, CliError> {
    if args.resume.is_some() || args.checkpoint_every.is_some() {
        return Err(CliError::usage(
            "--online cannot be combined with --resume or --checkpoint-every (an online fit keeps no H to resume from)",
        ));
    }
    if args.solver != Solver::MultiplicativeUpdate || args.orthogonal != Orthogonality::None {
        return Err(CliError::usage(
            "--online chooses its own updates (HALS encodings and Mairal's dictionary update for frobenius, multiplicative ones for kl); leave out --solver and --orthogonal",
        ));
    }
    let stop = Stop::install()?;
    let backend = backend(args.backend)?;
    let path = &args.input.input;
    let format = FileFormat::from_path(path)?;
    prepare_dir(&args.output_dir)?;
    std::fs::create_dir_all(&args.output_dir).map_err(|e| {
        at(
            &args.output_dir,
            format!("could not create the output directory: {e}"),
        )
    })?;
    // Streamed sources take the samples as they lie (the first axis, a frame, an image).
    let samples_lie_in = match format {
        FileFormat::Tiff => Some("a TIFF stack (one frame is one sample)"),
        #[cfg(feature = "hdf5")]
        FileFormat::Hdf5 => Some("an HDF5 dataset (the first axis is the samples)"),
        #[cfg(feature = "zarr")]
        FileFormat::Zarr => Some("a Zarr array (the first axis is the samples)"),
        #[cfg(feature = "images")]
        FileFormat::ImageDir => Some("an image directory (one image is one sample)"),
        _ => None,
    };
    if let (true, Some(what)) = (args.samples_as_rows, samples_lie_in) {
        return Err(CliError::usage(format!(
            "--samples-as-rows does not apply to {what}"
        )));
    }
    // The source: streamed from disk for .npy, TIFF stacks and image directories, else from memory.
    let loaded;
    let mut source: Box<dyn Source> = match format {
        FileFormat::Npy => Box::new(NpySource::open(path, args.samples_as_rows)?),
        FileFormat::Tiff => Box::new(nmf_gpu::io::tiff::TiffSource::open(
            path,
            &ReadOptions::new(),
        )?),
        // HDF5 datasets and Zarr arrays: chunk-aligned batches of samples (first axis).
        #[cfg(feature = "hdf5")]
        FileFormat::Hdf5 => Box::new(nmf_gpu::io::hdf5::Hdf5Source::open(
            path,
            &args.input.read_options(),
        )?),
        #[cfg(feature = "zarr")]
        FileFormat::Zarr => Box::new(nmf_gpu::io::zarr::ZarrSource::open(
            path,
            &args.input.read_options(),
        )?),
        #[cfg(feature = "images")]
        FileFormat::ImageDir => Box::new(nmf_gpu::images::ImageDirSource::open(
            path,
            nmf_gpu::images::SizePolicy::Exact,
            nmf_gpu::images::Preprocess::None,
        )?),
        _ => {
            loaded = read_located(path, &args.input.read_options())?;
            let v = if args.samples_as_rows {
                loaded.data.t()
            } else {
                loaded.data.view()
            };
            Box::new(ArraySource::new(v))
        }
    };
    // Frame preprocessing: the baseline's passes now, the crop and downsampling batch by batch.
    let mut frames_record = serde_json::Value::Null;
    if let Some(steps) = args.frames.steps_within(args.input.memory_limit) {
        let processed = FrameSource::new(source, &steps.stop_flag(stop.flag())).map_err(|e| {
            if let NmfError::Interrupted { .. } = e {
                CliError::with_code(
                    format!(
                        "interrupted ({}) during the frames' baseline pass; nothing written",
                        stop.name()
                    ),
                    stop.exit_code(),
                )
            } else {
                at(path, e)
            }
        })?;
        if !args.print.quiet {
            eprintln!("{}", crate::frames::describe(processed.frames()));
        }
        frames_record = crate::frames::summary_json(processed.frames());
        source = Box::new(processed);
    }
    let (m, n) = source.dim();
    let chatty = args.print.chatty();
    let loss: Loss = args.loss();
    let mut params = OnlineNmf::params(args.rank)
        .loss(loss)
        .init(args.init.clone())
        .batch_size(args.batch_size)
        .alpha_w(args.alpha_w)
        .l1_ratio(args.l1_ratio)
        .max_no_improvement((args.max_no_improvement > 0).then_some(args.max_no_improvement))
        .tol(args.tol)
        .seed(args.seed)
        .backend(backend)
        .stop_flag(stop.flag());
    if let Some(alpha) = args.alpha_h {
        params = params.alpha_h(alpha);
    }
    if let Some(e) = args.epochs {
        params = params.max_epochs(e);
    }
    if let Some(bytes) = args.input.memory_limit {
        params = params.memory_limit(bytes);
    }
    let max_epochs = params.iter_options().max_iter();
    let display = Display::choose(!chatty);
    let bar = samples_bar(display, n, max_epochs);
    if display != Display::Quiet {
        params = params.on_batch(progress_callback(bar.clone(), display));
    }
    let start = Instant::now();
    let model = params.fit(&mut source)?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let fit_seconds = start.elapsed().as_secs_f64();
    // Interrupted while learning W: W is the one after the last batch, and no H is computed.
    let learn_interrupted = model.report().stop == OnlineStop::Interrupted;
    write_npy_atomic(args.output_dir.join(W_FILE), &model.w())?;
    let h_path = args.output_dir.join(H_FILE);
    let mut h_seconds = None;
    // Columns of H written (the first samples', in order), when H is written at all.
    let mut h_columns = None;
    if !args.no_h && !learn_interrupted {
        let t = Instant::now();
        let mut writer = NpyColumnWriter::create(&h_path, model.rank(), n)?;
        let bar = samples_bar(display, n, 1);
        if let Some(bar) = &bar {
            bar.set_message("H");
        }
        source.rewind()?;
        // The stop flag ends this pass after its current batch.
        model.transform_source(&mut source, |_, hb| {
            writer.append(hb.view())?;
            if let Some(bar) = &bar {
                bar.set_position(writer.written() as u64);
            }
            Ok(())
        })?;
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        h_columns = Some(if writer.written() < n {
            writer.commit_partial()?
        } else {
            writer.commit()?;
            n
        });
        h_seconds = Some(t.elapsed().as_secs_f64());
    } else if learn_interrupted {
        // An H of an earlier run would not belong to this W.
        match std::fs::remove_file(&h_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(at(&h_path, format!("could not remove the earlier H: {e}")));
            }
            _ => {}
        }
    }
    let interrupted = learn_interrupted || h_columns.is_some_and(|c| c < n);
    let rep = model.report();
    let summary = json!({
        "online": true,
        "input": path.display().to_string(),
        "dataset": args.input.dataset,
        "shape": [m, n],
        "frame_preprocessing": frames_record,
        "rank": args.rank,
        "loss": loss.name(),
        // What `nmf transform --model` needs to encode new samples as this fit encoded its own:
        // HALS encodings for Frobenius, multiplicative ones for KL, the encodings' penalty
        // (scaled by the features in both).
        "solver": if loss == Loss::Frobenius { Solver::Hals.name() } else { Solver::MultiplicativeUpdate.name() },
        "samples_as_rows": args.samples_as_rows,
        "max_iter": args.max_iter,
        "tol": f32_json(args.tol),
        "alpha_h": f32_json(args.alpha_h.unwrap_or(args.alpha_w)),
        "l1_ratio": f32_json(args.l1_ratio),
        "batch_size": args.batch_size,
        "max_epochs": max_epochs,
        "epochs": rep.epochs,
        "batches": rep.steps,
        "samples": rep.samples,
        "stop": format!("{:?}", rep.stop),
        "interrupted": interrupted,
        "last_batch_cost": rep.last_batch_cost,
        "smoothed_cost": rep.smoothed_cost,
        "engine": rep.engine,
        "seconds": fit_seconds,
        "samples_per_second": rep.samples as f64 / fit_seconds.max(1e-9),
        "h_seconds": h_seconds,
        "W": { "file": W_FILE, "shape": [m, args.rank] },
        "H": match h_columns {
            None => serde_json::Value::Null,
            Some(cols) => json!({
                "file": H_FILE,
                "shape": [args.rank, cols],
                "fortran_order": true,
                "complete": cols == n,
            }),
        },
    });
    let text = format!(
        "{}\n",
        serde_json::to_string_pretty(&summary).unwrap_or_else(|_| summary.to_string())
    );
    let summary_path = args.output_dir.join(SUMMARY_FILE);
    nmf_gpu::io::write_bytes_atomic(&summary_path, text.as_bytes())
        .map_err(|e| at(&summary_path, e))?;
    if args.print.json {
        print_stdout(&text);
    } else if chatty {
        print_stdout(&format!(
            "online fit of {m} x {n} at rank {}: {} epoch(s), {} batches, {:.0} samples/s ({}), stop: {:?}\nwrote {}\n",
            args.rank,
            rep.epochs,
            rep.steps,
            rep.samples as f64 / fit_seconds.max(1e-9),
            rep.engine,
            rep.stop,
            args.output_dir.display()
        ));
    }
    if interrupted {
        if !args.print.quiet {
            let h = match h_columns {
                Some(cols) => format!(" and the H of the first {cols} of {n} samples"),
                None => String::new(),
            };
            eprintln!(
                "interrupted by {} after {} samples seen: wrote W{h} to {}",
                stop.name(),
                rep.samples,
                args.output_dir.display()
            );
        }
        return Ok(stop.exit_code());
    }
    Ok(0)
}

/// A bar counting samples over `epochs` passes, on a terminal.
fn samples_bar(display: Display, n: usize, epochs: usize) -> Option<ProgressBar> {
    (display == Display::Bar).then(|| {
        crate::progress::stderr_bar(
            (n as u64).saturating_mul(epochs as u64),
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} samples  {msg}  {per_sec}",
        )
    })
}

/// The per-batch callback: the bar, or a line at most once a second.
fn progress_callback(
    bar: Option<ProgressBar>,
    display: Display,
) -> impl Fn(&OnlineProgress) + Send + Sync + 'static {
    let last: Mutex<Option<Instant>> = Mutex::new(None);
    move |p: &OnlineProgress| {
        let done = (p.epoch * p.samples_per_epoch + p.samples) as u64;
        if let Some(bar) = &bar {
            bar.set_position(done);
            bar.set_message(format!(
                "epoch {}/{}  cost {:.4e}",
                p.epoch + 1,
                p.max_epochs,
                p.smoothed_cost
            ));
            return;
        }
        if display == Display::Lines {
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                *last = Some(Instant::now());
                eprintln!(
                    "epoch {}/{}: {}/{} samples, smoothed cost {:.6e}",
                    p.epoch + 1,
                    p.max_epochs,
                    p.samples,
                    p.samples_per_epoch,
                    p.smoothed_cost
                );
            }
        }
    }
}
