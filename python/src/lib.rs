//! `nmf_gpu._core`: the compiled core of the `nmf_gpu` Python package.
//!
//! The pure-Python estimators (`nmf_gpu.NMF`, ...) validate their parameters and input, bring
//! the data to float32 in scikit-learn's orientation (X: samples x features) and call the
//! functions here. Each fit factorizes `V = X` (m = samples, n = features) as `V ≈ W H`, so the
//! library's `W` is scikit-learn's `W` (samples x r) and its `H` is `components_` (r x features),
//! and W is updated before H in each iteration, as scikit-learn does. `transform` solves for the
//! encodings with the components fixed, on `Xᵀ` (features x samples) with the library's `W =
//! componentsᵀ` fixed.
//!
//! Every call releases the GIL while the engine runs; the calling thread wakes every 100 ms to
//! check for signals (Ctrl-C), and a pending `KeyboardInterrupt` raises the fit's stop flag, waits
//! for the engine to stop at its next iteration and is re-raised.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ndarray::{Array2, ArrayView2};
use nmf_gpu::{
    ndarray, Backend, BackendChoice, CsrMatrix, Factorization, Init, Loss, Nmf, NmfError,
    NmfParams, Orthogonality, Solver, SparseOrder,
};

mod online;
mod select;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// How often the waiting thread checks for signals while a fit runs.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// The options of one fit, read from a Python dict with these keys.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct Config {
    rank: usize,
    solver: String,
    loss: String,
    init: String,
    max_iter: usize,
    tol: f32,
    seed: u64,
    alpha_w: f32,
    alpha_h: f32,
    l1_ratio: f32,
    backend: String,
    orthogonal: String,
    sparse_order: String,
    verbose: bool,
    fix_w: Option<Vec<usize>>,
    fix_h: Option<Vec<usize>>,
    checkpoint_every: Option<usize>,
    checkpoint_dir: Option<String>,
    resume: Option<(usize, f64)>,
}

