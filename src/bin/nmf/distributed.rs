//! `nmf fit` as one rank of an MPI job (feature `mpi`): each rank reads its block of a `.npy`
//! file (only its bytes), of a MatrixMarket coordinate file (sparse with `--storage`, as a
//! single-process fit chooses) or of an image directory (its share of the files, as
//! `images::load_dir` orders them; all of one size), the ranks fit together ([`nmf_gpu::distributed`]), and rank 0 writes W.npy, H.npy and
//! summary.json (with the grid, every rank's timings and the bytes communicated per
//! iteration), or every rank writes its pieces with `--output-parts`.
//!
//! The fit is distributed when `--distributed`, `--grid` or `--output-parts` is given, or when
//! an MPI launcher started more than one rank: OpenMPI's `mpirun` (OMPI_COMM_WORLD_SIZE),
//! MPICH / Hydra and Slurm's `srun --mpi=pmi2` (PMI_SIZE), or Slurm with PMIx (PMIX_RANK and
//! SLURM_NTASKS).
//!
//! Errors: one every rank makes alike (a bad grid, an option a distributed fit lacks) is
//! printed by rank 0; an error of one rank is printed by that rank as
//! `error: rank K of P: ...`. The ranks agree first, the one rank prints, and only then does
//! any rank exit, all with the same non-zero code ([`distributed::fail_together`]): a
//! launcher that ends the job when one rank exits cannot cut the message off. An error in the
//! middle of the iterations aborts the job (MPI_Abort) after printing it.

use std::path::Path;
use std::time::Instant;

use nmf_gpu::distributed::mpi::traits::*;
use nmf_gpu::distributed::{self, Grid, ImageDir, LocalBlock};
use nmf_gpu::images::SizePolicy;
use nmf_gpu::io::{write_bytes_atomic, write_npy_atomic, FileFormat, Storage};
use nmf_gpu::{Checkpoint, Init, Loss, NmfError};
use serde_json::json;

use crate::args::{BackendArg, FitArgs};
use crate::backend::backend;
use crate::error::CliError;
use crate::print_stdout;
use crate::resume::{self, Expected};
use crate::signals::Stop;
use crate::storage::{choose, Holding};
use crate::summary::{f32_json, shape_json, H_FILE, SUMMARY_FILE, W_FILE};

/// Whether `nmf fit` runs as a rank of an MPI job: when asked, or when a launcher started more
/// than one rank (a single rank under a launcher, e.g. a plain `srun nmf fit`, runs the
/// single-process fit, which reads every input format).
pub fn requested(args: &FitArgs) -> bool {
    let size = |var: &str| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
    };
    let pmix = std::env::var_os("PMIX_RANK").is_some();
    let launched = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .filter_map(|v| size(v))
        .chain(pmix.then(|| size("SLURM_NTASKS")).flatten())
        .any(|n| n > 1);
    args.distributed || args.grid.is_some() || args.output_parts || launched
}

/// Options a distributed fit does not take (usage errors, found alike on every rank).
fn refuse_unsupported(args: &FitArgs) -> Result<(), CliError> {
    let no = |what: &str| {
        Err(CliError::usage(format!(
            "{what} is not available in a distributed fit (mpirun / --grid); run a single-process fit for it"
        )))
    };
    if args.samples_as_rows {
        return no("--samples-as-rows (save the transposed matrix instead)");
    }
    if args.frames.any() {
        return no("frame preprocessing (--crop, --downsample, --baseline, --frame-shape)");
    }
    let readable = matches!(
        FileFormat::from_path(&args.input.input),
        Ok(FileFormat::Npy
            | FileFormat::MatrixMarket
            | FileFormat::ImageDir
            | FileFormat::Tiff
            | FileFormat::Hdf5
            | FileFormat::Zarr)
    );
    if !args.input.input.is_dir() && !readable {
        return Err(CliError::usage(format!(
            "{}: a distributed fit reads .npy files, TIFF stacks, HDF5 datasets and Zarr arrays (each rank reads only its block), MatrixMarket coordinate .mtx files and image directories; convert the matrix with numpy.save or scipy.io.mmwrite",
            args.input.input.display()
        )));
    }
    Ok(())
}

