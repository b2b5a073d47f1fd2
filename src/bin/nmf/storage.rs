//! `--storage`: whether the data matrix is held densely or as compressed sparse rows, and the
//! input read accordingly.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use nmf_gpu::frames::{FrameSteps, Frames};
use nmf_gpu::io::{
    read_located, read_mtx_sparse, FileFormat, LoadedMatrix, Storage, AUTO_SPARSE_DENSITY,
};
use nmf_gpu::ndarray::{Array2, ArrayView2};
use nmf_gpu::sparse::CsrMatrix;
use nmf_gpu::{Factorization, NmfError, NmfParams};

use crate::args::InputArgs;
use crate::error::{at, data_error, located_error, CliError};
use crate::Orientation;

/// What the banner and size line of a MatrixMarket file declare.
#[derive(Debug, Clone, Copy)]
pub struct MtxPeek {
    coordinate: bool,
    /// One triangle is stored and mirrored (symmetric or skew-symmetric).
    mirrored: bool,
    rows: u64,
    cols: u64,
    /// Entries declared on the size line (`rows·cols` for an array file).
    declared: u64,
}

impl MtxPeek {
    /// Stored entries over `rows·cols`, counting both triangles of a mirrored file (an upper
    /// bound: repeated entries and the diagonal count twice); `None` for an empty shape.
    fn density(&self) -> Option<f64> {
        let total = self.rows as f64 * self.cols as f64;
        if total == 0.0 {
            return None;
        }
        let stored = self.declared as f64 * if self.mirrored { 2.0 } else { 1.0 };
        Some(stored / total)
    }
}

/// The banner and size line of `path`, or `None` when they cannot be read or parsed (the
/// reader then reports the problem).
fn peek_mtx(path: &Path) -> Option<MtxPeek> {
    const MAX_LINE: u64 = 1 << 20;
    let mut reader = BufReader::new(File::open(path).ok()?);
    let mut buf = Vec::new();
    let mut next_line = |buf: &mut Vec<u8>| -> Option<String> {
        buf.clear();
        let n = reader.by_ref().take(MAX_LINE).read_until(b'\n', buf).ok()?;
        if n == 0 {
            return None;
        }
        Some(String::from_utf8_lossy(buf).into_owned())
    };
    let banner = next_line(&mut buf)?;
    let words: Vec<String> = banner
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    if words.len() != 5 || words[0] != "%%matrixmarket" || words[1] != "matrix" {
        return None;
    }
    let coordinate = match words[2].as_str() {
        "coordinate" => true,
        "array" => false,
        _ => return None,
    };
    let mirrored = words[4] != "general";
    let size = loop {
        let line = next_line(&mut buf)?;
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('%') {
            break t.to_string();
        }
    };
    let nums: Vec<u64> = size
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let (rows, cols, declared) = match (coordinate, nums.as_slice()) {
        (true, &[rows, cols, nnz]) => (rows, cols, nnz),
        (false, &[rows, cols]) => (rows, cols, rows.saturating_mul(cols)),
        _ => return None,
    };
    Some(MtxPeek {
        coordinate,
        mirrored,
        rows,
        cols,
        declared,
    })
}

/// How the input will be held, decided before anything is read.
#[derive(Debug, Clone, Copy)]
pub enum Holding {
    Dense,
    /// With what the file's header declares, when it could be read.
    Sparse(Option<MtxPeek>),
}

/// Apply `--storage` to `path`: `sparse` needs a .mtx file; `auto` picks sparse for a
/// MatrixMarket coordinate file of density below [`AUTO_SPARSE_DENSITY`]. Both engines take
/// sparse V. Call before opening the GPU, so that the refusal comes first.
pub fn choose(storage: Storage, path: &Path) -> Result<Holding, CliError> {
    let is_mtx = matches!(FileFormat::from_path(path), Ok(FileFormat::MatrixMarket));
    match storage {
        Storage::Dense => Ok(Holding::Dense),
        Storage::Sparse => {
            if !is_mtx {
                return Err(at(
                    path,
                    "--storage sparse reads MatrixMarket (.mtx) files only; use --storage dense (or auto) for this file, or convert it to .mtx (e.g. scipy.io.mmwrite)",
                ));
            }
            Ok(Holding::Sparse(peek_mtx(path)))
        }
        Storage::Auto => {
            if !is_mtx {
                return Ok(Holding::Dense);
            }
            match peek_mtx(path) {
                Some(p) if p.coordinate && p.density().is_some_and(|d| d < AUTO_SPARSE_DENSITY) => {
                    Ok(Holding::Sparse(Some(p)))
                }
                _ => Ok(Holding::Dense),
            }
        }
    }
}

