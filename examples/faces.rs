//! Faces into parts: NMF basis images beside PCA's eigenfaces (Lee & Seung, Nature 1999).
//!
//! ```sh
//! cargo run --release --example faces                       # synthetic faces, no data needed
//! cargo run --release --example faces -- --dir ~/cbcl/train/face --rank 49 --preprocess lee-seung
//! ```
//!
//! Options: `--dir DIR` (a directory of PGM/PNG/JPEG images, searched recursively; without it,
//! synthetic faces), `--rank R` (49), `--solver mu|hals` (mu), `--max-iter N` (500), `--tol T`
//! (1e-5), `--preprocess unit|lee-seung|none` (unit), `--backend cpu|gpu|auto` (auto),
//! `--out DIR` (faces-out), `--resize WxH` / `--crop WxH` (for images of different sizes),
//! `--images N` (number of synthetic faces, 1000), `--seed S` (0).
//!
//! Writes `bases.png` (the r columns of W), `pca.png` (the first r eigenfaces),
//! `reconstructions.png` (originals above their reconstructions WH) and `summary.json`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nmf_gpu::images::{
    self, ImageDirSource, ImageSet, MontageLayout, Preprocess, SizePolicy, TileScale,
};
use nmf_gpu::ndarray::{concatenate, Array2, ArrayView2, Axis};
use nmf_gpu::online::{ArraySource, OnlineNmf, Source};
use nmf_gpu::{Backend, BackendChoice, Factorization, Init, Nmf, NmfError, Solver};

/// Factorize face images with NMF and draw the parts beside PCA's eigenfaces.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Directory of PGM (P2/P5), PNG or JPEG images, searched recursively; without it,
    /// synthetic faces are made.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Number of basis images r.
    #[arg(long, default_value_t = 49)]
    rank: usize,
    /// Update algorithm.
    #[arg(long, value_enum, default_value = "mu")]
    solver: Solver,
    /// Initialisation: nndsvda (zeros of NNDSVD filled with the mean), nndsvd (zeros kept:
    /// sparser parts, the usual choice for HALS), nndsvdar or random.
    #[arg(long, value_enum, default_value = "nndsvda")]
    init: Init,
    /// Iteration budget.
    #[arg(long, default_value_t = 500)]
    max_iter: usize,
    /// Stop when the error improves by less than this fraction of the initial error between
    /// two checks (0: run all iterations).
    #[arg(long, default_value_t = 1e-5)]
    tol: f32,
    /// Scaling of the grey levels: unit (x/255), lee-seung (per image mean and standard
    /// deviation 0.25, clipped to [0, 1]) or none.
    #[arg(long, value_enum, default_value_t = PreprocessArg::Unit)]
    preprocess: PreprocessArg,
    /// Where the fit runs.
    #[arg(long, default_value = "auto", value_name = "cpu|gpu|gpu:N|auto")]
    backend: BackendChoice,
    /// Output directory.
    #[arg(long, default_value = "faces-out")]
    out: PathBuf,
    /// Resample every image to WxH (for directories of images of different sizes).
    #[arg(long, value_name = "WxH", conflicts_with = "crop")]
    resize: Option<Dims>,
    /// Keep the central WxH window of every image.
    #[arg(long, value_name = "WxH")]
    crop: Option<Dims>,
    /// Number of synthetic faces (without --dir).
    #[arg(long, default_value_t = 1000)]
    images: usize,
    /// Seed of the synthetic faces, the initialisation and the PCA.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Online (mini-batch) NMF: the images are decoded a batch at a time (never all in
    /// memory), W is learned from the batches, and the error is measured in one more pass.
    #[arg(long)]
    online: bool,
    /// With --online: images per batch.
    #[arg(long, default_value_t = 256, requires = "online")]
    batch_size: usize,
    /// With --online: at most this many passes over the images.
    #[arg(long, default_value_t = 20, requires = "online")]
    epochs: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PreprocessArg {
    Unit,
    LeeSeung,
    None,
}

