//! The sparse x skinny products `A X` and the KL numerators `Z X`, row blocks in parallel,
//! over either [`Operand`]: the public functions check every length, then the row kernels
//! (AVX-512 or AVX2 in [`super::rows`], at [`simd::level`]) read without bounds checks.

use ndarray::{ArrayViewMut2, Axis};
use rayon::prelude::*;

use super::super::simd::{self, Level};
use super::gather::{Gather, Weight};
use super::panels::{Index, Operand, Start};
use crate::engine::divergence;
use crate::error::{NmfError, Result};

/// Rows `row0..row0 + out.len()/r` of `A X` (or of the product `w` names, `y` over all rows
/// of `A`) into `out`. The caller has checked the lengths ([`Operand::check`]).
pub(super) fn block_rows(
    a: Operand<'_>,
    row0: usize,
    x: &[f32],
    w: Weight<'_>,
    r: usize,
    out: &mut [f32],
) {
    let rows = out.len() / r;
    let w = w.rows(row0, rows, r);
    match a {
        Operand::Csr(a) => {
            let ptr = &a.indptr()[row0..row0 + rows + 1];
            let (idx, val, start) = (a.indices(), a.values(), Start::Zero);
            rows_kernel(Gather::new(ptr, idx, val, x, w, r, start), out);
        }
        Operand::Panels(a) => {
            if a.panels.is_empty() {
                out.fill(0.0);
            }
            for (p, panel) in a.panels.iter().enumerate() {
                let x = &x[panel.col0 * r..(panel.col0 + panel.cols) * r];
                let start = if p == 0 { Start::Zero } else { Start::Out };
                let ptr = &panel.indptr[row0..row0 + rows + 1];
                let (idx, val) = (&panel.indices[..], &panel.values[..]);
                rows_kernel(Gather::new(ptr, idx, val, x, w, r, start), out);
            }
        }
    }
}

/// The weight of a product: `Z X` with `y`, `A X` without.
fn weight(y: Option<&[f32]>) -> Weight<'_> {
    y.map_or(Weight::Value, Weight::KlRatio)
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
        .for_each(|(t, ob)| block_rows(a, t * br, x, weight(y), r, ob));
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
            block_rows(a, t * br, x, weight(y), r, &mut buf);
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

/// The row kernel of [`Gather`] at [`simd::level`].
fn rows_kernel<I: Index>(g: Gather<'_, I>, out: &mut [f32]) {
    rows_kernel_at(simd::level(), g, out)
}

/// [`rows_kernel`] with the vector kernels of `level` (which the CPU must support), the
/// portable loop for `Level::None`, r > 64 or [`Weight::Dot`].
pub(super) fn rows_kernel_at<I: Index>(level: Level, g: Gather<'_, I>, out: &mut [f32]) {
    let r = g.r;
    assert_eq!(g.ptr.len(), out.len() / r + 1);
    if let Weight::KlRatio(y) | Weight::Dot(y) = g.w {
        assert_eq!(y.len(), out.len());
    }
    assert!(level.supported());
    #[cfg(target_arch = "x86_64")]
    {
        if level != Level::None && (1..=64).contains(&r) && !matches!(g.w, Weight::Dot(_)) {
            // SAFETY: the level's instruction set is available (asserted above). Every idx[k]
            // indexes a row of x: the public products assert x.len() = A.cols·r
            // (Operand::check), and the column indices of a CsrMatrix are below A.cols (an
            // invariant of its constructors), as are those of a panel relative to its slice
            // of x (Panels::new). ptr holds out.len()/r + 1 offsets (asserted above), each at
            // most idx.len() = val.len() (the same invariants); y is as long as out (asserted
            // above), 0 < r ≤ 64.
            unsafe { super::rows::vector_rows(level, &g, out) };
            return;
        }
    }
    let val = g.val;
    match g.w {
        Weight::Value => axpy_rows(&g, out, |_| move |k: usize, _: &[f32]| val[k]),
        Weight::KlRatio(y) => axpy_rows(&g, out, |i| {
            let yr = &y[i * r..(i + 1) * r];
            move |k: usize, xr: &[f32]| divergence::kl_ratio(val[k], dot_f32(yr, xr))
        }),
        Weight::Dot(y) => axpy_rows(&g, out, |i| {
            let yr = &y[i * r..(i + 1) * r];
            move |_: usize, xr: &[f32]| dot_f32(yr, xr)
        }),
    }
}

/// The portable row loop of [`Gather`]: `weight(i)` gives row `i`'s weight of entry `k` with
/// the row `x[idx[k], :]`.
#[inline(always)]
fn axpy_rows<I: Index, F: Fn(usize, &[f32]) -> f32>(
    g: &Gather<'_, I>,
    out: &mut [f32],
    weight: impl Fn(usize) -> F,
) {
    let r = g.r;
    for (i, orow) in out.chunks_exact_mut(r).enumerate() {
        if let Start::Zero = g.start {
            orow.fill(0.0);
        }
        let w = weight(i);
        for k in g.ptr[i]..g.ptr[i + 1] {
            let j = g.idx[k].at();
            let xr = &g.x[j * r..(j + 1) * r];
            let z = w(k, xr);
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