/// `ValueError` for what the caller can fix in its input or parameters, `RuntimeError` for the
/// device, the file system and resources; the message is the library's.
fn to_py(err: NmfError) -> PyErr {
    let msg = err.to_string();
    match err {
        NmfError::GpuNoAdapter { .. }
        | NmfError::GpuDevice { .. }
        | NmfError::GpuShader { .. }
        | NmfError::GpuOutOfMemory { .. }
        | NmfError::GpuBufferTooLarge { .. }
        | NmfError::GpuMapFailed { .. }
        | NmfError::GpuDeviceLost { .. }
        | NmfError::GpuInternal { .. }
        | NmfError::NumericalBreakdown { .. }
        | NmfError::FitTooLarge { .. }
        | NmfError::TooLarge { .. }
        | NmfError::Io { .. } => PyRuntimeError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

fn bad(msg: String) -> PyErr {
    PyValueError::new_err(msg)
}

/// One GPU context per adapter for the process (`None`: the adapter chosen by default): its
/// compiled pipelines are reused by every fit.
fn gpu_context(index: Option<usize>) -> PyResult<nmf_gpu::GpuContext> {
    type Contexts = HashMap<Option<usize>, nmf_gpu::GpuContext>;
    static GPU: OnceLock<Mutex<Contexts>> = OnceLock::new();
    let cell = GPU.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = cell
        .lock()
        .map_err(|_| PyRuntimeError::new_err("the GPU context lock is poisoned"))?;
    if let Some(ctx) = guard.get(&index) {
        return Ok(ctx.clone());
    }
    let ctx = match index {
        None => nmf_gpu::GpuContext::new(),
        Some(i) => nmf_gpu::GpuContext::on_adapter(i),
    }
    .map_err(to_py)?;
    guard.insert(index, ctx.clone());
    Ok(ctx)
}

/// `backend=`: the library's names (`auto`, `cpu`, `gpu`, `gpu:N` for the adapter of index N
/// in `gpu_info()`, `gpu:N,M,...` or `gpu:all` for several), parsed by the library.
fn backend(name: &str) -> PyResult<Backend> {
    match name.parse::<BackendChoice>() {
        Ok(BackendChoice::Cpu) => Ok(Backend::Cpu),
        Ok(BackendChoice::Auto) => Ok(Backend::Auto),
        Ok(BackendChoice::Gpu(index)) => Ok(Backend::Gpu(gpu_context(index)?)),
        Ok(several) => several.open().map_err(to_py),
        Err(_) => Err(bad(format!(
            "backend must be 'auto', 'cpu', 'gpu', 'gpu:N' (N an adapter index of gpu_info()), 'gpu:N,M,...' or 'gpu:all', got {name:?}"
        ))),
    }
}

/// A name the library's parser refused: a ValueError naming the parameter and what it takes.
fn parsed<T>(value: Option<T>, name: &str, got: &str, expected: &str) -> PyResult<T> {
    value.ok_or_else(|| bad(format!("{name} must be {expected}, got {got:?}")))
}

/// The library's loss for its name (`frobenius`, `kl`, `is` or `beta=<β>`).
fn loss(name: &str) -> PyResult<Loss> {
    parsed(
        Loss::from_name(name),
        "beta_loss",
        name,
        "'frobenius' (2), 'kullback-leibler' (1), 'itakura-saito' (0) or a finite number",
    )
}

/// The library's parameters from a config (the start is set by the caller).
fn params(cfg: &Config, stop: &Arc<AtomicBool>) -> PyResult<NmfParams> {
    let solver = parsed(
        Solver::from_name(&cfg.solver),
        "solver",
        &cfg.solver,
        "'cd' or 'mu'",
    )?;
    let orthogonal = parsed(
        Orthogonality::from_name(&cfg.orthogonal),
        "orthogonal",
        &cfg.orthogonal,
        "None, 'H' or 'W'",
    )?;
    let sparse_order = parsed(
        SparseOrder::from_name(&cfg.sparse_order),
        "sparse_order",
        &cfg.sparse_order,
        "'stored' or 'degree'",
    )?;
    // A custom start is set by the caller.
    let init = match cfg.init.as_str() {
        "custom" => Init::Random,
        name => parsed(
            Init::from_name(name),
            "init",
            name,
            "None, 'random', 'nndsvd', 'nndsvda', 'nndsvdar' or 'custom'",
        )?,
    };
    let mut p = Nmf::params(cfg.rank)
        .solver(solver)
        .loss(loss(&cfg.loss)?)
        .init(init)
        .orthogonal(orthogonal)
        .sparse_order(sparse_order)
        .max_iter(cfg.max_iter)
        .tol(cfg.tol)
        .seed(cfg.seed)
        .alpha_w(cfg.alpha_w)
        .alpha_h(cfg.alpha_h)
        .l1_ratio(cfg.l1_ratio)
        .backend(backend(&cfg.backend)?)
        .stop_flag(stop.clone());
    if let Some(c) = &cfg.fix_w {
        p = p.fix_w(nmf_gpu::Fixed::Components(c.clone()));
    }
    if let Some(c) = &cfg.fix_h {
        p = p.fix_h(nmf_gpu::Fixed::Components(c.clone()));
    }
    if let Some((iterations_done, initial_loss)) = cfg.resume {
        p = p.resume(nmf_gpu::Resume {
            iterations_done,
            initial_loss,
        });
    }
    if let (Some(every), Some(dir)) = (cfg.checkpoint_every, &cfg.checkpoint_dir) {
        let dir = std::path::PathBuf::from(dir);
        p = p.checkpoint(every, move |c: &nmf_gpu::Checkpoint<'_>| {
            write_checkpoint(&dir, c)
        });
    }
    if cfg.verbose {
        p = p.on_progress(|pr| {
            println!(
                "iteration {:>5} of {}: loss {:.6e}",
                pr.iteration, pr.max_iter, pr.loss
            )
        });
    }
    Ok(p)
}

/// A checkpoint of a fit: the directory `dir` replaced, atomically, by one holding `W.npy`
/// (samples x r), `H.npy` (r x features) and `state.txt` (`iteration <k>` and
/// `initial_loss <D₀>`, what a resumed fit needs).
fn write_checkpoint(dir: &std::path::Path, c: &nmf_gpu::Checkpoint<'_>) -> nmf_gpu::Result<()> {
    let staged = nmf_gpu::io::StagedDir::new(dir)?;
    staged.npy("W.npy", &c.w)?;
    staged.npy("H.npy", &c.h)?;
    let state = format!(
        "iteration {}\ninitial_loss {:e}\n",
        c.iteration, c.initial_loss
    );
    staged.bytes("state.txt", state.as_bytes())?;
    staged.commit()?;
    Ok(())
}

/// Run `job` with the GIL released; check for signals every [`SIGNAL_POLL`] and, on a pending
/// `KeyboardInterrupt` (or any exception a signal handler raises), raise `stop`, let the job
/// return and re-raise that exception.
fn run_interruptible<T: Send>(
    py: Python<'_>,
    stop: &Arc<AtomicBool>,
    job: impl FnOnce() -> nmf_gpu::Result<T> + Send,
) -> PyResult<T> {
    let (result, signal) = py.allow_threads(|| {
        std::thread::scope(|s| {
            let (tx, rx) = mpsc::channel();
            s.spawn(move || {
                let out = std::panic::catch_unwind(AssertUnwindSafe(job));
                let _ = tx.send(out);
            });
            let mut signal: Option<PyErr> = None;
            loop {
                match rx.recv_timeout(SIGNAL_POLL) {
                    Ok(out) => return (Some(out), signal),
                    Err(RecvTimeoutError::Disconnected) => return (None, signal),
                    Err(RecvTimeoutError::Timeout) => {
                        if signal.is_none() {
                            if let Err(e) = Python::with_gil(|py| py.check_signals()) {
                                stop.store(true, Ordering::SeqCst);
                                signal = Some(e);
                            }
                        }
                    }
                }
            }
        })
    });
    if let Some(e) = signal {
        return Err(e);
    }
    match result {
        Some(Ok(out)) => out.map_err(to_py),
        _ => Err(PyRuntimeError::new_err(
            "the nmf_gpu engine stopped unexpectedly (internal error)",
        )),
    }
}

/// What a fit returns to Python.
type FitOut<'py> = (
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyDict>,
);

