//! V as the GPU engine's operations read it: the [`DataOperator`] interface, implemented for
//! dense column panels (`Dense`, in `dense.rs`) and CSR with CSC row panels (`Csr`, in
//! `sparse.rs`). The engine's methods check shapes and call the operator of its V
//! (`GpuEngine::op`, the one place the representation is looked at); an operation a
//! representation does not offer is refused with [`unsupported`] (see
//! [`crate::engine::data`]).

use ndarray::ArrayView2;

use super::buffers::GpuMat;
use super::state::GpuEngine;
use crate::engine::data::{unsupported, DataOp};
use crate::engine::{Blocks, Measure, Product};
use crate::error::Result;

/// What the engine's operations ask of V (m x n) on `e`'s device; shapes were checked by the
/// engine ([`Product::check`], [`Measure::check`]).
pub(super) trait DataOperator: Sync {
    /// `out = p` ([`Engine::product`](crate::engine::Engine::product)).
    fn product(&self, e: &mut GpuEngine, p: Product<'_, M>, out: &mut M) -> Result<()>;
    /// The number `what` names ([`Engine::measure`](crate::engine::Engine::measure)).
    fn measure(&self, e: &mut GpuEngine, w: &M, h: &M, what: Measure<'_, M>) -> Result<f64>;
    /// The β rules' numerator and denominator
    /// ([`Engine::beta_products`](crate::engine::Engine::beta_products)).
    fn beta(&self, e: &mut GpuEngine, f: Blocks<'_, M>, beta: f32, out: Pair<'_>) -> Result<()> {
        let _ = (e, f, beta, out);
        Err(unsupported(DataOp::Beta))
    }
    /// Replace V by a dense batch of samples (online fits).
    fn set_batch(&self, e: &mut GpuEngine, v: ArrayView2<'_, f32>) -> Result<()> {
        let _ = (e, v);
        Err(unsupported(DataOp::Batch))
    }
}

/// An engine matrix of the GPU engine.
pub(super) type M = GpuMat;

/// The numerator and denominator outputs of the β rules.
pub(super) type Pair<'o> = (&'o mut M, &'o mut M);
