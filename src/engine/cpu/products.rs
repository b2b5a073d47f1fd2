//! Dense products with one skinny operand, as the CPU engine computes them: the vector kernels
//! of [`super::skinny`] at the level [`simd::level`] chooses (AVX-512 or AVX2) where the layouts
//! allow, the general GEMM
//! ([`crate::linalg::gemm`]) otherwise. Every function checks the shapes and computes the
//! product; the choice of kernel is made here and nowhere else.
//!
//! - [`at_b`]: `C = Aᵀ B` (`Wᵀ V`, `Wᵀ W`, `W H` as `(Wᵀ)ᵀ H`);
//! - [`a_bt`]: `C = A Bᵀ` (`V Hᵀ`, `H Hᵀ`, `X G` as `X (Gᵀ)ᵀ`);
//! - [`a_bt_packed`]: `C = A Bᵀ` with `Bᵀ` already packed row-major (reused across blocks);
//! - [`square_times`]: `C = P X` for a small square `P` (r x r) and a wide `X` (`K H`, `S H`);
//! - [`WideFactor`]: `W_b H` for many blocks `W_b` of rows of W, H's panels copied once.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::simd::{self, Level};
use super::{skinny, small};
use crate::error::Result;
use crate::linalg::gemm::{gemm_into, Accum};

/// `c = aᵀ b` for `a` (k x r), `b` (k x n), `c` (r x n). The kernel reads `a` row-major: when it
/// is not, it is copied (k·r floats, small beside the k·r·n of the product).
pub(crate) fn at_b(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    mut c: ArrayViewMut2<'_, f32>,
) -> Result<()> {
    if simd::level() != Level::None && b.is_standard_layout() && c.is_standard_layout() {
        let a_rows = a.as_standard_layout();
        if skinny::at_b(a_rows.view(), b, c.view_mut())? {
            return Ok(());
        }
    }
    gemm_into(c, a.t(), b, Accum::Replace)
}

/// The largest copy of a wide factor [`WideFactor`] makes; inside the engines' fixed work
/// space beside V's copy (solver/budget.rs).
const WIDE_COPY_MAX_BYTES: usize = 16 << 20;

/// A wide factor `H` (r x n) for the products `W_b H` of blocks of rows of W (the blocks of
/// `W H` the KL and β updates and the loss at a check form): its panels are copied once
/// ([`skinny::PackedPanels`], where the copy is at most [`WIDE_COPY_MAX_BYTES`]) instead of
/// once per block and group of panels.
pub(crate) struct WideFactor<'a> {
    h: ArrayView2<'a, f32>,
    packed: Option<skinny::PackedPanels>,
}

impl<'a> WideFactor<'a> {
    /// `h` (r x n), copied where the vector kernels run and the copy is small enough.
    pub(crate) fn new(h: ArrayView2<'a, f32>) -> Self {
        let (r, n) = h.dim();
        let packed = if skinny::PackedPanels::bytes(r, n) <= WIDE_COPY_MAX_BYTES {
            skinny::PackedPanels::new(h)
        } else {
            None
        };
        WideFactor { h, packed }
    }

    /// `c = w h` for a block `w` (rows x r) of W, `c` (rows x n).
    pub(crate) fn times(
        &self,
        w: ArrayView2<'_, f32>,
        mut c: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        if let Some(p) = &self.packed {
            let wt = w.t();
            let wt = wt.as_standard_layout();
            if skinny::at_b_packed(wt.view(), self.h, p, c.view_mut())? {
                return Ok(());
            }
        }
        at_b(w.t(), self.h, c)
    }
}

/// `c = p x` for a square `p` (r x r) and `x`, `c` (r x n): block by block in vector registers
/// ([`small`]) where a vector level is available, else `(pᵀ)ᵀ x` as [`at_b`].
pub(crate) fn square_times(
    p: ArrayView2<'_, f32>,
    x: ArrayView2<'_, f32>,
    mut c: ArrayViewMut2<'_, f32>,
) -> Result<()> {
    if small::times_wide(p, x, c.view_mut())? {
        return Ok(());
    }
    at_b(p.t(), x, c)
}