fn fit_out<'py>(py: Python<'py>, fit: Factorization) -> PyResult<FitOut<'py>> {
    let info = PyDict::new(py);
    info.set_item("n_iter", fit.n_iter())?;
    info.set_item("converged", fit.converged())?;
    info.set_item("interrupted", fit.interrupted())?;
    info.set_item("reconstruction_err", fit.reconstruction_err())?;
    info.set_item("losses", fit.losses().to_vec())?;
    info.set_item("loss_iterations", fit.loss_iterations().to_vec())?;
    info.set_item("engine", fit.engine().to_string())?;
    info.set_item("seconds", fit.elapsed().as_secs_f64())?;
    info.set_item("orthogonality_residual", fit.orthogonality_residual())?;
    let (w, h) = fit.into_parts();
    Ok((w.into_pyarray(py), h.into_pyarray(py), info))
}

/// The custom start `(W₀, H₀)` as owned arrays, when the config asks for one.
fn custom_start(
    cfg: &Config,
    w0: Option<PyReadonlyArray2<'_, f32>>,
    h0: Option<PyReadonlyArray2<'_, f32>>,
) -> PyResult<Option<Init>> {
    if cfg.init != "custom" {
        return Ok(None);
    }
    match (w0, h0) {
        (Some(w), Some(h)) => Ok(Some(Init::Custom {
            w: w.as_array().to_owned(),
            h: h.as_array().to_owned(),
        })),
        _ => Err(bad(
            "init='custom' needs both W and H (pass them to fit_transform)".to_string(),
        )),
    }
}

/// A CSR matrix from scipy's arrays (any integer index type was converted to int64).
fn csr(
    shape: (usize, usize),
    indptr: PyReadonlyArray1<'_, i64>,
    indices: PyReadonlyArray1<'_, i64>,
    data: PyReadonlyArray1<'_, f32>,
) -> PyResult<CsrMatrix> {
    let to_usize = |x: i64, what: &str| {
        usize::try_from(x).map_err(|_| bad(format!("sparse {what} has a negative entry {x}")))
    };
    let indptr = indptr
        .as_array()
        .iter()
        .map(|&x| to_usize(x, "indptr"))
        .collect::<PyResult<Vec<usize>>>()?;
    let indices = indices
        .as_array()
        .iter()
        .map(|&x| {
            u32::try_from(x).map_err(|_| bad(format!("sparse column index {x} is out of range")))
        })
        .collect::<PyResult<Vec<u32>>>()?;
    let values = data.as_array().to_vec();
    CsrMatrix::from_parts(shape.0, shape.1, indptr, indices, values).map_err(to_py)
}

