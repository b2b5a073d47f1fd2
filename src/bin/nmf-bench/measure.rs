//! Timing fits: a dense row (one warm-up, then timed fits) and a sparse case (the set-up
//! subtracted), and what the machine is (CPU model, GPU adapter, peak memory).

use std::time::Instant;

use nmf_gpu::ndarray::{Array2, ArrayView2};
use nmf_gpu::sparse::CsrMatrix;
use nmf_gpu::{Backend, Init, Loss, Nmf, NmfError, Solver, SparseOrder};

use crate::cases::{CaseData, Shape};

/// The timings of one dense row.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub ms_median: f64,
    pub ms_min: f64,
    pub ms_max: f64,
    pub gflops: f64,
    pub rel_error: f64,
    pub engine: String,
    pub peak_rss_mib: Option<f64>,
    /// The GPU engine's counters per iteration of the last timed fit (`None` on the CPU).
    pub gpu: Option<nmf_gpu::GpuRates>,
}

/// A sparse case's timings: per iteration (median, min, max), set-up, final rel error.
pub struct SparseTiming {
    pub ms: [f64; 3],
    pub setup_ms: f64,
    pub rel_error: f64,
    pub engine: String,
}

/// The median of sorted values (NaN for none).
pub fn median(sorted: &[f64]) -> f64 {
    let k = sorted.len();
    if k == 0 {
        f64::NAN
    } else if k % 2 == 1 {
        sorted[k / 2]
    } else {
        0.5 * (sorted[k / 2 - 1] + sorted[k / 2])
    }
}

/// Fits of `iterations` (tol 0) from `w0`, `h0`.
fn params(
    w0: &Array2<f32>,
    h0: &Array2<f32>,
    solver: Solver,
    loss: Loss,
    iterations: usize,
) -> nmf_gpu::NmfParams {
    Nmf::params(w0.ncols())
        .solver(solver)
        .loss(loss)
        .init(Init::Custom {
            w: w0.clone(),
            h: h0.clone(),
        })
        .max_iter(iterations)
        .tol(0.0)
}

/// One warm-up fit, then `repeats` timed fits from the case's starting point.
pub fn measure(
    data: &CaseData,
    shape: Shape,
    backend: &Backend,
    solver: Solver,
    loss: Loss,
    iterations: usize,
    repeats: usize,
) -> Result<Timing, NmfError> {
    let v: ArrayView2<'_, f32> = data.v.view();
    let params = params(&data.w0, &data.h0, solver, loss, iterations).backend(backend.clone());
    drop(params.fit(v)?);
    let mut ms = Vec::with_capacity(repeats);
    let mut last = None;
    for _ in 0..repeats {
        drop(last.take());
        let start = Instant::now();
        let fit = params.fit(v)?;
        ms.push(start.elapsed().as_secs_f64() * 1e3 / iterations as f64);
        last = Some(fit);
    }
    let peak = peak_rss_mib();
    ms.sort_by(f64::total_cmp);
    let (rel_error, engine) = match &last {
        Some(fit) => (fit.relative_error(v)?, fit.engine().to_string()),
        None => (f64::NAN, String::new()),
    };
    let ms_median = median(&ms);
    let gpu = last
        .as_ref()
        .and_then(|fit| Some(fit.gpu_stats()?.per_iteration(fit.n_iter())));
    Ok(Timing {
        ms_median,
        ms_min: ms.first().copied().unwrap_or(f64::NAN),
        ms_max: ms.last().copied().unwrap_or(f64::NAN),
        gflops: shape.flops_per_iter() / (ms_median * 1e-3) / 1e9,
        rel_error,
        engine,
        peak_rss_mib: peak,
        gpu,
    })
}

/// For each order of V: one fit of 1 iteration (set-up + one iteration, best of two); then
/// `repeats` rounds of one fit of `iterations` per order, the orders taking turns (so that a
/// change in the machine's load touches them alike): per iteration = (T − T₁) /
/// (iterations − 1). One timing per order, in the order given.
#[allow(clippy::too_many_arguments)]
pub fn measure_sparse(
    v: &CsrMatrix,
    w0: &Array2<f32>,
    h0: &Array2<f32>,
    solver: Solver,
    loss: Loss,
    iterations: usize,
    repeats: usize,
    orders: &[SparseOrder],
) -> Result<Vec<SparseTiming>, NmfError> {
    let fit = |order: SparseOrder, iterations: usize| {
        let start = Instant::now();
        let fit = params(w0, h0, solver, loss, iterations)
            .sparse_order(order)
            .fit_sparse(v)?;
        Ok::<_, NmfError>((start.elapsed().as_secs_f64() * 1e3, fit))
    };
    let mut t1 = vec![f64::INFINITY; orders.len()];
    for _ in 0..2 {
        for (t, &order) in t1.iter_mut().zip(orders) {
            *t = t.min(fit(order, 1)?.0);
        }
    }
    let mut ms = vec![Vec::with_capacity(repeats); orders.len()];
    let mut last: Vec<_> = orders.iter().map(|_| None).collect();
    for _ in 0..repeats {
        for (k, &order) in orders.iter().enumerate() {
            drop(last[k].take());
            let (total, f) = fit(order, iterations)?;
            ms[k].push(if iterations > 1 {
                (total - t1[k]) / (iterations - 1) as f64
            } else {
                total
            });
            last[k] = Some(f);
        }
    }
    let mut out = Vec::with_capacity(orders.len());
    for ((mut ms, last), t1) in ms.into_iter().zip(last).zip(t1) {
        ms.sort_by(f64::total_cmp);
        let per_iter = median(&ms);
        let (rel_error, engine) = match &last {
            Some(fit) => (fit.relative_error_sparse(v)?, fit.engine().to_string()),
            None => (f64::NAN, String::new()),
        };
        out.push(SparseTiming {
            ms: [
                per_iter,
                ms.first().copied().unwrap_or(f64::NAN),
                ms.last().copied().unwrap_or(f64::NAN),
            ],
            setup_ms: t1 - if iterations > 1 { per_iter } else { 0.0 },
            rel_error,
            engine,
        });
    }
    Ok(out)
}

/// Without the `gpu` feature every GPU row is unavailable.
#[cfg(not(feature = "gpu"))]
pub fn gpu_backend() -> Result<(Backend, String), String> {
    Err("built without the `gpu` feature".to_string())
}

/// The GPU backend and its adapter name, or the reason there is none (every GPU row goes
/// through this one function; the context is opened once and reused).
#[cfg(feature = "gpu")]
pub fn gpu_backend() -> Result<(Backend, String), String> {
    static CTX: std::sync::OnceLock<Result<nmf_gpu::GpuContext, String>> =
        std::sync::OnceLock::new();
    let ctx = CTX
        .get_or_init(|| nmf_gpu::GpuContext::new().map_err(|e| e.to_string()))
        .clone()?;
    let info = ctx.adapter_info();
    let adapter = format!("{} ({:?})", info.name, info.backend);
    Ok((Backend::Gpu(ctx), adapter))
}

/// The CPU model from /proc/cpuinfo.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| format!("unknown {} CPU", std::env::consts::ARCH))
}

/// The resident-memory high-water mark of this process (VmHWM), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Reset VmHWM to the current resident size; false where the kernel does not allow it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
        assert!(median(&[]).is_nan());
    }
}