/// Run `nmf fit` as one rank; the exit code.
pub fn run(args: &FitArgs) -> Result<u8, CliError> {
    let Some(universe) = distributed::mpi::initialize() else {
        return Err(CliError::new("MPI was already initialised in this process"));
    };
    let world = universe.world();
    let (me, p) = (world.rank() as usize, world.size() as usize);
    match fit(args, &world) {
        Ok(code) => Ok(code),
        Err(e) => {
            // Printed once, before any rank exits: by the lowest rank that has an error of its
            // own (rank 0 for an error every rank makes alike); its peers wait in
            // `fail_together` until the line is written, then every rank exits with its code.
            let text = if e.local && p > 1 {
                format!("rank {me} of {p}: {}", e.error)
            } else {
                e.error.to_string()
            };
            let mine = (!e.peer).then_some((text.as_str(), e.error.exit_code()));
            let agreed = distributed::fail_together(&world, mine);
            Ok(agreed.map_or(e.error.exit_code(), |job| job.code))
        }
    }
}

/// An error of the distributed run: the CLI error, the library error it came from, and
/// whether it is this rank's own (as opposed to one every rank makes alike).
struct RankError {
    error: CliError,
    /// Another rank failed (and reports it).
    peer: bool,
    local: bool,
}

fn alike(e: impl Into<CliError>) -> RankError {
    RankError {
        error: e.into(),
        peer: false,
        local: false,
    }
}

/// `result` on every rank when all succeeded (collective): this rank's own error where it
/// failed (its message is printed once, by the lowest failing rank), a peer's failure
/// elsewhere.
fn agree_cli<C: Communicator, T>(world: &C, result: Result<T, CliError>) -> Result<T, RankError> {
    let me = world.rank() as usize;
    let flag = match &result {
        Ok(_) => Ok(()),
        Err(_) => Err(NmfError::PeerFailed { rank: me }),
    };
    match (distributed::agree(world, flag), result) {
        (_, Err(error)) => Err(RankError {
            error,
            peer: false,
            local: true,
        }),
        (Err(e), Ok(_)) => Err(from_lib(e, true)),
        (Ok(()), Ok(v)) => Ok(v),
    }
}

fn from_lib(e: NmfError, local: bool) -> RankError {
    RankError {
        peer: matches!(e, NmfError::PeerFailed { .. }),
        error: CliError::from(e),
        local,
    }
}

