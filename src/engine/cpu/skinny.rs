//! AVX-512 kernels for the two large products of every NMF iteration, where one side is skinny:
//!
//! - `P = V Hᵀ` (m x r): `P[i, t..] += V[i, k] · Hᵀ[k, t..]` over k, with `Hᵀ` packed once (n x r);
//! - `Q = Wᵀ V` (r x n): `Q[t, j..] += W[i, t] · V[i, j..]` over i, blocked over i so a panel of V
//!   stays in L2 while every block of t is swept.
//!
//! Both are one outer-product microkernel: `MR` broadcast scalars times `NV` 16-lane vectors,
//! `MR·NV ≤ 24` accumulators held in zmm registers, masked loads and stores at the edges (no
//! reads past the end of any row). Used when the CPU has AVX-512F and the operands are
//! row-contiguous; otherwise the caller falls back to the general GEMM.

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::error::{NmfError, Result};

/// Whether the running CPU can use these kernels.
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `Err` naming the operand whose shape does not conform.
fn mismatch(what: &'static str, expected: String, found: (usize, usize)) -> NmfError {
    NmfError::ShapeMismatch {
        what,
        expected,
        found: format!("{} x {}", found.0, found.1),
    }
}

/// Check `p = a bᵀ`: `a` (m x k), `b` (r x k), `p` (m x r).
fn check_a_bt(a: (usize, usize), b: (usize, usize), p: (usize, usize)) -> Result<()> {
    if b.1 != a.1 {
        return Err(mismatch("B in A Bᵀ", format!("{} columns (as A)", a.1), b));
    }
    if p != (a.0, b.0) {
        return Err(mismatch(
            "the output of A Bᵀ",
            format!("{} x {}", a.0, b.0),
            p,
        ));
    }
    Ok(())
}

/// Check `q = aᵀ b`: `a` (k x r), `b` (k x n), `q` (r x n).
fn check_at_b(a: (usize, usize), b: (usize, usize), q: (usize, usize)) -> Result<()> {
    if b.0 != a.0 {
        return Err(mismatch("B in Aᵀ B", format!("{} rows (as A)", a.0), b));
    }
    if q != (a.1, b.1) {
        return Err(mismatch(
            "the output of Aᵀ B",
            format!("{} x {}", a.1, b.1),
            q,
        ));
    }
    Ok(())
}

/// `p = a bᵀ` for row-major `a` (m x k) and `b` (r x k); `scratch` holds `bᵀ`.
/// Shapes that do not conform are an error; `Ok(false)` (doing nothing) when the kernels cannot
/// run on these operands (no AVX-512F, or `a` or `p` not row-major).
pub(crate) fn a_bt(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    p: ArrayViewMut2<'_, f32>,
    scratch: &mut Vec<f32>,
) -> Result<bool> {
    check_a_bt(a.dim(), b.dim(), p.dim())?;
    #[cfg(target_arch = "x86_64")]
    {
        if available() && a.is_standard_layout() && p.is_standard_layout() {
            let (r, k) = b.dim();
            scratch.clear();
            scratch.resize(k * r, 0.0);
            transpose_into(b, scratch);
            // SAFETY: AVX-512F was detected; a (m x k) and p (m x r) are row-major, and the
            // packed bᵀ holds k x r floats (shapes checked above).
            unsafe { avx512::a_bt(a, scratch, p) };
            return Ok(true);
        }
    }
    let _ = (a, b, p, scratch);
    Ok(false)
}

