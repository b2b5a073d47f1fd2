//! A calcium-imaging movie into neurons: a synthetic multi-page 16-bit TIFF, factorized online
//! straight from the file (each pixel's baseline, its 20th percentile over time, subtracted as
//! the frames stream), its parts matched to the planted ones.
//!
//! ```sh
//! cargo run --release --example movie                                   # 64x64, 1000 frames
//! cargo run --release --example movie -- --frames 200000 --bigtiff      # 1.6 GB, streamed
//! cargo run --release --example movie -- --input my_movie.tif --rank 20 # your own movie
//! cargo run --release --example movie -- --width 512 --height 512 --downsample 2 # 256x256 fit
//! ```
//!
//! Options: `--width W` (64), `--height H` (64), `--frames T` (1000), `--neurons K` (12),
//! `--radius R` (3 pixels), `--seed S` (0), `--bigtiff` (64-bit offsets: past 4 GiB);
//! `--input FILE` (a TIFF file or a directory of them to factorize instead of a synthetic movie;
//! nothing to match then); `--rank R` (K + 1: the neurons and the background),
//! `--batch-size B` (64), `--epochs E` (60, at most); `--baseline min|pQ|none` (p20: each
//! pixel's 20th percentile over time, subtracted and clamped at 0, which removes most of the
//! background and leaves its slow drift to one component), `--downsample K` (1: block means of
//! KxK pixels); `--write-only` (write the movie and stop); `--out DIR` (movie-out).
//!
//! Writes `movie.tif` (the synthetic movie), `components.png` (the spatial components, the
//! columns of W, as a montage; matched ones in the order of the planted neurons, unmatched
//! ones last), `traces.png` (the temporal components, the rows of H, for the first 500
//! frames, beside the planted traces) and `summary.json` (the match: each neuron's
//! footprint correlation after an optimal assignment, and their mean).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nmf_gpu::frames::{Baseline, FrameSource, FrameSteps};
use nmf_gpu::images::movie::{match_parts, write_synthetic_movie, MovieSpec};
use nmf_gpu::images::{self, MontageLayout, TileScale};
use nmf_gpu::io::tiff::TiffSource;
use nmf_gpu::io::ReadOptions;
use nmf_gpu::ndarray::{Array2, Axis};
use nmf_gpu::online::{OnlineNmf, Source};
use nmf_gpu::{Init, NmfError};
use plotters::prelude::*;

