//! Rank selection behind `nmf_gpu.select_rank`: the library's sweep over a range of ranks
//! ([`nmf_gpu::select`]), its figures per rank as Python lists, and its picture.
//!
//! The samples are scikit-learn's rows of `X`, the library's columns of `V = Xᵀ`: consensus
//! clusters them.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use nmf_gpu::select::{Method, RankSelect, RankSelection};
use nmf_gpu::Solver;
use numpy::PyReadonlyArray2;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::{backend, bad, parsed, run_interruptible, to_py};

/// The options of a sweep, read from a Python dict with these keys.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub(crate) struct SelectConfig {
    from: usize,
    to: usize,
    methods: Vec<String>,
    runs: usize,
    solver: String,
    max_iter: usize,
    tol: f32,
    seed: u64,
    backend: String,
    noise: f32,
    silhouette_threshold: f64,
    holdout: f64,
    cv_repeats: usize,
}

/// A finished sweep; its figures are read once into Python, its picture drawn on demand.
#[pyclass(frozen, module = "nmf_gpu._core")]
pub(crate) struct RankSweep {
    sel: RankSelection,
}

#[pymethods]
impl RankSweep {
    /// The curves of every measure against the rank, with the recommended rank marked, as
    /// the bytes of a PNG picture.
    fn png<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let dir = std::env::temp_dir().join(format!(
            "nmf-gpu-select-{}-{:p}",
            std::process::id(),
            &self.sel
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
        let path = dir.join("curves.png");
        let drawn = nmf_gpu::select::plot::curves(&self.sel, &path).map_err(to_py);
        let bytes = drawn.and_then(|()| {
            std::fs::read(&path)
                .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))
        });
        let _ = std::fs::remove_dir_all(&dir);
        Ok(PyBytes::new(py, &bytes?))
    }

    /// The figures: a dict of per-rank lists (`rank` and each measure run), the recommended
    /// rank, each method's choice and the decision's words.
    fn table<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = &self.sel;
        let d = PyDict::new(py);
        d.set_item("rank", s.ranks.clone())?;
        let col = |f: &dyn Fn(usize) -> Option<f64>| -> Vec<Option<f64>> {
            s.ranks.iter().map(|&r| f(r)).collect()
        };
        if !s.consensus.is_empty() {
            let get = |r: usize| s.consensus.iter().find(|c| c.rank == r);
            d.set_item("cophenetic", col(&|r| get(r).map(|c| c.cophenetic)))?;
            d.set_item("dispersion", col(&|r| get(r).map(|c| c.dispersion)))?;
            d.set_item("rss", col(&|r| get(r).map(|c| c.rss)))?;
            d.set_item(
                "explained_variance",
                col(&|r| get(r).map(|c| c.explained_variance)),
            )?;
        }
        if !s.nmfk.is_empty() {
            let get = |r: usize| s.nmfk.iter().find(|c| c.rank == r);
            d.set_item("min_silhouette", col(&|r| get(r).map(|c| c.min_silhouette)))?;
            d.set_item(
                "mean_silhouette",
                col(&|r| get(r).map(|c| c.mean_silhouette)),
            )?;
            d.set_item(
                "nmfk_relative_error",
                col(&|r| get(r).map(|c| c.mean_relative_error)),
            )?;
        }
        for (name, scores) in [("cv", &s.cv), ("bicv", &s.bicv)] {
            if !scores.is_empty() {
                let get = |r: usize| scores.iter().find(|c| c.rank == r);
                d.set_item(
                    format!("{name}_rmse"),
                    col(&|r| get(r).map(|c| c.heldout_rmse)),
                )?;
                d.set_item(
                    format!("{name}_rmse_se"),
                    col(&|r| get(r).map(|c| c.heldout_rmse_se)),
                )?;
            }
        }
        let dominance = col(&|r| s.dominance.iter().find(|x| x.0 == r).map(|x| x.1));
        if dominance.iter().any(Option::is_some) {
            d.set_item("dominance", dominance)?;
        }
        let out = PyDict::new(py);
        out.set_item("table", d)?;
        out.set_item("recommended", s.recommended().rank)?;
        out.set_item("rule", s.recommended().rule.clone())?;
        let choices = PyDict::new(py);
        for c in &s.choices {
            choices.set_item(c.method.name(), c.rank)?;
        }
        out.set_item("choices", choices)?;
        out.set_item("reason", s.decision.reason.clone())?;
        out.set_item("warnings", s.decision.warnings.clone())?;
        out.set_item("fits", s.fits)?;
        out.set_item("seconds", s.elapsed.as_secs_f64())?;
        Ok(out)
    }
}

/// Compare the ranks `from..=to` on dense `x` (samples x features).
#[pyfunction]
pub(crate) fn select_rank(
    py: Python<'_>,
    x: PyReadonlyArray2<'_, f32>,
    config: SelectConfig,
) -> PyResult<RankSweep> {
    let methods = config
        .methods
        .iter()
        .map(|m| {
            parsed(
                Method::from_name(m),
                "method",
                m,
                "'consensus', 'nmfk', 'cv', 'bicv' or 'all'",
            )
        })
        .collect::<PyResult<Vec<_>>>()?;
    if methods.is_empty() {
        return Err(bad("method must name at least one method".into()));
    }
    let solver = parsed(
        Solver::from_name(&config.solver),
        "solver",
        &config.solver,
        "'cd' or 'mu'",
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let p = RankSelect::params(config.from..=config.to)
        .methods(&methods)
        .runs(config.runs)
        .solver(solver)
        .max_iter(config.max_iter)
        .tol(config.tol)
        .seed(config.seed)
        .backend(backend(&config.backend)?)
        .noise(config.noise)
        .silhouette_threshold(config.silhouette_threshold)
        .holdout(config.holdout)
        .cv_repeats(config.cv_repeats)
        .stop_flag(stop.clone());
    let v = x.as_array().reversed_axes();
    let sel = run_interruptible(py, &stop, || p.run(v))?;
    Ok(RankSweep { sel })
}
