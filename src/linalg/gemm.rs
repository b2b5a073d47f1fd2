//! Dense single-precision GEMM, for the linear algebra here and the CPU engine above it.
//!
//! A thin, safe wrapper over the `gemm` crate (runtime-dispatched AVX-512 / AVX2 / NEON kernels,
//! rayon threads). Transposes are free: pass `a.t()` and the strides say the rest.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use crate::error::{NmfError, Result};

/// Whether the product overwrites or accumulates into the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accum {
    /// `C = A B`
    Replace,
    /// `C = C + A B`
    Add,
}

/// Below this many multiply-adds a product runs on the calling thread: forking costs more.
const PARALLEL_THRESHOLD: usize = 48 * 48 * 48;

/// `C = A B` (or `C += A B`), for any strides of `a`, `b` and `c` (transposed views included).
/// Shapes that do not conform (`A` m x k, `B` k x n, `C` m x n) are an error.
pub(crate) fn gemm_into(
    mut c: ArrayViewMut2<'_, f32>,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    accum: Accum,
) -> Result<()> {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    if k != k2 {
        return Err(NmfError::ShapeMismatch {
            what: "B in the product A B",
            expected: format!("{k} rows (the columns of A)"),
            found: format!("{k2} x {n}"),
        });
    }
    if c.dim() != (m, n) {
        return Err(NmfError::ShapeMismatch {
            what: "the output of the product A B",
            expected: format!("{m} x {n}"),
            found: format!("{} x {}", c.nrows(), c.ncols()),
        });
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if accum == Accum::Replace {
            c.fill(0.0);
        }
        return Ok(());
    }
    let threads = rayon::current_num_threads();
    let par = if m.saturating_mul(n).saturating_mul(k) >= PARALLEL_THRESHOLD && threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let (cs, cr) = (c.strides()[1], c.strides()[0]);
    let (a_cs, a_rs) = (a.strides()[1], a.strides()[0]);
    let (b_cs, b_rs) = (b.strides()[1], b.strides()[0]);
    // SAFETY: the pointers and strides come from live ndarray views whose shapes were checked
    // above to conform; `c` is borrowed mutably and cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            cs,
            cr,
            accum == Accum::Add,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
    Ok(())
}

/// [`gemm_into`] for operands whose shapes conform by construction (the factorisations in
/// this module's siblings size every operand from the others).
///
/// # Panics
/// When the shapes do not conform: a bug in the caller, not bad input.
pub(crate) fn gemm_conforming(
    c: ArrayViewMut2<'_, f32>,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    accum: Accum,
) {
    if let Err(e) = gemm_into(c, a, b, accum) {
        panic!("internal error: {e}");
    }
}

/// `A B` as a new row-major matrix, for operands whose inner dimensions agree by construction.
///
/// # Panics
/// When `a.ncols() != b.nrows()`: a bug in the caller, not bad input.
pub(crate) fn matmul(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut c = Array2::<f32>::zeros((a.nrows(), b.ncols()));
    gemm_conforming(c.view_mut(), a, b, Accum::Replace);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    use crate::linalg::xorshift::XorShift;

    fn naive(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f64> {
        let mut c = Array2::<f64>::zeros((a.nrows(), b.ncols()));
        for i in 0..a.nrows() {
            for j in 0..b.ncols() {
                let mut s = 0.0f64;
                for l in 0..a.ncols() {
                    s += a[[i, l]] as f64 * b[[l, j]] as f64;
                }
                c[[i, j]] = s;
            }
        }
        c
    }

    fn pseudo(rows: usize, cols: usize, seed: u32) -> Array2<f32> {
        XorShift::seeded(seed, 1, 1000).matrix(rows, cols, 0.0)
    }

    /// One GEMM against the f64 naive product: relative error ~1e-4 or better.
    const GEMM_REL_TOL: f64 = 1e-5;

    fn assert_close(c: &Array2<f32>, r: &Array2<f64>) {
        let scale = r.iter().fold(1e-30f64, |m, x| m.max(x.abs()));
        for (x, y) in c.iter().zip(r.iter()) {
            assert!(
                ((*x as f64) - y).abs() <= GEMM_REL_TOL * scale,
                "{x} vs {y} (scale {scale})"
            );
        }
    }

    #[test]
    fn all_transposes_at_odd_shapes() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (7, 3, 5),
            (33, 17, 65),
            (129, 1, 63),
            (200, 49, 31),
        ] {
            let a = pseudo(m, k, 1);
            let b = pseudo(k, n, 2);
            let r = naive(a.view(), b.view());
            assert_close(&matmul(a.view(), b.view()), &r);
            // Aᵀ stored, used transposed
            let at = a.t().as_standard_layout().into_owned();
            assert_close(&matmul(at.t(), b.view()), &r);
            let bt = b.t().as_standard_layout().into_owned();
            assert_close(&matmul(a.view(), bt.t()), &r);
            // column-major output, accumulate twice
            let mut c = Array2::<f32>::zeros((n, m));
            gemm_into(
                c.view_mut().reversed_axes(),
                a.view(),
                b.view(),
                Accum::Replace,
            )
            .unwrap();
            gemm_into(c.view_mut().reversed_axes(), a.view(), b.view(), Accum::Add).unwrap();
            let c2 = c.t().mapv(|x| x / 2.0);
            assert_close(&c2, &r);
        }
    }

    #[test]
    fn zero_inner_dimension_clears_or_keeps() {
        let a = Array2::<f32>::zeros((3, 0));
        let b = Array2::<f32>::zeros((0, 4));
        let mut c = Array2::<f32>::ones((3, 4));
        gemm_into(c.view_mut(), a.view(), b.view(), Accum::Add).unwrap();
        assert!(c.iter().all(|&x| x == 1.0));
        gemm_into(c.view_mut(), a.view(), b.view(), Accum::Replace).unwrap();
        assert!(c.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn shapes_that_do_not_conform_are_errors() {
        let a = Array2::<f32>::ones((3, 4));
        let b = Array2::<f32>::ones((5, 2));
        let mut c = Array2::<f32>::zeros((3, 2));
        let e = gemm_into(c.view_mut(), a.view(), b.view(), Accum::Replace).unwrap_err();
        assert!(matches!(e, NmfError::ShapeMismatch { .. }), "{e}");
        let b = Array2::<f32>::ones((4, 2));
        let mut small = Array2::<f32>::zeros((2, 2));
        let e = gemm_into(small.view_mut(), a.view(), b.view(), Accum::Replace).unwrap_err();
        assert!(matches!(e, NmfError::ShapeMismatch { .. }), "{e}");
        assert!(small.iter().all(|&x| x == 0.0));
    }
}
