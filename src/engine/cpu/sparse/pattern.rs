//! Products at the pattern of a sparse matrix: the masked products of masked NMF when the
//! mask is the set of stored entries (observed ratings), in `O(nnz·r)`.
//!
//! `out[i, :] = Σ_{k ∈ row i} (y[i, :]·x[j_k, :]) x[j_k, :]`: row `i` of `(P ⊙ Y Xᵀ) X`, with
//! `P` the 0/1 pattern of `a` (its values are not read). With `a = V`, `y = W`, `x = Hᵀ` this
//! is `(M ⊙ WH) Hᵀ`; with `a = Vᵀ`, `y = Hᵀ`, `x = W` it is `(Wᵀ (M ⊙ WH))ᵀ`.

use rayon::prelude::*;

use super::products::dot_f32;
use crate::error::{NmfError, Result};
use crate::sparse::CsrMatrix;

/// Rows per parallel task.
const BLOCK_ROWS: usize = 256;

/// `out = (P ⊙ Y Xᵀ) X` (a.rows x r, row-major) with `y` (a.rows x r) and `x` (a.cols x r)
/// row-major; lengths that do not match are an error.
pub(crate) fn pattern_spmm(
    a: &CsrMatrix,
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
    let ptr = a.indptr();
    let idx = a.indices();
    out.par_chunks_mut(BLOCK_ROWS * r)
        .enumerate()
        .for_each(|(b, ob)| {
            let i0 = b * BLOCK_ROWS;
            for (ii, orow) in ob.chunks_exact_mut(r).enumerate() {
                let i = i0 + ii;
                orow.fill(0.0);
                let yr = &y[i * r..(i + 1) * r];
                for &j in &idx[ptr[i]..ptr[i + 1]] {
                    let j = j as usize;
                    let xr = &x[j * r..(j + 1) * r];
                    let z = dot_f32(yr, xr);
                    for (o, &xv) in orow.iter_mut().zip(xr) {
                        *o += z * xv;
                    }
                }
            }
        });
    Ok(())
}
