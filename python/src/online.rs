//! The online (mini-batch) fits behind `nmf_gpu.MiniBatchNMF`.
//!
//! scikit-learn's `X` (samples x features) is the library's `V = Xᵀ` (features x samples), whose
//! columns are the samples a batch takes: the library's dictionary `W` (features x r) is
//! `components_ᵀ`, and its encodings `H` (r x samples) are scikit-learn's `Wᵀ`. The model's
//! state ([`OnlineState`]: W, the statistics, the stopping rules' counters) lives in Python as
//! a dict of arrays and numbers, so that the estimator pickles and `partial_fit` continues
//! where it was.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ndarray::{Array2, ArrayView2};
use nmf_gpu::online::{ArraySource, CsrSource, OnlineFactorization, OnlineState, Source};
use nmf_gpu::{ndarray, Init, OnlineNmf, OnlineParams, Solver};
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::{backend, bad, csr, loss, parsed, run_interruptible, to_py};

/// The options of an online fit, read from a Python dict with these keys (in the library's
/// orientation: `alpha_w` weighs the dictionary, `alpha_h` the encodings).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub(crate) struct OnlineConfig {
    rank: usize,
    solver: String,
    loss: String,
    init: String,
    batch_size: usize,
    forget_factor: f32,
    max_iter: usize,
    tol: f32,
    max_no_improvement: Option<usize>,
    inner_max_iter: usize,
    alpha_w: f32,
    alpha_h: f32,
    l1_ratio: f32,
    fresh_restarts: bool,
    seed: u64,
    backend: String,
    memory_limit: Option<u64>,
    verbose: bool,
    checkpoint_every: Option<usize>,
    checkpoint_dir: Option<String>,
}

fn online_params(cfg: &OnlineConfig, stop: &Arc<AtomicBool>) -> PyResult<OnlineParams> {
    let solver = parsed(
        Solver::from_name(&cfg.solver),
        "solver",
        &cfg.solver,
        "'mu' or 'hals'",
    )?;
    let mut p = OnlineNmf::params(cfg.rank)
        .loss(loss(&cfg.loss)?)
        .solver(solver)
        .batch_size(cfg.batch_size)
        .forget_factor(cfg.forget_factor)
        .max_epochs(cfg.max_iter)
        .tol(cfg.tol)
        .max_no_improvement(cfg.max_no_improvement)
        .inner_max_iter(cfg.inner_max_iter)
        .alpha_w(cfg.alpha_w)
        .alpha_h(cfg.alpha_h)
        .l1_ratio(cfg.l1_ratio)
        .fresh_restarts(cfg.fresh_restarts)
        .seed(cfg.seed)
        .backend(backend(&cfg.backend)?)
        .stop_flag(stop.clone());
    if cfg.init != "custom" {
        p = p.init(parsed(
            Init::from_name(&cfg.init),
            "init",
            &cfg.init,
            "None, 'random', 'nndsvd', 'nndsvda', 'nndsvdar' or 'custom'",
        )?);
    }
    if let Some(limit) = cfg.memory_limit {
        p = p.memory_limit(limit);
    }
    if let (Some(every), Some(dir)) = (cfg.checkpoint_every, &cfg.checkpoint_dir) {
        let dir = PathBuf::from(dir);
        p = p.checkpoint_state(every, move |state, kept| {
            write_checkpoint(&dir, state, kept)
        });
    }
    if cfg.verbose {
        p = p.on_batch(|pr| {
            println!(
                "epoch {:>4} of {}, samples {:>8} of {}: batch cost {:.6e}, smoothed {:.6e}",
                pr.epoch + 1,
                pr.max_epochs,
                pr.samples,
                pr.samples_per_epoch,
                pr.batch_cost,
                pr.smoothed_cost
            )
        });
    }
    Ok(p)
}

/// A checkpoint of an online fit: the directory `dir` replaced, atomically, by one holding
/// `w.npy`, `num.npy`, `den.npy` (the library's orientation), `encodings.npy` (samples x r,
/// when kept) and `state.txt` (the counters, one `name value` a line).
fn write_checkpoint(
    dir: &std::path::Path,
    state: &OnlineState,
    kept: Option<ArrayView2<'_, f32>>,
) -> nmf_gpu::Result<()> {
    let staged = nmf_gpu::io::StagedDir::new(dir)?;
    staged.npy("w.npy", &state.w)?;
    staged.npy("num.npy", &state.num)?;
    staged.npy("den.npy", &state.den)?;
    if let Some(h) = kept {
        staged.npy("encodings.npy", &h.t().as_standard_layout())?;
    }
    let opt = |x: Option<f64>| x.map_or("none".to_string(), |v| format!("{v:e}"));
    let text = format!(
        "steps {}\nsamples {}\nepochs {}\nsmoothed_cost {}\nsmoothed_min {}\nno_improvement {}\nlast_cost {:e}\n",
        state.steps,
        state.samples,
        state.epochs,
        opt(state.smoothed_cost),
        opt(state.smoothed_min),
        state.no_improvement,
        state.last_cost
    );
    staged.bytes("state.txt", text.as_bytes())?;
    staged.commit()?;
    Ok(())
}

