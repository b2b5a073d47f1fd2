//! Products at the pattern of a sparse matrix: the masked products of masked NMF when the
//! mask is the set of stored entries (observed ratings), in `O(nnz·r)`.
//!
//! `out[i, :] = Σ_{k ∈ row i} (y[i, :]·x[j_k, :]) x[j_k, :]`: row `i` of `(P ⊙ Y Xᵀ) X`, with
//! `P` the 0/1 pattern of `a` (its values are not read). With `a = V`, `y = W`, `x = Hᵀ` this
//! is `(M ⊙ WH) Hᵀ`; with `a = Vᵀ`, `y = Hᵀ`, `x = W` it is `(Wᵀ (M ⊙ WH))ᵀ`.

use rayon::prelude::*;

use super::gather::Weight;
use super::panels::{Operand, TASK_ROWS};
use super::products::block_rows;
use crate::error::{NmfError, Result};

/// `out = (P ⊙ Y Xᵀ) X` (a.rows x r, row-major) with `y` (a.rows x r) and `x` (a.cols x r)
/// row-major; lengths that do not match are an error. Blocks of rows in parallel; over
/// [`Operand::Panels`] each block walks the column panels in turn, so the rows of `x` it
/// gathers stay in cache.
pub(crate) fn pattern_spmm(
    a: Operand<'_>,
    y: &[f32],
    x: &[f32],
    r: usize,
    out: &mut [f32],
) -> Result<()> {
    let (rows, cols) = a.dim();
    for (what, len, want) in [
        ("the row factor of a pattern product", y.len(), rows * r),
        ("the column factor of a pattern product", x.len(), cols * r),
        ("the output of a pattern product", out.len(), rows * r),
    ] {
        if len != want {
            return Err(NmfError::ShapeMismatch {
                what,
                expected: format!("{want} entries"),
                found: format!("{len}"),
            });
        }
    }
    if r == 0 {
        return Ok(());
    }
    out.par_chunks_mut(TASK_ROWS * r)
        .enumerate()
        .for_each(|(b, ob)| block_rows(a, b * TASK_ROWS, x, Weight::Dot(y), r, ob));
    Ok(())
}