/// Factorize dense `v` (samples x features, float32, any strides): returns `(W, H, info)`,
/// W samples x r, H r x features.
#[pyfunction]
#[pyo3(signature = (v, config, w0=None, h0=None))]
fn fit_dense<'py>(
    py: Python<'py>,
    v: PyReadonlyArray2<'py, f32>,
    config: Config,
    w0: Option<PyReadonlyArray2<'py, f32>>,
    h0: Option<PyReadonlyArray2<'py, f32>>,
) -> PyResult<FitOut<'py>> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut p = params(&config, &stop)?;
    if let Some(init) = custom_start(&config, w0, h0)? {
        p = p.init(init);
    }
    let view: ArrayView2<'_, f32> = v.as_array();
    let fit = run_interruptible(py, &stop, || p.fit(view))?;
    fit_out(py, fit)
}

/// Factorize sparse CSR `v` (samples x features) on the configured engine: returns `(W, H, info)`.
#[pyfunction]
#[pyo3(signature = (shape, indptr, indices, data, config, w0=None, h0=None))]
#[allow(clippy::too_many_arguments)]
fn fit_sparse<'py>(
    py: Python<'py>,
    shape: (usize, usize),
    indptr: PyReadonlyArray1<'py, i64>,
    indices: PyReadonlyArray1<'py, i64>,
    data: PyReadonlyArray1<'py, f32>,
    config: Config,
    w0: Option<PyReadonlyArray2<'py, f32>>,
    h0: Option<PyReadonlyArray2<'py, f32>>,
) -> PyResult<FitOut<'py>> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut p = params(&config, &stop)?;
    if let Some(init) = custom_start(&config, w0, h0)? {
        p = p.init(init);
    }
    let v = csr(shape, indptr, indices, data)?;
    let fit = run_interruptible(py, &stop, || p.fit_sparse(&v))?;
    fit_out(py, fit)
}

/// The model of fixed components: the library's `W = componentsᵀ` (features x r).
fn fixed_model(
    components: PyReadonlyArray2<'_, f32>,
    config: &Config,
    stop: &Arc<AtomicBool>,
) -> PyResult<Factorization> {
    let w: Array2<f32> = components.as_array().t().to_owned();
    let p = params(config, stop)?;
    Factorization::from_w(w, &p).map_err(to_py)
}

/// What a transform returns to Python: the encodings (r x samples), the iterations run and
/// whether the stopping rule ended them.
type TransformOut<'py> = (Bound<'py, PyArray2<f32>>, usize, bool);

/// Encodings (r x samples) of dense `vt` (features x samples) with the components fixed.
#[pyfunction]
fn transform_dense<'py>(
    py: Python<'py>,
    components: PyReadonlyArray2<'py, f32>,
    vt: PyReadonlyArray2<'py, f32>,
    config: Config,
) -> PyResult<TransformOut<'py>> {
    let stop = Arc::new(AtomicBool::new(false));
    let model = fixed_model(components, &config, &stop)?;
    let view = vt.as_array();
    let (h, report) = run_interruptible(py, &stop, || model.transform_with_report(view))?;
    Ok((h.into_pyarray(py), report.n_iter, report.converged))
}

/// Encodings (r x samples) of sparse CSR `v` (samples x features) with the components fixed.
#[pyfunction]
fn transform_sparse<'py>(
    py: Python<'py>,
    components: PyReadonlyArray2<'py, f32>,
    shape: (usize, usize),
    indptr: PyReadonlyArray1<'py, i64>,
    indices: PyReadonlyArray1<'py, i64>,
    data: PyReadonlyArray1<'py, f32>,
    config: Config,
) -> PyResult<TransformOut<'py>> {
    let stop = Arc::new(AtomicBool::new(false));
    let model = fixed_model(components, &config, &stop)?;
    let vt = csr(shape, indptr, indices, data)?.transpose();
    let (h, report) = run_interruptible(py, &stop, || model.transform_sparse_with_report(&vt))?;
    Ok((h.into_pyarray(py), report.n_iter, report.converged))
}

