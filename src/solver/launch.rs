//! Starting a solver run: the memory check, the scaling of extreme data, and the engine the
//! backend selects. The one place where a run meets its engine.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use super::budget::{self, Storage};
use super::order::Reorder;
use super::scale::DataScale;
use super::{run, RunOutput, Update};
use crate::engine::{on_pool, with_engine, with_sparse_engine, Backend, Engine, EngineTask};
use crate::error::Result;
use crate::options::{SparseOrder, ValidParams};
use crate::sparse::CsrMatrix;

/// The data of a run: dense, or CSR with its transpose.
#[derive(Clone, Copy)]
pub(crate) enum Data<'a> {
    /// A dense matrix.
    Dense(ArrayView2<'a, f32>),
    /// A CSR matrix `v` and `vt = v.transpose()`.
    Sparse {
        /// V.
        v: &'a CsrMatrix,
        /// Vᵀ (the CSC form of V).
        vt: &'a CsrMatrix,
    },
}

impl Data<'_> {
    /// `(m, n)`.
    pub fn dim(&self) -> (usize, usize) {
        match self {
            Data::Dense(v) => v.dim(),
            Data::Sparse { v, .. } => v.dim(),
        }
    }

    /// The mean entry (0 for an empty matrix).
    pub fn mean(&self) -> f64 {
        match self {
            Data::Dense(v) => crate::init::mean(*v),
            Data::Sparse { v, .. } => {
                let (m, n) = v.dim();
                v.sum() / ((m as f64) * (n as f64)).max(1.0)
            }
        }
    }

    fn scale(&self) -> DataScale {
        match self {
            Data::Dense(v) => DataScale::of(*v),
            Data::Sparse { v, .. } => {
                DataScale::for_max(v.values().iter().fold(0.0f32, |m, &x| m.max(x)))
            }
        }
    }

    fn storage(&self, order: SparseOrder) -> Storage {
        match self {
            Data::Dense(v) => Storage::Dense {
                copied: !(v.is_standard_layout() || v.t().is_standard_layout()),
            },
            Data::Sparse { v, .. } => Storage::Sparse {
                nnz: v.nnz(),
                reordered: order != SparseOrder::Stored,
            },
        }
    }
}

/// Check the memory a fit of sparse `v` held in `order` will take, before its transpose is
/// built.
pub(crate) fn check_sparse_budget(
    v: &CsrMatrix,
    valid: &ValidParams,
    order: SparseOrder,
) -> Result<()> {
    let (m, n) = v.dim();
    let data = Data::Sparse { v, vt: v };
    let scaled = !data.scale().is_identity();
    budget::check(m, n, valid, data.storage(order), scaled)
}

/// Run the solver on `data` for `valid`: check the memory the run needs, scale extreme data
/// into the safe range (see [`super::scale`]), take the start `(W₀, H₀)` from `start` (given
/// the data and parameters the solver will see, and the scale), run on the engine `backend`
/// selects (a sparse V with its rows and columns in `order`, see [`super::order`]), and return
/// the factors, losses and callbacks' values at the data's own scale and in its own order.
pub(crate) fn solve(
    data: Data<'_>,
    backend: &Backend,
    valid: &ValidParams,
    start: impl FnOnce(Data<'_>, &ValidParams, DataScale) -> (Array2<f32>, Array2<f32>) + Send,
    update: Update,
    order: SparseOrder,
) -> Result<(RunOutput, String)> {
    on_pool(|| solve_here(data, backend, valid, start, update, order))
}

/// [`solve`] on the calling thread.
fn solve_here(
    data: Data<'_>,
    backend: &Backend,
    valid: &ValidParams,
    start: impl FnOnce(Data<'_>, &ValidParams, DataScale) -> (Array2<f32>, Array2<f32>) + Send,
    update: Update,
    order: SparseOrder,
) -> Result<(RunOutput, String)> {
    let (m, n) = data.dim();
    let scale = data.scale();
    budget::check(m, n, valid, data.storage(order), !scale.is_identity())?;
    let (mut out, name) = if scale.is_identity() {
        let (w0, h0) = start(data, valid, scale);
        run_in_order(data, backend, valid, (&w0, &h0), update, order)?
    } else {
        let p = scale.params(valid);
        match data {
            Data::Dense(v) => {
                let vs = scale.dense(v);
                let d = Data::Dense(vs.view());
                let (w0, h0) = start(d, &p, scale);
                run_in_order(d, backend, &p, (&w0, &h0), update, order)?
            }
            Data::Sparse { v, vt } => {
                let (vs, vts) = (scale.csr(v)?, scale.csr(vt)?);
                let d = Data::Sparse { v: &vs, vt: &vts };
                let (w0, h0) = start(d, &p, scale);
                run_in_order(d, backend, &p, (&w0, &h0), update, order)?
            }
        }
    };
    scale.factor_out(&mut out.w);
    scale.factor_out(&mut out.h);
    scale.report(&mut out.report, valid.loss);
    Ok((out, name))
}

/// Run from `(W₀, H₀)` = `start` on a sparse V renumbered as `order` asks ([`Reorder`]),
/// the factors taken in and given back in V's own order; any other data as it is.
fn run_in_order(
    data: Data<'_>,
    backend: &Backend,
    params: &ValidParams,
    start: (&Array2<f32>, &Array2<f32>),
    update: Update,
    order: SparseOrder,
) -> Result<(RunOutput, String)> {
    let (w0, h0) = start;
    let reorder = match data {
        Data::Sparse { v, vt } => Reorder::of(order, v, vt).map(|r| (v, vt, Arc::new(r))),
        Data::Dense(_) => None,
    };
    let Some((v, vt, reorder)) = reorder else {
        return run_on_backend(data, backend, params, w0, h0, update);
    };
    let (v, vt) = reorder.data(v, vt);
    let mut p = params.clone();
    p.iter = reorder.iter_options(&params.iter);
    let (w0, h0) = (reorder.w_in(w0), reorder.h_in(h0));
    let data = Data::Sparse { v: &v, vt: &vt };
    let (mut out, name) = run_on_backend(data, backend, &p, &w0, &h0, update)?;
    out.w = reorder.w_out(out.w.view());
    out.h = reorder.h_out(out.h.view());
    Ok((out, name))
}

/// Build the engine for `backend` over `data` and run the solver.
fn run_on_backend(
    data: Data<'_>,
    backend: &Backend,
    params: &ValidParams,
    w0: &Array2<f32>,
    h0: &Array2<f32>,
    update: Update,
) -> Result<(RunOutput, String)> {
    struct Solve<'p> {
        params: &'p ValidParams,
        w0: &'p Array2<f32>,
        h0: &'p Array2<f32>,
        update: Update,
    }
    impl EngineTask for Solve<'_> {
        type Output = RunOutput;
        fn run<E: Engine>(self, e: &mut E) -> Result<RunOutput> {
            run(e, self.params, self.w0, self.h0, self.update)
        }
    }
    let task = Solve {
        params,
        w0,
        h0,
        update,
    };
    match data {
        Data::Dense(v) => with_engine(v, backend, task),
        Data::Sparse { v, vt } => with_sparse_engine(v, vt, backend, task),
    }
}
