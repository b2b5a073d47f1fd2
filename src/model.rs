//! The fitted result: factors, history, and the scikit-learn-like `transform` workflow.

use ndarray::{Array2, ArrayView2};

use crate::engine::check_data;
use crate::engine::{cpu::CpuEngine, Backend, Engine};
use crate::error::{NmfError, Result};
use crate::linalg::gemm::matmul;
use crate::options::{Loss, Orthogonality, Solver, SparseOrder, ValidParams};
use crate::report::{factor_accessors, report_accessors, FitReport};
use crate::solver::{solve, Data, DataScale, RunOutput, Update};

/// A fitted factorization `V ≈ W H`: W (m x r) holds the basis vectors ("parts") in its
/// columns, H (r x n) the encoding of each sample in its columns.
#[derive(Debug, Clone)]
pub struct Factorization {
    pub(crate) w: Array2<f32>,
    pub(crate) h: Array2<f32>,
    pub(crate) report: FitReport,
    pub(crate) params: ValidParams,
    pub(crate) backend: Backend,
}

/// `‖X Xᵀ − I‖_F` (`rows = true`) or `‖Xᵀ X − I‖_F`, accumulated in f64.
pub(crate) fn orthogonality_residual(x: ArrayView2<'_, f32>, rows: bool) -> f64 {
    let x = if rows { x } else { x.reversed_axes() };
    let r = x.nrows();
    let mut sq = 0.0f64;
    for i in 0..r {
        for j in i..r {
            let dot = crate::linalg::dot_in_order(x.row(i), x.row(j));
            let d = if i == j { dot - 1.0 } else { dot };
            sq += if i == j { d * d } else { 2.0 * d * d };
        }
    }
    sq.sqrt()
}

impl Factorization {
    /// For orthogonal NMF, how far the constraint is from holding: `‖H Hᵀ − I‖_F`
    /// ([`Orthogonality::H`](crate::Orthogonality::H)) or `‖Wᵀ W − I‖_F`
    /// ([`Orthogonality::W`](crate::Orthogonality::W)); `None` for plain NMF and for a model
    /// without encodings ([`Factorization::from_w`]) constrained on H.
    pub fn orthogonality_residual(&self) -> Option<f64> {
        match self.params.orthogonality {
            Orthogonality::None => None,
            Orthogonality::H if self.h.ncols() == 0 => None,
            Orthogonality::H => Some(orthogonality_residual(self.h.view(), true)),
            Orthogonality::W => Some(orthogonality_residual(self.w.view(), false)),
        }
    }

    factor_accessors!(
        "The basis matrix W (m x r).",
        "The encoding matrix H (r x n)."
    );
    report_accessors!();
    /// `sqrt(2·D)`: `‖V − WH‖_F` for Frobenius (scikit-learn's `reconstruction_err_`).
    pub fn reconstruction_err(&self) -> f64 {
        (2.0 * self.final_loss()).sqrt()
    }
    /// The solver used.
    pub fn solver(&self) -> Solver {
        self.params.solver
    }
    /// The loss minimised.
    pub fn loss(&self) -> Loss {
        self.params.loss
    }
    /// `‖V − WH‖_F / ‖V‖_F` for data `v` (m x n) of the fitted shape.
    pub fn relative_error(&self, v: ArrayView2<'_, f32>) -> Result<f64> {
        self.check_rows(v, "V in relative_error")?;
        if v.ncols() != self.h.ncols() {
            return Err(NmfError::ShapeMismatch {
                what: "V in relative_error",
                expected: format!("{} columns", self.h.ncols()),
                found: format!("{} columns", v.ncols()),
            });
        }
        relative_error(v, self.w.view(), self.h.view())
    }

    /// Encode new samples: H (r x n') for `v_new` (m x n') with W fixed, by the fitted solver
    /// (same loss, penalties, `max_iter` and `tol`). MU starts from `sqrt(mean(V')/r)`, HALS from 0.
    /// The fit's stop flag ([`NmfParams::stop_flag`](crate::NmfParams::stop_flag)) ends it after
    /// the current iteration with [`NmfError::Interrupted`].
    pub fn transform(&self, v_new: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.check_rows(v_new, "V in transform")?;
        check_data(v_new)?;
        self.encode(Data::Dense(v_new))
    }

    /// [`transform`](Self::transform) with the run's report: the iterations it took
    /// (`n_iter`) and whether the stopping rule ended it (`converged`), as scikit-learn's
    /// `non_negative_factorization(update_H=False)` returns them.
    pub fn transform_with_report(
        &self,
        v_new: ArrayView2<'_, f32>,
    ) -> Result<(Array2<f32>, FitReport)> {
        self.check_rows(v_new, "V in transform")?;
        check_data(v_new)?;
        self.encode_with_report(Data::Dense(v_new))
    }

