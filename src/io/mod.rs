//! Reading data matrices from files and writing factors to them.
//!
//! [`read_matrix`] picks a reader from the file name:
//!
//! | input | reader |
//! |---|---|
//! | `.npy` | NumPy array: float16/32/64, integer or bool, either byte order, C or Fortran order, 2-D |
//! | `.csv`, `.tsv` | numbers separated by `,` or a tab, an optional header line ([`HeaderMode`]) |
//! | `.mtx` | MatrixMarket: `coordinate` (real, integer, pattern; general, symmetric, skew-symmetric) or `array` |
//! | a directory | images, one per column: grey levels `0..=255`, all the same size ([`crate::images::load_dir`]) |
//! | `.tif`, `.tiff`, or a directory of them | multi-page TIFF / BigTIFF stacks, one frame per column ([`tiff`], feature `images`) |
//! | `.h5`, `.hdf5`, `.hdf` | an HDF5 dataset named by [`ReadOptions::dataset`]: first axis samples (columns), the others flattened as features (rows) (`hdf5`, feature `hdf5`) |
//! | a Zarr store or array (`.zarr` directory, `zarr.json`, `.zarray`) | a Zarr v2 / v3 array, oriented as HDF5 datasets are (`zarr`, feature `zarr`) |
//!
//! Every file reader refuses a matrix larger than [`ReadOptions::max_bytes`] *before* allocating it
//! (an image directory from the sizes in the image headers, before any pixel is decoded), and
//! refuses a text line longer than [`ReadOptions::max_line_bytes`] ([`NmfError::LineTooLong`],
//! after at most that many bytes are buffered); each reports malformed input as an [`NmfError`] naming the file (and the line and column for
//! text files); none panics. Readers do not check the values: negative, NaN and infinite
//! entries are reported by the fit, and [`LoadedMatrix::locate`] turns the row and column of
//! such an error back into a place in the file.
//!
//! [`write_npy_atomic`] writes a float32 `.npy` file under a temporary name, flushes it to
//! disk and renames it, so a file with the final name is always complete.

mod csv;
#[cfg(feature = "hdf5")]
pub mod hdf5;
#[cfg(feature = "images")]
pub(crate) mod image_dir;
#[cfg(feature = "images")]
pub(crate) mod image_set;
mod limits;
pub(crate) mod lines;
mod mtx;
mod npy;
mod npy_stream;
#[cfg(any(feature = "hdf5", feature = "zarr"))]
pub(crate) mod samples;
mod storage;
#[cfg(feature = "images")]
pub mod tiff;
#[cfg(any(feature = "images", feature = "text"))]
pub(crate) mod walk;
mod write;
#[cfg(feature = "zarr")]
pub mod zarr;
pub(crate) use self::mtx::{read_sparse_block as read_mtx_block, shape as mtx_shape};
pub(crate) use self::npy::{read_block as read_npy_block, shape as npy_shape};

use std::path::{Path, PathBuf};

use ndarray::Array2;

use crate::error::{NmfError, Result};

pub use limits::{default_max_bytes, FIXED_CAP_BYTES};
pub use lines::DEFAULT_MAX_LINE_BYTES;
pub use npy_stream::{NpyColumnWriter, NpySource};
pub use storage::{Storage, AUTO_SPARSE_DENSITY};
pub use write::{write_bytes_atomic, write_npy_atomic, StagedDir, StagedFile};

/// The kinds of input [`read_matrix`] understands, chosen by [`FileFormat::from_path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// A NumPy `.npy` file.
    Npy,
    /// Comma-separated values (`.csv`).
    Csv,
    /// Tab-separated values (`.tsv`).
    Tsv,
    /// A MatrixMarket `.mtx` file.
    MatrixMarket,
    /// A directory of images, one sample per image.
    ImageDir,
    /// A multi-page TIFF / BigTIFF file (`.tif`, `.tiff`), or a directory of them: one sample
    /// per frame ([`tiff`]).
    Tiff,
    /// An HDF5 file (`.h5`, `.hdf5`, `.hdf`): the dataset [`ReadOptions::dataset`] names, one
    /// sample per index of its first axis (`hdf5`, feature `hdf5`).
    Hdf5,
    /// A Zarr store, array directory or array metadata file: the array, one sample per index of
    /// its first axis (`zarr`, feature `zarr`).
    Zarr,
}