/// A size given as `WxH`.
#[derive(Debug, Clone, Copy)]
struct Dims {
    width: u32,
    height: u32,
}

impl FromStr for Dims {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parse = |t: &str| t.trim().parse::<u32>().ok().filter(|&x| x > 0);
        match s.split_once(['x', 'X']) {
            Some((w, h)) => match (parse(w), parse(h)) {
                (Some(width), Some(height)) => Ok(Dims { width, height }),
                _ => Err(format!(
                    "`{s}` is not WxH with positive whole numbers (e.g. 92x112)"
                )),
            },
            None => Err(format!("`{s}` is not WxH (e.g. 92x112)")),
        }
    }
}

/// Tiles in the reconstruction picture (originals above, reconstructions below).
const RECONSTRUCTED: usize = 12;
/// Tiles are magnified until their longer side reaches at least this many pixels.
const MIN_TILE_SIDE: usize = 48;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), NmfError> {
    if args.online {
        return run_online(args);
    }
    let started = Instant::now();
    let backend = backend(args.backend)?;
    let (mut set, source) = match &args.dir {
        Some(dir) => (
            images::load_dir(dir, size_policy(args))?,
            dir.display().to_string(),
        ),
        None => (
            images::synthetic_faces(args.images, args.seed).images,
            "synthetic faces (outline, hair, brows, eyes, nose, mouth)".to_string(),
        ),
    };
    let preprocess = preprocess(args);
    preprocess.apply(set.matrix_mut());
    println!(
        "{} images of {}x{} from {source}, preprocess {preprocess} (loaded in {:.2} s)",
        set.len(),
        set.width(),
        set.height(),
        started.elapsed().as_secs_f64()
    );

    let solver = args.solver;
    let fit = fit_with_progress(args, solver, backend, set.matrix())?;
    let v = set.matrix();
    let relative_error = fit.relative_error(v)?;
    let w_sparseness = images::mean_column_sparseness(fit.w());
    let h_sparseness = images::mean_column_sparseness(fit.h());
    let pca = images::pca(v, args.rank, args.seed)?;
    let pca_sparseness = images::mean_column_sparseness(pca.components());
    let pca_variance: f64 = pca.explained_variance_ratio().sum();
    println!(
        "NMF rank {}, {}: {} iterations{} in {:.2} s on {}",
        args.rank,
        solver.name(),
        fit.n_iter(),
        if fit.converged() { " (converged)" } else { "" },
        fit.elapsed().as_secs_f64(),
        fit.engine()
    );
    println!("relative error ‖V − WH‖/‖V‖ = {relative_error:.4}");
    println!(
        "mean Hoyer sparseness: W {w_sparseness:.3}, H {h_sparseness:.3} (PCA's {} eigenfaces: {pca_sparseness:.3}, {:.1}% of the variance)",
        args.rank,
        100.0 * pca_variance
    );

    std::fs::create_dir_all(&args.out).map_err(|source| NmfError::Io {
        path: args.out.clone(),
        action: "create the output directory",
        source,
    })?;
    let written = write_pictures(&args.out, &set, &fit, pca.components())?;
    let summary = serde_json::json!({
        "images": set.len(),
        "width": set.width(),
        "height": set.height(),
        "rank": args.rank,
        "solver": solver.name(),
        "backend": fit.engine(),
        "iterations": fit.n_iter(),
        "relative_error": relative_error,
        "w_sparseness": w_sparseness,
        "h_sparseness": h_sparseness,
        "seconds": fit.elapsed().as_secs_f64(),
    });
    let summary_path = args.out.join("summary.json");
    let text = format!("{summary:#}\n");
    nmf_gpu::io::write_bytes_atomic(&summary_path, text.as_bytes())?;
    println!(
        "wrote {} and {}",
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        summary_path.display()
    );
    Ok(())
}

