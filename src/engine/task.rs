//! Running work on the engine a [`Backend`] selects, and the data check every dense fit makes
//! first.

use ndarray::ArrayView2;

use super::cpu::CpuEngine;
#[cfg(feature = "gpu")]
use super::DataSize;
use super::{Backend, Engine};
use crate::error::{NmfError, Result};

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

/// The GPU `Backend::Auto` runs data of `size` on: a hardware GPU when the data is large enough
/// (the rule of [`DataSize::large_enough_for_gpu`]), else none (the CPU engine).
#[cfg(feature = "gpu")]
fn auto_gpu(size: DataSize) -> Option<super::gpu::GpuContext> {
    if size.large_enough_for_gpu() {
        super::gpu::auto_context()
    } else {
        log::info!("backend auto: {size:?} is below the GPU threshold; using the CPU engine");
        None
    }
}

/// Build the engine for `backend` over `v` and run `task` on it; returns the engine's name too.
pub(crate) fn with_engine<T: EngineTask>(
    v: ArrayView2<'_, f32>,
    backend: &Backend,
    task: T,
) -> Result<(T::Output, String)> {
    #[cfg(feature = "gpu")]
    {
        if let Backend::MultiGpu(contexts) = backend {
            let mut engine = super::gpu::MultiGpuEngine::new(contexts, v)?;
            let name = engine.name();
            return Ok((task.run(&mut engine)?, name));
        }
        let gpu = match backend {
            Backend::Cpu | Backend::MultiGpu(_) => None,
            Backend::Gpu(ctx) => Some(ctx.clone()),
            Backend::Auto => auto_gpu(DataSize::Dense {
                rows: v.nrows(),
                cols: v.ncols(),
            }),
        };
        if let Some(ctx) = gpu {
            let mut engine = super::gpu::GpuEngine::new(&ctx, v)?;
            let name = engine.name();
            return Ok((task.run(&mut engine)?, name));
        }
    }
    #[cfg(not(feature = "gpu"))]
    let _: &Backend = backend; // Cpu and Auto both run on the CPU engine
    let mut engine = CpuEngine::new(v);
    let name = engine.name();
    Ok((task.run(&mut engine)?, name))
}

/// Build the engine for `backend` over a sparse `v` and its transpose `vt`
/// (`v.transpose()`) and run `task` on it; returns the engine's name too.
/// [`Backend::Gpu`] runs on that device; [`Backend::Auto`] on a hardware GPU when `v` has
/// enough stored entries ([`DataSize::large_enough_for_gpu`]), else on the CPU.
pub(crate) fn with_sparse_engine<T: EngineTask>(
    v: &crate::sparse::CsrMatrix,
    vt: &crate::sparse::CsrMatrix,
    backend: &Backend,
    task: T,
) -> Result<(T::Output, String)> {
    #[cfg(feature = "gpu")]
    {
        let gpu = match backend {
            Backend::Cpu => None,
            Backend::MultiGpu(_) => return Err(multi_gpu_sparse()),
            Backend::Gpu(ctx) => Some(ctx.clone()),
            Backend::Auto => auto_gpu(DataSize::Sparse {
                rows: v.rows(),
                cols: v.cols(),
                nnz: v.nnz(),
            }),
        };
        if let Some(ctx) = gpu {
            let mut engine = super::gpu::GpuEngine::new_sparse(&ctx, v, vt)?;
            let name = engine.name();
            return Ok((task.run(&mut engine)?, name));
        }
    }
    #[cfg(not(feature = "gpu"))]
    let _: &Backend = backend; // Cpu and Auto both run on the CPU engine
    let mut engine = CpuEngine::new_sparse(v, vt);
    let name = engine.name();
    Ok((task.run(&mut engine)?, name))
}

/// Run `work` on a thread of rayon's pool, the one whose threads run the CPU engine's parallel
/// loops (on the calling thread when it is one of them).
///
/// Called from a thread outside the pool (a program's main thread), every parallel loop of an
/// iteration would be handed to the pool and waited for, the caller asleep: two thread
/// wake-ups per loop, about 24 context switches per MU iteration, 4–8% of an iteration at
/// 361 x 2429 on one thread. Run on a pool thread, the loops split their work in place and the
/// other threads steal from it. (The distributed fit does not use this: its communicator
/// stays on the thread that made it.)
pub(crate) fn on_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        work()
    } else {
        rayon::scope(|_| work())
    }
}

/// The distributed fit runs a sparse block on the CPU engine only: [`Backend::Gpu`] is an
/// error there, [`Backend::Auto`] picks the CPU.
#[cfg(feature = "mpi")]
pub(crate) fn check_sparse_backend(backend: &Backend) -> Result<()> {
    match backend {
        #[cfg(feature = "gpu")]
        Backend::Gpu(_) | Backend::MultiGpu(_) => Err(NmfError::UnsupportedOption {
            option: "sparse V in a distributed fit",
            requires: "Backend::Cpu (or Backend::Auto, which runs sparse data on the CPU)",
        }),
        _ => Ok(()),
    }
}

/// The error of sparse V on [`Backend::MultiGpu`]: one device runs it.
#[cfg(feature = "gpu")]
fn multi_gpu_sparse() -> NmfError {
    NmfError::UnsupportedOption {
        option: "sparse V on several GPUs",
        requires: "one GPU (Backend::Gpu, --backend gpu or gpu:N) or the CPU",
    }
}
