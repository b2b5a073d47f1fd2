//! A `.npy` file as a streaming source: batches of samples read with positioned reads
//! (`pread`), so the process holds one batch of the file at a time however large it is (the
//! kernel's page cache, which it may drop at will, is not the process's memory).
//!
//! Two layouts, whichever way the file is stored:
//! - each sample's features contiguous (samples as rows in C order, or features x samples in
//!   Fortran order): a batch is one read of `b·m` values;
//! - each feature's samples contiguous (features x samples in C order, or samples as rows in
//!   Fortran order): a batch is `m` reads of `b` values, one per feature row.
//!
//! Either way the batch arrives as m x b (features x samples) without transposing the file.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::npy::{open_layout, Layout};
use super::read_error;
use super::write::PartialFile;
use crate::error::{NmfError, Result};
use crate::online::source::Pass;
use crate::online::Source;

/// Read buffer per positioned read of the contiguous layout (bytes), so a batch of large
/// samples is read in pieces rather than doubled in memory.
const READ_CHUNK: usize = 1 << 20;

/// A 2-D `.npy` file streamed a batch of samples at a time (see the module docs).
#[derive(Debug)]
pub struct NpySource {
    path: PathBuf,
    file: File,
    /// The header: shape as stored, order, value type and where the values start.
    layout: Layout,
    samples_as_rows: bool,
    pass: Pass,
    buf: Vec<u8>,
}

impl NpySource {
    /// Open `path`, a 2-D `.npy` of float16/32/64, integer or bool values, C or Fortran order:
    /// features x samples, or samples x features with `samples_as_rows`. Only the header is
    /// read now; it is checked as [`read_matrix`](super::read_matrix) checks it, and the
    /// file's length must match it.
    pub fn open(path: impl AsRef<Path>, samples_as_rows: bool) -> Result<NpySource> {
        let path = path.as_ref();
        let (file, layout) = open_layout(path)?;
        let (rows, cols) = (layout.rows, layout.cols);
        if rows == 0 || cols == 0 {
            return Err(NmfError::EmptyInput { rows, cols });
        }
        Ok(NpySource {
            path: path.to_path_buf(),
            file,
            layout,
            samples_as_rows,
            pass: Pass::default(),
            buf: Vec::new(),
        })
    }

    /// `(features, samples)`.
    fn shape(&self) -> (usize, usize) {
        if self.samples_as_rows {
            (self.layout.cols, self.layout.rows)
        } else {
            (self.layout.rows, self.layout.cols)
        }
    }

    /// Whether each sample's features are contiguous in the file.
    fn samples_contiguous(&self) -> bool {
        self.samples_as_rows != self.layout.fortran
    }

    /// Fill `self.buf` with the `len` values at value index `at`.
    fn read_at(&mut self, at: u64, len: usize) -> Result<()> {
        let bytes = len * self.layout.item;
        self.buf.resize(bytes, 0);
        let offset = self.layout.data_offset + at * self.layout.item as u64;
        self.file
            .read_exact_at(&mut self.buf[..bytes], offset)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    super::format_error(
                        &self.path,
                        None,
                        None,
                        "truncated: the file ended before the values its header declares (was it shortened while being read?)",
                    )
                } else {
                    read_error(&self.path, e)
                }
            })
    }

    /// The samples `cols` (m x cols.len()), by positioned reads.
    fn read_columns(&mut self, cols: Range<usize>) -> Result<Array2<f32>> {
        let (m, n) = self.shape();
        let (j0, b) = (cols.start, cols.len());
        let mut out = Array2::<f32>::zeros((m, b));
        let decode = self.layout.decode;
        let item = self.layout.item;
        if self.samples_contiguous() {
            // Samples j0 .. j0 + b, each m values in a row: read whole samples, in pieces.
            let per_read = (READ_CHUNK / (m * item).max(1)).max(1);
            let Some(dst) = out.as_slice_mut() else {
                return Err(internal(&self.path));
            };
            let mut c = 0;
            while c < b {
                let k = per_read.min(b - c);
                self.read_at(((j0 + c) * m) as u64, k * m)?;
                for (t, raw) in self.buf.chunks_exact(item).enumerate() {
                    let (sample, feature) = (c + t / m, t % m);
                    dst[feature * b + sample] = decode(raw);
                }
                c += k;
            }
        } else {
            // Feature rows: b values of each.
            for i in 0..m {
                self.read_at((i * n + j0) as u64, b)?;
                for (dst, raw) in out.row_mut(i).iter_mut().zip(self.buf.chunks_exact(item)) {
                    *dst = decode(raw);
                }
            }
        }
        Ok(out)
    }
}

impl Source for NpySource {
    fn dim(&self) -> (usize, usize) {
        self.shape()
    }

    fn rewind(&mut self) -> Result<()> {
        self.pass.rewind()
    }

    fn next_batch(&mut self, max_cols: usize) -> Result<Option<Array2<f32>>> {
        // The read borrows all of `self`: the pass is advanced on a copy.
        let mut pass = self.pass;
        let batch = pass.next_batch(self.shape().1, max_cols, |cols| self.read_columns(cols));
        self.pass = pass;
        batch
    }

