//! The command line: commands, options and their help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use nmf_gpu::frames::{Baseline, Crop, FrameShape, FrameSteps};
use nmf_gpu::io::{HeaderMode, Storage};
use nmf_gpu::{Init, Loss, Orthogonality, Solver, SparseOrder};

/// Nonnegative matrix factorization V ≈ W H of a matrix stored in a file.
///
/// V (m x n) holds one sample per column and one feature per row; W (m x r) holds the r basis
/// vectors ("parts") in its columns and H (r x n) the encoding of each sample. Files in
/// scikit-learn's orientation (one sample per row) need --samples-as-rows.
#[derive(Debug, Parser)]
#[command(
    name = "nmf",
    version,
    propagate_version = true,
    after_help = "Exit codes: 0 done; 1 an error in the data, the files or the fit; 2 a usage error; 130 / 143 interrupted by SIGINT / SIGTERM (`fit` writes the model reached, see --resume)."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Factorize a matrix: write W.npy, H.npy and summary.json to an output directory.
    Fit(Box<FitArgs>),
    /// Encode new samples with a fitted W kept fixed: write their H to a .npy file.
    Transform(TransformArgs),
    /// Show the version, the CPU threads and every GPU adapter found.
    Info(InfoArgs),
    /// Which rank? Compare ranks by consensus, NMFk and cross-validation: write summary.json
    /// (with the recommended rank) and the pictures rank.png and consensus.png.
    Rank(RankArgs),
}

/// Where the data comes from.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// The data matrix: .npy (float32/float64, C or Fortran order), .csv, .tsv or .mtx
    /// (MatrixMarket coordinate or array); a .tif/.tiff stack or a directory of them (one frame
    /// per column, streamed with --online); a directory of images (one image per column); an
    /// HDF5 file (.h5/.hdf5, with --dataset; feature hdf5) or a Zarr store or array (a .zarr
    /// directory, zarr.json or .zarray), one sample per index of the first axis.
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: PathBuf,

    /// The dataset to read from an HDF5 file (`/group/name`) or the array inside a Zarr store
    /// (`group/name`): its first axis is the samples (columns of V), the other axes flattened
    /// are the features. Without it, an HDF5 file must hold one dataset and a Zarr path must be
    /// an array.
    #[arg(long, value_name = "NAME")]
    pub dataset: Option<String>,

    /// Whether the first line of a .csv/.tsv file is a header. `auto` treats a first line
    /// with no number in it as a header; `--header` alone means `yes`.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto", num_args = 0..=1, default_missing_value = "yes")]
    pub header: HeaderMode,

    /// How V is held in memory. `sparse` reads a MatrixMarket (.mtx) file into compressed
    /// sparse rows and runs (on either backend) in time and memory proportional to its stored
    /// entries. `auto` is sparse for a MatrixMarket coordinate file
    /// whose density (entries on its size line, doubled for a symmetric file, over
    /// rows x cols) is below 10%, and dense otherwise. `dense`
    /// reads every input as a dense matrix.
    #[arg(long, value_enum, value_name = "HOW", default_value = "auto")]
    pub storage: Storage,

    /// The most memory the command may take: bytes, or with a unit (512M, 8G, 1.5GiB; K, M, G
    /// and T are powers of 1024). The reader may take half of it and the fit all of it; a file
    /// or a fit that needs more is refused before anything is allocated. Default: the memory
    /// available when the command starts. Never above `ulimit -v` / `-d` or the cgroup's limit.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory_limit: Option<u64>,
}

impl InputArgs {
    /// The read options these arguments set (header mode, dataset).
    pub fn read_options(&self) -> nmf_gpu::io::ReadOptions {
        let mut options = nmf_gpu::io::ReadOptions::new().header(self.header);
        if let Some(bytes) = self.memory_limit {
            options = options.max_bytes(bytes / 2);
        }
        match &self.dataset {
            Some(name) => options.dataset(name.clone()),
            None => options,
        }
    }
}