/// A sparse input, already in the orientation of the fit (features x samples).
pub struct SparseInput {
    pub path: PathBuf,
    /// Rows x columns as stored in the file.
    pub file_shape: (usize, usize),
    /// The file stores one triangle, mirrored on reading.
    mirrored: bool,
    pub v: CsrMatrix,
}

/// Frames read whole and preprocessed (crop, downsampling, baseline): V is the processed
/// frames, features x samples.
pub struct FramesInput {
    pub path: PathBuf,
    pub format: FileFormat,
    /// Rows x columns as stored in the file.
    pub file_shape: (usize, usize),
    pub frames: Frames,
    pub v: Array2<f32>,
}

/// The data matrix of a run, dense or sparse, with what is needed to report errors in the
/// file's terms.
pub enum Input {
    Dense(LoadedMatrix),
    Sparse(SparseInput),
    Frames(FramesInput),
}

/// Where entry `(row, col)` (0-based, the file's orientation) of a MatrixMarket file is.
fn mtx_place(row: usize, col: usize, mirrored: bool) -> String {
    let (i, j) = (row + 1, col + 1);
    if mirrored && i != j {
        format!("entry ({i}, {j}) or its mirror ({j}, {i}), 1-based")
    } else {
        format!("entry ({i}, {j}), 1-based")
    }
}

impl Input {
    /// Read `args.input` as `storage` says, oriented as `orientation` says.
    pub fn read(
        args: &InputArgs,
        storage: Holding,
        orientation: Orientation,
    ) -> Result<Input, CliError> {
        let options = args.read_options();
        let path = &args.input;
        let input = match storage {
            Holding::Dense => Input::Dense(read_located(path, &options)?),
            Holding::Sparse(peek) => {
                let mirrored = peek.is_some_and(|p| p.mirrored);
                let csr = read_mtx_sparse(path, &options).map_err(|e| match e {
                    NmfError::NegativeInput { .. } | NmfError::NonFiniteInput { .. } => {
                        let shape = peek.map_or((0, 0), |p| (p.rows as usize, p.cols as usize));
                        located_error(e, path, shape, Orientation::SamplesAsColumns, |r, c| {
                            mtx_place(r, c, mirrored)
                        })
                    }
                    NmfError::InvalidSparse { .. } => at(path, e),
                    other => CliError::from(other),
                })?;
                let file_shape = csr.dim();
                let v = match orientation {
                    Orientation::SamplesAsColumns => csr,
                    Orientation::SamplesAsRows => csr.transpose(),
                };
                Input::Sparse(SparseInput {
                    path: path.clone(),
                    file_shape,
                    mirrored,
                    v,
                })
            }
        };
        Ok(input)
    }

    /// Apply the frame `steps` to a dense input (V read whole): the frame shape from the
    /// file (a TIFF stack, an image directory) unless given, the baseline from V itself.
    pub fn preprocess(
        self,
        steps: &FrameSteps,
        orientation: Orientation,
    ) -> Result<Input, CliError> {
        let d = match self {
            Input::Dense(d) => d,
            Input::Sparse(s) => {
                return Err(at(
                    &s.path,
                    "frame preprocessing (--crop, --downsample, --baseline) needs the data held densely: add --storage dense",
                ))
            }
            frames @ Input::Frames(_) => return Ok(frames),
        };
        let known = crate::frames::file_frame_shape(&d.path)?;
        let v = Self::dense_view(&d, orientation);
        let frames = steps
            .plan_matrix(v, known)
            .and_then(|f| f.apply_matrix(v, None).map(|v| (f, v)))
            .map_err(|e| at(&d.path, e))?;
        Ok(Input::Frames(FramesInput {
            file_shape: d.data.dim(),
            path: d.path,
            format: d.format,
            frames: frames.0,
            v: frames.1,
        }))
    }