fn fit<C: Communicator>(args: &FitArgs, world: &C) -> Result<u8, RankError> {
    let (me, p) = (world.rank() as usize, world.size() as usize);
    refuse_unsupported(args).map_err(alike)?;
    crate::fit::rules_admit(args.solver, args.loss(), args.orthogonal).map_err(alike)?;
    let grid = match &args.grid {
        Some(text) => Some(Grid::parse(text).map_err(|e| alike(CliError::usage(e.to_string())))?),
        None => None,
    };
    let choice = rank_backend(args.backend, world);
    let backend = distributed::agree(
        world,
        backend(choice).map_err(|e| NmfError::UnsupportedInput {
            path: args.input.input.clone(),
            reason: e.to_string(),
        }),
    )
    .map_err(|e| from_lib(e, true))?;
    // Which adapter every rank opened (rank 0 records them in summary.json).
    let adapters = gather_adapters(world, &backend);
    let path = args.input.input.as_path();
    let options = args.input.read_options();
    // `--storage`: sparse blocks (CPU engine) for .mtx files as a single-process fit chooses;
    // with `--backend gpu`, `auto` keeps the blocks dense (the distributed fit runs sparse
    // blocks on the CPU only, and refuses an explicit `--storage sparse` there).
    let storage = match (args.input.storage, args.backend) {
        (Storage::Auto, b) if b.is_gpu() => Storage::Dense,
        (s, _) => s,
    };
    let sparse = matches!(choose(storage, path).map_err(alike)?, Holding::Sparse(_));
    // An image directory: every rank lists the files, then decodes its share.
    // (A directory of TIFF stacks is one stack, read like a file.)
    let images = if path.is_dir()
        && !matches!(
            FileFormat::from_path(path),
            Ok(FileFormat::Tiff | FileFormat::Zarr)
        ) {
        let set = ImageDir::open(path, SizePolicy::Exact, &options);
        Some(distributed::agree(world, set).map_err(|e| from_lib(e, true))?)
    } else {
        None
    };
    let shape = match &images {
        Some(set) => set.shape(),
        None => distributed::agree(world, distributed::input_shape(path, &options))
            .map_err(|e| from_lib(e, true))?,
    };
    let layout = distributed::layout(world, grid, shape).map_err(|e| from_lib(e, false))?;
    let read_start = Instant::now();
    let block = match &images {
        Some(set) => set.read_block(&layout, &options),
        None => distributed::read_block(path, &layout, sparse, &options),
    };
    let block: LocalBlock = distributed::agree(world, block).map_err(|e| from_lib(e, true))?;
    let read_seconds = read_start.elapsed().as_secs_f64();
    let dir = args.output_dir.as_path();
    let made = match (me, args.output_parts) {
        (0, true) => prepare(dir, true).map_err(CliError::from),
        (0, false) => crate::output::prepare_dir(dir),
        _ => Ok(()),
    };
    agree_cli(world, made)?;

    let solver = args.solver;
    let loss: Loss = args.loss();
    let orthogonal = args.orthogonal;
    // `--resume DIR`: every rank reads the saved model (a directory all ranks see) and starts
    // from it; the ranks agree on any error.
    let saved = match &args.resume {
        Some(saved_dir) => {
            let expected = Expected {
                rank: args.rank,
                solver,
                loss,
                orthogonal,
                samples_as_rows: false,
            };
            let summary = agree_cli(world, resume::read_summary(saved_dir, expected))?;
            let model = agree_cli(world, resume::load(saved_dir, &summary, shape))?;
            if resume::already_converged(&summary, args.tol, args.max_iter) {
                let done = if me == 0 {
                    resume::finish_converged(&model, &summary, dir, &args.print)
                } else {
                    Ok(())
                };
                agree_cli(world, done)?;
                return Ok(0);
            }
            Some(model)
        }
        None => None,
    };
    let init: Init = match &saved {
        Some(model) => Init::Custom {
            w: model.w.clone(),
            h: model.h.clone(),
        },
        None => args.init.clone(),
    };
    let alpha_h = args.alpha_h.unwrap_or(args.alpha_w);
    // SIGINT / SIGTERM (mpirun passes a signal on to every rank): the fit reads the flags of
    // all ranks at each loss check and stops together; the model reached is written, marked
    // interrupted, and every rank exits with 128 + the signal.
    let stop = agree_cli(world, Stop::install())?;
    let mut params = crate::fit::fit_params(args, args.rank, backend, &stop).init(init.clone());
    if let Some(model) = &saved {
        params = params.resume(model.resume);
    }
    // `--checkpoint-every N`: rank 0 receives the gathered factors and replaces the model in
    // the output directory with them (a model `--resume` continues).
    // The fit's settings, the head of every summary.json it writes (what `--resume` and
    // `nmf transform --model` read).
    let settings = json!({
        "nmf_version": env!("CARGO_PKG_VERSION"),
        "input": path.display().to_string(),
        "dataset": args.input.dataset,
        "format": match FileFormat::from_path(path) {
            _ if images.is_some() => "images",
            Ok(f @ (FileFormat::Hdf5 | FileFormat::Zarr)) => f.name(),
            _ => path.extension().and_then(|e| e.to_str()).unwrap_or("npy"),
        },
        "storage": if sparse { "sparse" } else { "dense" },
        "shape": shape_json(shape),
        "rank": args.rank,
        "solver": solver.name(),
        "loss": loss.name(),
        "orthogonal": orthogonal.name(),
        "samples_as_rows": false,
        "init": init.name(),
        "max_iter": args.max_iter,
        "tol": f32_json(args.tol),
        "seed": args.seed,
        "alpha_w": f32_json(args.alpha_w),
        "alpha_h": f32_json(alpha_h),
        "l1_ratio": f32_json(args.l1_ratio),
        "backend": args.backend.name(),
    });
    if let Some(every) = args.checkpoint_every {
        let out = dir.to_path_buf();
        let base = extended(
            settings.clone(),
            json!({"converged": false, "checkpoint": true, "distributed": {"ranks": p}}),
        );
        params = params.checkpoint(every, move |c: &Checkpoint<'_>| {
            let mut summary = base.clone();
            summary["iterations"] = json!(c.iteration);
            summary["initial_loss"] = json!(c.initial_loss);
            summary["W"] = json!({"file": W_FILE, "shape": shape_json(c.w.dim())});
            summary["H"] = json!({"file": H_FILE, "shape": shape_json(c.h.dim())});
            let mut text =
                serde_json::to_string_pretty(&summary).unwrap_or_else(|_| summary.to_string());
            text.push('\n');
            crate::output::stage_model(&out, c.w, c.h, &text)
        });
    }
    let grid = layout.grid;
    let mut fit = distributed::fit(world, &params, layout, block).map_err(|e| {
        let local = matches!(
            e,
            NmfError::NegativeInput { .. } | NmfError::NonFiniteInput { .. }
        );
        from_lib(e, local)
    })?;
    fit.timings.read_seconds = read_seconds;

    // Writing: every rank writes its parts, or rank 0 the gathered factors with the summary
    // (below), as one model directory replaced at once.
    let gathered = if args.output_parts {
        let k = fit.layout.rank;
        let written = write_npy_atomic(dir.join(format!("W.part-{k}.npy")), &fit.w)
            .and_then(|()| write_npy_atomic(dir.join(format!("H.part-{k}.npy")), &fit.h));
        distributed::agree(world, written).map_err(|e| from_lib(e, true))?;
        None
    } else {
        fit.gather(world)
    };
    let stats = fit.gather_stats(world);
    let device = fit.gather_device(world).unwrap_or_default();
    let Some(stats) = stats else {
        // Rank 0's write of the model is agreed below.
        if !args.output_parts {
            agree_cli(world, Ok(()))?;
        }
        return Ok(if fit.report.interrupted {
            stop.exit_code()
        } else {
            0
        });
    };
    let report = &fit.report;
    let per_rank: Vec<_> = stats
        .iter()
        .enumerate()
        .map(|(k, (t, c))| {
            let l = distributed::Layout::new(grid, shape, k);
            json!({
                "rank": k,
                "coords": [l.coords.0, l.coords.1],
                "rows": [l.rows.start, l.rows.end],
                "cols": [l.cols.start, l.cols.end],
                "w_rows": [l.w_rows.start, l.w_rows.end],
                "h_cols": [l.h_cols.start, l.h_cols.end],
                "read_seconds": t.read_seconds,
                "init_seconds": t.init_seconds,
                "iterate_seconds": t.iterate_seconds,
                "comm_seconds": t.comm_seconds,
                "setup_bytes": c.setup_bytes,
                "bytes_per_iteration": c.iteration_bytes,
                "measured_bytes_per_iteration": c.measured_iteration_bytes,
                "check_bytes": c.check_bytes,
                "inner_sweep_bytes": c.inner_bytes,
                "device": device.get(k).copied().flatten().map(device_json),
            })
        })
        .collect();
    let total: u64 = stats.iter().map(|(_, c)| c.iteration_bytes).sum();
    let measured: u64 = stats.iter().map(|(_, c)| c.measured_iteration_bytes).sum();
    let r = args.rank;
    let (m, n) = shape;
    let small = match loss {
        Loss::Frobenius => 4 * r * r,
        Loss::KullbackLeibler => 8 * r,
        // The other β-divergences all-reduce nothing small.
        Loss::ItakuraSaito | Loss::Beta(_) => 0,
    } as f64;
    // MPI-FAUN's per-rank bandwidth term, 2r(m/pr)(pc−1)/pc + 2r(n/pc)(pr−1)/pr words, plus the
    // two all-reduces of the small matrices (3r for the β rules' two reduce-scatters per side).
    let (pr, pc) = (grid.rows as f64, grid.cols as f64);
    let passes = match loss {
        Loss::ItakuraSaito | Loss::Beta(_) => 3.0,
        _ => 2.0,
    };
    let bound = 4.0
        * passes
        * r as f64
        * ((m as f64 / pr) * (pc - 1.0) / pc + (n as f64 / pc) * (pr - 1.0) / pr)
        + 4.0 * small * (p as f64 - 1.0) / p as f64;
    let parts: Vec<_> = (0..p)
        .map(|k| json!({"W": format!("W.part-{k}.npy"), "H": format!("H.part-{k}.npy")}))
        .collect();
    let summary = extended(
        settings,
        json!({
            "distributed": {
                "ranks": p,
                "grid": [grid.rows, grid.cols],
                "bytes_per_iteration": total,
                "measured_bytes_per_iteration": measured,
                "mpi_faun_bound_bytes_per_rank": bound,
                "ranks_detail": per_rank,
                "adapters": adapters,
            },
            "engine": fit.engine,
            "iterations": report.n_iter,
            "converged": report.converged,
            "interrupted": report.interrupted,
            "initial_loss": report.initial_loss,
            "final_loss": report.final_loss(),
            "losses": report.losses,
            "loss_iterations": report.loss_iterations,
            "seconds": report.elapsed.as_secs_f64(),
            "W": if args.output_parts { json!({"parts": parts.iter().map(|x| x["W"].clone()).collect::<Vec<_>>(), "shape": shape_json((m, r))}) } else { json!({"file": W_FILE, "shape": shape_json((m, r))}) },
            "H": if args.output_parts { json!({"parts": parts.iter().map(|x| x["H"].clone()).collect::<Vec<_>>(), "shape": shape_json((r, n))}) } else { json!({"file": H_FILE, "shape": shape_json((r, n))}) },
        }),
    );
    let mut text = serde_json::to_string_pretty(&summary).unwrap_or_else(|_| summary.to_string());
    text.push('\n');
    match &gathered {
        Some((w, h)) => {
            let written = crate::output::stage_model(dir, w.view(), h.view(), &text);
            agree_cli(world, written.map_err(CliError::from))?;
        }
        None => write_bytes_atomic(dir.join(SUMMARY_FILE), text.as_bytes())
            .map_err(|e| from_lib(e, true))?,
    }
    if args.print.json {
        print_stdout(&text);
    } else if !args.print.quiet {
        eprintln!(
            "fitted {m} x {n}, rank {r}, on {p} ranks (grid {}x{}): {} iterations, loss {:.6e}, {:.3} s; {} bytes communicated per iteration; wrote {}",
            grid.rows,
            grid.cols,
            report.n_iter,
            report.final_loss(),
            report.elapsed.as_secs_f64(),
            total,
            dir.display()
        );
    }
    Ok(if report.interrupted {
        stop.exit_code()
    } else {
        0
    })
}