    /// [`transform_sparse`](Self::transform_sparse) with the run's report (see
    /// [`transform_with_report`](Self::transform_with_report)).
    pub fn transform_sparse_with_report(
        &self,
        v_new: &crate::sparse::CsrMatrix,
    ) -> Result<(Array2<f32>, FitReport)> {
        let (m, n) = v_new.dim();
        if m != self.w.nrows() {
            return Err(NmfError::ShapeMismatch {
                what: "V in transform_sparse",
                expected: format!("{} rows (features)", self.w.nrows()),
                found: format!("{m} x {n}"),
            });
        }
        if n == 0 {
            return Err(NmfError::EmptyInput { rows: m, cols: n });
        }
        let vt = v_new.transpose();
        self.encode_with_report(Data::Sparse { v: v_new, vt: &vt })
    }

    /// H for `data` with W fixed (the solver sees W at the data's scale).
    fn encode(&self, data: Data<'_>) -> Result<Array2<f32>> {
        self.encode_with_report(data).map(|(h, _)| h)
    }

    fn encode_with_report(&self, data: Data<'_>) -> Result<(Array2<f32>, FitReport)> {
        let params = self.transform_params();
        let n = data.dim().1;
        let (out, _) = solve(
            data,
            &self.backend,
            &params,
            |d, _, scale| (scale.factor_in(&self.w), self.transform_start(n, d.mean())),
            Update::HOnly,
            SparseOrder::Stored,
        )?;
        if out.report.interrupted {
            // A partly solved H is no encoding: say so rather than return it.
            return Err(NmfError::Interrupted { what: "transform" });
        }
        Ok((out.h, out.report))
    }

    /// A fitted model from a finished run.
    pub(crate) fn from_run(
        out: RunOutput,
        params: ValidParams,
        backend: Backend,
        engine: String,
        start: std::time::Instant,
    ) -> Factorization {
        let report = out.report.finished(engine, start);
        Factorization {
            w: out.w,
            h: out.h,
            report,
            params,
            backend,
        }
    }

    /// The starting H (r x n) of `transform`: scikit-learn's `sqrt(mean(V) / r)` everywhere for
    /// MU, zeros for HALS.
    fn transform_start(&self, n: usize, mean: f64) -> Array2<f32> {
        let r = self.rank();
        match self.params.solver {
            Solver::MultiplicativeUpdate => {
                Array2::from_elem((r, n), (mean / r as f64).sqrt() as f32)
            }
            Solver::Hals | Solver::AcceleratedHals => Array2::zeros((r, n)),
        }
    }

    /// The fit's parameters without its hooks (progress, resumption, checkpoints) but with its
    /// stop flag: a raised flag ends `transform` after the current iteration with
    /// [`NmfError::Interrupted`]. The H penalty is scaled by m, which new samples do not change.
    fn transform_params(&self) -> ValidParams {
        let mut params = self.params.clone();
        let stop = params.iter.stop.clone();
        params.iter = params.iter.without_hooks();
        params.iter.stop = stop;
        // W is fixed whole by the run itself; the fit's fixed rows of H were rows of its own H.
        params.fixed_w.clear();
        params.fixed_h.clear();
        params
    }

    /// The reconstruction `W H` (m x n') of encodings `h` (r x n').
    pub fn inverse_transform(&self, h: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        if h.nrows() != self.rank() {
            return Err(NmfError::ShapeMismatch {
                what: "H in inverse_transform",
                expected: format!("{} rows (the rank)", self.rank()),
                found: format!("{} x {}", h.nrows(), h.ncols()),
            });
        }
        Ok(matmul(self.w.view(), h))
    }

    fn check_rows(&self, v: ArrayView2<'_, f32>, what: &'static str) -> Result<()> {
        if v.nrows() != self.w.nrows() {
            return Err(NmfError::ShapeMismatch {
                what,
                expected: format!("{} rows (features)", self.w.nrows()),
                found: format!("{} x {}", v.nrows(), v.ncols()),
            });
        }
        Ok(())
    }