    /// The frame preprocessing applied, if any.
    pub fn frames(&self) -> Option<&Frames> {
        match self {
            Input::Frames(f) => Some(&f.frames),
            _ => None,
        }
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        match self {
            Input::Dense(d) => &d.path,
            Input::Sparse(s) => &s.path,
            Input::Frames(f) => &f.path,
        }
    }

    /// Rows x columns as stored in the file.
    pub fn file_shape(&self) -> (usize, usize) {
        match self {
            Input::Dense(d) => d.data.dim(),
            Input::Sparse(s) => s.file_shape,
            Input::Frames(f) => f.file_shape,
        }
    }

    /// The file format's short name.
    pub fn format_name(&self) -> &'static str {
        match self {
            Input::Dense(d) => d.format.name(),
            Input::Sparse(_) => FileFormat::MatrixMarket.name(),
            Input::Frames(f) => f.format.name(),
        }
    }

    /// `"dense"` or `"sparse"`, as in summary.json.
    pub fn storage_name(&self) -> &'static str {
        match self {
            Input::Dense(_) | Input::Frames(_) => "dense",
            Input::Sparse(_) => "sparse",
        }
    }

    /// The stored entries and density of a sparse input.
    pub fn sparsity(&self) -> Option<(usize, f64)> {
        match self {
            Input::Dense(_) | Input::Frames(_) => None,
            Input::Sparse(s) => Some((s.v.nnz(), s.v.density())),
        }
    }

    /// V (features x samples) of a dense input.
    fn dense_view<'a>(d: &'a LoadedMatrix, orientation: Orientation) -> ArrayView2<'a, f32> {
        match orientation {
            Orientation::SamplesAsColumns => d.data.view(),
            Orientation::SamplesAsRows => d.data.view().reversed_axes(),
        }
    }

    /// The shape of V (features x samples).
    pub fn shape(&self, orientation: Orientation) -> (usize, usize) {
        match self {
            Input::Dense(d) => Self::dense_view(d, orientation).dim(),
            Input::Sparse(s) => s.v.dim(),
            Input::Frames(f) => f.v.dim(),
        }
    }

    /// An error of a fit or transform of this input, in the file's terms.
    pub fn error(&self, e: NmfError, orientation: Orientation) -> CliError {
        match self {
            Input::Dense(d) => data_error(e, d, orientation),
            Input::Sparse(s) => located_error(e, &s.path, s.file_shape, orientation, |r, c| {
                mtx_place(r, c, s.mirrored)
            }),
            // Rows are pixels of the processed frames; columns are still the frames.
            Input::Frames(f) => at(
                &f.path,
                format!(
                    "after the frame preprocessing ({} pixels x {} frames, rows are processed pixels): {e}",
                    f.v.nrows(),
                    f.v.ncols()
                ),
            ),
        }
    }

    /// `dense(V)` or `sparse(V)` as V is held, with its error in the file's terms.
    fn apply<T>(
        &self,
        orientation: Orientation,
        dense: impl FnOnce(ArrayView2<'_, f32>) -> nmf_gpu::Result<T>,
        sparse: impl FnOnce(&CsrMatrix) -> nmf_gpu::Result<T>,
    ) -> Result<T, CliError> {
        match self {
            Input::Dense(d) => dense(Self::dense_view(d, orientation)),
            Input::Sparse(s) => sparse(&s.v),
            Input::Frames(f) => dense(f.v.view()),
        }
        .map_err(|e| self.error(e, orientation))
    }

    /// Fit V with `params`.
    pub fn fit(
        &self,
        params: &NmfParams,
        orientation: Orientation,
    ) -> Result<Factorization, CliError> {
        self.apply(orientation, |v| params.fit(v), |v| params.fit_sparse(v))
    }

    /// ‖V − WH‖_F / ‖V‖_F of a fit of V.
    pub fn relative_error(
        &self,
        fit: &Factorization,
        orientation: Orientation,
    ) -> Result<f64, CliError> {
        self.apply(
            orientation,
            |v| fit.relative_error(v),
            |v| fit.relative_error_sparse(v),
        )
    }

    /// H of V's samples with the W of `model` fixed.
    pub fn transform(
        &self,
        model: &Factorization,
        orientation: Orientation,
    ) -> Result<Array2<f32>, CliError> {
        self.apply(
            orientation,
            |v| model.transform(v),
            |v| model.transform_sparse(v),
        )
    }
}
