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
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::npy::{open_layout, Layout};
use super::read_error;
use crate::error::{NmfError, Result};
use crate::online::Source;

/// Read buffer per positioned read of the contiguous layout (bytes), so a batch of large
/// samples is read in pieces rather than doubled in memory.
const READ_CHUNK: usize = 1 << 20;

/// A 2-D `.npy` file streamed a batch of samples at a time (see the module docs).
#[derive(Debug)]
pub struct NpySource {
    path: PathBuf,
    file: File,
    rows: usize,
    cols: usize,
    fortran: bool,
    item: usize,
    decode: fn(&[u8]) -> f32,
    data_offset: u64,
    samples_as_rows: bool,
    next: usize,
    buf: Vec<u8>,
}

impl NpySource {
    /// Open `path`, a 2-D `.npy` of float16/32/64, integer or bool values, C or Fortran order:
    /// features x samples, or samples x features with `samples_as_rows`. Only the header is
    /// read now; it is checked as [`read_matrix`](super::read_matrix) checks it, and the
    /// file's length must match it.
    pub fn open(path: impl AsRef<Path>, samples_as_rows: bool) -> Result<NpySource> {
        let path = path.as_ref();
        let (
            file,
            Layout {
                rows,
                cols,
                fortran,
                item,
                decode,
                data_offset,
            },
        ) = open_layout(path)?;
        Ok(NpySource {
            path: path.to_path_buf(),
            file,
            rows,
            cols,
            fortran,
            item,
            decode,
            data_offset,
            samples_as_rows,
            next: 0,
            buf: Vec::new(),
        })
    }

    /// `(features, samples)`.
    fn shape(&self) -> (usize, usize) {
        if self.samples_as_rows {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }

    /// Whether each sample's features are contiguous in the file.
    fn samples_contiguous(&self) -> bool {
        self.samples_as_rows != self.fortran
    }

    /// Fill `self.buf` with the `len` values at value index `at`.
    fn read_at(&mut self, at: u64, len: usize) -> Result<()> {
        let bytes = len * self.item;
        self.buf.resize(bytes, 0);
        let offset = self.data_offset + at * self.item as u64;
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
}

impl Source for NpySource {
    fn dim(&self) -> (usize, usize) {
        self.shape()
    }

    fn rewind(&mut self) -> Result<()> {
        self.next = 0;
        Ok(())
    }

    fn next_batch(&mut self, max_cols: usize) -> Result<Option<Array2<f32>>> {
        let (m, n) = self.shape();
        if self.next >= n {
            return Ok(None);
        }
        let j0 = self.next;
        let b = max_cols.max(1).min(n - j0);
        let mut out = Array2::<f32>::zeros((m, b));
        let decode = self.decode;
        let item = self.item;
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
        self.next = j0 + b;
        Ok(Some(out))
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
