//! The locality order of a sparse fit: V's rows and columns renumbered once per fit, so that
//! the rows of the skinny factors that the sparse products gather most often lie together.
//!
//! Every product with a sparse V gathers one length-r row of a skinny factor per stored
//! entry: `V Hᵀ` the row `j` of `Hᵀ` for each entry `v_ij`, `Vᵀ W` the row `i` of `W`. On
//! power-law data (a corpus's vocabulary, a graph's hubs) a few rows and columns hold most
//! entries, scattered over the index range: their factor rows are hot but share their cache
//! lines with cold neighbours. [`SparseOrder::Degree`] renumbers the rows and the columns by
//! descending number of stored entries (ties in stored order), so that the hot factor rows
//! are packed into as few lines (and pages) as possible and the heaviest output rows come
//! first, the order in which a work-stealing pool balances best.
//!
//! The fit then runs on `V' = P V Q` (`P`, `Q` permutations) from `W₀' = P W₀`,
//! `H₀' = H₀ Q`, and returns `W = Pᵀ W'`, `H = H' Qᵀ`: since
//! `‖V' − W'H'‖ = ‖P (V − WH) Q‖ = ‖V − WH‖` (and likewise for every entrywise loss), and
//! every update rule is equivariant under the renumbering, the result is the unpermuted
//! fit's up to the rounding of sums taken in another order (each row's and column's sums of
//! the products and Grams run over the stored entries in the new order). The start is
//! computed on V itself, so the random and NNDSVD starts are those of the unpermuted fit.
//!
//! Cost: two counting passes over the entries for the degrees, two sorts of `m` and `n` keys,
//! and `V'`, `V'ᵀ` built by one counting transpose each from `Vᵀ` and `V`, O(nnz + m + n) in
//! all; memory: the permuted copies of V and Vᵀ (8 bytes per stored entry each, plus 8 per
//! row and column) and the permutations (16 bytes per row and column), counted in the
//! fit's memory budget ([`super::budget`]).

use std::sync::Arc;

use ndarray::{Array2, ArrayView2, Axis};

use crate::options::{Checkpoint, IterOptions, SparseOrder};
use crate::sparse::CsrMatrix;

/// A renumbering of V's rows and columns: `rows[p]` is the row of V that becomes row `p`,
/// `row_at[i]` the new place of row `i` (the inverse); likewise for the columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reorder {
    rows: Vec<usize>,
    row_at: Vec<usize>,
    cols: Vec<usize>,
    col_at: Vec<usize>,
}

impl Reorder {
    /// The renumbering `order` asks for on `v` (m x n, `vt` its transpose), or `None` when it
    /// keeps the stored order (also for [`SparseOrder::Degree`] when the degrees are already
    /// descending).
    pub fn of(order: SparseOrder, v: &CsrMatrix, vt: &CsrMatrix) -> Option<Reorder> {
        match order {
            SparseOrder::Stored => None,
            SparseOrder::Degree => {
                let r = Reorder::from_orders(by_degree(v), by_degree(vt));
                (!r.is_identity()).then_some(r)
            }
        }
    }

    /// The renumbering with rows taken in the order `rows` and columns in the order `cols`
    /// (each a permutation).
    fn from_orders(rows: Vec<usize>, cols: Vec<usize>) -> Reorder {
        Reorder {
            row_at: inverse(&rows),
            col_at: inverse(&cols),
            rows,
            cols,
        }
    }

    fn is_identity(&self) -> bool {
        let id = |p: &[usize]| p.iter().enumerate().all(|(k, &t)| k == t);
        id(&self.rows) && id(&self.cols)
    }

    /// `(V', V'ᵀ)`, `V' = P V Q`: `V'[p, q] = V[rows[p], cols[q]]`, from V and `vt = Vᵀ`.
    pub fn data(&self, v: &CsrMatrix, vt: &CsrMatrix) -> (CsrMatrix, CsrMatrix) {
        let narrow = |at: &[usize]| at.iter().map(|&t| t as u32).collect::<Vec<u32>>();
        // V' is the transpose of Vᵀ with its rows (V's columns) taken in the new column order
        // and its entries' rows renamed to their new places; V'ᵀ likewise from V. The two
        // counting passes are independent.
        rayon::join(
            || vt.permuted_transpose(&self.cols, &narrow(&self.row_at)),
            || v.permuted_transpose(&self.rows, &narrow(&self.col_at)),
        )
    }

    /// `W' = P W` (the rows of W, m x r, in the new order).
    pub fn w_in(&self, w: &Array2<f32>) -> Array2<f32> {
        w.select(Axis(0), &self.rows)
    }

    /// `H' = H Q` (the columns of H, r x n, in the new order).
    pub fn h_in(&self, h: &Array2<f32>) -> Array2<f32> {
        h.select(Axis(1), &self.cols)
    }

    /// `W = Pᵀ W'` (back in V's row order).
    pub fn w_out(&self, w: ArrayView2<'_, f32>) -> Array2<f32> {
        w.select(Axis(0), &self.row_at)
    }