/// Factorize a (synthetic) calcium-imaging movie online from a TIFF stack.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Frame width of the synthetic movie.
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// Frame height of the synthetic movie.
    #[arg(long, default_value_t = 64)]
    height: usize,
    /// Frames of the synthetic movie.
    #[arg(long, default_value_t = 1000)]
    frames: usize,
    /// Neurons of the synthetic movie.
    #[arg(long, default_value_t = 12)]
    neurons: usize,
    /// Footprint radius (standard deviation), pixels.
    #[arg(long, default_value_t = 3.0)]
    radius: f32,
    /// Seed of the movie and of the fit.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write a BigTIFF (64-bit offsets), for movies past 4 GiB.
    #[arg(long)]
    bigtiff: bool,
    /// A TIFF file or directory of TIFF files to factorize instead of a synthetic movie.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Number of components (default: the neurons and one for the background).
    #[arg(long)]
    rank: Option<usize>,
    /// Frames per batch of the online fit.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Passes over the movie at most (the fit stops earlier once the loss stops improving).
    #[arg(long, default_value_t = 60)]
    epochs: usize,
    /// Per-pixel baseline subtracted as the frames stream: `min`, `pQ` (a percentile) or
    /// `none`.
    #[arg(long, default_value = "p20")]
    baseline: String,
    /// Downsample the frames by this factor (block means) before the fit.
    #[arg(long, default_value_t = 1)]
    downsample: usize,
    /// Write the synthetic movie, then stop (no fit).
    #[arg(long)]
    write_only: bool,
    /// Output directory.
    #[arg(long, default_value = "movie-out")]
    out: PathBuf,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), NmfError> {
    std::fs::create_dir_all(&args.out).map_err(|source| NmfError::Io {
        path: args.out.clone(),
        action: "create the output directory",
        source,
    })?;
    let spec = MovieSpec {
        width: args.width,
        height: args.height,
        frames: args.frames,
        neurons: args.neurons,
        radius: args.radius,
        seed: args.seed,
        ..MovieSpec::default()
    };
    // The movie: yours, or a synthetic one written frame by frame.
    let (path, truth) = match &args.input {
        Some(p) => (p.clone(), None),
        None => {
            let path = args.out.join("movie.tif");
            let start = Instant::now();
            let truth = write_synthetic_movie(&spec, &path, args.bigtiff)?;
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            println!(
                "wrote {} ({} frames of {}x{}, {:.1} MB) in {:.1} s",
                path.display(),
                spec.frames,
                spec.width,
                spec.height,
                bytes as f64 / 1e6,
                start.elapsed().as_secs_f64()
            );
            (path, Some(truth))
        }
    };
    if args.write_only {
        return Ok(());
    }
    // The fit, streamed from the file: one batch of frames in memory at a time, less each
    // pixel's baseline (computed by streaming the file once or twice first), downsampled.
    let mut steps = FrameSteps::new().downsample(args.downsample);
    if args.baseline != "none" {
        steps = steps.baseline(args.baseline.parse::<Baseline>()?);
    }
    let start = Instant::now();
    let mut source = FrameSource::new(TiffSource::open(&path, &ReadOptions::new())?, &steps)?;
    let frames = source.frames().clone();
    let (height, width) = source.frame_shape().unwrap_or((1, source.dim().0));
    let (m, n) = source.dim();
    let input = frames
        .input_shape()
        .map_or("?".to_string(), |s| s.to_string());
    for step in frames.steps() {
        println!("frame step: {step:?}");
    }
    println!(
        "frames {input} -> {height}x{width} (height x width), prepared in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let rank = args.rank.unwrap_or(spec.neurons + 1);
    let start = Instant::now();
    // NNDSVD with its zeros kept starts from sparse, local parts: neurons are found apart
    // from each other and from the background more reliably than from NNDSVDa or at random.
    let model = OnlineNmf::params(rank)
        .init(Init::Nndsvd)
        .batch_size(args.batch_size)
        .max_epochs(args.epochs)
        .seed(args.seed)
        .fit(&mut source)?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "fitted rank {rank} to {m} pixels x {n} frames online in {seconds:.1} s ({:.0} frames/s over {} epochs)",
        (n * model.report().epochs) as f64 / seconds.max(1e-9),
        model.report().epochs
    );
    // The traces: the encodings of every frame (only the first frames are kept for the plot).
    const SHOWN: usize = 500;
    let shown = n.min(SHOWN);
    let mut h = Array2::<f32>::zeros((rank, shown));
    source.rewind()?;
    model.transform_source(&mut source, |j0, hb| {
        for (c, col) in hb.axis_iter(Axis(1)).enumerate() {
            if j0 + c < shown {
                h.column_mut(j0 + c).assign(&col);
            }
        }
        Ok(())
    })?;
    // Order the components: matched ones as the planted neurons, the others after.
    let w = model.w();
    let (order, summary) = match &truth {
        Some(truth) => {
            // The planted footprints in the fit's geometry (cropped and downsampled alike).
            let footprints = frames.resample(truth.footprints.view())?;
            let matched = match_parts(footprints.view(), w)?;
            let mut order: Vec<usize> = matched.pairs.iter().map(|p| p.1).collect();
            order.extend(matched.unmatched(rank));
            for &(t, f, c) in &matched.pairs {
                println!("neuron {t:>3} <- component {f:>3}: footprint correlation {c:.3}");
            }
            println!(
                "mean matched footprint correlation: {:.3}",
                matched.mean()
            );
            let pairs: Vec<String> = matched
                .pairs
                .iter()
                .map(|(t, f, c)| format!("{{\"neuron\": {t}, \"component\": {f}, \"correlation\": {c:.4}}}"))
                .collect();
            let summary = format!(
                "{{\n  \"movie\": \"{}\",\n  \"width\": {width},\n  \"height\": {height},\n  \"frames\": {n},\n  \"neurons\": {},\n  \"rank\": {rank},\n  \"seconds\": {seconds:.3},\n  \"mean_correlation\": {:.4},\n  \"matches\": [\n    {}\n  ]\n}}\n",
                path.display(),
                spec.neurons,
                matched.mean(),
                pairs.join(",\n    ")
            );
            (order, summary)
        }
        None => (
            (0..rank).collect(),
            format!(
                "{{\n  \"movie\": \"{}\",\n  \"width\": {width},\n  \"height\": {height},\n  \"frames\": {n},\n  \"rank\": {rank},\n  \"seconds\": {seconds:.3}\n}}\n",
                path.display()
            ),
        ),
    };
    let ordered = w.select(Axis(1), &order);
    let picture = images::montage(
        ordered.view(),
        width,
        height,
        &MontageLayout::new(rank.min(8)).scale(TileScale::PerTile),
    )?;
    let components = args.out.join("components.png");
    images::save_png(&picture, &components)?;
    let traces = args.out.join("traces.png");
    plot_traces(
        &traces,
        &h.select(Axis(0), &order),
        truth.as_ref().map(|t| &t.traces),
    )?;
    let summary_path = args.out.join("summary.json");
    std::fs::write(&summary_path, summary).map_err(|source| NmfError::Io {
        path: summary_path.clone(),
        action: "write the file",
        source,
    })?;
    println!(
        "wrote {}, {} and {}",
        components.display(),
        traces.display(),
        summary_path.display()
    );
    Ok(())
}

