//! V as the CPU engine's operations read it: the [`DataOperator`] interface, implemented for a
//! dense V ([`super::dense::DenseV`]) and a sparse V in CSR with its CSC copy
//! ([`super::csr::CsrV`]). The engine's methods check shapes and call the operator; they never
//! match on the representation (see [`crate::engine::data`]).

use std::ops::Range;

use ndarray::{Array2, CowArray, Ix2};

use crate::engine::data::{unsupported, DataOp};
use crate::engine::{Blocks, Measure, Product};
use crate::error::Result;

/// Work space the engine reuses across calls, lent to the operator for each product.
#[derive(Default)]
pub(super) struct Scratch {
    /// `W G` (m x r) of a multiplicative update, and the pattern product of W.
    pub(super) left: Option<Array2<f32>>,
    /// `K H` (r x n) of a multiplicative update, and the pattern product of H (n x r).
    pub(super) right: Option<Array2<f32>>,
    /// `Hᵀ` (n x r) packed row-major for the skinny products.
    pub(super) ht: Vec<f32>,
    /// `H Hᵀ` of the trace form of the loss.
    pub(super) gram: Option<Array2<f32>>,
}

/// V as the engine's products read it (m x n), for one representation of V. The engine checks
/// shapes before each call ([`Product::check`], [`Measure::check`]); the operations a
/// representation does not offer are refused with [`unsupported`].
pub(super) trait DataOperator: Send + Sync {
    /// `(m, n)`.
    fn dims(&self) -> (usize, usize);
    /// `‖V‖²_F`, in f64.
    fn sq_norm(&self) -> f64;
    /// `out = p` ([`Engine::product`](crate::engine::Engine::product)).
    fn product(&mut self, p: Product<'_, Mat>, out: &mut Mat, s: &mut Scratch) -> Result<()>;
    /// The number `m` names ([`Engine::measure`](crate::engine::Engine::measure)).
    fn measure(&mut self, w: &Mat, h: &Mat, m: Measure<'_, Mat>, s: &mut Scratch) -> Result<f64>;
    /// Whether `V Hᵀ` into `out` from a packed `Hᵀ` ([`DataOperator::v_ht_packed`]) pays.
    fn packed_pays(&self, out: &Mat) -> bool;
    /// `out = V Hᵀ` with `Hᵀ` (n x r) already packed row-major in `ht`.
    fn v_ht_packed(&mut self, h: &Mat, ht: &[f32], out: &mut Mat) -> Result<()>;
    /// The rows `rows` of V as a dense block (borrowed where V is dense).
    fn dense_rows(&self, rows: Range<usize>) -> CowArray<'_, f32, Ix2>;
    /// The two products of the β rules (β = `b`), `num` and `den`
    /// ([`Engine::beta_products`](crate::engine::Engine::beta_products)).
    fn beta(&mut self, f: Blocks<'_, Mat>, b: f32, out: Pair<'_>, s: &mut Scratch) -> Result<()> {
        let _ = (f, b, out, s);
        Err(unsupported(DataOp::Beta))
    }
    /// Whether V may be replaced by a dense batch of samples
    /// ([`Engine::set_batch`](crate::engine::Engine::set_batch)).
    fn accepts_batches(&self) -> Result<()> {
        Err(unsupported(DataOp::Batch))
    }
}

/// An engine matrix of the CPU engine.
pub(super) type Mat = Array2<f32>;

/// The numerator and denominator outputs of the β rules.
pub(super) type Pair<'o> = (&'o mut Mat, &'o mut Mat);