impl FileFormat {
    /// The format of `path`: a directory is [`FileFormat::ImageDir`]; otherwise the extension
    /// (case-insensitive) decides. An unknown or missing extension is an error that lists the
    /// supported ones.
    pub fn from_path(path: &Path) -> Result<FileFormat> {
        if looks_like_zarr(path) {
            return Ok(FileFormat::Zarr);
        }
        if path.is_dir() {
            #[cfg(feature = "images")]
            if tiff::dir_has_tiff(path) {
                return Ok(FileFormat::Tiff);
            }
            return Ok(FileFormat::ImageDir);
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("npy") => Ok(FileFormat::Npy),
            Some("csv") => Ok(FileFormat::Csv),
            Some("tsv") | Some("tab") => Ok(FileFormat::Tsv),
            Some("mtx") => Ok(FileFormat::MatrixMarket),
            Some("tif") | Some("tiff") => Ok(FileFormat::Tiff),
            Some("h5") | Some("hdf5") | Some("hdf") | Some("he5") => Ok(FileFormat::Hdf5),
            other => Err(NmfError::UnsupportedInput {
                path: path.to_path_buf(),
                reason: format!(
                    "{}; supported inputs are .npy, .csv, .tsv, .mtx, .tif/.tiff and .h5/.hdf5 files and Zarr stores (rename the file if its extension is wrong)",
                    match other {
                        Some(e) => format!("unknown file extension \".{e}\""),
                        None => "the file name has no extension".to_string(),
                    }
                ),
            }),
        }
    }

    /// Short name, as used in messages and summaries.
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Npy => "npy",
            FileFormat::Csv => "csv",
            FileFormat::Tsv => "tsv",
            FileFormat::MatrixMarket => "mtx",
            FileFormat::ImageDir => "image directory",
            FileFormat::Tiff => "tiff",
            FileFormat::Hdf5 => "hdf5",
            FileFormat::Zarr => "zarr",
        }
    }
}

/// Whether `path` names a Zarr store, array or metadata file (from names only): a directory
/// holding `zarr.json`, `.zarray` or `.zgroup`, or whose name ends in `.zarr`; a file named
/// `zarr.json` or `.zarray`.
pub(crate) fn looks_like_zarr(path: &Path) -> bool {
    if path.is_dir() {
        let named = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zarr"));
        return named
            || ["zarr.json", ".zarray", ".zgroup"]
                .iter()
                .any(|f| path.join(f).is_file());
    }
    path.file_name()
        .is_some_and(|n| n == "zarr.json" || n == ".zarray")
}

/// Whether the first line of a `.csv` / `.tsv` file is a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderMode {
    /// A first line none of whose fields is a number is a header; otherwise it is data.
    #[default]
    Auto,
    /// The first non-blank line is a header, whatever it holds.
    Present,
    /// There is no header: every line is data.
    Absent,
}

impl HeaderMode {
    /// Every value, in a fixed order.
    pub const ALL: [HeaderMode; 3] = [HeaderMode::Auto, HeaderMode::Present, HeaderMode::Absent];

    /// The name, as a front end accepts it (`--header auto|yes|no`).
    pub fn name(self) -> &'static str {
        match self {
            HeaderMode::Auto => "auto",
            HeaderMode::Present => "yes",
            HeaderMode::Absent => "no",
        }
    }

    /// The value whose name is `name`.
    pub fn from_name(name: &str) -> Option<HeaderMode> {
        Self::ALL.into_iter().find(|h| h.name() == name)
    }

    /// One line for a front end's help.
    pub fn help(self) -> &'static str {
        match self {
            HeaderMode::Auto => "detect: a first line with no number in it is a header",
            HeaderMode::Present => "the first line is a header",
            HeaderMode::Absent => "every line is data",
        }
    }
}

/// Read a MatrixMarket (`.mtx`) file into a sparse [`CsrMatrix`](crate::sparse::CsrMatrix),
/// for [`NmfParams::fit_sparse`](crate::NmfParams::fit_sparse). Coordinate files go straight
/// to CSR (repeated entries summed, symmetric ones mirrored) without a dense intermediate;
/// array files are read densely and converted.
///
/// For a coordinate file, [`ReadOptions::max_bytes`] bounds, instead of `rows x cols`, 28 bytes
/// per stored entry (12 for the triplet held while reading, 8 in the CSR matrix, 8 in the
/// transposed copy [`fit_sparse`](crate::NmfParams::fit_sparse) makes; twice the declared
/// count for a symmetric file) plus `8·(rows + 1) + 8·(cols + 1)` for the two offset arrays.
/// It is checked from the size line, before any entry is read ([`NmfError::TooLarge`]), as are
/// the dimensions: more than `u32::MAX` rows or columns is a format error.
///
/// Unlike [`read_matrix`], the values are checked: a negative or non-finite value is a format
/// error naming the file, its 1-based line and the entry. Repeated entries are summed after
/// reading; a sum that overflows float32 gives [`NmfError::NonFiniteInput`] (0-based row and
/// column). Skew-symmetric files are refused from their header (a nonzero skew-symmetric
/// matrix has negative entries).
pub fn read_mtx_sparse(
    path: impl AsRef<Path>,
    options: &ReadOptions,
) -> Result<crate::sparse::CsrMatrix> {
    mtx::read_sparse(path.as_ref(), options)
}