/// Two matrices returned to Python.
type Pair<'py> = (Bound<'py, PyArray2<f32>>, Bound<'py, PyArray2<f32>>);

/// The start `(W₀, H₀)` a fit of dense `v` (samples x features) computes from its config.
#[pyfunction]
fn initial_factors<'py>(
    py: Python<'py>,
    v: PyReadonlyArray2<'py, f32>,
    config: Config,
) -> PyResult<Pair<'py>> {
    let stop = Arc::new(AtomicBool::new(false));
    let p = params(&config, &stop)?;
    let view = v.as_array();
    let (w, h) = run_interruptible(py, &stop, || p.initial_factors(view))?;
    Ok((w.into_pyarray(py), h.into_pyarray(py)))
}

/// [`initial_factors`] of a sparse CSR `v` (samples x features).
#[pyfunction]
fn initial_factors_sparse<'py>(
    py: Python<'py>,
    shape: (usize, usize),
    indptr: PyReadonlyArray1<'py, i64>,
    indices: PyReadonlyArray1<'py, i64>,
    data: PyReadonlyArray1<'py, f32>,
    config: Config,
) -> PyResult<Pair<'py>> {
    let stop = Arc::new(AtomicBool::new(false));
    let p = params(&config, &stop)?;
    let v = csr(shape, indptr, indices, data)?;
    let (w, h) = run_interruptible(py, &stop, || p.initial_factors_sparse(&v))?;
    Ok((w.into_pyarray(py), h.into_pyarray(py)))
}

/// The GPU adapters the GPU engine can open, in the order of `backend="gpu:N"`: a list of dicts
/// (index, name, backend, device_type, driver, driver_info, vendor, device).
#[pyfunction]
fn gpu_info(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    let infos = py.allow_threads(nmf_gpu::GpuContext::adapters);
    infos
        .into_iter()
        .enumerate()
        .map(|(index, i)| {
            let d = PyDict::new(py);
            d.set_item("index", index)?;
            d.set_item("name", i.name)?;
            d.set_item("backend", format!("{:?}", i.backend).to_lowercase())?;
            d.set_item("device_type", format!("{:?}", i.device_type))?;
            d.set_item("driver", i.driver)?;
            d.set_item("driver_info", i.driver_info)?;
            d.set_item("vendor", i.vendor)?;
            d.set_item("device", i.device)?;
            Ok(d)
        })
        .collect()
}

/// The options of a symmetric fit, read from a Python dict with these keys.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct SymConfig {
    k: usize,
    method: String,
    preprocess: String,
    n_init: usize,
    alpha: Option<f32>,
    max_iter: usize,
    tol: f32,
    seed: u64,
    backend: String,
}

/// The symmetric fit's parameters from a config, with `stop` as its stop flag.
fn sym_params(config: &SymConfig, stop: &Arc<AtomicBool>) -> PyResult<nmf_gpu::SymNmfParams> {
    use nmf_gpu::symmetric::Preprocess;
    use nmf_gpu::{SymMethod, SymNmf};
    let method = match config.method.as_str() {
        "anls" => SymMethod::Anls,
        "mu" => SymMethod::Multiplicative,
        "tri" => SymMethod::TriFactor,
        other => {
            return Err(bad(format!(
                "method must be 'anls', 'mu' or 'tri', got {other:?}"
            )))
        }
    };
    let preprocess = match config.preprocess.as_str() {
        "normalized" => Preprocess::NormalizedAdjacency,
        "none" => Preprocess::None,
        other => {
            return Err(bad(format!(
                "preprocess must be 'normalized' or None, got {other:?}"
            )))
        }
    };
    let mut p = SymNmf::params(config.k)
        .method(method)
        .preprocess(preprocess)
        .n_init(config.n_init)
        .max_iter(config.max_iter)
        .tol(config.tol)
        .seed(config.seed)
        .backend(backend(&config.backend)?)
        .stop_flag(stop.clone());
    if let Some(alpha) = config.alpha {
        p = p.alpha(alpha);
    }
    Ok(p)
}

/// What a symmetric fit returns to Python: `(H, S or None, labels, info)`.
type SymOut<'py> = (
    Bound<'py, PyArray2<f32>>,
    Option<Bound<'py, PyArray2<f32>>>,
    Vec<usize>,
    Bound<'py, PyDict>,
);