/// The backend of this rank: `--backend gpu` without an adapter index takes the GPU of the
/// rank's node-local rank (from the shared-memory split of the world), modulo the adapters it
/// sees, unless `NMF_GPU_ADAPTER` or `WGPU_ADAPTER_NAME` chooses; node-local rank 0 warns when
/// more ranks than adapters share a node (allowed, but they share the device).
fn rank_backend<C: Communicator>(choice: BackendArg, world: &C) -> BackendArg {
    let node = world.split_shared(world.rank());
    let (local, local_size) = (node.rank() as usize, node.size() as usize);
    let chosen_by_env = std::env::var_os("NMF_GPU_ADAPTER").is_some()
        || std::env::var_os("WGPU_ADAPTER_NAME").is_some();
    if choice != BackendArg::Gpu(None) || chosen_by_env {
        return choice;
    }
    #[cfg(feature = "gpu")]
    let count = nmf_gpu::GpuContext::adapters().len();
    #[cfg(not(feature = "gpu"))]
    let count = 0;
    if count == 0 {
        // Opening fails with its own message (no adapter), on every rank alike.
        return choice;
    }
    if local == 0 && local_size > count {
        eprintln!(
            "warning: {local_size} ranks on this node share {count} GPU adapter{} (node-local rank k opens adapter k mod {count}; --backend gpu:N or NMF_GPU_ADAPTER=N choose one)",
            if count == 1 { "" } else { "s" }
        );
    }
    choice.on_adapter_if_unnamed(local % count)
}

