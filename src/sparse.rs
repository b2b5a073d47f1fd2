//! Sparse data matrices: [`CsrMatrix`], compressed sparse rows of float32 values.
//!
//! A bag-of-words count matrix, a user x item rating matrix or a graph's adjacency is mostly
//! zeros; storing only the nonzeros lets a fit run in time and memory proportional to their
//! number instead of `m·n`. [`NmfParams::fit_sparse`](crate::NmfParams::fit_sparse) factorizes
//! such a matrix on the CPU or the GPU engine without ever forming it densely:
//!
//! ```
//! use nmf_gpu::sparse::CsrMatrix;
//! use nmf_gpu::{Init, Nmf};
//!
//! // A 4 x 5 matrix with six nonzeros, given as (row, column, value) triplets.
//! let v = CsrMatrix::from_triplets(
//!     4,
//!     5,
//!     [(0, 0, 1.0), (0, 3, 2.0), (1, 1, 3.0), (2, 0, 1.5), (2, 3, 2.5), (3, 4, 1.0)],
//! )?;
//! assert_eq!(v.nnz(), 6);
//! let fit = Nmf::params(2).init(Init::Random).max_iter(50).fit_sparse(&v)?;
//! assert_eq!(fit.w().dim(), (4, 2));
//! # Ok::<(), nmf_gpu::NmfError>(())
//! ```
//!
//! Invariants, checked by every constructor: `indptr` has `rows + 1` nondecreasing entries from
//! 0 to `nnz`; the column indices of each row are strictly increasing (sorted, no repeats) and
//! below `cols`; every stored value is finite and nonnegative. Stored zeros are allowed (they
//! count in [`nnz`](CsrMatrix::nnz) but change nothing in a fit).

use ndarray::{Array2, ArrayView2};

use crate::error::{NmfError, Result};

/// Whether `items` holds each of `0..len` exactly once.
fn is_permutation(items: impl ExactSizeIterator<Item = usize>, len: usize) -> bool {
    let mut seen = vec![false; len];
    items.len() == len
        && items
            .into_iter()
            .all(|t| t < len && !std::mem::replace(&mut seen[t], true))
}

/// A float32 matrix in compressed sparse row (CSR) form, the layout of scipy's `csr_matrix`.
///
/// Row `i` holds the entries `values[k]` at columns `indices[k]` for
/// `k in indptr[i]..indptr[i + 1]`. Indices are `u32`: at most `u32::MAX` rows and columns.
#[derive(Debug, Clone, PartialEq)]
pub struct CsrMatrix {
    rows: usize,
    cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

fn invalid(reason: String) -> NmfError {
    NmfError::InvalidSparse { reason }
}

/// The error for a stored value that is negative or not finite, if it is.
fn check_value(row: usize, col: usize, value: f32) -> Result<()> {
    if !value.is_finite() {
        return Err(NmfError::NonFiniteInput { row, col, value });
    }
    if value < 0.0 {
        return Err(NmfError::NegativeInput { row, col, value });
    }
    Ok(())
}

/// Both dimensions must fit the `u32` indices (the transpose indexes rows).
fn check_dims(rows: usize, cols: usize) -> Result<()> {
    for (n, what) in [(rows, "rows"), (cols, "columns")] {
        if u32::try_from(n).is_err() {
            return Err(invalid(format!(
                "{n} {what} is more than the {} a CsrMatrix indexes (u32 indices)",
                u32::MAX
            )));
        }
    }
    Ok(())
}

impl CsrMatrix {
    /// The matrix from its CSR arrays, checked against every invariant (see the
    /// [module docs](self)): a malformed `indptr`, an index out of range or out of order, or
    /// lengths that disagree give [`NmfError::InvalidSparse`]; a negative or non-finite value
    /// gives [`NmfError::NegativeInput`] or [`NmfError::NonFiniteInput`] with its row and column.
    pub fn from_parts(
        rows: usize,
        cols: usize,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        values: Vec<f32>,
    ) -> Result<CsrMatrix> {
        check_dims(rows, cols)?;
        if indptr.len() != rows + 1 {
            return Err(invalid(format!(
                "indptr has {} entries; a matrix of {rows} rows needs rows + 1 = {}",
                indptr.len(),
                rows + 1
            )));
        }
        if indices.len() != values.len() {
            return Err(invalid(format!(
                "{} column indices but {} values; each stored entry needs one of each",
                indices.len(),
                values.len()
            )));
        }
        if indptr[0] != 0 || indptr[rows] != values.len() {
            return Err(invalid(format!(
                "indptr must run from 0 to the number of stored entries ({}), but runs from {} to {}",
                values.len(),
                indptr[0],
                indptr[rows]
            )));
        }
        if let Some(i) = (0..rows).find(|&i| indptr[i] > indptr[i + 1]) {
            return Err(invalid(format!(
                "indptr decreases at row {i} ({} then {}); it must be nondecreasing",
                indptr[i],
                indptr[i + 1]
            )));
        }
        // From here on every offset lies in 0..=nnz.
        for i in 0..rows {
            let (s, e) = (indptr[i], indptr[i + 1]);
            let mut prev: Option<u32> = None;
            for k in s..e {
                let j = indices[k];
                if j as usize >= cols {
                    return Err(invalid(format!(
                        "row {i} has column index {j}, out of range for {cols} columns"
                    )));
                }
                if prev.is_some_and(|p| p >= j) {
                    return Err(invalid(format!(
                        "the column indices of row {i} are not strictly increasing ({} then {j}); sort each row and sum repeated entries (CsrMatrix::from_triplets does both)",
                        prev.unwrap_or(0)
                    )));
                }
                prev = Some(j);
                check_value(i, j as usize, values[k])?;
            }
        }
        Ok(CsrMatrix {
            rows,
            cols,
            indptr,
            indices,
            values,
        })
    }