fn sym_out<'py>(
    py: Python<'py>,
    fit: nmf_gpu::SymFactorization,
    path: &str,
) -> PyResult<SymOut<'py>> {
    let info = PyDict::new(py);
    info.set_item("n_iter", fit.n_iter())?;
    info.set_item("converged", fit.converged())?;
    info.set_item("residual", fit.residual())?;
    info.set_item("relative_residual", fit.relative_residual())?;
    info.set_item("engine", fit.engine().to_string())?;
    info.set_item("path", path)?;
    let labels = fit.labels();
    let (h, s) = fit.into_parts();
    Ok((
        h.into_pyarray(py),
        s.map(|s| s.into_pyarray(py)),
        labels,
        info,
    ))
}

/// Factorize the symmetric nonnegative `a` (n x n) as `Ã ≈ H Hᵀ` (or `H S Hᵀ`): returns
/// `(H, S or None, labels, info)`.
#[pyfunction]
fn sym_fit<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f32>,
    config: SymConfig,
) -> PyResult<SymOut<'py>> {
    let stop = Arc::new(AtomicBool::new(false));
    let p = sym_params(&config, &stop)?;
    let view = a.as_array();
    let fit = run_interruptible(py, &stop, || p.fit(view))?;
    sym_out(py, fit, "dense")
}

/// [`sym_fit`] for a sparse CSR `a` (a graph's adjacency), never densified: the library's sparse
/// symmetric fit, memory `O(nnz + n·k)`.
#[pyfunction]
fn sym_fit_sparse<'py>(
    py: Python<'py>,
    shape: (usize, usize),
    indptr: PyReadonlyArray1<'py, i64>,
    indices: PyReadonlyArray1<'py, i64>,
    data: PyReadonlyArray1<'py, f32>,
    config: SymConfig,
) -> PyResult<SymOut<'py>> {
    let stop = Arc::new(AtomicBool::new(false));
    let p = sym_params(&config, &stop)?;
    let a = csr(shape, indptr, indices, data)?;
    let fit = run_interruptible(py, &stop, || p.fit_sparse(&a))?;
    sym_out(py, fit, "sparse")
}

/// The options of a masked fit, read from a Python dict with these keys.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct MaskedConfig {
    rank: usize,
    l2: f32,
    l1: f32,
    penalty_scale: String,
    init: String,
    max_iter: usize,
    tol: f32,
    seed: u64,
    backend: String,
}

/// The masked fit's parameters from a config and the custom start, with `stop` as its stop flag.
fn masked_params(
    config: &MaskedConfig,
    w0: Option<PyReadonlyArray2<'_, f32>>,
    h0: Option<PyReadonlyArray2<'_, f32>>,
    stop: &Arc<AtomicBool>,
) -> PyResult<nmf_gpu::MaskedParams> {
    use nmf_gpu::{MaskedInit, MaskedNmf, PenaltyScale};
    let scale = match config.penalty_scale.as_str() {
        "observation" => PenaltyScale::PerObservation,
        "uniform" => PenaltyScale::Uniform,
        other => {
            return Err(bad(format!(
                "penalty_scale must be 'observation' or 'uniform', got {other:?}"
            )))
        }
    };
    let init = match (config.init.as_str(), w0, h0) {
        ("filled", _, _) => MaskedInit::Filled,
        ("random", _, _) => MaskedInit::Random,
        ("custom", Some(w), Some(h)) => MaskedInit::Custom {
            w: w.as_array().to_owned(),
            h: h.as_array().to_owned(),
        },
        ("custom", _, _) => {
            return Err(bad(
                "init='custom' needs both W and H (pass them to fit)".to_string()
            ))
        }
        (other, _, _) => {
            return Err(bad(format!(
                "init must be 'filled', 'random' or 'custom', got {other:?}"
            )))
        }
    };
    Ok(MaskedNmf::params(config.rank)
        .l2(config.l2)
        .l1(config.l1)
        .penalty_scale(scale)
        .init(init)
        .max_iter(config.max_iter)
        .tol(config.tol)
        .seed(config.seed)
        .backend(backend(&config.backend)?)
        .stop_flag(stop.clone()))
}