/// The adapter of every rank on rank 0, by rank (`null` for the CPU engine): its index in
/// `nmf info` and its name, gathered as one line of text per rank.
fn gather_adapters<C: Communicator>(world: &C, backend: &nmf_gpu::Backend) -> serde_json::Value {
    // Never empty: MPI refuses a gather whose send and receive buffers are the same address,
    // which two empty Rust buffers are. The first byte is a marker, dropped on rank 0.
    let mine = match backend {
        #[cfg(feature = "gpu")]
        nmf_gpu::Backend::Gpu(ctx) => format!("+{}", adapter_name(ctx)),
        // Several devices: every one, in the order of V's row panels.
        #[cfg(feature = "gpu")]
        nmf_gpu::Backend::MultiGpu(contexts) => {
            let names: Vec<String> = contexts.iter().map(adapter_name).collect();
            format!("+{}", names.join(" + "))
        }
        _ => "-".to_string(),
    };
    let bytes = mine.as_bytes();
    let root = world.process_at_rank(0);
    let len = bytes.len() as i32;
    if world.rank() != 0 {
        root.gather_into(&len);
        root.gather_varcount_into(bytes);
        return serde_json::Value::Null;
    }
    let mut lens = vec![0i32; world.size() as usize];
    root.gather_into_root(&len, &mut lens[..]);
    let displs: Vec<i32> = lens
        .iter()
        .scan(0, |a, &x| {
            let d = *a;
            *a += x;
            Some(d)
        })
        .collect();
    let total = lens.iter().map(|&x| x.max(0) as usize).sum();
    let mut all = vec![0u8; total];
    root.gather_varcount_into_root(
        bytes,
        &mut nmf_gpu::distributed::mpi::datatype::PartitionMut::new(
            &mut all[..],
            lens.clone(),
            displs.clone(),
        ),
    );
    let names: Vec<serde_json::Value> = lens
        .iter()
        .zip(&displs)
        .map(|(&l, &d)| {
            let text = String::from_utf8_lossy(&all[d as usize..(d + l) as usize]).into_owned();
            match text.strip_prefix('+') {
                Some(name) => serde_json::Value::String(name.to_string()),
                None => serde_json::Value::Null,
            }
        })
        .collect();
    serde_json::Value::Array(names)
}

