//! `fit`: validate, initialise, pick the engine, run the solver, package the result.

use std::time::Instant;

use ndarray::{Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::engine::cpu::CpuEngine;
pub(crate) use crate::engine::{check_data, with_engine, EngineTask};
use crate::engine::{Backend, Engine};
use crate::error::Result;
use crate::init::{initialize, initialize_sparse};
use crate::model::Factorization;
use crate::options::ValidParams;
use crate::params::NmfParams;
use crate::solver::{run, RunOutput, Update};
use crate::sparse::CsrMatrix;

/// Build the engine for `backend` over `v` and run the solver.
pub(crate) fn make_engine_and_run(
    v: ArrayView2<'_, f32>,
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
    with_engine(
        v,
        backend,
        Solve {
            params,
            w0,
            h0,
            update,
        },
    )
}

/// Package a finished run.
fn factorization(
    out: RunOutput,
    valid: ValidParams,
    params: &NmfParams,
    engine_name: String,
    start: Instant,
) -> Factorization {
    let mut report = out.report;
    report.engine = engine_name;
    report.elapsed = start.elapsed();
    Factorization {
        w: out.w,
        h: out.h,
        report,
        params: valid,
        backend: params.backend.clone(),
    }
}

/// Factorize `v` with `params`; see [`NmfParams::fit`].
pub(crate) fn fit(params: &NmfParams, v: ArrayView2<'_, f32>) -> Result<Factorization> {
    let start = Instant::now();
    let (m, n) = v.dim();
    let valid = params.check(m, n)?;
    check_data(v)?;
    let mut rng = StdRng::seed_from_u64(valid.iter.seed);
    let (w0, h0) = initialize(v, &valid, &mut rng);
    let (out, engine_name) =
        make_engine_and_run(v, &params.backend, &valid, &w0, &h0, Update::Both)?;
    Ok(factorization(out, valid, params, engine_name, start))
}

/// Sparse `V` runs on the CPU engine only: [`Backend::Gpu`] is an error, [`Backend::Auto`]
/// picks the CPU.
pub(crate) fn check_sparse_backend(backend: &Backend) -> Result<()> {
    match backend {
        #[cfg(feature = "gpu")]
        Backend::Gpu(_) => Err(crate::error::NmfError::UnsupportedOption {
            option: "sparse V",
            requires: "Backend::Cpu (or Backend::Auto, which runs sparse data on the CPU)",
        }),
        _ => Ok(()),
    }
}

/// Run the solver on the CPU engine over a sparse `v` and its transpose `vt`.
pub(crate) fn run_sparse(
    v: &CsrMatrix,
    vt: &CsrMatrix,
    params: &ValidParams,
    w0: &Array2<f32>,
    h0: &Array2<f32>,
    update: Update,
) -> Result<(RunOutput, String)> {
    let mut engine = CpuEngine::new_sparse(v, vt);
    let name = engine.name();
    Ok((run(&mut engine, params, w0, h0, update)?, name))
}

/// Factorize a sparse `v` with `params`; see [`NmfParams::fit_sparse`].
pub(crate) fn fit_sparse(params: &NmfParams, v: &CsrMatrix) -> Result<Factorization> {
    let start = Instant::now();
    let (m, n) = v.dim();
    let valid = params.check(m, n)?;
    check_sparse_backend(&params.backend)?;
    // The values were checked (finite, >= 0) when the CsrMatrix was built.
    let vt = v.transpose();
    let mut rng = StdRng::seed_from_u64(valid.iter.seed);
    let (w0, h0) = initialize_sparse(v, &vt, &valid, &mut rng);
    let (out, engine_name) = run_sparse(v, &vt, &valid, &w0, &h0, Update::Both)?;
    Ok(factorization(out, valid, params, engine_name, start))
}