fn masked_out<'py>(
    py: Python<'py>,
    fit: nmf_gpu::MaskedFactorization,
    path: &str,
) -> PyResult<FitOut<'py>> {
    let info = PyDict::new(py);
    info.set_item("n_iter", fit.n_iter())?;
    info.set_item("converged", fit.converged())?;
    info.set_item("final_loss", fit.final_loss())?;
    info.set_item("engine", fit.engine().to_string())?;
    info.set_item("path", path)?;
    let (w, h) = fit.into_parts();
    Ok((w.into_pyarray(py), h.into_pyarray(py), info))
}

/// Factorize `v` (m x n) from its observed entries only (`observed`, or the entries that are not
/// NaN): returns `(W, H, info)`.
#[pyfunction]
#[pyo3(signature = (v, config, observed=None, w0=None, h0=None))]
fn masked_fit<'py>(
    py: Python<'py>,
    v: PyReadonlyArray2<'py, f32>,
    config: MaskedConfig,
    observed: Option<PyReadonlyArray2<'py, bool>>,
    w0: Option<PyReadonlyArray2<'py, f32>>,
    h0: Option<PyReadonlyArray2<'py, f32>>,
) -> PyResult<FitOut<'py>> {
    let stop = Arc::new(AtomicBool::new(false));
    let p = masked_params(&config, w0, h0, &stop)?;
    let view = v.as_array();
    let fit = match observed {
        Some(mask) => {
            let mask = mask.as_array();
            run_interruptible(py, &stop, || p.fit(view, mask))?
        }
        None => run_interruptible(py, &stop, || p.fit_nan(view))?,
    };
    masked_out(py, fit, "dense")
}

/// Factorize a sparse CSR `v` (m x n) whose stored entries are the observed ones (a stored zero
/// is an observed zero), never densified: returns `(W, H, info)`.
#[pyfunction]
#[pyo3(signature = (shape, indptr, indices, data, config, w0=None, h0=None))]
#[allow(clippy::too_many_arguments)]
fn masked_fit_sparse<'py>(
    py: Python<'py>,
    shape: (usize, usize),
    indptr: PyReadonlyArray1<'py, i64>,
    indices: PyReadonlyArray1<'py, i64>,
    data: PyReadonlyArray1<'py, f32>,
    config: MaskedConfig,
    w0: Option<PyReadonlyArray2<'py, f32>>,
    h0: Option<PyReadonlyArray2<'py, f32>>,
) -> PyResult<FitOut<'py>> {
    let stop = Arc::new(AtomicBool::new(false));
    let p = masked_params(&config, w0, h0, &stop)?;
    let v = csr(shape, indptr, indices, data)?;
    let fit = run_interruptible(py, &stop, || p.fit_sparse(&v))?;
    masked_out(py, fit, "sparse")
}

/// The compiled core of `nmf_gpu`.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fit_dense, m)?)?;
    m.add_function(wrap_pyfunction!(fit_sparse, m)?)?;
    m.add_function(wrap_pyfunction!(transform_dense, m)?)?;
    m.add_function(wrap_pyfunction!(transform_sparse, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_info, m)?)?;
    m.add_function(wrap_pyfunction!(initial_factors, m)?)?;
    m.add_function(wrap_pyfunction!(initial_factors_sparse, m)?)?;
    m.add_function(wrap_pyfunction!(sym_fit, m)?)?;
    m.add_function(wrap_pyfunction!(masked_fit, m)?)?;
    m.add_function(wrap_pyfunction!(sym_fit_sparse, m)?)?;
    m.add_function(wrap_pyfunction!(masked_fit_sparse, m)?)?;
    m.add_function(wrap_pyfunction!(online::online_fit, m)?)?;
    m.add_function(wrap_pyfunction!(online::online_fit_sparse, m)?)?;
    m.add_function(wrap_pyfunction!(online::online_fit_path, m)?)?;
    m.add_function(wrap_pyfunction!(online::source_shape, m)?)?;
    m.add_function(wrap_pyfunction!(online::online_partial_fit, m)?)?;
    m.add_function(wrap_pyfunction!(online::online_transform, m)?)?;
    m.add_function(wrap_pyfunction!(online::online_transform_sparse, m)?)?;
    m.add_function(wrap_pyfunction!(select::select_rank, m)?)?;
    m.add_class::<select::RankSweep>()?;
    Ok(())
}