    /// A model made from a given basis `w` (m x r), e.g. one saved by an earlier fit, for
    /// [`transform`](Self::transform) and [`inverse_transform`](Self::inverse_transform).
    ///
    /// `params` supplies what `transform` uses: solver, loss, the penalty on H, `max_iter`,
    /// `tol`, `epsilon` and backend. Its rank must equal `w.ncols()`; its initialisation is
    /// ignored (W is given). The parameters are validated as for a fit on data of `m` rows and
    /// `r` columns: `m`, W's row count, scales the H penalty exactly as in the original fit;
    /// the column count only enters the W penalty, which `transform` never uses (W stays fixed),
    /// so `r` stands in for the unknown number of training samples, a value every rank-r model
    /// passes.
    ///
    /// W must be finite and nonnegative. The model has an empty H (r x 0), no iterations and
    /// no loss history; its [`engine`](Self::engine) is `"none (from W)"`.
    pub fn from_w(w: Array2<f32>, params: &crate::params::NmfParams) -> Result<Factorization> {
        let (m, r) = w.dim();
        if r == 0 {
            return Err(NmfError::ZeroRank);
        }
        if m == 0 || params.rank != r {
            return Err(NmfError::ShapeMismatch {
                what: "W in Factorization::from_w",
                expected: format!("at least 1 row and {} columns (the rank)", params.rank),
                found: format!("{m} x {r}"),
            });
        }
        if let Some(((row, col), &value)) =
            w.indexed_iter().find(|(_, &x)| !x.is_finite() || x < 0.0)
        {
            return Err(NmfError::InvalidFactorEntry {
                factor: crate::error::Factor::W,
                row,
                col,
                value,
            });
        }
        let valid = params
            .clone()
            .init(crate::options::Init::Random)
            .check(m, r)?;
        Ok(Factorization {
            w,
            h: Array2::zeros((r, 0)),
            report: FitReport::empty("none (from W)"),
            params: valid,
            backend: params.backend.clone(),
        })
    }
}

/// `‖V − WH‖_F / ‖V‖_F`, computed block by block in f64 (never forming WH whole).
/// Returns 0 when V and WH are both zero.
pub fn relative_error(
    v: ArrayView2<'_, f32>,
    w: ArrayView2<'_, f32>,
    h: ArrayView2<'_, f32>,
) -> Result<f64> {
    if w.nrows() != v.nrows() || h.ncols() != v.ncols() || w.ncols() != h.nrows() {
        return Err(NmfError::ShapeMismatch {
            what: "W, H in relative_error",
            expected: format!("W {} x r, H r x {}", v.nrows(), v.ncols()),
            found: format!("W {:?}, H {:?}", w.dim(), h.dim()),
        });
    }
    // The ratio is scale-free: extreme data is measured as V / s with W / √s, H / √s, so
    // that the f32 loss neither underflows nor overflows.
    let scale = DataScale::of(v);
    let scaled;
    let (vs, w, h) = if scale.is_identity() {
        (v.view(), w.to_owned(), h.to_owned())
    } else {
        scaled = scale.dense(v);
        (
            scaled.view(),
            scale.factor_in(&w.to_owned()),
            scale.factor_in(&h.to_owned()),
        )
    };
    let mut e = CpuEngine::new(vs);
    let d = e.loss(&w, &h, Loss::Frobenius, f32::EPSILON)?;
    let vn = vs
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt();
    Ok(error_ratio((2.0 * d).sqrt(), vn))
}

/// `‖V − WH‖ / ‖V‖` from both norms: 0 for an exact fit of V = 0, ∞ for any other fit of it.
fn error_ratio(residual: f64, v_norm: f64) -> f64 {
    if v_norm == 0.0 {
        if residual == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        residual / v_norm
    }
}

impl Factorization {
    /// [`transform`](Self::transform) for sparse samples `v_new` (m x n'), on the model's
    /// engine (see [`NmfParams::fit_sparse`](crate::NmfParams::fit_sparse)): H (r x n') with W fixed,
    /// the same encodings as `transform` of the dense matrix up to float rounding.
    /// A model whose backend is [`Backend::Gpu`] encodes on that device.
    pub fn transform_sparse(&self, v_new: &crate::sparse::CsrMatrix) -> Result<Array2<f32>> {
        self.transform_sparse_with_report(v_new).map(|(h, _)| h)
    }

    /// [`relative_error`](Self::relative_error) for sparse data `v` (m x n) of the fitted shape:
    /// `‖V − WH‖_F / ‖V‖_F`, computed over the stored entries and the factors' Gram matrices.
    pub fn relative_error_sparse(&self, v: &crate::sparse::CsrMatrix) -> Result<f64> {
        if v.dim() != (self.w.nrows(), self.h.ncols()) {
            return Err(NmfError::ShapeMismatch {
                what: "V in relative_error_sparse",
                expected: format!("{} x {}", self.w.nrows(), self.h.ncols()),
                found: format!("{} x {}", v.rows(), v.cols()),
            });
        }
        let scale = DataScale::for_max(v.values().iter().fold(0.0f32, |m, &x| m.max(x)));
        let scaled;
        let v = if scale.is_identity() {
            v
        } else {
            scaled = scale.csr(v)?;
            &scaled
        };
        let vt = v.transpose();
        let mut e = CpuEngine::new_sparse(v, &vt);
        let (w, h) = (scale.factor_in(&self.w), scale.factor_in(&self.h));
        let d = e.loss(&w, &h, Loss::Frobenius, f32::EPSILON)?;
        Ok(error_ratio((2.0 * d).sqrt(), v.sq_norm().sqrt()))
    }
}
