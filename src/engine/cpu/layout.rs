//! The layouts and shape checks the CPU engine's products share: packed `Hᵀ`, row-major
//! views and slices, scratch matrices, and the checks that factors and outputs fit V.

use ndarray::{Array2, ArrayViewMut2, CowArray, Ix2};

use super::skinny;
use crate::engine::Shaped;
use crate::error::{NmfError, Result};

impl Shaped for Array2<f32> {
    fn shape(&self) -> (usize, usize) {
        self.dim()
    }
}

/// The first `rows · cols` entries of `buf` as a `rows x cols` row-major block, `buf` grown
/// (never shrunk) to hold them: a scratch block reused across the blocks of a call whatever
/// their shape. Its entries are whatever the previous block left, so the caller writes every
/// entry before it reads one.
pub(super) fn scratch_block(
    buf: &mut Vec<f32>,
    (rows, cols): (usize, usize),
) -> Result<ArrayViewMut2<'_, f32>> {
    let len = rows.saturating_mul(cols);
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let have = buf.len();
    ArrayViewMut2::from_shape((rows, cols), &mut buf[..len]).map_err(|_| NmfError::ShapeMismatch {
        what: "a scratch block",
        expected: format!("{rows} x {cols}"),
        found: format!("{have} floats"),
    })
}

/// Pack `Hᵀ` (n x r, row-major) of `h` (r x n) into `scratch`.
pub(super) fn pack_ht(h: &Array2<f32>, scratch: &mut Vec<f32>) {
    let (r, n) = h.dim();
    // No clearing: transpose_into writes all n·r entries (resizing to the same length writes
    // nothing).
    scratch.resize(n * r, 0.0);
    skinny::transpose_into(h.view(), scratch);
}

/// `W` (m x r) as a row-major slice, borrowed when it is one already.
pub(super) fn row_major(w: &Array2<f32>) -> CowArray<'_, f32, Ix2> {
    w.as_standard_layout()
}

/// The elements of a row-major (standard layout) matrix.
pub(super) fn as_slice<'b>(a: &'b CowArray<'_, f32, Ix2>) -> &'b [f32] {
    debug_assert!(a.is_standard_layout());
    a.as_slice().unwrap_or(&[])
}

/// The elements of a freshly allocated (standard layout) matrix.
pub(super) fn as_slice_mut(a: &mut Array2<f32>) -> &mut [f32] {
    debug_assert!(a.is_standard_layout());
    a.as_slice_mut().unwrap_or(&mut [])
}

pub(super) use crate::engine::data::check_dims as check_same;

/// Take (or create) a scratch matrix of the given shape.
pub(super) fn take_scratch(slot: &mut Option<Array2<f32>>, shape: (usize, usize)) -> Array2<f32> {
    match slot.take() {
        Some(a) if a.dim() == shape => a,
        _ => Array2::zeros(shape),
    }
}

/// `v` itself when it is row- or column-contiguous, else a row-major copy.
pub(super) fn contiguous(v: Array2<f32>) -> Array2<f32> {
    if v.is_standard_layout() || v.t().is_standard_layout() {
        v
    } else {
        v.as_standard_layout().into_owned()
    }
}
