//! `D = P X` for a small square `P` (r x r) and a wide `X` (r x n): the denominator `K H` of the
//! multiplicative update of H (`K = Wᵀ W`), and its orthogonal variant.
//!
//! The general skinny kernel treats this product as one with a long dimension of only r and
//! pays for packing and panel set-up on every call. Here each block of 64 columns of `X` stays in
//! L1 while every row of `P` sweeps it, `D[t, block] = Σ_k P[t,k] · X[k, block]` summed in
//! vector registers, as the HALS sweeps of `hals.rs` form their gradients.

use ndarray::{ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::simd::Isa;
use super::simd::{self, isa_entries, Level};
use crate::error::{NmfError, Result};

/// Columns per block (a block of X, r x 64 floats, stays in L1 for r ≤ 64).
const BLOCK: usize = 64;

/// `out = p x` for `p` (r x r), `x` and `out` (r x n), at [`simd::level`]. Shapes that do not
/// conform are an error; `Ok(false)` (doing nothing) when no vector level is available or `x` or
/// `out` do not have contiguous rows.
pub(crate) fn times_wide(
    p: ArrayView2<'_, f32>,
    x: ArrayView2<'_, f32>,
    out: ArrayViewMut2<'_, f32>,
) -> Result<bool> {
    times_wide_at(simd::level(), p, x, out)
}

/// [`times_wide`] at `level` (which the CPU must support).
fn times_wide_at(
    level: Level,
    p: ArrayView2<'_, f32>,
    x: ArrayView2<'_, f32>,
    mut out: ArrayViewMut2<'_, f32>,
) -> Result<bool> {
    let r = x.nrows();
    if p.dim() != (r, r) || out.dim() != x.dim() {
        return Err(NmfError::ShapeMismatch {
            what: "the operands of P X",
            expected: format!("P {r} x {r} and an output {} x {}", r, x.ncols()),
            found: format!(
                "P {} x {}, output {} x {}",
                p.nrows(),
                p.ncols(),
                out.nrows(),
                out.ncols()
            ),
        });
    }
    let rows_contiguous = |s: &[isize]| s[1] == 1 || x.ncols() <= 1;
    if level == Level::None
        || !level.supported()
        || !rows_contiguous(x.strides())
        || !rows_contiguous(out.strides())
    {
        return Ok(false);
    }
    if r == 0 || x.ncols() == 0 {
        return Ok(true);
    }
    let p = p.as_standard_layout();
    let ps = p.as_slice().unwrap_or(&[]);
    let (ldx, ldo) = (x.strides()[0] as usize, out.strides()[0] as usize);
    let run = |(xb, mut ob): (ArrayView2<'_, f32>, ArrayViewMut2<'_, f32>)| {
        let b = xb.ncols();
        let (xp, op) = (xb.as_ptr(), ob.as_mut_ptr());
        #[cfg(target_arch = "x86_64")]
        match level {
            // SAFETY: AVX-512F is available (a supported level); p holds r x r floats, and the
            // block has r rows of b floats, ldx (ldo) apart, in x (out), checked above.
            Level::Avx512 => unsafe { block_avx512(ps, r, xp, ldx, op, ldo, b) },
            // SAFETY: as above, AVX2 and FMA.
            Level::Avx2 => unsafe { block_avx2(ps, r, xp, ldx, op, ldo, b) },
            Level::None => {}
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (ps, xp, op, ldx, ldo, b);
    };
    let (xs, os) = (
        x.axis_chunks_iter(Axis(1), BLOCK),
        out.axis_chunks_iter_mut(Axis(1), BLOCK),
    );
    if r * r * x.ncols() >= 1 << 17 {
        xs.into_par_iter().zip(os).for_each(run);
    } else {
        xs.zip(os).for_each(run);
    }
    Ok(true)
}

// A block of 64 columns: 4 zmm or 8 ymm vectors.
isa_entries!(
    [block_avx512, block_avx2] []
    (p: &[f32], r: usize, x: *const f32, ldx: usize, out: *mut f32, ldo: usize, b: usize),
    |S| block::<S, { 64 / <S as Isa>::LANES }>(p, r, x, ldx, out, ldo, b)
);

/// `out[t, 0..b] = Σ_k p[t·r + k] · x[k·ldx + 0..b]` for every t < r, `G` vectors of columns at
/// a time (then one masked vector at a time).
///
/// # Safety
/// `S`'s instruction set must be available; `p.len() ≥ r·r`; `x` and `out` point at r rows of
/// b floats, `ldx` and `ldo` apart.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn block<S: Isa, const G: usize>(
    p: &[f32],
    r: usize,
    x: *const f32,
    ldx: usize,
    out: *mut f32,
    ldo: usize,
    b: usize,
) {
    let group = G * S::LANES;
    // SAFETY: every pointer is x + k·ldx + i or out + t·ldo + i with k, t < r and i + LANES ≤ b
    // (or a mask of the b − i < LANES columns left), inside the block (caller's contract).
    unsafe {
        for t in 0..r {
            let prow = &p[t * r..(t + 1) * r];
            let ot = out.add(t * ldo);
            let mut i = 0;
            while i + group <= b {
                let mut acc = [S::zero(); G];
                for (k, &pk) in prow.iter().enumerate() {
                    if pk == 0.0 {
                        continue;
                    }
                    let pv = S::splat(pk);
                    let xk = x.add(k * ldx + i);
                    for (j, a) in acc.iter_mut().enumerate() {
                        *a = S::fmadd(pv, S::load(xk.add(j * S::LANES)), *a);
                    }
                }
                for (j, a) in acc.iter().enumerate() {
                    S::store(ot.add(i + j * S::LANES), *a);
                }
                i += group;
            }
            while i < b {
                let m = S::mask(b - i);
                let mut acc = S::zero();
                for (k, &pk) in prow.iter().enumerate() {
                    if pk != 0.0 {
                        acc = S::fmadd(S::splat(pk), S::load_masked(m, x.add(k * ldx + i)), acc);
                    }
                }
                S::store_masked(ot.add(i), m, acc);
                i += S::LANES;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    use crate::linalg::xorshift::XorShift;

    fn pseudo(rows: usize, cols: usize, seed: u32) -> Array2<f32> {
        XorShift::seeded(seed, 99, 1000).matrix(rows, cols, 0.0)
    }

    /// Every level against the f64 product, around the vector groups and the block edge, with
    /// a zero entry of P (skipped) and a column view of a wider matrix as X.
    #[test]
    fn every_level_matches_the_product() {
        for r in [1, 7, 8, 9, 17, 49, 64] {
            for n in [1, 7, 8, 63, 64, 65, 200] {
                let mut p = pseudo(r, r, (r * 31 + n) as u32);
                p[[0, r - 1]] = 0.0;
                let wide = pseudo(r, n + 3, (r + n) as u32);
                let x = wide.slice(ndarray::s![.., 1..n + 1]);
                let want = p.mapv(f64::from).dot(&x.mapv(f64::from));
                for level in Level::all_supported() {
                    let mut out = Array2::<f32>::from_elem((r, n), f32::NAN);
                    let ran = times_wide_at(level, p.view(), x, out.view_mut()).unwrap();
                    assert_eq!(ran, level != Level::None, "{level:?}");
                    if !ran {
                        continue;
                    }
                    for (g, w) in out.iter().zip(want.iter()) {
                        assert!(
                            (f64::from(*g) - w).abs() <= 1e-5 * (1.0 + w.abs()),
                            "{level:?} r {r} n {n}: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn shapes_that_do_not_conform_are_errors() {
        let p = pseudo(3, 3, 1);
        let x = pseudo(3, 10, 2);
        let mut out = Array2::<f32>::zeros((3, 9));
        assert!(times_wide(p.view(), x.view(), out.view_mut()).is_err());
        let p4 = pseudo(4, 4, 1);
        let mut out = Array2::<f32>::zeros((3, 10));
        assert!(times_wide(p4.view(), x.view(), out.view_mut()).is_err());
    }
}
