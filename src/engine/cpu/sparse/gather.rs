//! The operands of the sparse row kernels: which rows are gathered, and what weighs them.

use super::panels::Start;

/// What each stored entry's row `x[j, :]` of row `i` is weighted by.
#[derive(Clone, Copy)]
pub(super) enum Weight<'a> {
    /// The entry's value `a_ij`: `A X`.
    Value,
    /// `a_ij / max(y[i, :]·x[j, :], ε)` (`ε = f32::EPSILON`, as in the dense engine): the KL
    /// numerator `Z X`. `y` holds the rows of the whole matrix, or of the block the kernels run.
    KlRatio(&'a [f32]),
    /// `y[i, :]·x[j, :]`, the value not read: the pattern product ([`super::pattern`]).
    Dot(&'a [f32]),
}

impl<'a> Weight<'a> {
    /// The same weight over rows `row0..row0 + rows` only.
    pub(super) fn rows(self, row0: usize, rows: usize, r: usize) -> Weight<'a> {
        match self {
            Weight::Value => Weight::Value,
            Weight::KlRatio(y) => Weight::KlRatio(&y[row0 * r..(row0 + rows) * r]),
            Weight::Dot(y) => Weight::Dot(&y[row0 * r..(row0 + rows) * r]),
        }
    }
}

/// The operands of the row kernels: `out[i, :] = start[i, :] + Σ_k w_k · x[idx[k], :]` for
/// `k in ptr[i]..ptr[i+1]`, `w_k` as [`Weight`] says, for the `out.len() / r` rows whose
/// offsets `ptr` holds (absolute positions in `idx` and `val`). Every `idx[k]` must index a
/// row of `x` (an invariant of the matrix the caller passes).
#[derive(Clone, Copy)]
pub(super) struct Gather<'a, I> {
    pub(super) ptr: &'a [usize],
    pub(super) idx: &'a [I],
    pub(super) val: &'a [f32],
    pub(super) x: &'a [f32],
    /// The weights, `y` as long as `out`.
    pub(super) w: Weight<'a>,
    pub(super) r: usize,
    pub(super) start: Start,
}

impl<'a, I> Gather<'a, I> {
    /// The fields in their order.
    pub(super) fn new(
        ptr: &'a [usize],
        idx: &'a [I],
        val: &'a [f32],
        x: &'a [f32],
        w: Weight<'a>,
        r: usize,
        start: Start,
    ) -> Self {
        Gather {
            ptr,
            idx,
            val,
            x,
            w,
            r,
            start,
        }
    }
}