/// `c = a bᵀ` for `a` (m x k), `b` (r x k), `c` (m x r); `scratch` receives the packed `bᵀ`.
pub(crate) fn a_bt(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    mut c: ArrayViewMut2<'_, f32>,
    scratch: &mut Vec<f32>,
) -> Result<()> {
    if skinny::a_bt(a, b, c.view_mut(), scratch)? {
        return Ok(());
    }
    gemm_into(c, a, b.t(), Accum::Replace)
}

/// `c = a bᵀ` as [`a_bt`], with `bt` the packed `bᵀ` (k x r row-major, as
/// [`skinny::transpose_into`] makes it from `b`); the GEMM, when it runs, reads `b`.
pub(crate) fn a_bt_packed(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    bt: &[f32],
    mut c: ArrayViewMut2<'_, f32>,
) -> Result<()> {
    if b.dim() != (c.ncols(), a.ncols()) {
        // The GEMM below reports the mismatch.
        return gemm_into(c, a, b.t(), Accum::Replace);
    }
    if skinny::a_bt_packed(a, Some(b), bt, c.view_mut())? {
        return Ok(());
    }
    gemm_into(c, a, b.t(), Accum::Replace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, ShapeBuilder};

    use crate::linalg::xorshift::XorShift;

    fn pseudo(rows: usize, cols: usize, seed: u32) -> Array2<f32> {
        XorShift::seeded(seed, 7, 1000).matrix(rows, cols, 0.0)
    }

    fn close(a: &Array2<f32>, b: &Array2<f32>) -> bool {
        let scale = b.iter().fold(1e-30f32, |m, x| m.max(x.abs()));
        a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-5 * scale)
    }

    /// Every product in row- and column-major outputs and transposed operands agrees with
    /// ndarray's own product; wrong shapes are errors.
    #[test]
    fn every_form_and_layout_matches_the_reference() {
        let (m, k, r) = (41, 23, 7);
        let a = pseudo(m, k, 1);
        let b = pseudo(r, k, 2);
        let want = a.dot(&b.t());
        let mut scratch = Vec::new();
        for f in [false, true] {
            let mut c = Array2::<f32>::zeros((m, r).f());
            if !f {
                c = Array2::zeros((m, r));
            }
            a_bt(a.view(), b.view(), c.view_mut(), &mut scratch).unwrap();
            assert!(close(&c, &want), "a_bt, column-major output {f}");
            let mut bt = vec![0.0; k * r];
            skinny::transpose_into(b.view(), &mut bt);
            c.fill(f32::NAN);
            a_bt_packed(a.view(), b.view(), &bt, c.view_mut()).unwrap();
            assert!(close(&c, &want), "a_bt_packed, column-major output {f}");
            // aᵀ b with a = (Aᵀ stored column-major) and b row-major.
            let at = a.t().as_standard_layout().into_owned(); // k x m
            let bt2 = b.t().as_standard_layout().into_owned(); // k x r
            let mut q = Array2::<f32>::zeros((m, r));
            at_b(at.view(), bt2.view(), q.view_mut()).unwrap();
            assert!(close(&q, &want), "at_b");
            at_b(a.t(), bt2.view(), q.view_mut()).unwrap();
            assert!(close(&q, &want), "at_b with a transposed view");
        }
        let mut small = Array2::<f32>::zeros((m - 1, r));
        assert!(a_bt(a.view(), b.view(), small.view_mut(), &mut scratch).is_err());
        assert!(a_bt_packed(a.view(), b.view(), &[0.0; 3], small.view_mut()).is_err());
        assert!(at_b(a.view(), b.view(), small.view_mut()).is_err());
    }
}