/// Frame preprocessing of movies and image stacks (one frame a sample), in this order: crop,
/// downsample, baseline; recorded in summary.json and applied again by `nmf transform`.
#[derive(Debug, Clone, Args)]
pub struct FrameArgs {
    /// Keep the rectangle X,Y,WIDTH,HEIGHT of each frame (top-left pixel, then size); it must
    /// lie inside the frame.
    #[arg(long, value_name = "X,Y,W,H", value_parser = parse_crop)]
    pub crop: Option<Crop>,

    /// Average blocks of KxK pixels (after the crop); rows and columns that fill no whole
    /// block (height mod K, width mod K at the bottom and right) are cropped away.
    #[arg(long, value_name = "K", value_parser = positive_usize, allow_hyphen_values = true)]
    pub downsample: Option<usize>,

    /// Subtract each pixel's baseline over time (after the crop and downsampling), clamped at
    /// 0: `min` (exact, one extra pass over the data) or `pQ`, the Q-th percentile, e.g. `p10`
    /// (two extra passes; within half a histogram bin, exact for 8/16-bit frames spanning
    /// fewer levels than --baseline-bins).
    #[arg(long, value_name = "min|pQ", value_parser = parse_baseline)]
    pub baseline: Option<Baseline>,

    /// Histogram bins per pixel of a percentile --baseline (memory: 4 bytes per bin and pixel).
    #[arg(long, value_name = "B", default_value_t = nmf_gpu::frames::DEFAULT_BASELINE_BINS, value_parser = positive_usize, allow_hyphen_values = true)]
    pub baseline_bins: usize,

    /// The frames' HEIGHTxWIDTH, for --crop and --downsample of an input that does not record
    /// it (a .npy of frames x pixels with --samples-as-rows, or pixels x frames; a TIFF stack
    /// or an image directory knows its own).
    #[arg(long, value_name = "HxW", value_parser = parse_frame_shape)]
    pub frame_shape: Option<FrameShape>,
}

impl FrameArgs {
    /// The steps asked for within `memory_limit` (`--memory-limit`, when given), or `None`
    /// when none is (a frame shape alone changes nothing).
    pub fn steps_within(&self, memory_limit: Option<u64>) -> Option<FrameSteps> {
        let steps = self.steps()?;
        Some(match memory_limit {
            Some(bytes) => steps.memory_limit(bytes),
            None => steps,
        })
    }

    /// The steps asked for, or `None` when none is (a frame shape alone changes nothing).
    pub fn steps(&self) -> Option<FrameSteps> {
        if self.crop.is_none() && self.downsample.is_none_or(|k| k == 1) && self.baseline.is_none()
        {
            return None;
        }
        let mut steps = FrameSteps::new().baseline_bins(self.baseline_bins);
        if let Some(shape) = self.frame_shape {
            steps = steps.frame_shape(shape);
        }
        if let Some(crop) = self.crop {
            steps = steps.crop(crop);
        }
        if let Some(k) = self.downsample {
            steps = steps.downsample(k);
        }
        if let Some(b) = self.baseline {
            steps = steps.baseline(b);
        }
        Some(steps)
    }

    /// Whether any frame option was given.
    pub fn any(&self) -> bool {
        self.steps().is_some() || self.frame_shape.is_some()
    }
}

fn parse_crop(s: &str) -> Result<Crop, String> {
    s.parse::<Crop>().map_err(|_| {
        "must be X,Y,WIDTH,HEIGHT: four whole numbers, a size >= 1, e.g. 0,0,256,256".to_string()
    })
}

fn parse_baseline(s: &str) -> Result<Baseline, String> {
    s.parse::<Baseline>().map_err(|_| {
        "must be min, or pQ with 0 <= Q < 100 (the Q-th percentile), e.g. p10".to_string()
    })
}

fn parse_frame_shape(s: &str) -> Result<FrameShape, String> {
    s.parse::<FrameShape>()
        .map_err(|_| "must be HEIGHTxWIDTH, two whole numbers >= 1, e.g. 512x512".to_string())
}