/// The size policy of `--resize` / `--crop`.
fn size_policy(args: &Args) -> SizePolicy {
    match (args.resize, args.crop) {
        (Some(d), _) => SizePolicy::Resize {
            width: d.width,
            height: d.height,
        },
        (None, Some(d)) => SizePolicy::CenterCrop {
            width: d.width,
            height: d.height,
        },
        (None, None) => SizePolicy::Exact,
    }
}

/// `--preprocess`.
fn preprocess(args: &Args) -> Preprocess {
    match args.preprocess {
        PreprocessArg::Unit => Preprocess::Unit,
        PreprocessArg::LeeSeung => Preprocess::LeeSeung,
        PreprocessArg::None => Preprocess::None,
    }
}

/// `--online`: stream the images (decoded a batch at a time from `--dir`, or the synthetic
/// faces from memory), learn W, then measure `‖V − WH‖/‖V‖` in one more pass, batch by batch.
fn run_online(args: &Args) -> Result<(), NmfError> {
    let backend = backend(args.backend)?;
    let preprocess = preprocess(args);
    let synthetic;
    let (mut source, width, height, what): (Box<dyn Source>, usize, usize, String) = match &args.dir
    {
        Some(dir) => {
            let src = ImageDirSource::open(dir, size_policy(args), preprocess)?;
            let (w, h) = (src.width(), src.height());
            (Box::new(src), w, h, dir.display().to_string())
        }
        None => {
            let mut set = images::synthetic_faces(args.images, args.seed).images;
            preprocess.apply(set.matrix_mut());
            synthetic = set;
            (
                Box::new(ArraySource::new(synthetic.matrix())),
                synthetic.width(),
                synthetic.height(),
                "synthetic faces".to_string(),
            )
        }
    };
    let n = source.dim().1;
    println!("{n} images of {width}x{height} from {what}, streamed in batches of {}, preprocess {preprocess}", args.batch_size);
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some((n * args.epochs) as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} online {bar:20} {pos}/{len} samples  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = bar.clone();
    let model = OnlineNmf::params(args.rank)
        .batch_size(args.batch_size)
        .max_epochs(args.epochs)
        .seed(args.seed)
        .backend(backend)
        .on_batch(move |p| {
            progress.set_position((p.epoch * p.samples_per_epoch + p.samples) as u64);
            progress.set_message(format!(
                "epoch {}  cost {:.4e}",
                p.epoch + 1,
                p.smoothed_cost
            ));
        })
        .fit(&mut source)?;
    bar.finish_and_clear();
    let rep = model.report();
    // ‖V − WH‖² and ‖V‖², one batch at a time.
    source.rewind()?;
    let (mut err_sq, mut v_sq) = (0.0f64, 0.0f64);
    while let Some(batch) = source.next_batch(args.batch_size)? {
        let h = model.transform(batch.view())?;
        let wh = model.w().dot(&h);
        err_sq += batch
            .iter()
            .zip(&wh)
            .map(|(&a, &b)| f64::from(a - b).powi(2))
            .sum::<f64>();
        v_sq += batch.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>();
    }
    let relative_error = (err_sq / v_sq.max(f64::MIN_POSITIVE)).sqrt();
    println!(
        "online NMF rank {}: {} epoch(s), {} batches, stop {:?}, {:.2} s on {}",
        args.rank,
        rep.epochs,
        rep.steps,
        rep.stop,
        rep.elapsed.as_secs_f64(),
        rep.engine
    );
    println!("relative error ‖V − WH‖/‖V‖ = {relative_error:.4}");
    std::fs::create_dir_all(&args.out).map_err(|source| NmfError::Io {
        path: args.out.clone(),
        action: "create the output directory",
        source,
    })?;
    let zoom = MIN_TILE_SIDE.div_ceil(width.max(height)).max(1) as u32;
    let grid = (args.rank as f64).sqrt().ceil() as usize;
    let layout = MontageLayout::new(grid).zoom(zoom).spacing(2);
    let bases = args.out.join("bases.png");
    images::save_png(&images::montage(model.w(), width, height, &layout)?, &bases)?;
    let summary = serde_json::json!({
        "images": n,
        "width": width,
        "height": height,
        "rank": args.rank,
        "online": true,
        "batch_size": args.batch_size,
        "epochs": rep.epochs,
        "batches": rep.steps,
        "stop": format!("{:?}", rep.stop),
        "backend": rep.engine,
        "relative_error": relative_error,
        "w_sparseness": images::mean_column_sparseness(model.w()),
        "seconds": rep.elapsed.as_secs_f64(),
    });
    let summary_path = args.out.join("summary.json");
    nmf_gpu::io::write_bytes_atomic(&summary_path, format!("{summary:#}\n").as_bytes())?;
    println!("wrote {} and {}", bases.display(), summary_path.display());
    Ok(())
}

