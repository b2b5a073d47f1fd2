//! Sparse kernels of the CPU engine, for a data matrix held in CSR form (with its CSC copy).
//!
//! Every product with V becomes a sparse x skinny product `A X`, `A` (p x q) sparse and `X`
//! (q x r) row-major: row `i` of the result is `Σ_k a_ik X[k, :]`, one axpy of a length-r row
//! per stored entry. `V Hᵀ` is this with `A = V`, `X = Hᵀ` (packed); `Wᵀ V = (Vᵀ W)ᵀ` with
//! `A = Vᵀ` (the CSC copy) and `X = W`, so each output column is independent.
//!
//! The rows of `X` are gathered in the order of the column indices, which is random for
//! unstructured data: once `X` outgrows the L2 cache every entry waits on a cache miss (three
//! times slower at 20000 x 50000, r = 20). The products therefore run over [`Panels`]: `A`
//! split into column panels whose slice of `X` (`PANEL_BYTES`) stays in cache, with 16-bit
//! column indices local to the panel (6 bytes per entry to stream instead of 8). Each task
//! takes a block of `BLOCK_ROWS` rows through every panel, so its rows of the result stay in
//! L2 too. Each panel stores `rows + 1` row offsets, so a very wide and very sparse matrix
//! (many panels, few entries per row and panel) is not split ([`Panels::build`]): the
//! products then read the CSR matrix itself (an [`Operand`]). On CPUs with AVX-512F the axpys
//! run on zmm registers (up to 64 components held in registers, four stored entries in
//! flight, the rows of `X` prefetched 16 entries ahead).

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::error::{NmfError, Result};
use crate::linalg::LinearOperator;
use crate::sparse::CsrMatrix;

/// Rows of the result computed by one task; small enough to balance uneven rows.
const TASK_ROWS: usize = 256;

/// The slice of `X` one column panel gathers from: half of a typical 2 MiB per-core L2.
const PANEL_BYTES: usize = 1 << 20;

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
enum Start {
    /// Zero: `out = A X`.
    Zero,
    /// The output row itself: `out += A X`.
    Out,
}

/// One column panel of a sparse matrix: the entries of columns `col0..col0 + 65536` at most,
/// column indices relative to `col0`.
struct Panel {
    col0: usize,
    cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u16>,
    values: Vec<f32>,
}

/// A sparse matrix split into column panels of equal width (the last may be narrower).
pub(crate) struct Panels {
    rows: usize,
    cols: usize,
    width: usize,
    panels: Vec<Panel>,
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

    fn dim(self) -> (usize, usize) {
        match self {
            Operand::Panels(p) => (p.rows, p.cols),
            Operand::Csr(a) => a.dim(),
        }
    }

    /// Rows of the result one task computes: for panels, a block whose rows of the result
    /// (80 KiB at r = 20) stay in L2 while the panels' slices of `X` pass through; straight
    /// from CSR, fewer, to balance uneven rows.
    fn block_rows(self) -> usize {
        match self {
            Operand::Panels(_) => BLOCK_ROWS,
            Operand::Csr(_) => TASK_ROWS,
        }
    }