/// `nmf fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub frames: FrameArgs,

    /// The rank r: the number of basis vectors (components).
    #[arg(long, short = 'r', value_parser = positive_usize, allow_hyphen_values = true)]
    pub rank: usize,

    /// Directory for W.npy (m x r), H.npy (r x n) and summary.json; created if missing.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output_dir: PathBuf,

    /// The update algorithm: multiplicative updates or HALS coordinate descent.
    #[arg(long, value_enum, default_value = "mu")]
    pub solver: Solver,

    /// The divergence minimised (kl and is, Itakura–Saito, need --solver mu).
    #[arg(long, value_enum, default_value = "frobenius")]
    pub loss: Loss,

    /// Minimise the β-divergence of this β instead of --loss (2 Frobenius, 1 KL, 0 is; any
    /// other finite β with --solver mu).
    #[arg(long, value_name = "B", conflicts_with = "loss", value_parser = finite_f32, allow_hyphen_values = true)]
    pub beta: Option<f32>,

    /// The initialisation of W and H.
    #[arg(long, value_enum, default_value = "nndsvda")]
    pub init: Init,

    /// Maximum number of iterations.
    #[arg(long, default_value_t = 200, value_parser = positive_usize, allow_hyphen_values = true)]
    pub max_iter: usize,

    /// Stop when the error improves by less than this fraction of the initial error between
    /// checks (every 10 iterations); 0 runs exactly --max-iter iterations.
    #[arg(long, default_value_t = 1e-4, value_parser = nonnegative_f32, allow_hyphen_values = true)]
    pub tol: f32,

    /// Seed for every random choice.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub seed: u64,

    /// Regularisation strength on W (scaled by n, as in scikit-learn).
    #[arg(long, default_value_t = 0.0, value_parser = nonnegative_f32, allow_hyphen_values = true)]
    pub alpha_w: f32,

    /// Regularisation strength on H (scaled by m); defaults to --alpha-w.
    #[arg(long, value_parser = nonnegative_f32, allow_hyphen_values = true)]
    pub alpha_h: Option<f32>,

    /// Share of L1 in the penalty: 0 = ridge (L2), 1 = lasso (L1).
    #[arg(long, default_value_t = 0.0, value_parser = unit_f32, allow_hyphen_values = true)]
    pub l1_ratio: f32,

    /// Orthogonal NMF: h constrains H Hᵀ = I (clusters the samples), w constrains Wᵀ W = I
    /// (clusters the features); needs --solver mu and --loss frobenius.
    #[arg(long, value_enum, default_value = "none")]
    pub orthogonal: Orthogonality,

    /// Where the iterations run.
    #[arg(
        long,
        default_value = "auto",
        value_name = "cpu|gpu|gpu:N|gpu:N,M|gpu:all|auto"
    )]
    pub backend: BackendArg,

    /// The order of a sparse V's rows and columns during a single-process fit (a matter of
    /// speed: the result is V's order, equal to the stored order's to float rounding).
    #[arg(long, value_enum, default_value = "stored")]
    pub sparse_order: SparseOrder,

    /// Write the current model (W.npy, H.npy, summary.json with "checkpoint": true) to the
    /// output directory every N iterations, as a unit; `--resume` continues from it.
    #[arg(long, value_name = "N", value_parser = positive_usize, allow_hyphen_values = true)]
    pub checkpoint_every: Option<usize>,

    /// Continue the fit saved in DIR (by an interrupted run, a checkpoint or a finished fit)
    /// from its W, H and iteration count; --max-iter stays the total budget, so rerunning an
    /// interrupted command with --resume finishes it. The saved model must have the same
    /// shape, rank, solver, loss, --orthogonal and --samples-as-rows.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,

    /// The file holds one sample per row (scikit-learn's X, samples x features); it is
    /// transposed so that W is features x r and H is r x samples.
    #[arg(long)]
    pub samples_as_rows: bool,

    #[command(flatten)]
    pub print: PrintArgs,

    /// Run as one rank of an MPI job (also chosen by --grid, --output-parts, or when mpirun /
    /// srun started the process): each rank reads its block of a .npy file.
    #[cfg(feature = "mpi")]
    #[arg(long)]
    pub distributed: bool,

    /// The process grid of a distributed fit, PRxPC (PR·PC = the number of ranks); chosen from
    /// the number of ranks and the shape of V when not given.
    #[cfg(feature = "mpi")]
    #[arg(long, value_name = "PRxPC")]
    pub grid: Option<String>,

    /// Distributed fit: every rank writes its pieces (W.part-K.npy, H.part-K.npy) instead of
    /// rank 0 gathering W.npy and H.npy.
    #[cfg(feature = "mpi")]
    #[arg(long)]
    pub output_parts: bool,

    /// Online (mini-batch) NMF: stream the samples in batches, so that memory is bounded by
    /// the batch, not by the number of samples (a .npy is read piece by piece, an image
    /// directory decoded batch by batch; other formats are read whole, then streamed). H is
    /// written batch by batch with the final W, in Fortran order.
    #[arg(long)]
    pub online: bool,

    /// With --online: samples per batch.
    #[arg(long, default_value_t = 1024, value_parser = positive_usize, allow_hyphen_values = true, requires = "online")]
    pub batch_size: usize,

    /// With --online: at most this many passes over the data (the stopping rules may end the
    /// fit sooner).
    #[arg(long, value_parser = positive_usize, allow_hyphen_values = true, requires = "online")]
    pub epochs: Option<usize>,

    /// With --online: stop after this many batches without a new minimum of the smoothed
    /// batch cost; 0 turns the rule off (then only --epochs and --tol end the fit).
    #[arg(long, default_value_t = 10, requires = "online")]
    pub max_no_improvement: usize,

    /// With --online: write W.npy (and summary.json) only, not H.npy (which needs one more
    /// pass over the data).
    #[arg(long, requires = "online")]
    pub no_h: bool,
}

