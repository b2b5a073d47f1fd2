//! A sparse matrix as a [`LinearOperator`], for the randomized SVD of the NNDSVD start.

use ndarray::{Array2, ArrayView2};

use super::panels::Operand;
use super::products::{spmm, spmm_t};
use crate::linalg::LinearOperator;
use crate::sparse::CsrMatrix;

/// A sparse matrix as a [`LinearOperator`] for the randomized SVD: `a` and its transpose `at`.
#[derive(Clone, Copy)]
pub(crate) struct SparseOp<'a> {
    pub a: &'a CsrMatrix,
    pub at: &'a CsrMatrix,
}

impl LinearOperator for SparseOp<'_> {
    fn dim(&self) -> (usize, usize) {
        self.a.dim()
    }
    fn mul(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        let l = x.ncols();
        let x = x.as_standard_layout();
        let mut out = Array2::<f32>::zeros((self.a.rows(), l));
        if let (Some(xs), Some(os)) = (x.as_slice(), out.as_slice_mut()) {
            if let Err(e) = spmm(Operand::Csr(self.a), xs, l, os) {
                panic!("internal error: {e}");
            }
        }
        out
    }
    fn t_mul(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        // Xᵀ A = (Aᵀ X)ᵀ, row by row of Aᵀ.
        let l = x.ncols();
        let x = x.as_standard_layout();
        let mut out = Array2::<f32>::zeros((l, self.a.cols()));
        if let Some(xs) = x.as_slice() {
            if let Err(e) = spmm_t(Operand::Csr(self.at), xs, l, out.view_mut()) {
                panic!("internal error: {e}");
            }
        }
        out
    }
    fn transposed(&self) -> Self {
        SparseOp {
            a: self.at,
            at: self.a,
        }
    }
}