    /// The matrix from `(row, column, value)` triplets in any order. **Repeated positions are
    /// summed** (as scipy's `coo_matrix.tocsr()` does); zero values are stored like any other.
    /// A position out of range gives [`NmfError::InvalidSparse`]; a negative or non-finite value
    /// (or a sum that overflows) gives [`NmfError::NegativeInput`] or
    /// [`NmfError::NonFiniteInput`].
    pub fn from_triplets(
        rows: usize,
        cols: usize,
        triplets: impl IntoIterator<Item = (usize, usize, f32)>,
    ) -> Result<CsrMatrix> {
        check_dims(rows, cols)?;
        let mut entries: Vec<(u32, u32, f32)> = Vec::new();
        for (i, j, v) in triplets {
            if i >= rows || j >= cols {
                return Err(invalid(format!(
                    "the entry at row {i}, column {j} is outside the {rows} x {cols} matrix (indices are 0-based)"
                )));
            }
            check_value(i, j, v)?;
            // Both fit: i < rows and j < cols, each at most u32::MAX (check_dims).
            entries.push((i as u32, j as u32, v));
        }
        Self::from_checked_triplets(rows, cols, entries)
    }

    /// [`from_triplets`](Self::from_triplets) for entries already checked: dimensions within
    /// `u32`, every position in range, every value finite and nonnegative. Only the sums of
    /// repeated positions are checked (they may overflow to infinity). Holds the 12-byte
    /// triplets, the stable sort's scratch (at most half as many) and then the CSR arrays.
    pub(crate) fn from_checked_triplets(
        rows: usize,
        cols: usize,
        mut entries: Vec<(u32, u32, f32)>,
    ) -> Result<CsrMatrix> {
        debug_assert!(check_dims(rows, cols).is_ok());
        // A stable sort keeps repeated entries in input order, so their sum is reproducible.
        entries.sort_by_key(|&(i, j, _)| (i, j));
        let mut indptr = vec![0usize; rows + 1];
        let mut indices = Vec::with_capacity(entries.len());
        let mut values: Vec<f32> = Vec::with_capacity(entries.len());
        let mut last: Option<(u32, u32)> = None;
        for (i, j, v) in entries {
            if last == Some((i, j)) {
                if let Some(x) = values.last_mut() {
                    *x += v;
                    check_value(i as usize, j as usize, *x)?;
                }
                continue;
            }
            last = Some((i, j));
            indptr[i as usize + 1] += 1;
            indices.push(j);
            values.push(v);
        }
        for i in 0..rows {
            indptr[i + 1] += indptr[i];
        }
        Ok(CsrMatrix {
            rows,
            cols,
            indptr,
            indices,
            values,
        })
    }

    /// The nonzero entries of a dense matrix (features x samples). A negative or non-finite
    /// entry gives [`NmfError::NegativeInput`] or [`NmfError::NonFiniteInput`].
    pub fn from_dense(v: ArrayView2<'_, f32>) -> Result<CsrMatrix> {
        let (rows, cols) = v.dim();
        check_dims(rows, cols)?;
        let mut indptr = Vec::with_capacity(rows + 1);
        indptr.push(0);
        let mut indices = Vec::new();
        let mut values = Vec::new();
        for (i, row) in v.rows().into_iter().enumerate() {
            for (j, &x) in row.iter().enumerate() {
                check_value(i, j, x)?;
                if x != 0.0 {
                    indices.push(j as u32);
                    values.push(x);
                }
            }
            indptr.push(values.len());
        }
        Ok(CsrMatrix {
            rows,
            cols,
            indptr,
            indices,
            values,
        })
    }

