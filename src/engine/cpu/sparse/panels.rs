//! The layout of a sparse matrix as the products read it: [`Panels`] (column panels with
//! 16-bit local column indices) or the CSR matrix itself, behind one [`Operand`].

use rayon::prelude::*;

use crate::error::{NmfError, Result};
use crate::sparse::CsrMatrix;

/// Rows of the result computed by one task; small enough to balance uneven rows.
pub(super) const TASK_ROWS: usize = 256;

/// The slice of `X` one column panel gathers from: half of a typical 2 MiB per-core L2.
pub(super) const PANEL_BYTES: usize = 1 << 20;

/// A column index type of the kernels.
pub(crate) trait Index: Copy + Send + Sync {
    fn at(self) -> usize;
}

impl Index for u16 {
    #[inline(always)]
    fn at(self) -> usize {
        self as usize
    }
}

impl Index for u32 {
    #[inline(always)]
    fn at(self) -> usize {
        self as usize
    }
}

/// What the accumulators of a row start from.
#[derive(Clone, Copy)]
pub(super) enum Start {
    /// Zero: `out = A X`.
    Zero,
    /// The output row itself: `out += A X`.
    Out,
}

/// One column panel of a sparse matrix: the entries of columns `col0..col0 + 65536` at most,
/// column indices relative to `col0`.
pub(super) struct Panel {
    pub(super) col0: usize,
    pub(super) cols: usize,
    pub(super) indptr: Vec<usize>,
    pub(super) indices: Vec<u16>,
    pub(super) values: Vec<f32>,
}

/// A sparse matrix split into column panels of equal width (the last may be narrower).
pub(crate) struct Panels {
    rows: usize,
    cols: usize,
    width: usize,
    pub(super) panels: Vec<Panel>,
}

impl Panels {
    /// The panel width that keeps a panel's `X` (width x r floats) within `PANEL_BYTES`.
    pub(crate) fn width_for(r: usize) -> usize {
        (PANEL_BYTES / (4 * r.max(1))).clamp(1, 1 << 16)
    }

    /// Whether `a` is worth splitting into panels of `width` columns: every panel stores
    /// `rows + 1` offsets (8 bytes each), so `a` is split only when they add at most 2 bytes
    /// per stored entry, `panels·(rows + 1) ≤ nnz / 4`. The panels then take at most 8 bytes
    /// per stored entry (6 for the entries, 2 for the offsets), and building them costs at
    /// most `nnz / 4` binary searches.
    pub(crate) fn pays(a: &CsrMatrix, width: usize) -> bool {
        let width = width.clamp(1, 1 << 16);
        let panels = a.cols().div_ceil(width) as u128;
        panels * (a.rows() as u128 + 1) * 4 <= a.nnz() as u128
    }

    /// `a` split into panels of `width` columns when that [pays](Self::pays), else `None`
    /// (the products then read `a` itself).
    pub(crate) fn build(a: &CsrMatrix, width: usize) -> Option<Panels> {
        Self::pays(a, width).then(|| Self::new(a, width))
    }

    /// `a` split into panels of `width` columns (1 ≤ width ≤ 65536), whatever it costs.
    pub(crate) fn new(a: &CsrMatrix, width: usize) -> Panels {
        let width = width.clamp(1, 1 << 16);
        let (rows, cols) = a.dim();
        let starts: Vec<usize> = (0..cols).step_by(width).collect();
        let panels = starts
            .into_par_iter()
            .map(|col0| {
                let end = (col0 + width).min(cols);
                let mut indptr = Vec::with_capacity(rows + 1);
                indptr.push(0);
                let mut indices = Vec::new();
                let mut values = Vec::new();
                for i in 0..rows {
                    let (idx, val) = a.row(i);
                    let lo = idx.partition_point(|&j| (j as usize) < col0);
                    let hi = lo + idx[lo..].partition_point(|&j| (j as usize) < end);
                    indices.extend(idx[lo..hi].iter().map(|&j| (j as usize - col0) as u16));
                    values.extend_from_slice(&val[lo..hi]);
                    indptr.push(values.len());
                }
                Panel {
                    col0,
                    cols: end - col0,
                    indptr,
                    indices,
                    values,
                }
            })
            .collect();
        Panels {
            rows,
            cols,
            width,
            panels,
        }
    }

    /// The panel width.
    pub(crate) fn width(&self) -> usize {
        self.width
    }
}

/// A sparse matrix as the products read it: split into column panels, or the CSR matrix
/// itself (when panels do not pay, and for the randomized SVD).
#[derive(Clone, Copy)]
pub(crate) enum Operand<'a> {
    Panels(&'a Panels),
    Csr(&'a CsrMatrix),
}

impl<'a> Operand<'a> {
    /// The panels when there are some, else `a` itself.
    pub(crate) fn of(a: &'a CsrMatrix, panels: Option<&'a Panels>) -> Operand<'a> {
        match panels {
            Some(p) => Operand::Panels(p),
            None => Operand::Csr(a),
        }
    }

    pub(super) fn dim(self) -> (usize, usize) {
        match self {
            Operand::Panels(p) => (p.rows, p.cols),
            Operand::Csr(a) => a.dim(),
        }
    }

    /// Rows of the result one task computes: for panels, a block whose rows of the result
    /// (80 KiB at r = 20) stay in L2 while the panels' slices of `X` pass through; straight
    /// from CSR, fewer, to balance uneven rows.
    pub(super) fn block_rows(self) -> usize {
        match self {
            Operand::Panels(_) => BLOCK_ROWS,
            Operand::Csr(_) => TASK_ROWS,
        }
    }

    /// The lengths every product checks before its kernels read `x` (and `y`) unchecked:
    /// `x` is A.cols x r, `y` A.rows x r, and the result has `out_len` = A.rows·r entries.
    pub(super) fn check(
        self,
        x: &[f32],
        y: Option<&[f32]>,
        r: usize,
        out_len: usize,
    ) -> Result<()> {
        let (rows, cols) = self.dim();
        let len = |what: &'static str, n: usize, want: usize, dims: (usize, usize)| {
            if (n as u128) == (want as u128) {
                Ok(())
            } else {
                Err(NmfError::ShapeMismatch {
                    what,
                    expected: format!(
                        "{} x {} = {} floats",
                        dims.0,
                        dims.1,
                        dims.0 as u128 * dims.1 as u128
                    ),
                    found: format!("{n} floats"),
                })
            }
        };
        len(
            "X in the sparse product A X",
            x.len(),
            cols.wrapping_mul(r),
            (cols, r),
        )?;
        if cols.checked_mul(r).is_none() || rows.checked_mul(r).is_none() {
            return Err(NmfError::ShapeMismatch {
                what: "the sparse product A X",
                expected: "a result that fits in memory".into(),
                found: format!("{rows} x {r}"),
            });
        }
        len(
            "the result of the sparse product A X",
            out_len,
            rows * r,
            (rows, r),
        )?;
        if let Some(y) = y {
            len("Y in the sparse KL product", y.len(), rows * r, (rows, r))?;
        }
        Ok(())
    }
}

/// Rows of the result one task computes across all panels.
pub(super) const BLOCK_ROWS: usize = 1024;