/// The backend for `--backend`; `gpu` opens the device now, so that a missing GPU is reported
/// before any work is done.
fn backend(arg: BackendChoice) -> Result<Backend, NmfError> {
    arg.open()
}

/// The fit, with a progress bar on a terminal.
fn fit_with_progress(
    args: &Args,
    solver: Solver,
    backend: Backend,
    v: ArrayView2<'_, f32>,
) -> Result<Factorization, NmfError> {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(args.max_iter as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    let style = ProgressStyle::with_template(
        "{spinner} fitting {bar:20} {pos}/{len}  loss {msg}  ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    let progress = bar.clone();
    let fit = Nmf::params(args.rank)
        .solver(solver)
        .init(args.init.clone())
        .max_iter(args.max_iter)
        .tol(args.tol)
        .seed(args.seed)
        .backend(backend)
        .on_progress(move |p| {
            progress.set_position(p.iteration as u64);
            progress.set_message(format!("{:.4e}", p.loss));
        })
        .fit(v);
    bar.finish_and_clear();
    fit
}

/// `bases.png`, `pca.png` and `reconstructions.png` under `out`.
fn write_pictures(
    out: &Path,
    set: &ImageSet,
    fit: &Factorization,
    eigenfaces: ArrayView2<'_, f32>,
) -> Result<Vec<PathBuf>, NmfError> {
    let (width, height) = (set.width(), set.height());
    let zoom = MIN_TILE_SIDE.div_ceil(width.max(height)).max(1) as u32;
    let grid = (fit.rank() as f64).sqrt().ceil() as usize;
    let layout = MontageLayout::new(grid).zoom(zoom).spacing(2);

    let bases = out.join("bases.png");
    images::save_png(&images::montage(fit.w(), width, height, &layout)?, &bases)?;
    let pca = out.join("pca.png");
    images::save_png(&images::montage(eigenfaces, width, height, &layout)?, &pca)?;

    // Evenly spaced images, drawn on the originals' common scale.
    let v = set.matrix();
    let k = RECONSTRUCTED.min(set.len());
    let picked: Vec<usize> = (0..k).map(|i| i * set.len() / k).collect();
    let originals = v.select(Axis(1), &picked);
    let rebuilt: Array2<f32> = fit.inverse_transform(fit.h().select(Axis(1), &picked).view())?;
    let hi = originals.iter().fold(0.0f32, |a, &x| a.max(x));
    let both = concatenate(Axis(1), &[originals.view(), rebuilt.view()]).map_err(|e| {
        NmfError::ShapeMismatch {
            what: "originals and reconstructions",
            expected: "the same number of pixels".to_string(),
            found: e.to_string(),
        }
    })?;
    let layout = MontageLayout::new(k)
        .zoom(zoom)
        .spacing(2)
        .scale(TileScale::Range { lo: 0.0, hi });
    let reconstructions = out.join("reconstructions.png");
    images::save_png(
        &images::montage(both.view(), width, height, &layout)?,
        &reconstructions,
    )?;
    Ok(vec![bases, pca, reconstructions])
}
