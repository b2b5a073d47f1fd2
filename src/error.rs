//! The one error type of the crate: one variant per thing a user can fix.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Which factor of `V ≈ W H` an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    /// The basis matrix `W` (m x r).
    W,
    /// The encoding matrix `H` (r x n).
    H,
}

impl std::fmt::Display for Factor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Factor::W => "W",
            Factor::H => "H",
        })
    }
}

/// Everything that can go wrong in `nmf_gpu`. Messages say what was wrong and how to fix it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NmfError {
    /// The input matrix has no rows or no columns.
    #[error("the input matrix is empty ({rows} x {cols}); V needs at least one row (feature) and one column (sample)")]
    EmptyInput {
        /// Number of rows of the input.
        rows: usize,
        /// Number of columns of the input.
        cols: usize,
    },

    /// The input matrix has a negative entry.
    #[error("the input matrix has a negative entry {value} at row {row}, column {col}; NMF needs V >= 0 everywhere (clip, shift or take absolute values first)")]
    NegativeInput {
        /// Row of the first negative entry found (row-major scan).
        row: usize,
        /// Column of that entry.
        col: usize,
        /// The entry.
        value: f32,
    },

    /// The input matrix has a NaN or infinite entry.
    #[error("the input matrix has a non-finite entry ({value}) at row {row}, column {col}; remove or impute NaN/Inf values first")]
    NonFiniteInput {
        /// Row of the first non-finite entry found.
        row: usize,
        /// Column of that entry.
        col: usize,
        /// The entry.
        value: f32,
    },

    /// The input's shape does not match what a fitted model expects.
    #[error("shape mismatch for {what}: expected {expected}, got {found}")]
    ShapeMismatch {
        /// What was being checked.
        what: &'static str,
        /// The expected shape, in words.
        expected: String,
        /// The shape found.
        found: String,
    },

    /// The rank is zero.
    #[error("the rank (number of components) must be at least 1")]
    ZeroRank,

    /// The rank is too large for the chosen initialisation.
    #[error("rank {rank} is too large: at most {limit} with the {init} initialisation (NNDSVD variants need rank <= min(m, n) for their SVD, and no factorization needs more than max(m, n)); lower the rank")]
    RankTooLarge {
        /// The requested rank.
        rank: usize,
        /// min(m, n).
        limit: usize,
        /// The initialisation that cannot provide that rank.
        init: &'static str,
    },

    /// A custom initial factor has the wrong shape.
    #[error("custom initial {factor} has shape {found_rows} x {found_cols}, expected {expected_rows} x {expected_cols} (W is m x r, H is r x n)")]
    InitShape {
        /// Which factor.
        factor: Factor,
        /// Expected rows.
        expected_rows: usize,
        /// Expected columns.
        expected_cols: usize,
        /// Rows found.
        found_rows: usize,
        /// Columns found.
        found_cols: usize,
    },

    /// A custom initial factor has a negative or non-finite entry.
    #[error("custom initial {factor} has an invalid entry {value} at row {row}, column {col}; initial factors must be finite and >= 0")]
    InitInvalidEntry {
        /// Which factor.
        factor: Factor,
        /// Row of the entry.
        row: usize,
        /// Column of the entry.
        col: usize,
        /// The entry.
        value: f32,
    },

    /// A custom initial factor is identically zero, which multiplicative updates can never leave.
    #[error("custom initial {factor} is all zeros; multiplicative updates cannot move away from zero (use a positive initialisation)")]
    InitAllZero {
        /// Which factor.
        factor: Factor,
    },

    /// The tolerance is negative or not finite.
    #[error("tol must be finite and >= 0 (got {0}); use 0 to run exactly max_iter iterations")]
    InvalidTol(f32),

    /// `max_iter` is zero.
    #[error("max_iter must be at least 1")]
    ZeroMaxIter,

    /// `check_every` is zero.
    #[error("check_every must be at least 1 (the loss is computed every check_every iterations)")]
    ZeroCheckEvery,

    /// A regularisation strength is negative or not finite.
    #[error("{name} must be finite and >= 0 (got {value})")]
    InvalidRegularization {
        /// `alpha_w` or `alpha_h`.
        name: &'static str,
        /// The value given.
        value: f32,
    },

    /// `l1_ratio` is outside [0, 1].
    #[error("l1_ratio must lie in [0, 1] (got {0}); 0 is a pure L2 penalty, 1 a pure L1 penalty")]
    InvalidL1Ratio(f32),

    /// `epsilon` is not a small positive number.
    #[error("epsilon must be finite and > 0 (got {0})")]
    InvalidEpsilon(f32),

    /// The solver does not minimise the requested loss ([`Solver::admits`](crate::Solver::admits)
    /// states the rule).
    #[error("the solver {solver} minimises the Frobenius loss only, not {loss}: use the solver mu (multiplicative updates) for {loss}")]
    UnsupportedLoss {
        /// The solver's name ([`Solver::name`](crate::Solver::name)).
        solver: &'static str,
        /// The loss's name ([`Loss::name`](crate::Loss::name)).
        loss: &'static str,
    },

    /// The iterations produced a non-finite loss (numerical breakdown).
    #[error("the loss became non-finite at iteration {iteration}; the data may be badly scaled (try rescaling V to [0, 1])")]
    NumericalBreakdown {
        /// Iteration at which it was detected.
        iteration: usize,
    },

    /// No GPU adapter with compute shaders was found.
    #[error("no usable GPU adapter: {reason}. Install a Vulkan driver for your GPU; on a machine without one, `apt-get install mesa-vulkan-drivers libvulkan1` provides lavapipe (Vulkan on the CPU). Check WGPU_BACKEND / WGPU_ADAPTER_NAME if set, or use Backend::Cpu (Backend::Auto falls back to it)")]
    GpuNoAdapter {
        /// Why no adapter was usable.
        reason: String,
    },

    /// The adapter was found but the device could not be opened.
    #[error("could not open the GPU device on adapter {adapter}: {reason}; update the GPU driver, pick another adapter with WGPU_ADAPTER_NAME, or use Backend::Cpu")]
    GpuDevice {
        /// The adapter's name.
        adapter: String,
        /// What the driver reported.
        reason: String,
    },

    /// A kernel failed to compile or its pipeline could not be created.
    #[error("GPU kernel `{kernel}` could not be built on this adapter: {message}; please report this with the adapter name (GpuContext::adapter_info), and use Backend::Cpu meanwhile")]
    GpuShader {
        /// The kernel's entry point.
        kernel: &'static str,
        /// The compiler's or driver's message.
        message: String,
    },

    /// The device ran out of memory.
    #[error("the GPU ran out of memory allocating {bytes} bytes for {what}; lower the rank, factorize a smaller matrix, free GPU memory used by other programs, or use Backend::Cpu")]
    GpuOutOfMemory {
        /// What was being allocated.
        what: String,
        /// Bytes requested (0 when the driver did not say).
        bytes: u64,
    },

    /// A matrix is larger than the device can bind at once.
    #[error("{what} needs {bytes} bytes on the GPU but this adapter binds at most {limit} bytes at once; lower the rank or the number of samples per fit, or use Backend::Cpu")]
    GpuBufferTooLarge {
        /// What was being allocated.
        what: String,
        /// Bytes needed.
        bytes: u64,
        /// The adapter's limit.
        limit: u64,
    },

    /// Reading results back from the device failed.
    #[error("reading results back from the GPU failed: {message}; retry with a new GpuContext, or use Backend::Cpu")]
    GpuMapFailed {
        /// What went wrong.
        message: String,
    },

    /// The device was lost (driver reset, timeout, GPU removed).
    #[error("the GPU device was lost ({message}), e.g. by a driver reset or a watchdog timeout; create a new GpuContext and fit again, or use Backend::Cpu")]
    GpuDeviceLost {
        /// The driver's message.
        message: String,
    },

    /// The device reported an error nmf-gpu did not expect.
    #[error("the GPU reported an unexpected error: {message}; please report this with the adapter name (GpuContext::adapter_info), and use Backend::Cpu meanwhile")]
    GpuInternal {
        /// The device's message.
        message: String,
    },
    /// A factor handed to the library (e.g. a saved W) has a negative or non-finite entry.
    #[error("{factor} has an invalid entry {value} at row {row}, column {col}; a factor must be finite and >= 0")]
    InvalidFactorEntry {
        /// Which factor.
        factor: Factor,
        /// Row of the entry.
        row: usize,
        /// Column of the entry.
        col: usize,
        /// The entry.
        value: f32,
    },

    /// A file could not be opened, read, created or written.
    #[error("{}: could not {action}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was attempted, in words ("open the file", "create the output directory", ...).
        action: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// A file's contents do not follow its format (bad header, truncated data, a cell that is not a number).
    #[error("{}: {message}", file_location(path, *line, *column))]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line of a text file, when the problem is on one line.
        line: Option<usize>,
        /// 1-based column (field) on that line, when known.
        column: Option<usize>,
        /// What is wrong, and how to fix it.
        message: String,
    },

    /// A file declares (or holds) a matrix too large to load; refused before allocating it.
    #[error("{}: {what} needs {} as float32, more than the input limit of {} ({}); factorize a smaller matrix or use a machine with more memory", path.display(), human_bytes(*bytes), human_bytes(u128::from(*limit)), limit_origin(*limit))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The matrix, in words (e.g. "the declared 100000 x 100000 matrix").
        what: String,
        /// Bytes the matrix would take as float32.
        bytes: u128,
        /// The limit in bytes.
        limit: u64,
    },

    /// A fit would need more memory than it may take; refused before allocating anything.
    #[error("the fit needs about {} of memory ({detail}), more than the limit of {} ({}); lower the rank, use sparse storage for sparse data, or use a machine with more memory", human_bytes(u128::from(*need)), human_bytes(u128::from(*limit)), limit_origin(*limit))]
    FitTooLarge {
        /// Estimated peak bytes of the fit.
        need: u64,
        /// The limit in bytes.
        limit: u64,
        /// What the estimate is made of.
        detail: String,
    },

    /// Bad data (or an unreadable file) found part-way through a streamed source; the online
    /// fit stops there and returns no model.
    #[error("{origin}: {source}; the online fit stopped there and returned no model")]
    InStream {
        /// Where: the sample (column) and, for files, the file.
        origin: String,
        /// What was wrong.
        source: Box<NmfError>,
    },

    /// A file (or directory) is of a kind this build cannot read.
    #[error("{}: {reason}", path.display())]
    UnsupportedInput {
        /// The file or directory.
        path: PathBuf,
        /// Why, and what would work instead.
        reason: String,
    },

    /// A directory (searched recursively) holds no image file of a readable kind.
    #[error("{}: no image files found (searched recursively for .pgm, .pnm, .ppm, .pbm, .png, .jpg and .jpeg files); give the directory that holds the images", dir.display())]
    NoImages {
        /// The directory searched.
        dir: PathBuf,
    },

    /// The images of a set differ in size and neither resizing nor cropping was asked for.
    #[error("{}: the image is {other_width}x{other_height} but the first image, {}, is {first_width}x{first_height}; the images differ in size: resize or crop them to one size (images::SizePolicy::Resize or SizePolicy::CenterCrop; --resize WxH or --crop WxH in the faces example)", other.display(), first.display())]
    MixedImageSizes {
        /// The first image in file order.
        first: PathBuf,
        /// Its width in pixels.
        first_width: u32,
        /// Its height in pixels.
        first_height: u32,
        /// The first image whose size differs from it.
        other: PathBuf,
        /// Its width in pixels.
        other_width: u32,
        /// Its height in pixels.
        other_height: u32,
    },

    /// An image file could not be decoded.
    #[error("{}: cannot decode the image ({reason}); replace the file with a complete PGM (P2/P5), PNG or JPEG image, or remove it from the directory", path.display())]
    UndecodableImage {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },

    /// An image is smaller than the window it is to be cropped to.
    #[error("{}: the image is {width}x{height}, smaller than the {crop_width}x{crop_height} crop; crop to at most the smallest image's size, or resize instead", path.display())]
    ImageTooSmall {
        /// The file.
        path: PathBuf,
        /// Its width in pixels.
        width: u32,
        /// Its height in pixels.
        height: u32,
        /// The width of the crop.
        crop_width: u32,
        /// The height of the crop.
        crop_height: u32,
    },

    /// A picture could not be encoded.
    #[error("{}: cannot encode the picture ({reason})", path.display())]
    ImageEncode {
        /// The file it was meant for.
        path: PathBuf,
        /// The encoder's message.
        reason: String,
    },
    /// An option that only works together with another setting.
    #[error("{option} requires {requires}")]
    UnsupportedOption {
        /// The option, in words.
        option: &'static str,
        /// What it needs instead.
        requires: &'static str,
    },

    /// A process grid that does not fit the job or the matrix (distributed fits).
    #[error("invalid process grid: {reason}")]
    InvalidGrid {
        /// What is wrong and what would work.
        reason: String,
    },

    /// Another rank of a distributed fit failed (it reports its own error).
    #[error("rank {rank} of the distributed fit failed (its error is printed by that rank)")]
    PeerFailed {
        /// The lowest failing rank.
        rank: usize,
    },

    /// Two label vectors that should describe the same samples differ in length.
    #[error("the predicted labels have {pred} entries but the true labels have {truth}; both must label the same samples, in the same order")]
    LabelLengthMismatch {
        /// Number of predicted labels.
        pred: usize,
        /// Number of true labels.
        truth: usize,
    },

    /// No labels were given to a clustering score.
    #[error("no labels given; a clustering score needs at least one labelled sample")]
    EmptyLabels,

    /// A matrix that must be square (a graph's adjacency, a similarity matrix) is not.
    #[error("{what} must be square (n x n) but is {rows} x {cols}; give the full n x n similarity or adjacency matrix")]
    NotSquare {
        /// The matrix, in words.
        what: &'static str,
        /// Its number of rows.
        rows: usize,
        /// Its number of columns.
        cols: usize,
    },

    /// A matrix that must be symmetric is not, beyond the tolerance.
    #[error("the matrix is not symmetric: A[{row}, {col}] = {value} but A[{col}, {row}] = {mirror} (the largest difference, more than the tolerance {tol}); symmetrize it first, e.g. (A + Aᵀ)/2, or raise symmetry_tol")]
    NotSymmetric {
        /// Row of the most asymmetric pair.
        row: usize,
        /// Column of that pair.
        col: usize,
        /// `A[row, col]`.
        value: f32,
        /// `A[col, row]`.
        mirror: f32,
        /// The absolute tolerance that was exceeded.
        tol: f32,
    },

    /// An option or argument is outside its valid range.
    #[error("{name} = {value} is invalid: {expected}")]
    InvalidParameter {
        /// The option or argument.
        name: &'static str,
        /// The value given.
        value: String,
        /// What is allowed, and how to fix it.
        expected: String,
    },

    /// A range of ranks to compare ([`select`](crate::select)) is empty or out of bounds.
    #[error("ranks {from}..{to} cannot be compared: {reason}")]
    InvalidRankRange {
        /// The first rank asked for.
        from: usize,
        /// The last rank asked for (inclusive).
        to: usize,
        /// What is wrong, and what is allowed.
        reason: String,
    },

    /// A crop or downsampling of frames was asked for, but the frames' height and width are
    /// neither known to the source nor given ([`frames`](crate::frames)).
    #[error("the frames' shape is not known ({pixels} pixels per frame) and a crop or downsampling needs it; give it as height x width (FrameSteps::frame_shape, --frame-shape HxW) with height·width = {pixels}")]
    UnknownFrameShape {
        /// Pixels per frame (rows of V).
        pixels: usize,
    },

    /// A long computation was stopped by its stop flag before it finished.
    #[error("{what} was interrupted before it finished; nothing was computed")]
    Interrupted {
        /// What was stopped.
        what: &'static str,
    },

    /// A directory holds no `.txt` file to read as documents.
    #[error("{}: no .txt files found ({}); give the directory that holds the documents, one UTF-8 .txt file each", dir.display(), if *recursive { "searched recursively" } else { "searched the top level only; read subdirectories too with Recursion::Recursive" })]
    NoTextFiles {
        /// The directory searched.
        dir: PathBuf,
        /// Whether subdirectories were searched.
        recursive: bool,
    },

    /// Documents give no term to count: no tokens, only stop words, or none within the
    /// document-frequency bounds.
    #[error("{what} give no terms to count: {reason}")]
    NoTerms {
        /// The documents, in words (e.g. "the 3 .txt files in corpus/").
        what: String,
        /// Why, and what to change.
        reason: String,
    },

    /// A term x document count matrix would not fit in memory.
    #[error("the term x document count matrix ({terms} terms x {documents} documents) needs {} as float32, more than the limit of {} (half the available memory); keep fewer terms (max_features, a higher min_df) or count fewer documents", human_bytes(*bytes), human_bytes(u128::from(*limit)))]
    CountMatrixTooLarge {
        /// Number of terms (rows).
        terms: usize,
        /// Number of documents (columns).
        documents: usize,
        /// Bytes needed.
        bytes: u128,
        /// The limit in bytes.
        limit: u64,
    },

    /// A count matrix does not have one row per line of its terms file.
    #[error("{}: the count matrix has {rows} term rows ({cols} document columns{}) but {} lists {terms} terms; row i of the matrix must count the term on line i of the terms file{}", matrix.display(), if *transposed { ", after transposing" } else { "" }, terms_file.display(), if *cols == *terms && *rows != *terms { if *transposed { " (the matrix has one column per term: it is stored terms x documents, so do not transpose it)" } else { " (the matrix has one column per term: it is stored documents x terms, so transpose it: Orientation::DocumentsByTerms, --transpose in the topics example)" } } else { "" })]
    TermCountMismatch {
        /// The matrix file.
        matrix: PathBuf,
        /// Rows of the matrix (terms), after any transposition.
        rows: usize,
        /// Columns of the matrix (documents), after any transposition.
        cols: usize,
        /// The terms file.
        terms_file: PathBuf,
        /// Number of terms in the terms file.
        terms: usize,
        /// Whether the matrix was transposed after reading (documents x terms on file).
        transposed: bool,
    },

    /// An observed entry of a matrix with missing entries is negative or not finite.
    #[error("the observed entry at row {row}, column {col} is {value}; observed entries must be finite and >= 0 (mark the entry as unobserved if it is missing, or fix its value)")]
    InvalidObservedEntry {
        /// Row of the first bad entry found (row-major scan).
        row: usize,
        /// Column of that entry.
        col: usize,
        /// The entry.
        value: f32,
    },

    /// A matrix with missing entries has no observed entry at all.
    #[error("none of the {rows} x {cols} entries is observed; masked NMF needs at least one observed entry (check that the mask marks observed entries as true)")]
    NoObservedEntries {
        /// Rows of the matrix.
        rows: usize,
        /// Columns of the matrix.
        cols: usize,
    },

    /// The parts of a sparse (CSR) matrix do not describe a valid matrix.
    #[error("invalid sparse matrix: {reason}")]
    InvalidSparse {
        /// What is wrong, and how to fix it.
        reason: String,
    },

    /// A line of a text file is longer than the reader's bound (a file that is not line-based
    /// text, or a link to a device such as `/dev/zero`); refused before more is buffered.
    #[error("{}, line {line}: the line is longer than {} (the bound on one line of a text file); check that the file is really line-based text, or raise the bound (ReadOptions::max_line_bytes) if its lines are that long", path.display(), human_bytes(*limit as u128))]
    LineTooLong {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The bound in bytes.
        limit: usize,
    },
}