/// The custom starts: the components (r x features, the library's `Wᵀ`) and the encodings
/// of every sample (samples x r, the library's `Hᵀ`, kept when `fresh_restarts` is false).
fn with_start(
    mut p: OnlineParams,
    components: Option<PyReadonlyArray2<'_, f32>>,
    encodings: Option<PyReadonlyArray2<'_, f32>>,
) -> OnlineParams {
    if let Some(c) = components {
        p = p.w_init(c.as_array().t().to_owned());
    }
    if let Some(e) = encodings {
        p = p.h_init(e.as_array().t().to_owned());
    }
    p
}

/// What a fit returns to Python: `(state, kept encodings (samples x r) or None, info)`.
type OnlineOut<'py> = (
    Bound<'py, PyDict>,
    Option<Bound<'py, PyArray2<f32>>>,
    Bound<'py, PyDict>,
);

fn state_dict<'py>(py: Python<'py>, s: OnlineState) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("steps", s.steps)?;
    d.set_item("samples", s.samples)?;
    d.set_item("epochs", s.epochs)?;
    d.set_item("smoothed_cost", s.smoothed_cost)?;
    d.set_item("smoothed_min", s.smoothed_min)?;
    d.set_item("no_improvement", s.no_improvement)?;
    d.set_item("last_cost", s.last_cost)?;
    d.set_item("w", s.w.into_pyarray(py))?;
    d.set_item("num", s.num.into_pyarray(py))?;
    d.set_item("den", s.den.into_pyarray(py))?;
    Ok(d)
}

/// The state a dict from [`state_dict`] holds.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub(crate) struct StateIn<'py> {
    steps: usize,
    samples: u64,
    epochs: usize,
    smoothed_cost: Option<f64>,
    smoothed_min: Option<f64>,
    no_improvement: usize,
    last_cost: f64,
    w: PyReadonlyArray2<'py, f32>,
    num: PyReadonlyArray2<'py, f32>,
    den: PyReadonlyArray2<'py, f32>,
}

/// The parameters continuing from `resume` when there is one.
fn resuming(p: OnlineParams, resume: Option<StateIn<'_>>) -> OnlineParams {
    match resume {
        Some(s) => p.resume_state(s.state()),
        None => p,
    }
}

impl StateIn<'_> {
    fn state(&self) -> OnlineState {
        OnlineState {
            w: self.w.as_array().to_owned(),
            num: self.num.as_array().to_owned(),
            den: self.den.as_array().to_owned(),
            steps: self.steps,
            samples: self.samples,
            epochs: self.epochs,
            smoothed_cost: self.smoothed_cost,
            smoothed_min: self.smoothed_min,
            no_improvement: self.no_improvement,
            last_cost: self.last_cost,
        }
    }

    fn model(&self, p: &OnlineParams) -> PyResult<OnlineFactorization> {
        p.from_state(self.state()).map_err(to_py)
    }
}

fn online_out<'py>(py: Python<'py>, fit: OnlineFactorization) -> PyResult<OnlineOut<'py>> {
    let info = PyDict::new(py);
    let report = fit.report();
    info.set_item("steps", report.steps)?;
    info.set_item("epochs", report.epochs)?;
    info.set_item("samples", report.samples)?;
    info.set_item("stop", format!("{:?}", report.stop))?;
    info.set_item("engine", report.engine.clone())?;
    info.set_item("seconds", report.elapsed.as_secs_f64())?;
    info.set_item("features", fit.w().nrows())?;
    let kept = fit
        .encodings()
        .map(|h| h.t().as_standard_layout().into_owned().into_pyarray(py));
    Ok((state_dict(py, fit.state())?, kept, info))
}

fn fit_source<'py, S: Source + ?Sized>(
    py: Python<'py>,
    p: OnlineParams,
    stop: &Arc<AtomicBool>,
    source: &mut S,
) -> PyResult<OnlineOut<'py>> {
    let fit = run_interruptible(py, stop, || p.fit(source))?;
    online_out(py, fit)
}