/// One row per component: its encoding over time (blue), and the planted trace of the neuron
/// it was matched to (grey, behind), each scaled to its own peak.
fn plot_traces(
    path: &std::path::Path,
    h: &Array2<f32>,
    truth: Option<&Array2<f32>>,
) -> Result<(), NmfError> {
    let err = |e: String| NmfError::Io {
        path: path.to_path_buf(),
        action: "draw the traces",
        source: std::io::Error::other(e),
    };
    let (rows, frames) = h.dim();
    let (w, row_h) = (900u32, 60u32);
    let size = (w, row_h * rows as u32 + 20);
    let mut buf = vec![255u8; (size.0 * size.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let peak = |v: &[f32]| v.iter().fold(0.0f32, |a, &b| a.max(b)).max(1e-12);
        let x = |j: usize| 10 + (j as u32 * (w - 20) / frames.max(1) as u32) as i32;
        for r in 0..rows {
            let base = ((r as u32 + 1) * row_h + 5) as i32;
            let y = |v: f32, p: f32| base - ((v / p) * (row_h as f32 - 10.0)) as i32;
            if let Some(t) = truth.filter(|t| r < t.nrows()) {
                let row: Vec<f32> = t.row(r).iter().take(frames).copied().collect();
                let p = peak(&row);
                let pts: Vec<(i32, i32)> = row
                    .iter()
                    .enumerate()
                    .map(|(j, &v)| (x(j), y(v, p)))
                    .collect();
                root.draw(&PathElement::new(
                    pts,
                    RGBColor(180, 180, 180).stroke_width(2),
                ))
                .map_err(|e| err(e.to_string()))?;
            }
            let row: Vec<f32> = h.row(r).to_vec();
            let p = peak(&row);
            let pts: Vec<(i32, i32)> = row
                .iter()
                .enumerate()
                .map(|(j, &v)| (x(j), y(v, p)))
                .collect();
            root.draw(&PathElement::new(
                pts,
                RGBColor(30, 90, 200).stroke_width(1),
            ))
            .map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    image::save_buffer_with_format(
        path,
        &buf,
        size.0,
        size.1,
        image::ColorType::Rgb8,
        image::ImageFormat::Png,
    )
    .map_err(|e| err(e.to_string()))
}
