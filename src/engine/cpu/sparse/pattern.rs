//! Products at the pattern of a sparse matrix: the masked products of masked NMF when the
//! mask is the set of stored entries (observed ratings), in `O(nnz·r)`.
//!
//! `out[i, :] = Σ_{k ∈ row i} (y[i, :]·x[j_k, :]) x[j_k, :]`: row `i` of `(P ⊙ Y Xᵀ) X`, with
//! `P` the 0/1 pattern of `a` (its values are not read). With `a = V`, `y = W`, `x = Hᵀ` this
//! is `(M ⊙ WH) Hᵀ`; with `a = Vᵀ`, `y = Hᵀ`, `x = W` it is `(Wᵀ (M ⊙ WH))ᵀ`.

use rayon::prelude::*;

use super::panels::{Index, Operand, Start, TASK_ROWS};
use super::products::dot_f32;
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
        .for_each(|(b, ob)| {
            let i0 = b * TASK_ROWS;
            let yb = &y[i0 * r..i0 * r + ob.len()];
            let n = ob.len() / r;
            match a {
                Operand::Csr(a) => {
                    let ptr = &a.indptr()[i0..=i0 + n];
                    pattern_rows(ptr, a.indices(), x, yb, r, Start::Zero, ob);
                }
                Operand::Panels(p) => {
                    if p.panels.is_empty() {
                        ob.fill(0.0);
                    }
                    for (k, panel) in p.panels.iter().enumerate() {
                        let xp = &x[panel.col0 * r..(panel.col0 + panel.cols) * r];
                        let start = if k == 0 { Start::Zero } else { Start::Out };
                        let ptr = &panel.indptr[i0..=i0 + n];
                        pattern_rows(ptr, &panel.indices, xp, yb, r, start, ob);
                    }
                }
            }
        });
    Ok(())
}

/// Rows of the pattern product: `out[i, :] (+)= Σ_k (y[i, :]·x[idx[k], :]) x[idx[k], :]`
/// for `k` in `ptr[i]..ptr[i + 1]` (`ptr` as long as the block's rows plus one, `y` and
/// `out` the block's rows; lengths checked by the caller).
fn pattern_rows<I: Index>(
    ptr: &[usize],
    idx: &[I],
    x: &[f32],
    y: &[f32],
    r: usize,
    start: Start,
    out: &mut [f32],
) {
    for (i, orow) in out.chunks_exact_mut(r).enumerate() {
        if let Start::Zero = start {
            orow.fill(0.0);
        }
        let yr = &y[i * r..(i + 1) * r];
        for jk in &idx[ptr[i]..ptr[i + 1]] {
            let j = jk.at();
            let xr = &x[j * r..(j + 1) * r];
            let z = dot_f32(yr, xr);
            for (o, &xv) in orow.iter_mut().zip(xr) {
                *o += z * xv;
            }
        }
    }
}