/// Fit the online model to dense `x` (samples x features), streamed in batches of samples.
#[pyfunction]
#[pyo3(signature = (x, config, components=None, encodings=None, resume=None))]
pub(crate) fn online_fit<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    config: OnlineConfig,
    components: Option<PyReadonlyArray2<'py, f32>>,
    encodings: Option<PyReadonlyArray2<'py, f32>>,
    resume: Option<StateIn<'py>>,
) -> PyResult<OnlineOut<'py>> {
    let stop = Arc::new(AtomicBool::new(false));
    let p = resuming(
        with_start(online_params(&config, &stop)?, components, encodings),
        resume,
    );
    let v: ArrayView2<'_, f32> = x.as_array().reversed_axes();
    fit_source(py, p, &stop, &mut ArraySource::new(v))
}

/// Fit the online model to sparse CSR `x` (samples x features); each batch is made dense.
#[pyfunction]
#[pyo3(signature = (shape, indptr, indices, data, config, components=None, encodings=None, resume=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn online_fit_sparse<'py>(
    py: Python<'py>,
    shape: (usize, usize),
    indptr: PyReadonlyArray1<'py, i64>,
    indices: PyReadonlyArray1<'py, i64>,
    data: PyReadonlyArray1<'py, f32>,
    config: OnlineConfig,
    components: Option<PyReadonlyArray2<'py, f32>>,
    encodings: Option<PyReadonlyArray2<'py, f32>>,
    resume: Option<StateIn<'py>>,
) -> PyResult<OnlineOut<'py>> {
    let stop = Arc::new(AtomicBool::new(false));
    let p = resuming(
        with_start(online_params(&config, &stop)?, components, encodings),
        resume,
    );
    // CsrSource takes V (features x samples) and keeps Vᵀ = X, one row per sample.
    let v = csr(shape, indptr, indices, data)?.transpose();
    fit_source(py, p, &stop, &mut CsrSource::new(&v))
}

/// The source of a file or directory: a `.npy` read a batch at a time (`samples_as_rows`: its
/// rows are the samples, scikit-learn's orientation), a TIFF stack or a directory of TIFF
/// files (one frame per sample), a Zarr array (its first axis the samples, read chunk by
/// chunk), a directory of images (one image per sample, grey levels as
/// they are), or any other format the library reads, loaded whole.
fn open_source(path: &str, samples_as_rows: bool) -> PyResult<Box<dyn Source>> {
    use nmf_gpu::io::{FileFormat, ReadOptions};
    let path = PathBuf::from(path);
    let format = FileFormat::from_path(&path).map_err(to_py)?;
    let whole_image = |what: &str| {
        if samples_as_rows {
            Ok(())
        } else {
            Err(bad(format!(
                "samples_as_rows=False does not apply to {what} (one frame or image is one sample)"
            )))
        }
    };
    Ok(match format {
        FileFormat::Npy => {
            Box::new(nmf_gpu::io::NpySource::open(&path, samples_as_rows).map_err(to_py)?)
        }
        FileFormat::Tiff => {
            whole_image("a TIFF stack")?;
            Box::new(
                nmf_gpu::io::tiff::TiffSource::open(&path, &ReadOptions::new()).map_err(to_py)?,
            )
        }
        FileFormat::Zarr => {
            whole_image("a Zarr array")?;
            Box::new(
                nmf_gpu::io::zarr::ZarrSource::open(&path, &ReadOptions::new()).map_err(to_py)?,
            )
        }
        FileFormat::ImageDir => {
            whole_image("an image directory")?;
            Box::new(
                nmf_gpu::images::ImageDirSource::open(
                    &path,
                    nmf_gpu::images::SizePolicy::Exact,
                    nmf_gpu::images::Preprocess::None,
                )
                .map_err(to_py)?,
            )
        }
        _ => {
            let data = nmf_gpu::io::read_matrix(&path, &ReadOptions::new()).map_err(to_py)?;
            Box::new(OwnedSource::new(if samples_as_rows {
                data.reversed_axes()
            } else {
                data
            }))
        }
    })
}

/// An in-memory matrix (features x samples) owned by its source.
struct OwnedSource {
    v: Array2<f32>,
    next: usize,
}

impl OwnedSource {
    fn new(v: Array2<f32>) -> Self {
        OwnedSource { v, next: 0 }
    }
}

