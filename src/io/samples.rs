//! Arrays whose first axis is samples (HDF5 datasets, Zarr arrays): V's shape from the array's,
//! the block reader and the chunk-aligned streaming shared by their readers.
//!
//! **Orientation.** An array of shape `(n, d1, d2, ...)` is `n` samples of `d1·d2·...`
//! features: sample `j` (the slice `[j, ...]`, flattened in C order, last axis fastest) is
//! column `j` of V, which is `(d1·d2·..., n)`. A 1-D array of `n` values is `n` samples of one
//! feature (V is `1 x n`). So a movie stored `(frames, height, width)` gives V of
//! `height·width x frames`, pixel `(x, y)` at row `y·width + x`, as for TIFF stacks.
//!
//! **Chunk-aligned streaming.** A chunked array is compressed chunk by chunk, so a read that
//! cuts a chunk decodes it whole for part of its samples. [`Stream`] reads the samples of a
//! batch rounded up to the next chunk boundary of the first axis and keeps the samples past
//! the batch for the next one: every chunk is decoded once per pass, whatever the batch size.
//! It holds the batch handed out and at most `chunk − 1` samples more (the carry), and while
//! one batch is assembled, the carry, the read and the batch: at most
//! `2·m·(b + c − 1)·4` bytes for `m` features, batches of `b` samples and chunks of `c`
//! samples (a read that would pass the input limit falls back to the batch alone).

use std::ops::Range;
use std::path::Path;

use ndarray::{s, Array2, ArrayViewMut2};

use super::limits::check_dims;
use crate::error::{NmfError, Result};

/// V's shape `(features, samples)` of an array of shape `dims`, checked before anything is
/// allocated: no axis may be empty ([`NmfError::EmptyInput`]), the element count must fit in
/// `u64` and `usize`, and one sample's column of float32 must fit in `limit`
/// ([`NmfError::TooLarge`]). A 0-dimensional array (a scalar) is a format error.
pub(crate) fn v_shape(path: &Path, dims: &[u64], limit: u64) -> Result<(usize, usize)> {
    let Some((&n, rest)) = dims.split_first() else {
        return Err(format_error(
            path,
            "a scalar (0-dimensional) array; the first axis must be the samples",
        ));
    };
    let mut m: u128 = 1;
    for &d in rest {
        m = m.saturating_mul(u128::from(d));
    }
    if n == 0 || m == 0 {
        return Err(NmfError::EmptyInput {
            rows: usize::try_from(m).unwrap_or(usize::MAX),
            cols: usize::try_from(n).unwrap_or(usize::MAX),
        });
    }
    let total = m.saturating_mul(u128::from(n));
    if m.saturating_mul(4) > u128::from(limit) {
        return Err(NmfError::TooLarge {
            path: path.to_path_buf(),
            what: format!(
                "one sample of the {} array ({m} features)",
                shape_text(dims)
            ),
            bytes: m.saturating_mul(4),
            limit,
        });
    }
    if total > u128::from(u64::MAX) || usize::try_from(total).is_err() {
        return Err(format_error(
            path,
            format!(
                "the {} array has more elements than this machine can index",
                shape_text(dims)
            ),
        ));
    }
    // Both fit in usize (their product does).
    Ok((m as usize, n as usize))
}

/// `a x b x c`, for messages.
pub(crate) fn shape_text(dims: &[u64]) -> String {
    if dims.is_empty() {
        return "scalar".into();
    }
    dims.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" x ")
}

/// An array read a block of V at a time.
pub(crate) trait SampleArray {
    /// The file or directory, for messages.
    fn path(&self) -> &Path;
    /// V's shape `(features, samples)`.
    fn v_shape(&self) -> (usize, usize);
    /// The chunk extent along the first axis (1 for an array not chunked).
    fn chunk_samples(&self) -> usize;
    /// The input limit in bytes.
    fn limit(&self) -> u64;
    /// Fill `out` (`rows.len() x cols.len()`) with V's rows `rows` of columns `cols` (both
    /// inside V, checked by the caller).
    fn fill(
        &self,
        rows: Range<usize>,
        cols: Range<usize>,
        out: ArrayViewMut2<'_, f32>,
    ) -> Result<()>;
}

/// The block `rows x cols` of V, checked to lie inside V and against the limit before it is
/// allocated.
pub(crate) fn read_block<A: SampleArray>(
    a: &A,
    rows: Range<usize>,
    cols: Range<usize>,
) -> Result<Array2<f32>> {
    let (m, n) = a.v_shape();
    if rows.start > rows.end || rows.end > m || cols.start > cols.end || cols.end > n {
        return Err(format_error(
            a.path(),
            format!("the block rows {rows:?} x columns {cols:?} lies outside the {m} x {n} matrix"),
        ));
    }
    check_dims(a.path(), rows.len() as u64, cols.len() as u64, a.limit())?;
    let mut out = Array2::<f32>::zeros((rows.len(), cols.len()));
    if !rows.is_empty() && !cols.is_empty() {
        a.fill(rows, cols, out.view_mut())?;
    }
    Ok(out)
}