    /// The lengths every product checks before its kernels read `x` (and `y`) unchecked:
    /// `x` is A.cols x r, `y` A.rows x r, and the result has `out_len` = A.rows·r entries.
    fn check(self, x: &[f32], y: Option<&[f32]>, r: usize, out_len: usize) -> Result<()> {
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
const BLOCK_ROWS: usize = 1024;

/// Rows `row0..row0 + out.len()/r` of `A X` into `out`.
///
/// With `y` (A.rows x r) given, the rows are those of the KL numerator `Z X` instead, with
/// `z_ij = a_ij / max(y[i,:]·x[j,:], ε)` at the stored entries (`ε = f32::EPSILON`, as in the
/// dense engine). The caller has checked the lengths ([`Operand::check`]).
fn block_rows(
    a: Operand<'_>,
    row0: usize,
    x: &[f32],
    y: Option<&[f32]>,
    r: usize,
    out: &mut [f32],
) {
    let rows = out.len() / r;
    let yb = y.map(|y| &y[row0 * r..(row0 + rows) * r]);
    match a {
        Operand::Csr(a) => {
            let ptr = &a.indptr()[row0..row0 + rows + 1];
            let (idx, val) = (a.indices(), a.values());
            match yb {
                None => rows_kernel(ptr, idx, val, x, r, Start::Zero, out),
                Some(yb) => kl_rows_kernel(ptr, idx, val, x, yb, r, Start::Zero, out),
            }
        }
        Operand::Panels(a) => {
            if a.panels.is_empty() {
                out.fill(0.0);
            }
            for (p, panel) in a.panels.iter().enumerate() {
                let xp = &x[panel.col0 * r..(panel.col0 + panel.cols) * r];
                let start = if p == 0 { Start::Zero } else { Start::Out };
                let ptr = &panel.indptr[row0..row0 + rows + 1];
                let (idx, val) = (&panel.indices[..], &panel.values[..]);
                match yb {
                    None => rows_kernel(ptr, idx, val, xp, r, start, out),
                    Some(yb) => kl_rows_kernel(ptr, idx, val, xp, yb, r, start, out),
                }
            }
        }
    }
}

/// `out = A X` (or the KL numerator `Z X`, with `y`) with `x` (A.cols x r) and `out`
/// (A.rows x r) row-major: blocks of rows in parallel.
fn products(a: Operand<'_>, x: &[f32], y: Option<&[f32]>, r: usize, out: &mut [f32]) -> Result<()> {
    a.check(x, y, r, out.len())?;
    if r == 0 {
        return Ok(());
    }
    let br = a.block_rows();
    out.par_chunks_mut(br * r)
        .enumerate()
        .for_each(|(t, ob)| block_rows(a, t * br, x, y, r, ob));
    Ok(())
}

/// `out = (A X)ᵀ` (or `(Z X)ᵀ`, with `y`), r x A.rows in any layout, with `x` (A.cols x r)
/// row-major: each block of rows of `A X` is computed into a local buffer and written
/// transposed.
fn products_t(
    a: Operand<'_>,
    x: &[f32],
    y: Option<&[f32]>,
    r: usize,
    mut out: ArrayViewMut2<'_, f32>,
) -> Result<()> {
    if out.nrows() != r || out.ncols() != a.dim().0 {
        return Err(NmfError::ShapeMismatch {
            what: "the result of the sparse product (A X)ᵀ",
            expected: format!("{r} x {}", a.dim().0),
            found: format!("{} x {}", out.nrows(), out.ncols()),
        });
    }
    a.check(x, y, r, out.len())?;
    if r == 0 {
        return Ok(());
    }
    let br = a.block_rows();
    out.axis_chunks_iter_mut(Axis(1), br)
        .into_par_iter()
        .enumerate()
        .for_each(|(t, mut ob)| {
            let mut buf = vec![0.0f32; ob.ncols() * r];
            block_rows(a, t * br, x, y, r, &mut buf);
            write_transposed(&buf, r, &mut ob);
        });
    Ok(())
}

/// `out = A X` with `x` (A.cols x r) and `out` (A.rows x r) row-major.
/// Lengths that do not match are an error.
pub(crate) fn spmm(a: Operand<'_>, x: &[f32], r: usize, out: &mut [f32]) -> Result<()> {
    products(a, x, None, r, out)
}

/// `out = (A X)ᵀ` (r x A.rows, any layout) with `x` (A.cols x r) row-major.
/// A shape of `out` or a length of `x` that does not match is an error.
pub(crate) fn spmm_t(
    a: Operand<'_>,
    x: &[f32],
    r: usize,
    out: ArrayViewMut2<'_, f32>,
) -> Result<()> {
    products_t(a, x, None, r, out)
}

/// The KL numerator `out = Z X` (A.rows x r, row-major), `z_ij = a_ij / max(y[i,:]·x[j,:], ε)`
/// at the stored entries; `y` is A.rows x r, `x` A.cols x r. Lengths that do not match are an
/// error.
pub(crate) fn kl_spmm(
    a: Operand<'_>,
    y: &[f32],
    x: &[f32],
    r: usize,
    out: &mut [f32],
) -> Result<()> {
    products(a, x, Some(y), r, out)
}

/// `out = (Z X)ᵀ` (r x A.rows), `Z` as in [`kl_spmm`]; as there, and a shape of `out` other
/// than r x A.rows, is an error.
pub(crate) fn kl_spmm_t(
    a: Operand<'_>,
    y: &[f32],
    x: &[f32],
    r: usize,
    out: ArrayViewMut2<'_, f32>,
) -> Result<()> {
    products_t(a, x, Some(y), r, out)
}

/// `ob[t, i] = buf[i·r + t]`.
fn write_transposed(buf: &[f32], r: usize, ob: &mut ArrayViewMut2<'_, f32>) {
    for (t, mut orow) in ob.rows_mut().into_iter().enumerate() {
        for (i, o) in orow.iter_mut().enumerate() {
            *o = buf[i * r + t];
        }
    }
}

/// `out[i, :] = start[i, :] + Σ_k val[k] · x[idx[k], :]` for `k in ptr[i]..ptr[i+1]`, for the
/// `out.len() / r` rows whose offsets `ptr` holds (absolute positions in `idx` and `val`).
/// Every `idx[k]` must index a row of `x` (an invariant of the matrix the caller passes).
fn rows_kernel<I: Index>(
    ptr: &[usize],
    idx: &[I],
    val: &[f32],
    x: &[f32],
    r: usize,
    start: Start,
    out: &mut [f32],
) {
    assert_eq!(ptr.len(), out.len() / r + 1);
    #[cfg(target_arch = "x86_64")]
    {
        if r <= 64 && super::skinny::available() {
            // SAFETY: AVX-512F was detected. Every idx[k] indexes a row of x: the public
            // products assert x.len() = A.cols·r (Operand::check), and the column indices of a
            // CsrMatrix are below A.cols (an invariant of its constructors), as are those of a
            // panel relative to its slice of x (Panels::new). ptr holds out.len()/r + 1
            // offsets (asserted above), each at most idx.len() = val.len() (the same
            // invariants).
            unsafe {
                match r.div_ceil(16) {
                    1 => avx512::rows::<1, I>(ptr, idx, val, x, r, start, out),
                    2 => avx512::rows::<2, I>(ptr, idx, val, x, r, start, out),
                    3 => avx512::rows::<3, I>(ptr, idx, val, x, r, start, out),
                    _ => avx512::rows::<4, I>(ptr, idx, val, x, r, start, out),
                }
            }
            return;
        }
    }
    for (i, orow) in out.chunks_exact_mut(r).enumerate() {
        match start {
            Start::Zero => orow.fill(0.0),
            Start::Out => {}
        }
        for k in ptr[i]..ptr[i + 1] {
            let j = idx[k].at();
            let v = val[k];
            for (o, &xv) in orow.iter_mut().zip(&x[j * r..(j + 1) * r]) {
                *o += v * xv;
            }
        }
    }
}

/// Rows of the KL numerator: `out[i, :] = start[i, :] + Σ_k z_k · x[idx[k], :]` with
/// `z_k = val[k] / max(y[i, :]·x[idx[k], :], ε)`, `ε = f32::EPSILON`; `y` holds the rows of
/// this block (as long as `out`). Indices as in [`rows_kernel`].
#[allow(clippy::too_many_arguments)]
fn kl_rows_kernel<I: Index>(
    ptr: &[usize],
    idx: &[I],
    val: &[f32],
    x: &[f32],
    y: &[f32],
    r: usize,
    start: Start,
    out: &mut [f32],
) {
    assert_eq!(ptr.len(), out.len() / r + 1);
    assert_eq!(y.len(), out.len());
    #[cfg(target_arch = "x86_64")]
    {
        if r <= 64 && super::skinny::available() {
            // SAFETY: as in rows_kernel; y is as long as out (asserted above).
            unsafe {
                match r.div_ceil(16) {
                    1 => avx512::kl_rows::<1, I>(ptr, idx, val, x, y, r, start, out),
                    2 => avx512::kl_rows::<2, I>(ptr, idx, val, x, y, r, start, out),
                    3 => avx512::kl_rows::<3, I>(ptr, idx, val, x, y, r, start, out),
                    _ => avx512::kl_rows::<4, I>(ptr, idx, val, x, y, r, start, out),
                }
            }
            return;
        }
    }
    let eps = f32::EPSILON;
    for (i, orow) in out.chunks_exact_mut(r).enumerate() {
        if let Start::Zero = start {
            orow.fill(0.0);
        }
        let yr = &y[i * r..(i + 1) * r];
        for k in ptr[i]..ptr[i + 1] {
            let xr = &x[idx[k].at() * r..(idx[k].at() + 1) * r];
            let p = dot_f32(yr, xr);
            let z = val[k] / if p < eps { eps } else { p };
            for (o, &xv) in orow.iter_mut().zip(xr) {
                *o += z * xv;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Index, Start};

    /// How many entries ahead the rows of `x` are prefetched.
    const PF: usize = 16;

    /// [`super::rows_kernel`] with `NV` zmm registers per row of r ≤ 16·NV floats, four
    /// entries at a time into separate accumulators.
    ///
    /// # Safety
    /// AVX-512F must be available; `16·(NV−1) < r ≤ 16·NV`; every `idx[k]` in the ranges must
    /// index a row of `x` (`x.len() ≥ (idx[k]+1)·r`); `out.len() = (ptr.len() − 1)·r`.
    // The four accumulator sets are indexed in lockstep.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows<const NV: usize, I: Index>(
        ptr: &[usize],
        idx: &[I],
        val: &[f32],
        x: &[f32],
        r: usize,
        start: Start,
        out: &mut [f32],
    ) {
        let last = r - 16 * (NV - 1);
        let mask: __mmask16 = if last == 16 {
            0xFFFF
        } else {
            (1u16 << last) - 1
        };
        let xp = x.as_ptr();
        let load = |p: *const f32, q: usize| -> __m512 {
            if q + 1 == NV {
                _mm512_maskz_loadu_ps(mask, p.add(16 * q))
            } else {
                _mm512_loadu_ps(p.add(16 * q))
            }
        };
        for (i, orow) in out.chunks_exact_mut(r).enumerate() {
            let (s, e) = (ptr[i], ptr[i + 1]);
            let op = orow.as_mut_ptr();
            let mut a0 = [_mm512_setzero_ps(); NV];
            match start {
                Start::Zero => {}
                Start::Out => {
                    for (q, a) in a0.iter_mut().enumerate() {
                        *a = load(op, q);
                    }
                }
            }
            let mut a1 = [_mm512_setzero_ps(); NV];
            let mut a2 = [_mm512_setzero_ps(); NV];
            let mut a3 = [_mm512_setzero_ps(); NV];
            let mut k = s;
            while k + 4 <= e {
                if k + PF + 4 <= e {
                    for d in 0..4 {
                        let pp = xp.add(idx.get_unchecked(k + PF + d).at() * r) as *const i8;
                        _mm_prefetch::<_MM_HINT_T0>(pp);
                        _mm_prefetch::<_MM_HINT_T0>(pp.add(4 * r - 1));
                    }
                }
                let x0 = xp.add(idx.get_unchecked(k).at() * r);
                let x1 = xp.add(idx.get_unchecked(k + 1).at() * r);
                let x2 = xp.add(idx.get_unchecked(k + 2).at() * r);
                let x3 = xp.add(idx.get_unchecked(k + 3).at() * r);
                let v0 = _mm512_set1_ps(*val.get_unchecked(k));
                let v1 = _mm512_set1_ps(*val.get_unchecked(k + 1));
                let v2 = _mm512_set1_ps(*val.get_unchecked(k + 2));
                let v3 = _mm512_set1_ps(*val.get_unchecked(k + 3));
                for q in 0..NV {
                    a0[q] = _mm512_fmadd_ps(v0, load(x0, q), a0[q]);
                    a1[q] = _mm512_fmadd_ps(v1, load(x1, q), a1[q]);
                    a2[q] = _mm512_fmadd_ps(v2, load(x2, q), a2[q]);
                    a3[q] = _mm512_fmadd_ps(v3, load(x3, q), a3[q]);
                }
                k += 4;
            }
            while k < e {
                let x0 = xp.add(idx.get_unchecked(k).at() * r);
                let v = _mm512_set1_ps(*val.get_unchecked(k));
                for q in 0..NV {
                    a0[q] = _mm512_fmadd_ps(v, load(x0, q), a0[q]);
                }
                k += 1;
            }
            for q in 0..NV {
                let s = _mm512_add_ps(_mm512_add_ps(a0[q], a1[q]), _mm512_add_ps(a2[q], a3[q]));
                if q + 1 == NV {
                    _mm512_mask_storeu_ps(op.add(16 * q), mask, s);
                } else {
                    _mm512_storeu_ps(op.add(16 * q), s);
                }
            }
        }
    }

    /// [`super::kl_rows_kernel`] with `NV` zmm registers per row of r ≤ 16·NV floats: the row
    /// of `y` held in registers, two entries at a time.
    ///
    /// # Safety
    /// As for [`rows`], and `y.len() = out.len()`.
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn kl_rows<const NV: usize, I: Index>(
        ptr: &[usize],
        idx: &[I],
        val: &[f32],
        x: &[f32],
        y: &[f32],
        r: usize,
        start: Start,
        out: &mut [f32],
    ) {
        let last = r - 16 * (NV - 1);
        let mask: __mmask16 = if last == 16 {
            0xFFFF
        } else {
            (1u16 << last) - 1
        };
        let eps = f32::EPSILON;
        let xp = x.as_ptr();
        let load = |p: *const f32, q: usize| -> __m512 {
            if q + 1 == NV {
                _mm512_maskz_loadu_ps(mask, p.add(16 * q))
            } else {
                _mm512_loadu_ps(p.add(16 * q))
            }
        };
        let dot = |yv: &[__m512; NV], p: *const f32| -> f32 {
            let mut d = _mm512_mul_ps(yv[0], load(p, 0));
            for q in 1..NV {
                d = _mm512_fmadd_ps(yv[q], load(p, q), d);
            }
            _mm512_reduce_add_ps(d)
        };
        for (i, orow) in out.chunks_exact_mut(r).enumerate() {
            let (s, e) = (ptr[i], ptr[i + 1]);
            let op = orow.as_mut_ptr();
            let yp = y.as_ptr().add(i * r);
            let mut yv = [_mm512_setzero_ps(); NV];
            for q in 0..NV {
                yv[q] = load(yp, q);
            }
            let mut a0 = [_mm512_setzero_ps(); NV];
            if let Start::Out = start {
                for q in 0..NV {
                    a0[q] = load(op, q);
                }
            }
            let mut a1 = [_mm512_setzero_ps(); NV];
            let mut k = s;
            while k + 2 <= e {
                let x0 = xp.add(idx.get_unchecked(k).at() * r);
                let x1 = xp.add(idx.get_unchecked(k + 1).at() * r);
                let (p0, p1) = (dot(&yv, x0), dot(&yv, x1));
                let z0 = *val.get_unchecked(k) / if p0 < eps { eps } else { p0 };
                let z1 = *val.get_unchecked(k + 1) / if p1 < eps { eps } else { p1 };
                let (z0, z1) = (_mm512_set1_ps(z0), _mm512_set1_ps(z1));
                for q in 0..NV {
                    a0[q] = _mm512_fmadd_ps(z0, load(x0, q), a0[q]);
                    a1[q] = _mm512_fmadd_ps(z1, load(x1, q), a1[q]);
                }
                k += 2;
            }
            if k < e {
                let x0 = xp.add(idx.get_unchecked(k).at() * r);
                let p0 = dot(&yv, x0);
                let z0 = *val.get_unchecked(k) / if p0 < eps { eps } else { p0 };
                let z0 = _mm512_set1_ps(z0);
                for q in 0..NV {
                    a0[q] = _mm512_fmadd_ps(z0, load(x0, q), a0[q]);
                }
            }
            for q in 0..NV {
                let s = _mm512_add_ps(a0[q], a1[q]);
                if q + 1 == NV {
                    _mm512_mask_storeu_ps(op.add(16 * q), mask, s);
                } else {
                    _mm512_storeu_ps(op.add(16 * q), s);
                }
            }
        }
    }
}

/// `Σ_t a[t]·b[t]` in f64 (four partial sums, so that the loop vectorises).
#[inline]
fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for t in 0..4 {
            acc[t] += xa[t] as f64 * xb[t] as f64;
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (&x, &y) in ra.iter().zip(rb) {
        s += x as f64 * y as f64;
    }
    s
}

/// `Σ_t a[t]·b[t]` in f32.
#[inline]
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    // Eight partial sums let the loop vectorise.
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for t in 0..8 {
            acc[t] += xa[t] * xb[t];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (&x, &y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Over the stored entries of `A` with `wh_ij = w[i, :]·x[j, :]` (in f64):
/// `(Σ (a_ij − wh_ij)², Σ wh_ij²)`, for the Frobenius loss.
pub(crate) fn frobenius_terms(a: &CsrMatrix, w: &[f32], x: &[f32], r: usize) -> (f64, f64) {
    let ptr = a.indptr();
    let (idx, val) = (a.indices(), a.values());
    (0..a.rows())
        .into_par_iter()
        .with_min_len(64)
        .map(|i| {
            let wr = &w[i * r..(i + 1) * r];
            let (mut res, mut sq) = (0.0f64, 0.0f64);
            for k in ptr[i]..ptr[i + 1] {
                let j = idx[k] as usize;
                let p = dot_f64(wr, &x[j * r..(j + 1) * r]);
                let d = val[k] as f64 - p;
                res += d * d;
                sq += p * p;
            }
            (res, sq)
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// `Σ_{a_ij > ε} [a_ij log(a_ij / max(wh_ij, ε)) − a_ij]` over the stored entries, the part of
/// the KL divergence that reads V (the rest is `Σ WH`).
pub(crate) fn kl_term(a: &CsrMatrix, w: &[f32], x: &[f32], r: usize, eps: f32) -> f64 {
    let ptr = a.indptr();
    let (idx, val) = (a.indices(), a.values());
    let eps = eps as f64;
    (0..a.rows())
        .into_par_iter()
        .with_min_len(64)
        .map(|i| {
            let wr = &w[i * r..(i + 1) * r];
            let mut acc = 0.0f64;
            for k in ptr[i]..ptr[i + 1] {
                let v = val[k] as f64;
                if v > eps {
                    let j = idx[k] as usize;
                    // WH in f32, as the dense engine forms it.
                    let p = dot_f32(wr, &x[j * r..(j + 1) * r]) as f64;
                    let q = if p < eps { eps } else { p };
                    acc += v * (v / q).ln() - v;
                }
            }
            acc
        })
        .sum()
}

/// Rows `row0..row0 + out.nrows()` of `A`, written densely into `out` (zeroed first).
pub(crate) fn densify_rows(a: &CsrMatrix, row0: usize, mut out: ArrayViewMut2<'_, f32>) {
    out.fill(0.0);
    for (ii, mut orow) in out.rows_mut().into_iter().enumerate() {
        let (idx, val) = a.row(row0 + ii);
        for (&j, &v) in idx.iter().zip(val) {
            orow[j as usize] = v;
        }
    }
}

/// `Σ_ab x[a,b]·y[a,b]` of two r x r Gram matrices, each computed in f64 from a row-major
/// factor: `⟨AᵀA, BᵀB⟩` for `a` (p x r) and `b` (q x r).
pub(crate) fn gram_inner_f64(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> f64 {
    let ga = gram_f64(a);
    let gb = gram_f64(b);
    ga.iter().zip(&gb).map(|(x, y)| x * y).sum()
}

/// `XᵀX` (r x r, flattened) in f64 for `x` (p x r).
fn gram_f64(x: ArrayView2<'_, f32>) -> Vec<f64> {
    let r = x.ncols();
    let upper = x
        .axis_chunks_iter(Axis(0), 256)
        .into_par_iter()
        .map(|blk| {
            let mut g = vec![0.0f64; r * r];
            for row in blk.rows() {
                for a in 0..r {
                    let xa = row[a] as f64;
                    if xa == 0.0 {
                        continue;
                    }
                    for b in a..r {
                        g[a * r + b] += xa * row[b] as f64;
                    }
                }
            }
            g
        })
        .reduce(
            || vec![0.0f64; r * r],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(&b) {
                    *x += y;
                }
                a
            },
        );
    // Only the upper triangle was accumulated: mirror it.
    let mut g = upper;
    for a in 0..r {
        for b in 0..a {
            g[a * r + b] = g[b * r + a];
        }
    }
    g
}

/// A sparse matrix as a [`LinearOperator`] for the randomized SVD: `a` and its transpose `at`.
#[derive(Clone, Copy)]
pub(crate) struct SparseOp<'a> {
    pub a: &'a CsrMatrix,
    pub at: &'a CsrMatrix,
}

impl LinearOperator for SparseOp<'_> {
    fn dim(&self) -> (usize, usize) {
        self.a.dim()
    }
    fn mul(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        let l = x.ncols();
        let x = x.as_standard_layout();
        let mut out = Array2::<f32>::zeros((self.a.rows(), l));
        if let (Some(xs), Some(os)) = (x.as_slice(), out.as_slice_mut()) {
            if let Err(e) = spmm(Operand::Csr(self.a), xs, l, os) {
                panic!("internal error: {e}");
            }
        }
        out
    }
    fn t_mul(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        // Xᵀ A = (Aᵀ X)ᵀ, row by row of Aᵀ.
        let l = x.ncols();
        let x = x.as_standard_layout();
        let mut out = Array2::<f32>::zeros((l, self.a.cols()));
        if let Some(xs) = x.as_slice() {
            if let Err(e) = spmm_t(Operand::Csr(self.at), xs, l, out.view_mut()) {
                panic!("internal error: {e}");
            }
        }
        out
    }
    fn transposed(&self) -> Self {
        SparseOp {
            a: self.at,
            at: self.a,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// A random `rows x cols` matrix with about `density` of its entries stored, and row 1 and
    /// the last column empty.
    fn random(rows: usize, cols: usize, density: f64, seed: u64) -> CsrMatrix {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut t = Vec::new();
        for i in 0..rows {
            for j in 0..cols {
                if i != 1 && j + 1 != cols && rng.random::<f64>() < density {
                    t.push((i, j, rng.random::<f32>()));
                }
            }
        }
        CsrMatrix::from_triplets(rows, cols, t).unwrap()
    }

    fn dense_x(rows: usize, r: usize, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..rows * r).map(|_| rng.random::<f32>() - 0.25).collect()
    }

    /// `A X` by the definition, in f64.
    fn reference(a: &CsrMatrix, x: &[f32], r: usize) -> Vec<f64> {
        let mut out = vec![0.0f64; a.rows() * r];
        for i in 0..a.rows() {
            let (idx, val) = a.row(i);
            for (&j, &v) in idx.iter().zip(val) {
                for t in 0..r {
                    out[i * r + t] += v as f64 * x[j as usize * r + t] as f64;
                }
            }
        }
        out
    }

    fn close(got: impl Iterator<Item = f32>, want: &[f64], what: &str) {
        let scale = want.iter().fold(1e-30f64, |m, x| m.max(x.abs()));
        let mut n = 0;
        for (g, w) in got.zip(want) {
            assert!((g as f64 - w).abs() <= 1e-5 * scale, "{what}: {g} vs {w}");
            n += 1;
        }
        assert_eq!(n, want.len(), "{what}");
    }

    #[test]
    fn panel_products_match_the_definition() {
        // 1100 rows: two row blocks; widths that split the columns unevenly; ranks on both
        // sides of every register count and one past the vector kernels.
        let a = random(1100, 45, 0.1, 1);
        let at = a.transpose();
        for r in [1, 5, 16, 17, 20, 33, 64, 70] {
            for width in [1, 7, 45, 1000] {
                let x = dense_x(45, r, 2);
                let want = reference(&a, &x, r);
                let mut out = vec![f32::NAN; 1100 * r];
                spmm(Operand::Panels(&Panels::new(&a, width)), &x, r, &mut out).unwrap();
                close(out.iter().copied(), &want, &format!("V X r={r} w={width}"));
                // (Aᵀ Y)ᵀ written as r x 45.
                let y = dense_x(1100, r, 3);
                let want_t = reference(&at, &y, r);
                let mut q = Array2::<f32>::from_elem((r, 45), f32::NAN);
                let p = Panels::new(&at, width);
                spmm_t(Operand::Panels(&p), &y, r, q.view_mut()).unwrap();
                close(
                    q.t().iter().copied(),
                    &want_t,
                    &format!("Vᵀ Y r={r} w={width}"),
                );
            }
            let x = dense_x(45, r, 4);
            let mut out = vec![f32::NAN; 1100 * r];
            spmm(Operand::Csr(&a), &x, r, &mut out).unwrap();
            close(out.iter().copied(), &reference(&a, &x, r), "spmm");
            let y = dense_x(1100, r, 5);
            let mut q = Array2::<f32>::from_elem((r, 45), f32::NAN);
            spmm_t(Operand::Csr(&at), &y, r, q.view_mut()).unwrap();
            close(q.t().iter().copied(), &reference(&at, &y, r), "spmm_t");
        }
    }

    #[test]
    fn kl_numerators_match_the_definition() {
        let a = random(1100, 40, 0.2, 5);
        let at = a.transpose();
        for r in [1, 6, 16, 20, 40, 70] {
            let w: Vec<f32> = dense_x(1100, r, 6).iter().map(|x| x + 0.3).collect();
            let ht: Vec<f32> = dense_x(40, r, 7).iter().map(|x| x + 0.3).collect();
            // Z = A ⊘ max(W H, ε) at the stored entries.
            let mut z = Vec::new();
            for i in 0..1100 {
                let (idx, val) = a.row(i);
                for (&j, &v) in idx.iter().zip(val) {
                    let p: f64 = (0..r)
                        .map(|t| w[i * r + t] as f64 * ht[j as usize * r + t] as f64)
                        .sum();
                    z.push((i, j as usize, v / (p as f32).max(f32::EPSILON)));
                }
            }
            let zm = CsrMatrix::from_triplets(1100, 40, z).unwrap();
            // Panels of 3 and 40 columns, and the CSR matrix itself (width 0).
            for width in [3, 40, 0] {
                let (pa, pat) = (Panels::new(&a, width), Panels::new(&at, width));
                let (oa, oat) = if width == 0 {
                    (Operand::Csr(&a), Operand::Csr(&at))
                } else {
                    (Operand::Panels(&pa), Operand::Panels(&pat))
                };
                let mut left = vec![f32::NAN; 1100 * r];
                kl_spmm(oa, &w, &ht, r, &mut left).unwrap();
                close(
                    left.iter().copied(),
                    &reference(&zm, &ht, r),
                    &format!("Z Hᵀ r={r} w={width}"),
                );
                let mut right = Array2::<f32>::from_elem((r, 40), f32::NAN);
                kl_spmm_t(oat, &ht, &w, r, right.view_mut()).unwrap();
                close(
                    right.t().iter().copied(),
                    &reference(&zm.transpose(), &w, r),
                    &format!("Wᵀ Z r={r} w={width}"),
                );
            }
        }
    }

    #[test]
    fn wide_hypersparse_matrices_are_not_split() {
        // 3 x 2_000_000 with four entries: 31 panels of 65536 columns would store 4 offsets
        // each for V, and 2_000_001 each for Vᵀ, against 4 entries.
        let a = CsrMatrix::from_triplets(
            3,
            2_000_000,
            [
                (0, 0, 1.0),
                (1, 70_000, 2.0),
                (2, 1_999_999, 3.0),
                (0, 5, 1.0),
            ],
        )
        .unwrap();
        let w = Panels::width_for(2);
        assert!(Panels::build(&a, w).is_none());
        assert!(Panels::build(&a.transpose(), w).is_none());
        // 1100 x 45 at 30% has about 14500 entries: one panel (1101 offsets) pays, six do not.
        let b = random(1100, 45, 0.3, 1);
        assert!(Panels::build(&b, 64).is_some());
        assert!(Panels::build(&b, 8).is_none());
    }

    #[test]
    fn short_x_is_refused() {
        let a = random(10, 8, 0.5, 1);
        let mut out = vec![0.0f32; 10 * 2];
        let e = spmm(Operand::Csr(&a), &[1.0; 15], 2, &mut out).unwrap_err();
        assert!(e.to_string().contains("X in the sparse product"), "{e}");
        let y = vec![1.0f32; 10 * 2];
        let e = kl_spmm(Operand::Csr(&a), &y[..19], &[1.0; 16], 2, &mut out).unwrap_err();
        assert!(e.to_string().contains("Y in the sparse KL product"), "{e}");
    }

    #[test]
    fn short_result_is_refused() {
        let a = random(10, 8, 0.5, 1);
        let mut out = Array2::<f32>::zeros((2, 9));
        let e = spmm_t(Operand::Csr(&a), &[1.0; 16], 2, out.view_mut()).unwrap_err();
        assert!(matches!(e, NmfError::ShapeMismatch { .. }), "{e}");
        let p = Panels::new(&a, 3);
        let mut short = vec![0.0f32; 19];
        let e = spmm(Operand::Panels(&p), &[1.0; 16], 2, &mut short).unwrap_err();
        assert!(
            e.to_string().contains("the result of the sparse product"),
            "{e}"
        );
    }
}
