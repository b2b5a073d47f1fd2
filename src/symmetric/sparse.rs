//! Symmetric NMF of a sparse adjacency: `Ã` held as CSR, every product `Ã X` a sparse
//! product and the residual `½‖Ã − H Hᵀ‖²` formed from the stored entries and the Gram
//! matrices, so a graph with millions of edges runs in memory proportional to its edges
//! (plus `n·k` for the factors), never an n x n matrix.
//!
//! The iterations are those of [`SymNmfParams::fit`] on the dense matrix (the same engine
//! calls), on the CPU or the GPU engine.

use std::time::Instant;

use super::{Preprocess, SymFactorization, SymNmfParams};
use crate::engine::with_sparse_engine;
use crate::error::{NmfError, Result};
use crate::sparse::CsrMatrix;

impl SymNmfParams {
    /// [`fit`](Self::fit) for a sparse symmetric nonnegative `a` (n x n), e.g. a graph's
    /// adjacency: the same checks (square, symmetric within
    /// [`symmetry_tol`](Self::symmetry_tol) with the most asymmetric pair named, not all zero),
    /// preprocessing and iterations, with `Ã` in CSR form; memory `O(nnz + n·k)`. The host
    /// holds `a`'s symmetrized, preprocessed copy (8 bytes per stored entry plus `8·(n + 1)`),
    /// and the CPU engine its column panels (at most 16 bytes per entry); `Ã` is its own
    /// transpose, so no transposed copy is made.
    pub fn fit_sparse(&self, a: &CsrMatrix) -> Result<SymFactorization> {
        let start = Instant::now();
        self.check()?;
        let n = self.check_shape(a.dim())?;
        let a_sym = symmetrized(a, self.symmetry_tol)?;
        let a_t = preprocess(a_sym, self.preprocess)?;
        let max = a_t.values().iter().fold(0.0f32, |m, &x| m.max(x));
        if max == 0.0 {
            return Err(NmfError::InvalidParameter {
                name: "A",
                value: "all zeros".into(),
                expected: "a matrix with at least one positive entry (a graph with at least one edge with a weight > 0)".into(),
            });
        }
        let task = self.task(max, a_t.sum() / ((n as f64) * (n as f64)))?;
        let alpha = task.alpha;
        // Ã is symmetric: it is its own transpose (the CSC form the products read).
        let (out, engine_name) = with_sparse_engine(&a_t, &a_t, &self.backend, task)?;
        Ok(self.factorization(out, engine_name, start, alpha, a_t.sq_norm()))
    }
}

/// `(A + Aᵀ)/2` of a square sparse `a` when `A` is symmetric within `tol · max(A)` (an entry
/// stored on one side only is compared with 0); otherwise the error names the most asymmetric
/// pair. Row by row, the stored entries of `a` and of `aᵀ` are merged in column order.
fn symmetrized(a: &CsrMatrix, tol: f32) -> Result<CsrMatrix> {
    let n = a.rows();
    let at = a.transpose();
    let max = a.values().iter().fold(0.0f32, |m, &x| m.max(x));
    let abs_tol = tol * max;
    let mut worst = (0usize, 0usize, 0.0f32, 0.0f32, 0.0f32);
    let mut t: Vec<(u32, u32, f32)> = Vec::with_capacity(a.nnz());
    for i in 0..n {
        let (ca, va) = a.row(i);
        let (cb, vb) = at.row(i);
        let (mut p, mut q) = (0, 0);
        while p < ca.len() || q < cb.len() {
            // (column, a_ij, a_ji)
            let (j, x, y) = match (ca.get(p), cb.get(q)) {
                (Some(&ja), Some(&jb)) if ja == jb => {
                    p += 1;
                    q += 1;
                    (ja, va[p - 1], vb[q - 1])
                }
                (Some(&ja), Some(&jb)) if ja < jb => {
                    p += 1;
                    (ja, va[p - 1], 0.0)
                }
                (Some(&ja), None) => {
                    p += 1;
                    (ja, va[p - 1], 0.0)
                }
                (_, Some(&jb)) => {
                    q += 1;
                    (jb, 0.0, vb[q - 1])
                }
                (None, None) => break,
            };
            let d = (x - y).abs();
            if d > worst.2 {
                worst = (i, j as usize, d, x, y);
            }
            t.push((i as u32, j, 0.5 * (x + y)));
        }
    }
    let (i, j, d, x, y) = worst;
    if d > abs_tol {
        return Err(NmfError::NotSymmetric {
            row: i,
            col: j,
            value: x,
            mirror: y,
            tol: abs_tol,
        });
    }
    CsrMatrix::from_checked_triplets(n, n, t)
}

/// `Ã` from a symmetric nonnegative sparse `a`: as given, or `D^{-1/2} A D^{-1/2}` (degree-0
/// rows and columns stay 0), the same values as the dense path.
fn preprocess(a: CsrMatrix, how: Preprocess) -> Result<CsrMatrix> {
    match how {
        Preprocess::None => Ok(a),
        Preprocess::NormalizedAdjacency => {
            let n = a.rows();
            let inv_sqrt: Vec<f32> = (0..n)
                .map(|i| {
                    let d: f64 = a.row(i).1.iter().map(|&x| f64::from(x)).sum();
                    if d > 0.0 {
                        (1.0 / d.sqrt()) as f32
                    } else {
                        0.0
                    }
                })
                .collect();
            let mut t = Vec::with_capacity(a.nnz());
            for (i, &si) in inv_sqrt.iter().enumerate() {
                let (cols, vals) = a.row(i);
                for (&j, &x) in cols.iter().zip(vals) {
                    t.push((i as u32, j, x * (si * inv_sqrt[j as usize])));
                }
            }
            CsrMatrix::from_checked_triplets(n, n, t)
        }
    }
}