/// `p = a btᵀ…`: `p[i, t] = Σ_k a[i, k] · bt[k·r + t]` with `bt` an already packed `bᵀ`
/// (k x r row-major, as [`transpose_into`] makes), `a` (m x k), `p` (m x r).
/// Shapes that do not conform are an error; `Ok(false)` when the kernels cannot run.
pub(crate) fn a_bt_packed(
    a: ArrayView2<'_, f32>,
    bt: &[f32],
    p: ArrayViewMut2<'_, f32>,
) -> Result<bool> {
    let (m, k) = a.dim();
    if p.nrows() != m {
        return Err(mismatch(
            "the output of A Bᵀ",
            format!("{m} rows (as A)"),
            p.dim(),
        ));
    }
    let r = p.ncols();
    if k.checked_mul(r) != Some(bt.len()) {
        return Err(NmfError::ShapeMismatch {
            what: "the packed Bᵀ of A Bᵀ",
            expected: format!("{k} x {r} = {} floats", k as u128 * r as u128),
            found: format!("{} floats", bt.len()),
        });
    }
    #[cfg(target_arch = "x86_64")]
    {
        if available() && a.is_standard_layout() && p.is_standard_layout() {
            // SAFETY: AVX-512F was detected; a (m x k) and p (m x r) are row-major and bt
            // holds k x r floats (checked above).
            unsafe { avx512::a_bt(a, bt, p) };
            return Ok(true);
        }
    }
    let _ = (a, bt, p);
    Ok(false)
}

/// `out = bᵀ` (k x r, row-major) for `b` (r x k), in tiles so reads and writes stay in cache.
/// Only the first `r·k` entries of `out` are written.
///
/// # Panics
/// When `out` holds fewer than `r·k` floats (safe indexing; callers size it from `b`).
pub(crate) fn transpose_into(b: ArrayView2<'_, f32>, out: &mut [f32]) {
    const T: usize = 16;
    let (r, k) = b.dim();
    for t0 in (0..r).step_by(T) {
        let t1 = (t0 + T).min(r);
        for k0 in (0..k).step_by(T) {
            let k1 = (k0 + T).min(k);
            for t in t0..t1 {
                let row = b.row(t);
                for kk in k0..k1 {
                    out[kk * r + t] = row[kk];
                }
            }
        }
    }
}