/// A GPU rank's device counters: the fit's, the first iteration's, the later iterations' (sum),
/// and the bytes per later iteration, counted and by the formula.
fn device_json(d: nmf_gpu::distributed::DeviceStats) -> serde_json::Value {
    let stats = |s: nmf_gpu::GpuStats| {
        json!({
            "submissions": s.submissions,
            "dispatches": s.dispatches,
            "bind_groups_created": s.bind_groups_created,
            "buffers_created": s.buffers_created,
            "bytes_uploaded": s.bytes_uploaded,
            "read_backs": s.read_backs,
            "bytes_read_back": s.bytes_read_back,
        })
    };
    let k = d.steady_iterations.max(1);
    json!({
        "fit": stats(d.fit),
        "first_iteration": stats(d.first_iteration),
        "later_iterations": stats(d.steady),
        "later_iteration_count": d.steady_iterations,
        "upload_bytes_per_iteration": d.upload_bytes_per_iteration,
        "read_back_bytes_per_iteration": d.read_back_bytes_per_iteration,
        "measured_upload_bytes_per_iteration": d.steady.bytes_uploaded / k,
        "measured_read_back_bytes_per_iteration": d.steady.bytes_read_back / k,
    })
}

/// An adapter's name and backend, as summary.json lists it.
#[cfg(feature = "gpu")]
fn adapter_name(ctx: &nmf_gpu::GpuContext) -> String {
    let info = ctx.adapter_info();
    format!("{} ({:?})", info.name, info.backend)
}

/// `head` with the fields of `tail` appended (both JSON objects), in order.
fn extended(mut head: serde_json::Value, tail: serde_json::Value) -> serde_json::Value {
    if let (Some(h), serde_json::Value::Object(t)) = (head.as_object_mut(), tail) {
        h.extend(t);
    }
    head
}

/// Create the output directory (rank 0).
fn prepare(dir: &Path, _parts: bool) -> nmf_gpu::Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(NmfError::UnsupportedInput {
            path: dir.to_path_buf(),
            reason: "the output directory is a file, not a directory; choose another --output-dir"
                .into(),
        });
    }
    std::fs::create_dir_all(dir).map_err(|source| NmfError::Io {
        path: dir.to_path_buf(),
        action: "create the output directory",
        source,
    })
}