/// Options for [`read_matrix`].
#[derive(Debug, Clone)]
pub struct ReadOptions {
    header: HeaderMode,
    max_bytes: u64,
    max_line: usize,
    dataset: Option<String>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            header: HeaderMode::Auto,
            max_bytes: default_max_bytes(),
            max_line: DEFAULT_MAX_LINE_BYTES,
            dataset: None,
        }
    }
}

impl ReadOptions {
    /// Defaults: header detection, a size limit of [`default_max_bytes`] and a line bound of
    /// [`DEFAULT_MAX_LINE_BYTES`].
    pub fn new() -> Self {
        Self::default()
    }
    /// How to treat the first line of a text file.
    pub fn header(mut self, header: HeaderMode) -> Self {
        self.header = header;
        self
    }
    /// The largest matrix (in bytes, as float32) a reader will allocate.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = crate::memory::read_limit(max_bytes);
        self
    }
    /// The longest line (in bytes, before its `\n`) a text reader accepts; a longer one is
    /// [`NmfError::LineTooLong`]. Default [`DEFAULT_MAX_LINE_BYTES`].
    pub fn max_line_bytes(mut self, max_line_bytes: usize) -> Self {
        self.max_line = max_line_bytes;
        self
    }
    /// The dataset to read from a container of several: an HDF5 dataset's path
    /// (`/group/name`) or a Zarr array's path inside its store (`group/name`). Other formats
    /// ignore it. Without it, an HDF5 file must hold exactly one dataset and a Zarr path must
    /// be an array.
    pub fn dataset(mut self, name: impl Into<String>) -> Self {
        self.dataset = Some(name.into());
        self
    }
    /// The dataset name, if set.
    pub fn dataset_name(&self) -> Option<&str> {
        self.dataset.as_deref()
    }
    /// The line bound in bytes.
    pub fn line_limit_bytes(&self) -> usize {
        self.max_line
    }
    /// The header mode.
    pub fn header_mode(&self) -> HeaderMode {
        self.header
    }
    /// The size limit in bytes.
    pub fn limit_bytes(&self) -> u64 {
        self.max_bytes
    }
}

/// Where the entries of a loaded matrix came from, to report a bad entry in the file's terms.
#[derive(Debug, Clone)]
enum SourceMap {
    /// `.npy`: element `[row, col]`.
    Npy,
    /// Text table: the 1-based line of each data row; columns are fields.
    Table { row_lines: Vec<usize> },
    /// MatrixMarket: 1-based indices; `mirrored` when the file stores one triangle.
    MatrixMarket { mirrored: bool },
}

/// A matrix read from a file, with what is needed to point back into the file.
#[derive(Debug, Clone)]
pub struct LoadedMatrix {
    /// The data, rows x columns as stored in the file.
    pub data: Array2<f32>,
    /// The format it was read from.
    pub format: FileFormat,
    /// The file.
    pub path: PathBuf,
    source: SourceMap,
}

impl LoadedMatrix {
    /// Where entry `(row, col)` (0-based, in the file's orientation) is in the file, in words:
    /// `"line 5, column 3"` for text tables, `"element [4, 2]"` for `.npy`, 1-based indices for
    /// MatrixMarket.
    pub fn locate(&self, row: usize, col: usize) -> String {
        match &self.source {
            SourceMap::Npy => format!("element [{row}, {col}]"),
            SourceMap::Table { row_lines } => match row_lines.get(row) {
                Some(line) => format!("line {line}, column {}", col + 1),
                None => format!("row {row}, column {col}"),
            },
            SourceMap::MatrixMarket { mirrored } => {
                let (i, j) = (row + 1, col + 1);
                if *mirrored && i != j {
                    format!("entry ({i}, {j}) or its mirror ({j}, {i}), 1-based")
                } else {
                    format!("entry ({i}, {j}), 1-based")
                }
            }
        }
    }
}