/// What `fit` and `rank` print besides their files.
#[derive(Debug, Args)]
pub struct PrintArgs {
    /// Print nothing but errors (and the summary with --json).
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Print the summary as JSON on standard output.
    #[arg(long)]
    pub json: bool,
}

impl PrintArgs {
    /// Whether progress and the readable summary are printed: neither --quiet nor --json.
    pub fn chatty(&self) -> bool {
        !self.quiet && !self.json
    }
}

/// `nmf transform`.
#[derive(Debug, Args)]
pub struct TransformArgs {
    /// A directory written by `nmf fit` (W.npy and summary.json). The new data must be laid
    /// out like the data of that fit (the same --samples-as-rows choice is applied), and the
    /// fit's frame preprocessing (--crop, --downsample, --baseline) is applied to it again (the
    /// baseline computed from the new data).
    #[arg(long, short = 'm', value_name = "DIR")]
    pub model: PathBuf,

    #[command(flatten)]
    pub input: InputArgs,

    /// Where to write H (r x samples) as a float32 .npy file.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,

    /// Where the iterations run.
    #[arg(
        long,
        default_value = "auto",
        value_name = "cpu|gpu|gpu:N|gpu:N,M|gpu:all|auto"
    )]
    pub backend: BackendArg,

    /// Print nothing but errors.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `nmf info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Also time every candidate configuration of the matrix product on the GPU adapter a fit
    /// would open (the tuner's table: configuration, milliseconds, GFLOP/s), on the products
    /// an NMF iteration runs (W H, V Hᵀ, Wᵀ V, Wᵀ W); takes a few seconds.
    #[arg(long)]
    pub tune: bool,
}

/// `nmf rank`.
#[derive(Debug, Args)]
pub struct RankArgs {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub frames: FrameArgs,

    /// The ranks to compare, both ends included: `2..20` (also `2..=20`, `2-20`, or one rank).
    /// The smallest is 2, the largest min(rows, columns).
    #[arg(long, value_name = "FROM..TO", value_parser = rank_range, allow_hyphen_values = true)]
    pub ranks: (usize, usize),

    /// Fits per rank for consensus and NMFk.
    #[arg(long, default_value_t = 30, value_parser = positive_usize, allow_hyphen_values = true)]
    pub runs: usize,

    /// How ranks are compared: consensus clustering of restarts (cophenetic correlation,
    /// dispersion), NMFk (silhouettes of perturbed runs), cross-validation (held-out error),
    /// or all three (the recommended rank is the one most of them choose).
    #[arg(long, value_enum, default_value = "all")]
    pub method: MethodArg,

    /// Directory for summary.json, rank.png, consensus.png and heldout.png; created if missing.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output_dir: PathBuf,

    /// The update algorithm of the inner fits.
    #[arg(long, value_enum, default_value = "hals")]
    pub solver: Solver,

