//! Hoyer's sparseness of vectors and of the columns of a matrix.

use ndarray::{Array1, ArrayView1, ArrayView2, Axis};

/// Hoyer's sparseness (Hoyer 2004, "Non-negative matrix factorization with sparseness
/// constraints", JMLR 5) of `x` (length `n`):
///
/// ```text
/// sparseness(x) = (√n − ‖x‖₁/‖x‖₂) / (√n − 1)
/// ```
///
/// 0 when all entries have the same magnitude, 1 when exactly one entry is nonzero, and in
/// between otherwise (`‖x‖₁/‖x‖₂` runs from 1 to `√n`). The ratio is undefined for the zero
/// vector and for `n < 2`; both count as 0 here, so an unused (all-zero) component never
/// raises a mean sparseness. Sums are taken in f64.
pub fn hoyer_sparseness(x: ArrayView1<'_, f32>) -> f64 {
    let n = x.len();
    if n < 2 {
        return 0.0;
    }
    let (l1, l2sq) = x.iter().fold((0.0f64, 0.0f64), |(l1, l2sq), &v| {
        let v = f64::from(v);
        (l1 + v.abs(), l2sq + v * v)
    });
    if l2sq == 0.0 {
        return 0.0;
    }
    let sqrt_n = (n as f64).sqrt();
    ((sqrt_n - l1 / l2sq.sqrt()) / (sqrt_n - 1.0)).clamp(0.0, 1.0)
}

/// [`hoyer_sparseness`] of each column of `a`.
pub fn column_sparseness(a: ArrayView2<'_, f32>) -> Array1<f64> {
    a.axis_iter(Axis(1)).map(hoyer_sparseness).collect()
}

/// The mean [`hoyer_sparseness`] of the columns of `a` (0 for a matrix without columns):
/// for `W`, how localised the basis images are; for `H`, how few parts each image uses.
pub fn mean_column_sparseness(a: ArrayView2<'_, f32>) -> f64 {
    if a.ncols() == 0 {
        return 0.0;
    }
    column_sparseness(a).sum() / a.ncols() as f64
}
