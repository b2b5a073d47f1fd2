//! The start of a distributed fit: the statistics of V and the initial factors, equal to the
//! single-process start for the same seed.
//!
//! Every rank draws the same seeded sequence the single-process [`crate::init::start`] draws.
//! A random start needs only the mean of V (one all-reduce): each rank runs through the whole
//! sequence (`H₀` row by row, then `W₀`) and keeps the entries of its pieces
//! ([`random_pieces`]), in `O((m + n)·r)` time and the memory of its pieces. The NNDSVD family
//! computes the whole `W₀` and `H₀` on every rank and keeps its pieces: it runs the same
//! randomized SVD on a [`DistOp`], whose products `V X` and `Xᵀ V` are formed block by block
//! and summed over the ranks (an all-reduce of an m x l or l x n sketch, l = r + 10), so each
//! rank holds the same sketch and computes the same SVD. This costs `O((m + n)·(r + 10))`
//! memory per rank once, at the start (the factors' size, not V's); results equal the single
//! process up to the order of float sums.

use mpi::topology::Communicator;
use ndarray::{s, Array2, ArrayView2};
use rand::Rng;
use rand_distr::StandardNormal;

use super::comm::GridComm;
use crate::linalg::LinearOperator;

/// V as an operator whose products run over the grid: this rank's block `local` (m_i x n_j)
/// contributes its part of `V X` / `Xᵀ V` and an all-reduce sums the parts.
pub(crate) struct DistOp<'g, 'c, C: Communicator, A: LinearOperator + Clone> {
    pub g: &'g GridComm<'c, C>,
    pub local: A,
    /// Whether this is Vᵀ.
    pub t: bool,
}

impl<C: Communicator, A: LinearOperator + Clone> DistOp<'_, '_, C, A> {
    /// `V x` (m x l) for `x` (n x l).
    fn v_x(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        let l = &self.g.layout;
        let part = self.local.mul(x.slice(s![l.cols.clone(), ..]));
        let mut full = Array2::<f32>::zeros((l.shape.0, x.ncols()));
        full.slice_mut(s![l.rows.clone(), ..]).assign(&part);
        self.sum(full)
    }

    /// `xᵀ V` (l x n) for `x` (m x l).
    fn xt_v(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        let l = &self.g.layout;
        let part = self.local.t_mul(x.slice(s![l.rows.clone(), ..]));
        let mut full = Array2::<f32>::zeros((x.ncols(), l.shape.1));
        full.slice_mut(s![.., l.cols.clone()]).assign(&part);
        self.sum(full)
    }

    /// `V x` (`vx`) or `xᵀ V`, transposed (into standard layout) when this is Vᵀ.
    fn product(&self, x: ArrayView2<'_, f32>, vx: bool) -> Array2<f32> {
        let p = if vx { self.v_x(x) } else { self.xt_v(x) };
        if self.t {
            p.reversed_axes().as_standard_layout().into_owned()
        } else {
            p
        }
    }

    fn sum(&self, mut full: Array2<f32>) -> Array2<f32> {
        if let Some(buf) = full.as_slice_mut() {
            self.g.all_reduce_f32(buf);
        }
        full
    }
}

impl<C: Communicator, A: LinearOperator + Clone> Clone for DistOp<'_, '_, C, A> {
    fn clone(&self) -> Self {
        DistOp {
            g: self.g,
            local: self.local.clone(),
            t: self.t,
        }
    }
}

impl<C: Communicator, A: LinearOperator + Clone> LinearOperator for DistOp<'_, '_, C, A> {
    fn dim(&self) -> (usize, usize) {
        let (m, n) = self.g.layout.shape;
        if self.t {
            (n, m)
        } else {
            (m, n)
        }
    }

    fn mul(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        // Vᵀ x = (xᵀ V)ᵀ.
        self.product(x, !self.t)
    }

    fn t_mul(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        // xᵀ Vᵀ = (V x)ᵀ.
        self.product(x, self.t)
    }

    fn transposed(&self) -> Self {
        DistOp {
            t: !self.t,
            ..self.clone()
        }
    }
}

/// This rank's pieces of the random start `scale·|N(0,1)|` (H₀ drawn first, row-major, then
/// W₀; the order and the draws of [`crate::init::start`]'s `Init::Random`), without forming
/// the whole factors.
pub(crate) fn random_pieces(
    layout: &super::grid::Layout,
    r: usize,
    scale: f32,
    rng: &mut impl Rng,
) -> (Array2<f32>, Array2<f32>) {
    let (m, n) = layout.shape;
    let (wr, hc) = (&layout.w_rows, &layout.h_cols);
    let mut draw = || {
        let z: f32 = rng.sample(StandardNormal);
        scale * z.abs()
    };
    let mut h = Array2::<f32>::zeros((r, hc.len()));
    for t in 0..r {
        for j in 0..n {
            let x = draw();
            if hc.contains(&j) {
                h[[t, j - hc.start]] = x;
            }
        }
    }
    let mut w = Array2::<f32>::zeros((wr.len(), r));
    for i in 0..m {
        for t in 0..r {
            let x = draw();
            if wr.contains(&i) {
                w[[i - wr.start, t]] = x;
            }
        }
    }
    (w, h)
}