    /// Iteration budget of each inner fit (cross-validation's masked fits get 3 times it,
    /// bi-cross-validation's fits 10 times).
    #[arg(long, default_value_t = 50, value_parser = positive_usize, allow_hyphen_values = true)]
    pub max_iter: usize,

    /// Stopping tolerance of each inner fit.
    #[arg(long, default_value_t = 1e-4, value_parser = nonnegative_f32, allow_hyphen_values = true)]
    pub tol: f32,

    /// Seed for every random choice (the result is the same for the same seed).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub seed: u64,

    /// NMFk: multiplicative noise on the data, each entry times 1 + U(-NOISE, NOISE).
    #[arg(long, default_value_t = 0.03, value_parser = unit_f32, allow_hyphen_values = true)]
    pub noise: f32,

    /// NMFk: the largest rank whose minimum silhouette reaches this is chosen.
    #[arg(long, default_value_t = 0.7, allow_hyphen_values = true)]
    pub threshold: f64,

    /// Cross-validation: the share of entries held out.
    #[arg(long, default_value_t = 0.1, value_parser = unit_f32, allow_hyphen_values = true)]
    pub holdout: f32,

    /// Cross-validation: masked fits per rank, each with its own held-out entries.
    #[arg(long, default_value_t = 3, value_parser = positive_usize, allow_hyphen_values = true)]
    pub cv_repeats: usize,

    /// Where the fits run (on a GPU they are queued on one device; on the CPU they run side
    /// by side, one per thread).
    #[arg(
        long,
        default_value = "auto",
        value_name = "cpu|gpu|gpu:N|gpu:N,M|gpu:all|auto"
    )]
    pub backend: BackendArg,

    /// The file holds one sample per row (scikit-learn's X); it is transposed first.
    #[arg(long)]
    pub samples_as_rows: bool,

    #[command(flatten)]
    pub print: PrintArgs,
}

/// `--method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// Consensus clustering of restarts (Brunet et al. 2004).
    Consensus,
    /// NMFk: stability of the basis under perturbation.
    Nmfk,
    /// Cross-validation by held-out entries.
    Cv,
    /// Bi-cross-validation by a held-out block of rows and columns (Owen & Perry 2009).
    Bicv,
    /// All four.
    All,
}

/// `--ranks`: `A..B`, `A..=B`, `A-B` or `A`, with 2 <= A <= B.
pub fn rank_range(s: &str) -> Result<(usize, usize), String> {
    let t = s.trim();
    let (a, b) = if let Some((a, b)) = t.split_once("..=") {
        (a, b)
    } else if let Some((a, b)) = t.split_once("..") {
        (a, b)
    } else if let Some((a, b)) = t.split_once('-').filter(|(a, _)| !a.is_empty()) {
        (a, b)
    } else {
        (t, t)
    };
    let parse = |x: &str| {
        x.trim()
            .parse::<usize>()
            .map_err(|_| format!("`{s}` is not a range of ranks: write FROM..TO, e.g. 2..20"))
    };
    let (a, b) = (parse(a)?, parse(b)?);
    if a < 2 {
        return Err("the smallest rank compared is 2 (one component clusters nothing)".into());
    }
    if a > b {
        return Err(format!(
            "the range {a}..{b} is empty: give the smaller rank first, e.g. {b}..{a}"
        ));
    }
    Ok((a, b))
}

impl FitArgs {
    /// The loss of `--loss`, or of `--beta`.
    pub fn loss(&self) -> Loss {
        match self.beta {
            Some(b) => Loss::beta(b),
            None => self.loss,
        }
    }
}

/// The flag that asks for `loss`: `--loss NAME`, or `--beta B` for a β without a name.
pub fn loss_flag(loss: Loss) -> String {
    match loss.canonical() {
        Loss::Beta(b) => format!("--beta {b}"),
        other => format!("--loss {}", other.name()),
    }
}

/// `--backend`: the library's one list of engine names (`cpu`, `gpu`, `gpu:N`, `gpu:N,M,…`,
/// `gpu:all`, `auto`).
pub use nmf_gpu::BackendChoice as BackendArg;