/// `path`, `path, line L` or `path, line L, column C`.
fn file_location(path: &Path, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{}, line {l}, column {c}", path.display()),
        (Some(l), None) => format!("{}, line {l}", path.display()),
        _ => path.display().to_string(),
    }
}

/// A byte count in B, KiB, MiB, GiB, TiB or PiB, three significant digits.
/// Which limit a memory limit in a refusal came from, in words: the process's budget (and the
/// limit that set it, see [`crate::memory`]) or the caller's own.
fn limit_origin(limit: u64) -> String {
    match crate::memory::origin_of(limit) {
        Some(origin) => format!(
            "{}what {} allows now, {}",
            if origin.half { "half of " } else { "" },
            origin.budget.bound.describe(),
            human_bytes(u128::from(origin.budget.bytes))
        ),
        None => crate::memory::Bound::User.describe().to_string(),
    }
}

fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.3} {}", UNITS[unit])
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = NmfError> = std::result::Result<T, E>;

/// `Err(InvalidParameter)` naming `name` when `value` is 0; `expected` says what it must be.
pub(crate) fn check_nonzero(value: usize, name: &'static str, expected: &str) -> Result<()> {
    if value == 0 {
        return Err(NmfError::InvalidParameter {
            name,
            value: "0".into(),
            expected: expected.into(),
        });
    }
    Ok(())
}

/// `Err(FitTooLarge)` when `need` bytes exceed `limit`; `detail()` says what needs them and
/// what to change.
pub(crate) fn check_need(need: u128, limit: u64, detail: impl FnOnce() -> String) -> Result<()> {
    if need > u128::from(limit) {
        return Err(NmfError::FitTooLarge {
            need: u64::try_from(need).unwrap_or(u64::MAX),
            limit,
            detail: detail(),
        });
    }
    Ok(())
}