/// `q = aᵀ b` for row-major `a` (k x r) and `b` (k x n), `q` (r x n).
/// Shapes that do not conform are an error; `Ok(false)` (doing nothing) when the kernels cannot
/// run on these operands (no AVX-512F, or an operand not row-major).
pub(crate) fn at_b(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    q: ArrayViewMut2<'_, f32>,
) -> Result<bool> {
    check_at_b(a.dim(), b.dim(), q.dim())?;
    #[cfg(target_arch = "x86_64")]
    {
        if available() && a.is_standard_layout() && b.is_standard_layout() && q.is_standard_layout()
        {
            // SAFETY: AVX-512F was detected; all three operands are row-major with conforming
            // shapes (checked above).
            unsafe { avx512::at_b(a, b, q) };
            return Ok(true);
        }
    }
    let _ = (a, b, q);
    Ok(false)
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use ndarray::{ArrayView2, ArrayViewMut2};
    use rayon::prelude::*;

    /// Lanes of one zmm register.
    const L: usize = 16;
    /// Broadcast rows per microkernel call with three vectors (24 accumulators).
    const MR: usize = 8;
    /// Broadcast rows per microkernel call with at most two vectors (≤ 24 accumulators).
    const MR_NARROW: usize = 12;
    /// Most vectors per microkernel call.
    const NV: usize = 3;
    /// Most columns covered by one panel.
    const PANEL: usize = NV * L;
    /// Rows of the long dimension per block in `at_b` (a packed block of V stays in L1).
    const KC: usize = 128;
    /// Depth of one block in `a_bt` (a block of the packed Hᵀ stays in L2).
    const KC_DEEP: usize = 512;

    /// Split `cols` columns into panels of whole vectors, as even as possible, at most NV
    /// vectors each: returns (start, width) pairs. Even splits avoid a one-vector tail panel,
    /// whose load-to-FMA ratio is poor.
    fn panels(cols: usize) -> Vec<(usize, usize)> {
        let nvec = cols.div_ceil(L);
        let np = nvec.div_ceil(NV).max(1);
        let mut out = Vec::with_capacity(np);
        let mut start = 0;
        for p in 0..np {
            let vecs = nvec / np + usize::from(p < nvec % np);
            let width = (vecs * L).min(cols - start);
            out.push((start, width));
            start += width;
        }
        out
    }

    /// Broadcast rows to pair with a panel of `width` columns.
    fn rows_for(width: usize) -> usize {
        if width > 2 * L {
            MR
        } else {
            MR_NARROW
        }
    }

    /// A raw pointer that may cross threads: each task writes a disjoint part of the output.
    #[derive(Clone, Copy)]
    struct Out(*mut f32);
    // SAFETY: used only for disjoint writes, joined before the borrow ends.
    unsafe impl Send for Out {}
    unsafe impl Sync for Out {}

    impl Out {
        /// The element `offset` places in (a method, so closures capture the whole `Out`).
        ///
        /// # Safety
        /// `offset` must lie inside the output the pointer came from.
        #[inline(always)]
        unsafe fn at(self, offset: usize) -> *mut f32 {
            // SAFETY: guaranteed by the caller.
            unsafe { self.0.add(offset) }
        }
    }

    #[inline(always)]
    fn mask(cols_left: usize) -> __mmask16 {
        if cols_left >= L {
            0xFFFF
        } else {
            ((1u32 << cols_left) - 1) as __mmask16
        }
    }

    /// `C[a, 0..cols] (+)= Σ_kk X[a·xa + kk·xk] · Y[kk·yk + 0..cols]` for `a < M`, `cols ≤ V·16`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn micro<const M: usize, const V: usize>(
        kc: usize,
        x: *const f32,
        xa: usize,
        xk: usize,
        y: *const f32,
        yk: usize,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        accumulate: bool,
    ) {
        let mut masks = [0 as __mmask16; V];
        for (v, m) in masks.iter_mut().enumerate() {
            *m = mask(cols.saturating_sub(v * L));
        }
        let mut acc = [[_mm512_setzero_ps(); V]; M];
        if accumulate {
            for (a, row) in acc.iter_mut().enumerate() {
                for (v, r) in row.iter_mut().enumerate() {
                    *r = _mm512_maskz_loadu_ps(masks[v], c.add(a * ldc + v * L));
                }
            }
        }
        // One base pointer per broadcast row, hoisted: in the loop each broadcast is a single
        // load at `base + offset` with no address arithmetic of its own.
        let mut xp = [x; M];
        for (a, p) in xp.iter_mut().enumerate() {
            *p = x.add(a * xa);
        }
        let mut xoff = 0usize;
        let mut yp = y;
        for _ in 0..kc {
            let mut yv = [_mm512_setzero_ps(); V];
            for (v, y) in yv.iter_mut().enumerate() {
                *y = _mm512_maskz_loadu_ps(masks[v], yp.add(v * L));
            }
            for (a, row) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*xp[a].add(xoff));
                for (v, r) in row.iter_mut().enumerate() {
                    *r = _mm512_fmadd_ps(xv, yv[v], *r);
                }
            }
            xoff += xk;
            yp = yp.add(yk);
        }
        for (a, row) in acc.iter().enumerate() {
            for (v, r) in row.iter().enumerate() {
                _mm512_mask_storeu_ps(c.add(a * ldc + v * L), masks[v], *r);
            }
        }
    }

    /// Copy `rows` rows of `cols ≤ PANEL` floats, `ld` apart, to `dst` (rows PANEL apart).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn pack_panel(src: *const f32, ld: usize, rows: usize, cols: usize, dst: *mut f32) {
        let masks = [
            mask(cols),
            mask(cols.saturating_sub(L)),
            mask(cols.saturating_sub(2 * L)),
        ];
        for i in 0..rows {
            let s = src.add(i * ld);
            let d = dst.add(i * PANEL);
            for (v, &mk) in masks.iter().enumerate() {
                if mk != 0 {
                    _mm512_mask_storeu_ps(
                        d.add(v * L),
                        mk,
                        _mm512_maskz_loadu_ps(mk, s.add(v * L)),
                    );
                }
            }
        }
    }

    /// Dispatch on the (runtime) tail sizes to a monomorphised microkernel.
    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn micro_any(
        rows: usize,
        kc: usize,
        x: *const f32,
        xa: usize,
        xk: usize,
        y: *const f32,
        yk: usize,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        accumulate: bool,
    ) {
        macro_rules! go {
            ($m:literal, $v:literal) => {
                micro::<$m, $v>(kc, x, xa, xk, y, yk, c, ldc, cols, accumulate)
            };
        }
        macro_rules! by_v {
            ($m:literal) => {
                match cols.div_ceil(L) {
                    1 => go!($m, 1),
                    2 => go!($m, 2),
                    _ => go!($m, 3),
                }
            };
        }
        match rows {
            1 => by_v!(1),
            2 => by_v!(2),
            3 => by_v!(3),
            4 => by_v!(4),
            5 => by_v!(5),
            6 => by_v!(6),
            7 => by_v!(7),
            8 => by_v!(8),
            9 => go!(9, 2),
            10 => go!(10, 2),
            11 => go!(11, 2),
            _ => go!(12, 2),
        }
    }

    /// `p[i, t] = Σ_k a[i, k] · bt[k, t]` with `a` (m x k), `bt` (k x r), `p` (m x r) row-major.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn a_bt(a: ArrayView2<'_, f32>, bt: &[f32], mut p: ArrayViewMut2<'_, f32>) {
        let (m, k) = a.dim();
        let r = p.ncols();
        if m == 0 || r == 0 {
            return;
        }
        if k == 0 {
            p.fill(0.0);
            return;
        }
        let a_ptr = a.as_ptr() as usize;
        let lda = a.strides()[0] as usize;
        let out = Out(p.as_mut_ptr());
        let bt_ptr = bt.as_ptr() as usize;
        let panels = panels(r);
        // Rows per task: several microkernel blocks, so each task reuses an Hᵀ block from L2.
        let chunk = 48;
        let tasks = m.div_ceil(chunk);
        let run = |task: usize| {
            let i_end = m.min((task + 1) * chunk);
            let mut k0 = 0;
            while k0 < k {
                let kc = KC_DEEP.min(k - k0);
                for &(t0, cols) in &panels {
                    let mr = rows_for(cols);
                    let mut i0 = task * chunk;
                    while i0 < i_end {
                        let rows = mr.min(i_end - i0);
                        // SAFETY: rows i0..i0+rows and columns k0..k0+kc of a, rows k0..k0+kc
                        // and columns t0..t0+cols of bt exist; tasks write disjoint rows of p.
                        unsafe {
                            micro_any(
                                rows,
                                kc,
                                (a_ptr as *const f32).add(i0 * lda + k0),
                                lda,
                                1,
                                (bt_ptr as *const f32).add(k0 * r + t0),
                                r,
                                out.at(i0 * r + t0),
                                r,
                                cols,
                                k0 > 0,
                            );
                        }
                        i0 += rows;
                    }
                }
                k0 += kc;
            }
        };
        if m * k * r >= 1 << 17 {
            (0..tasks).into_par_iter().for_each(run);
        } else {
            (0..tasks).for_each(run);
        }
    }

    /// `q = aᵀ b`: `q[t, j] = Σ_i a[i, t] · b[i, j]`, a (k x r), b (k x n), q (r x n), row-major.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn at_b(
        a: ArrayView2<'_, f32>,
        b: ArrayView2<'_, f32>,
        mut q: ArrayViewMut2<'_, f32>,
    ) {
        let (k, r) = a.dim();
        let n = b.ncols();
        if r == 0 || n == 0 {
            return;
        }
        if k == 0 {
            q.fill(0.0);
            return;
        }
        let a_ptr = a.as_ptr() as usize;
        let b_ptr = b.as_ptr() as usize;
        let out = Out(q.as_mut_ptr());
        let panels = panels(n);
        // Rows of b whose stride is a multiple of 1 KiB fall into a handful of L1 sets: copy
        // each block of the panel to contiguous memory first. Other strides are read in place.
        let packed = (n * std::mem::size_of::<f32>()).is_multiple_of(1024);
        let run = |&(j0, cols): &(usize, usize)| {
            let mr = rows_for(cols);
            let mut pack = if packed {
                vec![0.0f32; KC * PANEL]
            } else {
                Vec::new()
            };
            // The panel of q, accumulated contiguously (rows of q are n apart too).
            let mut acc = vec![0.0f32; r * PANEL];
            let mut i0 = 0;
            while i0 < k {
                let kc = KC.min(k - i0);
                let (y, yk) = if packed {
                    // SAFETY: rows i0..i0+kc of b have columns j0..j0+cols; the pack holds
                    // KC rows of PANEL.
                    unsafe {
                        pack_panel(
                            (b_ptr as *const f32).add(i0 * n + j0),
                            n,
                            kc,
                            cols,
                            pack.as_mut_ptr(),
                        );
                    }
                    (pack.as_ptr(), PANEL)
                } else {
                    // SAFETY: row i0 of b has columns j0..j0+cols.
                    (unsafe { (b_ptr as *const f32).add(i0 * n + j0) }, n)
                };
                let mut t0 = 0;
                while t0 < r {
                    let rows = mr.min(r - t0);
                    // SAFETY: rows i0..i0+kc of a, the packed block, and rows t0..t0+rows of
                    // the panel accumulator exist.
                    unsafe {
                        micro_any(
                            rows,
                            kc,
                            (a_ptr as *const f32).add(i0 * r + t0),
                            1,
                            r,
                            y,
                            yk,
                            acc.as_mut_ptr().add(t0 * PANEL),
                            PANEL,
                            cols,
                            i0 > 0,
                        );
                    }
                    t0 += rows;
                }
                i0 += kc;
            }
            for t in 0..r {
                // SAFETY: row t of q has columns j0..j0+cols; panels are disjoint.
                let dst = unsafe { std::slice::from_raw_parts_mut(out.at(t * n + j0), cols) };
                dst.copy_from_slice(&acc[t * PANEL..t * PANEL + cols]);
            }
        };
        if k * n * r >= 1 << 17 {
            panels.par_iter().for_each(run);
        } else {
            panels.iter().for_each(run);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn pseudo(rows: usize, cols: usize, seed: u32) -> Array2<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(12345);
        Array2::from_shape_fn((rows, cols), |_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 1000) as f32 / 1000.0
        })
    }

    fn naive(a: &Array2<f32>, b: &Array2<f32>) -> Array2<f64> {
        let mut c = Array2::<f64>::zeros((a.nrows(), b.ncols()));
        for i in 0..a.nrows() {
            for j in 0..b.ncols() {
                c[[i, j]] = (0..a.ncols())
                    .map(|l| a[[i, l]] as f64 * b[[l, j]] as f64)
                    .sum();
            }
        }
        c
    }

    /// One product vs the f64 reference.
    const REL_TOL: f64 = 1e-5;

    fn close(c: &Array2<f32>, r: &Array2<f64>) -> bool {
        let scale = r.iter().fold(1e-30f64, |m, x| m.max(x.abs()));
        c.iter()
            .zip(r)
            .all(|(x, y)| ((*x as f64) - y).abs() <= REL_TOL * scale)
    }

    #[test]
    fn shapes_that_do_not_conform_are_errors_whatever_the_cpu() {
        let a = pseudo(6, 4, 1);
        let b = pseudo(3, 4, 2);
        let mut s = Vec::new();
        let mut p = Array2::<f32>::zeros((6, 3));
        assert!(a_bt(a.view(), b.view(), p.view_mut(), &mut s).is_ok());
        let mut small = Array2::<f32>::zeros((5, 3));
        assert!(a_bt(a.view(), b.view(), small.view_mut(), &mut s).is_err());
        let wide = pseudo(3, 5, 3);
        assert!(a_bt(a.view(), wide.view(), p.view_mut(), &mut s).is_err());
        // Packed Bᵀ: 4 x 3 floats, one short, one over.
        assert!(a_bt_packed(a.view(), &[0.0; 12], p.view_mut()).is_ok());
        assert!(a_bt_packed(a.view(), &[0.0; 11], p.view_mut()).is_err());
        assert!(a_bt_packed(a.view(), &[0.0; 13], p.view_mut()).is_err());
        assert!(a_bt_packed(a.view(), &[0.0; 12], small.view_mut()).is_err());
        // aᵀ b: a 6 x 4, b 6 x 2, q 4 x 2.
        let b2 = pseudo(6, 2, 4);
        let mut q = Array2::<f32>::zeros((4, 2));
        assert!(at_b(a.view(), b2.view(), q.view_mut()).is_ok());
        let short = pseudo(5, 2, 5);
        assert!(at_b(a.view(), short.view(), q.view_mut()).is_err());
        let mut q_small = Array2::<f32>::zeros((4, 1));
        assert!(at_b(a.view(), b2.view(), q_small.view_mut()).is_err());
    }

    #[test]
    fn at_b_packed_path_for_strides_that_alias() {
        if !available() {
            println!("skipping: no AVX-512F on this CPU (the general GEMM is used instead)");
            return;
        }
        // n = 256 and 512: rows of b are a multiple of 1 KiB apart, so blocks are packed.
        for &(k, r, n) in &[(300, 17, 256), (129, 64, 512), (7, 1, 256)] {
            let a = pseudo(k, r, 3);
            let b = pseudo(k, n, 4);
            let mut q = Array2::<f32>::from_elem((r, n), f32::NAN);
            assert!(at_b(a.view(), b.view(), q.view_mut()).unwrap());
            assert!(
                close(&q, &naive(&a.t().to_owned(), &b)),
                "at_b {k}x{r} n{n}"
            );
        }
    }

    #[test]
    fn both_kernels_match_naive_around_block_edges() {
        if !available() {
            println!("skipping: no AVX-512F on this CPU (the general GEMM is used instead)");
            return;
        }
        let dims = [1, 7, 8, 9, 15, 16, 17, 47, 48, 49, 255, 256, 257];
        let mut scratch = Vec::new();
        for &m in &[1, 8, 9, 33] {
            for &k in &dims {
                for &r in &[1, 16, 17, 48, 49, 64, 100] {
                    let a = pseudo(m, k, (m * 31 + k) as u32);
                    let b = pseudo(r, k, (r * 7 + k) as u32);
                    let mut p = Array2::<f32>::from_elem((m, r), f32::NAN);
                    assert!(a_bt(a.view(), b.view(), p.view_mut(), &mut scratch).unwrap());
                    assert!(
                        close(&p, &naive(&a, &b.t().to_owned())),
                        "a_bt {m}x{k} r{r}"
                    );
                    // at_b with a: k x r, b: k x m
                    let a2 = pseudo(k, r, (k + r) as u32);
                    let b2 = pseudo(k, m, (k * 3 + m) as u32);
                    let mut q = Array2::<f32>::from_elem((r, m), f32::NAN);
                    assert!(at_b(a2.view(), b2.view(), q.view_mut()).unwrap());
                    assert!(
                        close(&q, &naive(&a2.t().to_owned(), &b2)),
                        "at_b {k}x{r} n{m}"
                    );
                }
            }
        }
    }
}