    /// The dense matrix (rows x cols); it allocates `rows·cols` floats.
    pub fn to_dense(&self) -> Array2<f32> {
        let mut a = Array2::zeros((self.rows, self.cols));
        for i in 0..self.rows {
            let (idx, val) = self.row(i);
            for (&j, &x) in idx.iter().zip(val) {
                a[[i, j as usize]] = x;
            }
        }
        a
    }

    /// The transpose (cols x rows), itself in CSR form: the CSC form of `self`.
    pub fn transpose(&self) -> CsrMatrix {
        self.transpose_in(|i| i, |j| j)
    }

    /// The transpose of `self` with its rows taken in the order `order` and its columns
    /// renamed by `rename`: `order[k]` is the row of `self` that becomes column `k` of the
    /// result, and column `j` of `self` becomes row `rename[j]`, i.e. the result is
    /// `(P A Q)ᵀ` with `(P A Q)[k, rename[j]] = A[order[k], j]`. `order` is a permutation of
    /// `0..rows` and `rename` one of `0..cols` (checked in debug builds).
    ///
    /// One counting pass, O(nnz + rows + cols): the rows are visited in the new order, so each
    /// row of the result comes out sorted, as the CSR invariants want, without a sort.
    pub(crate) fn permuted_transpose(&self, order: &[usize], rename: &[u32]) -> CsrMatrix {
        debug_assert!(is_permutation(order.iter().copied(), self.rows));
        debug_assert!(is_permutation(
            rename.iter().map(|&j| j as usize),
            self.cols
        ));
        self.transpose_in(|k| order[k], |j| rename[j as usize])
    }

    /// The transpose, visiting the rows as `row(0..k)` and renaming column `j` to `col(j)`
    /// (both permutations).
    fn transpose_in(&self, row: impl Fn(usize) -> usize, col: impl Fn(u32) -> u32) -> CsrMatrix {
        let (m, n) = (self.rows, self.cols);
        let mut indptr = vec![0usize; n + 1];
        for &j in &self.indices {
            indptr[col(j) as usize + 1] += 1;
        }
        for j in 0..n {
            indptr[j + 1] += indptr[j];
        }
        let mut next = indptr.clone();
        let mut indices = vec![0u32; self.nnz()];
        let mut values = vec![0.0f32; self.nnz()];
        // Rows are visited in order, so each transposed row comes out sorted.
        for i in 0..m {
            let (idx, val) = self.row(row(i));
            for (&j, &x) in idx.iter().zip(val) {
                let slot = &mut next[col(j) as usize];
                indices[*slot] = i as u32;
                values[*slot] = x;
                *slot += 1;
            }
        }
        CsrMatrix {
            rows: n,
            cols: m,
            indptr,
            indices,
            values,
        }
    }

    /// Number of rows (features).
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns (samples).
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// `(rows, cols)`.
    pub fn dim(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }
    /// Stored entries over `rows·cols` (0 for an empty shape).
    pub fn density(&self) -> f64 {
        let total = self.rows as f64 * self.cols as f64;
        if total == 0.0 {
            0.0
        } else {
            self.nnz() as f64 / total
        }
    }
    /// Row offsets (`rows + 1` entries).
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }
    /// Column index of each stored entry.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }
    /// Value of each stored entry.
    pub fn values(&self) -> &[f32] {
        &self.values
    }
    /// The column indices and values of row `i`.
    ///
    /// # Panics
    /// When `i >= rows()`.
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let (s, e) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[s..e], &self.values[s..e])
    }
    /// The entry at `(i, j)` (0 where none is stored), or `None` out of range.
    pub fn get(&self, i: usize, j: usize) -> Option<f32> {
        if i >= self.rows || j >= self.cols {
            return None;
        }
        let (idx, val) = self.row(i);
        Some(match idx.binary_search(&(j as u32)) {
            Ok(k) => val[k],
            Err(_) => 0.0,
        })
    }

    /// Sum of all entries, in f64.
    pub(crate) fn sum(&self) -> f64 {
        self.values.iter().map(|&x| x as f64).sum()
    }
    /// `‖V‖²_F`, in f64.
    pub(crate) fn sq_norm(&self) -> f64 {
        self.values.iter().map(|&x| (x as f64) * (x as f64)).sum()
    }
}