    fn describe(&self, col: usize) -> String {
        let what = if self.samples_as_rows {
            "row"
        } else {
            "column"
        };
        format!(
            "{}: sample {col} ({what} {col} of the array)",
            self.path.display()
        )
    }
}

fn internal(path: &Path) -> NmfError {
    NmfError::Format {
        path: path.to_path_buf(),
        line: None,
        column: None,
        message: "internal: a fresh batch is not contiguous".into(),
    }
}

/// A float32 `.npy` matrix (rows x cols) written a block of columns at a time, for results
/// too large to hold (the encodings H of a streamed fit): stored in Fortran order
/// (`fortran_order: True`), so each column is contiguous and a block of columns is one
/// append; `np.load` reads it as the usual rows x cols array. The data go to a temporary file
/// beside `path`, which [`commit`](Self::commit) flushes and renames once every column is
/// written; a writer dropped before that removes it, so `path` never holds a partial matrix.
#[derive(Debug)]
pub struct NpyColumnWriter {
    file: PartialFile,
    out: Option<std::io::BufWriter<File>>,
    rows: usize,
    cols: usize,
    written: usize,
}

impl NpyColumnWriter {
    /// Start writing a `rows x cols` matrix to `path`.
    pub fn create(path: impl AsRef<Path>, rows: usize, cols: usize) -> Result<NpyColumnWriter> {
        use std::io::Write;
        let (partial, file) = PartialFile::create(path.as_ref(), "out.npy")?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let dict =
            format!("{{'descr': '<f4', 'fortran_order': True, 'shape': ({rows}, {cols}), }}");
        let mut header = dict.into_bytes();
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(b' ');
        }
        header.push(b'\n');
        let len = u16::try_from(header.len()).map_err(|_| NmfError::ShapeMismatch {
            what: "the shape of a .npy file",
            expected: "a header under 64 KiB".into(),
            found: format!("{rows} x {cols}"),
        })?;
        out.write_all(b"\x93NUMPY\x01\x00")
            .and_then(|_| out.write_all(&len.to_le_bytes()))
            .and_then(|_| out.write_all(&header))
            .map_err(|e| partial.write_error(e))?;
        Ok(NpyColumnWriter {
            file: partial,
            out: Some(out),
            rows,
            cols,
            written: 0,
        })
    }

    /// Append the next columns (rows x b).
    pub fn append(&mut self, block: ndarray::ArrayView2<'_, f32>) -> Result<()> {
        use std::io::Write;
        if block.nrows() != self.rows || self.written + block.ncols() > self.cols {
            return Err(NmfError::ShapeMismatch {
                what: "a block of columns for a .npy file",
                expected: format!(
                    "{} rows and at most {} columns",
                    self.rows,
                    self.cols - self.written
                ),
                found: format!("{} x {}", block.nrows(), block.ncols()),
            });
        }
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        let mut bytes = Vec::with_capacity(block.len() * 4);
        for col in block.columns() {
            for &x in col {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
        }
        out.write_all(&bytes)
            .map_err(|e| self.file.write_error(e))?;
        self.written += block.ncols();
        Ok(())
    }

    /// Columns written so far.
    pub fn written(&self) -> usize {
        self.written
    }

    /// Flush, sync and rename to the final path; every column must have been written.
    pub fn commit(mut self) -> Result<()> {
        if self.written != self.cols {
            return Err(NmfError::ShapeMismatch {
                what: "the columns written to a .npy file",
                expected: format!("{}", self.cols),
                found: format!("{}", self.written),
            });
        }
        if let Some(out) = self.out.take() {
            let file = out
                .into_inner()
                .map_err(|e| self.file.write_error(e.into_error()))?;
            self.file.sync(&file)?;
        }
        self.file.rename()
    }
}

impl NpyColumnWriter {
    /// Keep the columns written so far, for a pass stopped early: the header is rewritten to
    /// `rows x written()` (padded to its old length; Fortran order makes the columns written a
    /// prefix of the data), then flushed, synced and renamed to the final path as in
    /// [`commit`](Self::commit). Returns the columns kept.
    pub fn commit_partial(mut self) -> Result<usize> {
        use std::io::{Seek, SeekFrom, Write};
        let dict = |cols: usize| {
            format!(
                "{{'descr': '<f4', 'fortran_order': True, 'shape': ({}, {cols}), }}",
                self.rows
            )
        };
        // The header as `create` wrote it: magic (8), length (2), dict padded so that the
        // whole is a multiple of 64, ending in a newline.
        let mut len = dict(self.cols).len();
        while (10 + len + 1) % 64 != 0 {
            len += 1;
        }
        let mut header = dict(self.written).into_bytes();
        header.resize(len, b' ');
        header.push(b'\n');
        if let Some(out) = self.out.take() {
            let mut file = out
                .into_inner()
                .map_err(|e| self.file.write_error(e.into_error()))?;
            file.seek(SeekFrom::Start(10))
                .and_then(|_| file.write_all(&header))
                .map_err(|e| self.file.write_error(e))?;
            self.file.sync(&file)?;
        }
        self.file.rename()?;
        Ok(self.written)
    }
}

impl Drop for NpyColumnWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            self.file.remove();
        }
    }
}