/// Read the matrix in `path` (rows x columns as stored), choosing the reader by
/// [`FileFormat::from_path`].
pub fn read_matrix(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Array2<f32>> {
    read_located(path, options).map(|m| m.data)
}

/// Like [`read_matrix`], keeping what [`LoadedMatrix::locate`] needs.
pub fn read_located(path: impl AsRef<Path>, options: &ReadOptions) -> Result<LoadedMatrix> {
    let path = path.as_ref();
    // The operating system's own words: "No such file or directory", "Permission denied".
    std::fs::metadata(path).map_err(|source| NmfError::Io {
        path: path.to_path_buf(),
        action: "open the input",
        source,
    })?;
    let format = FileFormat::from_path(path)?;
    let (data, source) = match format {
        FileFormat::Npy => (npy::read(path, options)?, SourceMap::Npy),
        FileFormat::Csv | FileFormat::Tsv => {
            let delimiter = if format == FileFormat::Csv {
                b','
            } else {
                b'\t'
            };
            let table = csv::read(path, delimiter, options)?;
            (
                table.data,
                SourceMap::Table {
                    row_lines: table.row_lines,
                },
            )
        }
        FileFormat::MatrixMarket => {
            let m = mtx::read(path, options)?;
            (
                m.data,
                SourceMap::MatrixMarket {
                    mirrored: m.mirrored,
                },
            )
        }
        FileFormat::ImageDir => (read_image_dir(path, options)?, SourceMap::Npy),
        FileFormat::Tiff => (read_tiff(path, options)?, SourceMap::Npy),
        FileFormat::Hdf5 => (read_hdf5(path, options)?, SourceMap::Npy),
        FileFormat::Zarr => (read_zarr(path, options)?, SourceMap::Npy),
    };
    Ok(LoadedMatrix {
        data,
        format,
        path: path.to_path_buf(),
        source,
    })
}

/// The image-directory loader: one flattened grayscale image per column (pixels x images),
/// grey levels `0..=255`; every image must have the size of the first (see
/// [`crate::images::load_dir`] for formats, order and resizing).
#[cfg(feature = "images")]
fn read_image_dir(path: &Path, options: &ReadOptions) -> Result<Array2<f32>> {
    let set = image_dir::load_dir_with(path, image_dir::SizePolicy::Exact, options)?;
    Ok(set.into_matrix())
}

/// Without the `images` feature, a directory is refused with the reason.
#[cfg(not(feature = "images"))]
fn read_image_dir(path: &Path, _options: &ReadOptions) -> Result<Array2<f32>> {
    Err(NmfError::UnsupportedInput {
        path: path.to_path_buf(),
        reason: "image directories need the `images` feature of nmf-gpu (on by default)".into(),
    })
}

/// `fn $name(path, options)`: `$module::read` where the feature `$feature` is on; without it,
/// the input is refused with `$reason`.
macro_rules! feature_reader {
    ($(#[$doc:meta])* $name:ident, $feature:literal, $module:ident, $reason:literal) => {
        $(#[$doc])*
        #[cfg(feature = $feature)]
        fn $name(path: &Path, options: &ReadOptions) -> Result<Array2<f32>> {
            $module::read(path, options)
        }

        /// Without the feature, the input is refused with the reason.
        #[cfg(not(feature = $feature))]
        fn $name(path: &Path, _options: &ReadOptions) -> Result<Array2<f32>> {
            Err(NmfError::UnsupportedInput {
                path: path.to_path_buf(),
                reason: $reason.into(),
            })
        }
    };
}

feature_reader!(
    /// A TIFF stack: one frame per column ([`tiff`](self::tiff)).
    read_tiff,
    "images",
    tiff,
    "TIFF stacks need the `images` feature of nmf-gpu (on by default)"
);
feature_reader!(
    /// An HDF5 dataset as V ([`hdf5`](self::hdf5)).
    read_hdf5,
    "hdf5",
    hdf5,
    "HDF5 files need the `hdf5` feature of nmf-gpu (and the system HDF5 library, e.g. libhdf5-dev): build with --features hdf5"
);
feature_reader!(
    /// A Zarr array as V ([`zarr`](self::zarr)).
    read_zarr,
    "zarr",
    zarr,
    "Zarr arrays need the `zarr` feature of nmf-gpu (on by default)"
);

/// The error for a line or field of a text file.
pub(crate) fn format_error(
    path: &Path,
    line: Option<usize>,
    column: Option<usize>,
    message: impl Into<String>,
) -> NmfError {
    NmfError::Format {
        path: path.to_path_buf(),
        line,
        column,
        message: message.into(),
    }
}

/// The error for a failed read of an opened file.
pub(crate) fn read_error(path: &Path, source: std::io::Error) -> NmfError {
    NmfError::Io {
        path: path.to_path_buf(),
        action: "read the file",
        source,
    }
}

/// Open `path` for reading, with an error that names it.
pub(crate) fn open(path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path).map_err(|source| NmfError::Io {
        path: path.to_path_buf(),
        action: "open the input",
        source,
    })
}
