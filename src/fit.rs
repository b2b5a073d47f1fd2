//! `fit`: validate, initialise, pick the engine, run the solver, package the result.

use std::time::Instant;

use ndarray::{Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::engine::cpu::CpuEngine;
use crate::engine::gpu::{auto_context, GpuEngine};
use crate::engine::{Backend, Engine};
use crate::error::{NmfError, Result};
use crate::init::{initialize, initialize_sparse};
use crate::model::Factorization;
use crate::options::ValidParams;
use crate::params::NmfParams;
use crate::solver::{run, RunOutput, Update};
use crate::sparse::CsrMatrix;

/// Check that every entry of `v` is finite and nonnegative; the error names the first bad one
/// in row-major order.
pub(crate) fn check_data(v: ArrayView2<'_, f32>) -> Result<()> {
    let (m, n) = v.dim();
    if m == 0 || n == 0 {
        return Err(NmfError::EmptyInput { rows: m, cols: n });
    }
    // Fast path: one branch-free pass that only asks "is everything fine?" (x ≥ 0 and finite
    // ⇔ 0 ≤ x ≤ f32::MAX, which NaN fails too).
    let fine = |s: &[f32]| {
        s.iter()
            .fold(true, |ok, &x| ok & (0.0..=f32::MAX).contains(&x))
    };
    let all_ok = match v.as_slice_memory_order() {
        Some(s) => fine(s),
        None => v.rows().into_iter().all(|r| match r.as_slice() {
            Some(s) => fine(s),
            None => r.iter().all(|&x| (0.0..=f32::MAX).contains(&x)),
        }),
    };
    if all_ok {
        return Ok(());
    }
    for ((row, col), &value) in v.indexed_iter() {
        if !value.is_finite() {
            return Err(NmfError::NonFiniteInput { row, col, value });
        }
        if value < 0.0 {
            return Err(NmfError::NegativeInput { row, col, value });
        }
    }
    Ok(())
}

/// Work that runs on whichever engine a [`Backend`] selects (see [`with_engine`]).
pub(crate) trait EngineTask {
    /// What the task returns.
    type Output;
    /// Run on the engine `e`, whose data matrix is the `v` given to [`with_engine`].
    fn run<E: Engine>(self, e: &mut E) -> Result<Self::Output>;
}

/// Build the engine for `backend` over `v` and run `task` on it; returns the engine's name too.
pub(crate) fn with_engine<T: EngineTask>(
    v: ArrayView2<'_, f32>,
    backend: &Backend,
    task: T,
) -> Result<(T::Output, String)> {
    let gpu = match backend {
        Backend::Cpu => None,
        Backend::Gpu(ctx) => Some(ctx.clone()),
        Backend::Auto => auto_context(),
    };
    if let Some(ctx) = gpu {
        let mut engine = GpuEngine::new(&ctx, v)?;
        let name = engine.name();
        return Ok((task.run(&mut engine)?, name));
    }
    let mut engine = CpuEngine::new(v);
    let name = engine.name();
    Ok((task.run(&mut engine)?, name))
}

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
        Backend::Gpu(_) => Err(NmfError::UnsupportedOption {
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
