//! Streaming sources: data that arrives as batches of samples (columns), restartable for the
//! next epoch, with its shape known up front.
//!
//! Implementations here: an in-memory matrix ([`ArraySource`]) and a CSR matrix
//! ([`CsrSource`]); the readers above this layer add a `.npy` file read piece by piece
//! ([`io::NpySource`](crate::io::NpySource)) and a directory of images decoded lazily
//! (`images::ImageDirSource`, feature `images`).

use std::ops::Range;

use ndarray::{s, Array2, ArrayView2};

use crate::error::{NmfError, Result};
use crate::sparse::CsrMatrix;

/// Data delivered as batches of samples: `V` (m x n, features x samples) a few columns at a
/// time, in a fixed order, from the first column again after [`rewind`](Source::rewind).
///
/// Every batch is `m x b` with `1 ≤ b ≤ max_cols`; the batches of one pass cover the `n`
/// columns in order, exactly once. The online fit reads the next batch on another thread
/// while it computes on the current one, hence `Send`.
pub trait Source: Send {
    /// `(m, n)`: features (rows) and samples (columns).
    fn dim(&self) -> (usize, usize);
    /// Go back to the first sample (the start of the next epoch).
    fn rewind(&mut self) -> Result<()>;
    /// The next at most `max_cols` samples as an `m x b` matrix, or `None` once all `n` were
    /// given in this pass.
    fn next_batch(&mut self, max_cols: usize) -> Result<Option<Array2<f32>>>;
    /// Where sample `col` comes from, for error messages (a file name, a column of a file).
    fn describe(&self, col: usize) -> String {
        format!("sample (column) {col}")
    }
    /// `(height, width)` of a sample, where the samples are frames of a known shape
    /// (`height·width = m`, pixel `(x, y)` at row `y·width + x`): TIFF stacks, image
    /// directories. `None` (the default) where the source does not know; frame
    /// preprocessing ([`frames`](crate::frames)) then needs it given.
    fn frame_shape(&self) -> Option<(usize, usize)> {
        None
    }
}

/// A source through a reference or a box is the source itself.
macro_rules! forward_source {
    ($($t:ty),*) => {$(
        impl<S: Source + ?Sized> Source for $t {
            fn dim(&self) -> (usize, usize) {
                (**self).dim()
            }
            fn rewind(&mut self) -> Result<()> {
                (**self).rewind()
            }
            fn next_batch(&mut self, max_cols: usize) -> Result<Option<Array2<f32>>> {
                (**self).next_batch(max_cols)
            }
            fn describe(&self, col: usize) -> String {
                (**self).describe(col)
            }
            fn frame_shape(&self) -> Option<(usize, usize)> {
                (**self).frame_shape()
            }
        }
    )*};
}
forward_source!(&mut S, Box<S>);

/// How far a pass over the `n` columns of a source read by column ranges has got: what its
/// [`Source::rewind`] and [`Source::next_batch`] keep track of.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Pass {
    /// The first column not yet handed out.
    next: usize,
}

impl Pass {
    /// Back to the first column ([`Source::rewind`]).
    pub(crate) fn rewind(&mut self) -> Result<()> {
        self.next = 0;
        Ok(())
    }

    /// The next batch of a pass over `n` columns ([`Source::next_batch`]): `read` of the next
    /// `b = min(max(max_cols, 1), columns left)` columns, after which the pass is past them;
    /// `None` once all `n` were handed out.
    pub(crate) fn next_batch(
        &mut self,
        n: usize,
        max_cols: usize,
        read: impl FnOnce(Range<usize>) -> Result<Array2<f32>>,
    ) -> Result<Option<Array2<f32>>> {
        if self.next >= n {
            return Ok(None);
        }
        let end = self.next + max_cols.max(1).min(n - self.next);
        let batch = read(self.next..end)?;
        self.next = end;
        Ok(Some(batch))
    }
}

/// An in-memory matrix (features x samples) as a source; each batch is a copy of its columns.
#[derive(Debug, Clone)]
pub struct ArraySource<'a> {
    v: ArrayView2<'a, f32>,
    pass: Pass,
}

impl<'a> ArraySource<'a> {
    /// Stream the columns of `v` (m x n).
    pub fn new(v: ArrayView2<'a, f32>) -> Self {
        ArraySource {
            v,
            pass: Pass::default(),
        }
    }
}

impl Source for ArraySource<'_> {
    fn dim(&self) -> (usize, usize) {
        self.v.dim()
    }
    fn rewind(&mut self) -> Result<()> {
        self.pass.rewind()
    }
    fn next_batch(&mut self, max_cols: usize) -> Result<Option<Array2<f32>>> {
        let v = self.v;
        self.pass.next_batch(v.ncols(), max_cols, |cols| {
            Ok(v.slice(s![.., cols]).as_standard_layout().into_owned())
        })
    }
}

/// A CSR matrix (features x samples) as a source of dense batches: the columns are read from
/// its transpose (one CSR row per sample), made once, so a batch costs its stored entries plus
/// the `m x b` dense block it fills.
#[derive(Debug, Clone)]
pub struct CsrSource {
    /// Vᵀ (n x m): row j holds sample j.
    vt: CsrMatrix,
    pass: Pass,
}

impl CsrSource {
    /// Stream the columns of `v` (m x n, features x samples); keeps a transposed copy.
    pub fn new(v: &CsrMatrix) -> Self {
        CsrSource {
            vt: v.transpose(),
            pass: Pass::default(),
        }
    }
}

impl Source for CsrSource {
    fn dim(&self) -> (usize, usize) {
        let (n, m) = self.vt.dim();
        (m, n)
    }
    fn rewind(&mut self) -> Result<()> {
        self.pass.rewind()
    }
    fn next_batch(&mut self, max_cols: usize) -> Result<Option<Array2<f32>>> {
        let vt = &self.vt;
        let (n, m) = vt.dim();
        self.pass.next_batch(n, max_cols, |cols| {
            let mut batch = Array2::<f32>::zeros((m, cols.len()));
            for (c, j) in cols.enumerate() {
                let (idx, vals) = vt.row(j);
                for (&i, &x) in idx.iter().zip(vals) {
                    let i = i as usize;
                    if i >= m {
                        return Err(NmfError::InvalidSparse {
                            reason: format!("column index {i} of sample {j} is out of range"),
                        });
                    }
                    batch[[i, c]] = x;
                }
            }
            Ok(batch)
        })
    }
}