/// `impl online::Source` for a streamed array's source `$ty`, a struct holding the array (a
/// `$array` with inherent `open(path, options)`, `shape()`, `describe(col)` and `read_all()`)
/// in `$field` and a [`Stream`] in `stream`; the frame shape `(height, width)` is that of a 3-D
/// array `(frames, height, width)`, whose stored dimensions `$dims` reads from the array `$a`.
/// With it: the source's `open`, `new` and accessor `$field`, and the module's `read` of a
/// whole array as V.
macro_rules! sample_source {
    ($ty:ident, $field:ident: $array:ident, |$a:ident| $dims:expr) => {
        impl $ty {
            /// Open the array of `path` that `options` names (a dataset name where the file
            /// holds several), with its limits.
            pub fn open(
                path: impl AsRef<std::path::Path>,
                options: &crate::io::ReadOptions,
            ) -> crate::error::Result<$ty> {
                Ok($ty::new($array::open(path, options)?))
            }
            /// Stream an opened array.
            pub fn new($field: $array) -> $ty {
                $ty {
                    $field,
                    stream: crate::io::samples::Stream::default(),
                }
            }
            /// The array streamed.
            pub fn $field(&self) -> &$array {
                &self.$field
            }
        }

        /// Read the array of the file `path` that `options` names as V, within its limits.
        pub(crate) fn read(
            path: &std::path::Path,
            options: &crate::io::ReadOptions,
        ) -> crate::error::Result<ndarray::Array2<f32>> {
            let array = $array::open(path, options)?;
            let (m, n) = array.shape();
            crate::io::limits::check_dims(path, m as u64, n as u64, options.limit_bytes())?;
            array.read_all()
        }

        impl crate::online::Source for $ty {
            fn dim(&self) -> (usize, usize) {
                self.$field.shape()
            }
            fn rewind(&mut self) -> crate::error::Result<()> {
                self.stream.rewind();
                Ok(())
            }
            fn next_batch(
                &mut self,
                max_cols: usize,
            ) -> crate::error::Result<Option<ndarray::Array2<f32>>> {
                self.stream.next_batch(&self.$field, max_cols)
            }
            fn describe(&self, col: usize) -> String {
                self.$field.describe(col)
            }
            fn frame_shape(&self) -> Option<(usize, usize)> {
                let $a = &self.$field;
                match $dims {
                    &[_, h, w] => Some((h as usize, w as usize)),
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use sample_source;

/// The chunk-aligned batches of a streamed array (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Stream {
    /// The first sample not yet handed out.
    next: usize,
    /// Samples `next..next + carry.ncols()`, read with an earlier batch.
    carry: Option<Array2<f32>>,
}

impl Stream {
    /// Back to the first sample.
    pub(crate) fn rewind(&mut self) {
        self.next = 0;
        self.carry = None;
    }

    /// The next `min(max_cols, samples left)` samples of `a`, or `None` at the end.
    pub(crate) fn next_batch<A: SampleArray>(
        &mut self,
        a: &A,
        max_cols: usize,
    ) -> Result<Option<Array2<f32>>> {
        let (m, n) = a.v_shape();
        if self.next >= n {
            return Ok(None);
        }
        let b = max_cols.max(1).min(n - self.next);
        let have = self.carry.as_ref().map_or(0, |c| c.ncols());
        if have >= b {
            let carry = self.carry.take().unwrap_or_else(|| Array2::zeros((m, 0)));
            let out = carry.slice(s![.., ..b]).to_owned();
            if have > b {
                self.carry = Some(carry.slice(s![.., b..]).to_owned());
            }
            self.next += b;
            return Ok(Some(out));
        }
        check_dims(a.path(), m as u64, b as u64, a.limit())?;
        let start = self.next + have;
        let want = self.next + b;
        let c = a.chunk_samples().max(1);
        let aligned = want.div_ceil(c).saturating_mul(c).min(n);
        // Rounding up to the chunk boundary must not pass the limit: then read the batch only.
        let end = if (m as u128) * ((aligned - self.next) as u128) * 8 <= u128::from(a.limit()) {
            aligned
        } else {
            want
        };
        let mut all = Array2::<f32>::zeros((m, end - self.next));
        if let Some(carry) = self.carry.take() {
            all.slice_mut(s![.., ..have]).assign(&carry);
        }
        a.fill(0..m, start..end, all.slice_mut(s![.., have..]))?;
        if end > want {
            self.carry = Some(all.slice(s![.., b..]).to_owned());
            all = all.slice(s![.., ..b]).to_owned();
        }
        self.next = want;
        Ok(Some(all))
    }
}

/// Write `count` samples of `src` (sample-major: sample `t` is `src[t·span..(t + 1)·span]`)
/// into the columns `col0..col0 + count` of `out`, row `r` of `out` taking value `off + r` of
/// each sample. Tiles of samples keep the reads in cache while the writes run along `out`'s
/// rows.
pub(crate) fn scatter(
    src: &[f32],
    span: usize,
    count: usize,
    off: usize,
    out: &mut ArrayViewMut2<'_, f32>,
    col0: usize,
) {
    const TILE: usize = 64;
    let m = out.nrows();
    let mut t0 = 0;
    while t0 < count {
        let t1 = (t0 + TILE).min(count);
        for r in 0..m {
            let mut row = out.row_mut(r);
            for t in t0..t1 {
                row[col0 + t] = src[t * span + off + r];
            }
        }
        t0 = t1;
    }
}

/// A format error naming `path`, its message on one line.
pub(crate) fn format_error(path: &Path, message: impl Into<String>) -> NmfError {
    let message: String = message.into();
    NmfError::Format {
        path: path.to_path_buf(),
        line: None,
        column: None,
        message: message.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}