impl Source for OwnedSource {
    fn dim(&self) -> (usize, usize) {
        self.v.dim()
    }
    fn rewind(&mut self) -> nmf_gpu::Result<()> {
        self.next = 0;
        Ok(())
    }
    fn next_batch(&mut self, max_cols: usize) -> nmf_gpu::Result<Option<Array2<f32>>> {
        let n = self.v.ncols();
        if self.next >= n {
            return Ok(None);
        }
        let end = n.min(self.next + max_cols.max(1));
        let batch = self
            .v
            .slice(ndarray::s![.., self.next..end])
            .as_standard_layout()
            .into_owned();
        self.next = end;
        Ok(Some(batch))
    }
}

/// Fit the online model to the samples of a file or directory (see [`open_source`]), read a
/// batch at a time.
#[pyfunction]
#[pyo3(signature = (path, samples_as_rows, config, components=None, encodings=None, resume=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn online_fit_path<'py>(
    py: Python<'py>,
    path: &str,
    samples_as_rows: bool,
    config: OnlineConfig,
    components: Option<PyReadonlyArray2<'py, f32>>,
    encodings: Option<PyReadonlyArray2<'py, f32>>,
    resume: Option<StateIn<'py>>,
) -> PyResult<OnlineOut<'py>> {
    let stop = Arc::new(AtomicBool::new(false));
    let p = resuming(
        with_start(online_params(&config, &stop)?, components, encodings),
        resume,
    );
    let mut source = open_source(path, samples_as_rows)?;
    fit_source(py, p, &stop, &mut source)
}

/// `(samples, features)` of the data at `path`, as [`open_source`] reads it.
#[pyfunction]
pub(crate) fn source_shape(path: &str, samples_as_rows: bool) -> PyResult<(usize, usize)> {
    let (m, n) = open_source(path, samples_as_rows)?.dim();
    Ok((n, m))
}

/// Learn from one more batch `x` (samples x features): from `state`, or (None) a new model
/// started from `x` (or from `components`). Returns `(state, info)`.
#[pyfunction]
#[pyo3(signature = (x, config, state=None, components=None))]
pub(crate) fn online_partial_fit<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    config: OnlineConfig,
    state: Option<StateIn<'py>>,
    components: Option<PyReadonlyArray2<'py, f32>>,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let p = with_start(online_params(&config, &stop)?, components, None);
    let v: ArrayView2<'_, f32> = x.as_array().reversed_axes();
    let fit = match state {
        Some(s) => {
            let mut model = s.model(&p)?;
            run_interruptible(py, &stop, || model.partial_fit(v).map(|_| model))?
        }
        None => run_interruptible(py, &stop, || p.partial_fit(v))?,
    };
    let (state, _, info) = online_out(py, fit)?;
    Ok((state, info))
}

/// The encodings (samples x r) of dense `x` (samples x features) with the components
/// (r x features) fixed, solved all at once with up to `config.inner_max_iter` steps.
#[pyfunction]
pub(crate) fn online_transform<'py>(
    py: Python<'py>,
    components: PyReadonlyArray2<'py, f32>,
    x: PyReadonlyArray2<'py, f32>,
    config: OnlineConfig,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let stop = Arc::new(AtomicBool::new(false));
    let p = online_params(&config, &stop)?;
    let model = p
        .from_w(components.as_array().t().to_owned())
        .map_err(to_py)?;
    let v: ArrayView2<'_, f32> = x.as_array().reversed_axes();
    let max_iter = config.inner_max_iter;
    let h = run_interruptible(py, &stop, || model.transform_whole(v, max_iter))?;
    Ok(h.reversed_axes()
        .as_standard_layout()
        .into_owned()
        .into_pyarray(py))
}

/// [`online_transform`] of sparse CSR `x` (samples x features).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub(crate) fn online_transform_sparse<'py>(
    py: Python<'py>,
    components: PyReadonlyArray2<'py, f32>,
    shape: (usize, usize),
    indptr: PyReadonlyArray1<'py, i64>,
    indices: PyReadonlyArray1<'py, i64>,
    data: PyReadonlyArray1<'py, f32>,
    config: OnlineConfig,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let stop = Arc::new(AtomicBool::new(false));
    let p = online_params(&config, &stop)?;
    let model = p
        .from_w(components.as_array().t().to_owned())
        .map_err(to_py)?;
    let v = csr(shape, indptr, indices, data)?.transpose();
    let max_iter = config.inner_max_iter;
    let h = run_interruptible(py, &stop, || {
        model.transform_whole_source(&mut CsrSource::new(&v), max_iter)
    })?;
    Ok(h.reversed_axes()
        .as_standard_layout()
        .into_owned()
        .into_pyarray(py))
}