/// A size in bytes: a whole number, or a number with a unit K, M, G, T (powers of 1024; `KB`,
/// `KiB`, `k` alike), e.g. `512M`, `1.5GiB`; at least 1 MiB.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || format!("expected a size such as 512M, 8G or 1.5GiB, found {s:?}");
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_lowercase();
    let scale: f64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let bytes = number * scale;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    if bytes < (1u64 << 20) as f64 {
        return Err(format!(
            "{s:?} is below 1 MiB: too little memory for any fit"
        ));
    }
    Ok(bytes as u64)
}

/// A whole number >= 1 (a rank, an iteration count).
pub fn positive_usize(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(v) => Ok(v),
        Err(_) => Err("must be a whole number >= 1".to_string()),
    }
}

/// A finite number >= 0 (a tolerance, a regularisation strength).
pub fn nonnegative_f32(s: &str) -> Result<f32, String> {
    let v: f32 = s
        .trim()
        .parse()
        .map_err(|_| "must be a number >= 0".to_string())?;
    if !v.is_finite() {
        return Err("must be a finite number >= 0 (not NaN or infinite)".to_string());
    }
    if v < 0.0 {
        return Err("must be >= 0".to_string());
    }
    Ok(v)
}

/// A finite number (β).
pub fn finite_f32(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err("must be a finite number".to_string()),
    }
}

/// A number in [0, 1] (a share).
pub fn unit_f32(s: &str) -> Result<f32, String> {
    let v: f32 = s
        .trim()
        .parse()
        .map_err(|_| "must be a number between 0 and 1".to_string())?;
    if !(0.0..=1.0).contains(&v) {
        return Err("must be between 0 and 1 (0 = ridge, 1 = lasso)".to_string());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nmf_gpu::io::{HeaderMode, Storage};

    /// `nmf fit` with one extra option, parsed.
    fn fit_with(option: &str, value: &str) -> Result<FitArgs, clap::Error> {
        let cli = Cli::try_parse_from([
            "nmf", "fit", "-i", "v.npy", "-o", "out", "-r", "2", option, value,
        ])?;
        match cli.command {
            Command::Fit(args) => Ok(*args),
            other => panic!("parsed as {other:?}"),
        }
    }

    /// Every name and alias of the library's lists is accepted, as the value the library's
    /// `from_name` gives; a name outside them is a usage error.
    #[test]
    fn the_options_take_exactly_the_library_names() {
        for s in Solver::ALL {
            for name in std::iter::once(s.name()).chain(s.aliases().iter().copied()) {
                assert_eq!(fit_with("--solver", name).unwrap().solver, s, "{name}");
            }
        }
        for l in Loss::ALL {
            for name in std::iter::once(l.name()).chain(l.aliases().iter().copied()) {
                assert_eq!(fit_with("--loss", name).unwrap().loss(), l, "{name}");
            }
        }
        for i in Init::NAMED {
            assert_eq!(&fit_with("--init", i.name()).unwrap().init, i);
        }
        for o in Orthogonality::ALL {
            for name in std::iter::once(o.name()).chain(o.aliases().iter().copied()) {
                assert_eq!(fit_with("--orthogonal", name).unwrap().orthogonal, o);
            }
        }
        for s in Storage::ALL {
            assert_eq!(fit_with("--storage", s.name()).unwrap().input.storage, s);
        }
        for h in HeaderMode::ALL {
            assert_eq!(fit_with("--header", h.name()).unwrap().input.header, h);
        }
        for (text, bytes) in [
            ("2097152", 2u64 << 20),
            ("512M", 512 << 20),
            ("8G", 8 << 30),
            ("1.5GiB", 3 << 29),
            ("64 MB", 64 << 20),
            ("1t", 1 << 40),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
            assert_eq!(
                fit_with("--memory-limit", text).unwrap().input.memory_limit,
                Some(bytes)
            );
        }
        for bad in ["", "G", "12X", "-1G", "100", "1e9", "nan"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        for (option, bad) in [
            ("--solver", "sgd"),
            ("--loss", "beta"),
            ("--init", "custom"),
            ("--orthogonal", "x"),
            ("--storage", "csr"),
            ("--header", "maybe"),
        ] {
            assert!(fit_with(option, bad).is_err(), "{option} {bad}");
        }
    }
}
