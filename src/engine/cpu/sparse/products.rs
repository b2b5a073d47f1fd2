//! The sparse x skinny products `A X` and the KL numerators `Z X`, row blocks in parallel,
//! over either [`Operand`]: the public functions check every length, then the row kernels
//! (AVX-512 or AVX2 in [`super::rows`], at [`simd::level`]) read without bounds checks.

use ndarray::{ArrayViewMut2, Axis};
use rayon::prelude::*;

use super::super::simd::{self, Level};
use super::panels::{Index, Operand, Start};
use crate::engine::divergence;
use crate::error::{NmfError, Result};

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
    rows_kernel_at(simd::level(), ptr, idx, val, x, r, start, out)
}

/// [`rows_kernel`] with the vector kernels of `level` (which the CPU must support), the
/// portable loop for `Level::None` or r > 64.
#[allow(clippy::too_many_arguments)]
pub(super) fn rows_kernel_at<I: Index>(
    level: Level,
    ptr: &[usize],
    idx: &[I],
    val: &[f32],
    x: &[f32],
    r: usize,
    start: Start,
    out: &mut [f32],
) {
    assert_eq!(ptr.len(), out.len() / r + 1);
    assert!(level.supported());
    #[cfg(target_arch = "x86_64")]
    {
        use super::rows::{avx2_in_flight as e2, rows_avx2 as v2, rows_avx512 as v16};
        // SAFETY: the level's instruction set is available (asserted above). Every idx[k]
        // indexes a row of x: the public products assert x.len() = A.cols·r
        // (Operand::check), and the column indices of a CsrMatrix are below A.cols (an
        // invariant of its constructors), as are those of a panel relative to its slice of x
        // (Panels::new). ptr holds out.len()/r + 1 offsets (asserted above), each at most
        // idx.len() = val.len() (the same invariants). Each arm's NV satisfies
        // LANES·(NV−1) < r ≤ LANES·NV.
        let a = (ptr, idx, val, x, r, start);
        unsafe {
            match (level, r) {
                (_, 0) | (_, 65..) | (Level::None, _) => {}
                (Level::Avx512, _) => {
                    match r.div_ceil(16) {
                        1 => v16::<1, I>(a.0, a.1, a.2, a.3, a.4, a.5, out),
                        2 => v16::<2, I>(a.0, a.1, a.2, a.3, a.4, a.5, out),
                        3 => v16::<3, I>(a.0, a.1, a.2, a.3, a.4, a.5, out),
                        _ => v16::<4, I>(a.0, a.1, a.2, a.3, a.4, a.5, out),
                    }
                    return;
                }
                (Level::Avx2, _) => {
                    match r.div_ceil(8) {
                        1 => v2::<1, { e2(1) }, I>(a.0, a.1, a.2, a.3, a.4, a.5, out),
                        2 => v2::<2, { e2(2) }, I>(a.0, a.1, a.2, a.3, a.4, a.5, out),
                        3 => v2::<3, { e2(3) }, I>(a.0, a.1, a.2, a.3, a.4, a.5, out),
                        4 => v2::<4, { e2(4) }, I>(a.0, a.1, a.2, a.3, a.4, a.5, out),
                        5 => v2::<5, { e2(5) }, I>(a.0, a.1, a.2, a.3, a.4, a.5, out),
                        6 => v2::<6, { e2(6) }, I>(a.0, a.1, a.2, a.3, a.4, a.5, out),
                        7 => v2::<7, { e2(7) }, I>(a.0, a.1, a.2, a.3, a.4, a.5, out),
                        _ => v2::<8, { e2(8) }, I>(a.0, a.1, a.2, a.3, a.4, a.5, out),
                    }
                    return;
                }
            }
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
    kl_rows_kernel_at(simd::level(), ptr, idx, val, x, y, r, start, out)
}

/// [`kl_rows_kernel`] with the vector kernels of `level` (which the CPU must support), the
/// portable loop for `Level::None` or r > 64.
#[allow(clippy::too_many_arguments)]
pub(super) fn kl_rows_kernel_at<I: Index>(
    level: Level,
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
    assert!(level.supported());
    #[cfg(target_arch = "x86_64")]
    {
        use super::rows::{avx2_kl_in_flight as e2, kl_rows_avx2 as v2, kl_rows_avx512 as v16};
        // SAFETY: as in rows_kernel_at; y is as long as out (asserted above).
        let a = (ptr, idx, val, x, y, r, start);
        unsafe {
            match (level, r) {
                (_, 0) | (_, 65..) | (Level::None, _) => {}
                (Level::Avx512, _) => {
                    match r.div_ceil(16) {
                        1 => v16::<1, I>(a.0, a.1, a.2, a.3, a.4, a.5, a.6, out),
                        2 => v16::<2, I>(a.0, a.1, a.2, a.3, a.4, a.5, a.6, out),
                        3 => v16::<3, I>(a.0, a.1, a.2, a.3, a.4, a.5, a.6, out),
                        _ => v16::<4, I>(a.0, a.1, a.2, a.3, a.4, a.5, a.6, out),
                    }
                    return;
                }
                (Level::Avx2, _) => {
                    match r.div_ceil(8) {
                        1 => v2::<1, { e2(1) }, I>(a.0, a.1, a.2, a.3, a.4, a.5, a.6, out),
                        2 => v2::<2, { e2(2) }, I>(a.0, a.1, a.2, a.3, a.4, a.5, a.6, out),
                        3 => v2::<3, { e2(3) }, I>(a.0, a.1, a.2, a.3, a.4, a.5, a.6, out),
                        4 => v2::<4, { e2(4) }, I>(a.0, a.1, a.2, a.3, a.4, a.5, a.6, out),
                        5 => v2::<5, { e2(5) }, I>(a.0, a.1, a.2, a.3, a.4, a.5, a.6, out),
                        6 => v2::<6, { e2(6) }, I>(a.0, a.1, a.2, a.3, a.4, a.5, a.6, out),
                        7 => v2::<7, { e2(7) }, I>(a.0, a.1, a.2, a.3, a.4, a.5, a.6, out),
                        _ => v2::<8, { e2(8) }, I>(a.0, a.1, a.2, a.3, a.4, a.5, a.6, out),
                    }
                    return;
                }
            }
        }
    }
    for (i, orow) in out.chunks_exact_mut(r).enumerate() {
        if let Start::Zero = start {
            orow.fill(0.0);
        }
        let yr = &y[i * r..(i + 1) * r];
        for k in ptr[i]..ptr[i + 1] {
            let xr = &x[idx[k].at() * r..(idx[k].at() + 1) * r];
            let p = dot_f32(yr, xr);
            let z = divergence::kl_ratio(val[k], p);
            for (o, &xv) in orow.iter_mut().zip(xr) {
                *o += z * xv;
            }
        }
    }
}

/// `Σ_t a[t]·b[t]` in f32.
#[inline(always)]
pub(super) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
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