    /// `H = H' Qᵀ` (back in V's column order).
    pub fn h_out(&self, h: ArrayView2<'_, f32>) -> Array2<f32> {
        h.select(Axis(1), &self.col_at)
    }

    /// Iteration options whose checkpoint callback sees the factors in V's order.
    pub fn iter_options(self: &Arc<Self>, o: &IterOptions) -> IterOptions {
        let mut q = o.clone();
        if let Some((every, f)) = o.checkpoint.clone() {
            let order = Arc::clone(self);
            q.checkpoint = Some((
                every,
                Arc::new(move |cp: &Checkpoint<'_>| {
                    let (w, h) = (order.w_out(cp.w), order.h_out(cp.h));
                    f(&Checkpoint {
                        w: w.view(),
                        h: h.view(),
                        ..*cp
                    })
                }),
            ));
        }
        q
    }
}

/// The rows of `a` by descending number of stored entries, ties in stored order.
fn by_degree(a: &CsrMatrix) -> Vec<usize> {
    let ptr = a.indptr();
    let mut rows: Vec<usize> = (0..a.rows()).collect();
    // Stable: rows of equal degree keep their order.
    rows.sort_by_key(|&i| std::cmp::Reverse(ptr[i + 1] - ptr[i]));
    rows
}

/// The inverse permutation: `at[order[k]] = k`.
fn inverse(order: &[usize]) -> Vec<usize> {
    let mut at = vec![0; order.len()];
    for (k, &t) in order.iter().enumerate() {
        at[t] = k;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix() -> CsrMatrix {
        // Row 2 and column 3 are the heaviest; row 1 and column 1 are empty.
        CsrMatrix::from_triplets(
            4,
            5,
            [
                (0, 3, 1.0),
                (2, 0, 2.0),
                (2, 3, 3.0),
                (2, 4, 4.0),
                (3, 2, 5.0),
                (3, 3, 6.0),
            ],
        )
        .expect("valid triplets")
    }

    #[test]
    fn degree_order_and_inverse() {
        let v = matrix();
        let r = Reorder::of(SparseOrder::Degree, &v, &v.transpose()).expect("not the identity");
        assert_eq!(r.rows, [2, 3, 0, 1]);
        assert_eq!(r.cols, [3, 0, 2, 4, 1]);
        for (k, &t) in r.rows.iter().enumerate() {
            assert_eq!(r.row_at[t], k);
        }
        for (k, &t) in r.cols.iter().enumerate() {
            assert_eq!(r.col_at[t], k);
        }
    }

    #[test]
    fn data_is_p_v_q_and_its_transpose() {
        let v = matrix();
        let r = Reorder::of(SparseOrder::Degree, &v, &v.transpose()).expect("not the identity");
        let (vp, vtp) = r.data(&v, &v.transpose());
        let dense = v.to_dense();
        let want = r.h_in(&r.w_in(&dense));
        assert_eq!(vp.to_dense(), want);
        assert_eq!(vtp, vp.transpose());
    }

    #[test]
    fn factors_round_trip() {
        let v = matrix();
        let r = Reorder::of(SparseOrder::Degree, &v, &v.transpose()).expect("not the identity");
        let w = Array2::from_shape_fn((4, 2), |(i, t)| (10 * i + t) as f32);
        let h = Array2::from_shape_fn((2, 5), |(t, j)| (10 * t + j) as f32);
        assert_eq!(r.w_out(r.w_in(&w).view()), w);
        assert_eq!(r.h_out(r.h_in(&h).view()), h);
        assert_ne!(r.w_in(&w), w);
    }

    #[test]
    fn stored_order_and_sorted_degrees_are_no_reorder() {
        let v = matrix();
        let vt = v.transpose();
        assert_eq!(Reorder::of(SparseOrder::Stored, &v, &vt), None);
        let r = Reorder::of(SparseOrder::Degree, &v, &vt).expect("not the identity");
        let (vp, vtp) = r.data(&v, &vt);
        assert_eq!(Reorder::of(SparseOrder::Degree, &vp, &vtp), None);
    }

    #[test]
    fn empty_one_by_one_and_one_column() {
        for v in [
            CsrMatrix::from_triplets(3, 4, []).expect("empty"),
            CsrMatrix::from_triplets(1, 1, [(0, 0, 2.0)]).expect("1 x 1"),
        ] {
            assert_eq!(Reorder::of(SparseOrder::Degree, &v, &v.transpose()), None);
        }
        let v = CsrMatrix::from_triplets(3, 4, [(0, 2, 1.0), (1, 2, 2.0), (2, 2, 3.0)])
            .expect("one column");
        let vt = v.transpose();
        let r = Reorder::of(SparseOrder::Degree, &v, &vt).expect("column 2 moves first");
        assert_eq!(r.cols, [2, 0, 1, 3]);
        let (vp, _) = r.data(&v, &vt);
        assert_eq!(vp.row(1), (&[0u32][..], &[2.0f32][..]));
    }
}
