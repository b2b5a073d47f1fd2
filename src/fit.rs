//! `fit`: validate, initialise, run the solver, package the result.

use std::time::Instant;

use ndarray::{Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::engine::check_data;
use crate::engine::cpu::SparseOp;
use crate::error::{NmfError, Result};
use crate::init::{initialize, initialize_sparse};
use crate::model::Factorization;
use crate::options::{Loss, ValidParams};
use crate::params::NmfParams;
use crate::solver::{check_sparse_budget, solve, Data, Update};
use crate::sparse::CsrMatrix;

impl NmfParams {
    /// Factorize `v` (m x n, features x samples, all entries finite and >= 0): `V ≈ W H`.
    ///
    /// Before anything is allocated, the fit's peak memory is estimated from the shape, rank
    /// and options and checked against [`memory_limit`](Self::memory_limit)
    /// ([`NmfError::FitTooLarge`](crate::NmfError::FitTooLarge)). Data whose largest entry lies
    /// outside `[2⁻³², 2³²]` (e.g. around 1e-40 or 1e30) is fitted as `V / s` with `s` a power
    /// of 4 and the factors, losses and penalties rescaled, so the answer is right for any
    /// finite nonnegative `V`; data inside that range runs unchanged.
    pub fn fit(&self, v: ArrayView2<'_, f32>) -> Result<Factorization> {
        let start = Instant::now();
        let (m, n) = v.dim();
        let valid = self.check(m, n)?;
        check_data(v)?;
        check_beta_data(v, &valid)?;
        self.run(Data::Dense(v), valid, start)
    }

    /// Factorize a sparse `v` (m x n, features x samples): `V ≈ W H`, on the CPU or GPU engine, in time
    /// and memory proportional to the stored entries (plus `(m + n)·r` for the factors); V is
    /// never formed densely. The result is the same as [`fit`](Self::fit) on the dense matrix
    /// up to float rounding, for every solver, loss and initialisation (NNDSVD's SVD runs on
    /// sparse products).
    ///
    /// The engine keeps a transposed copy of V (8 bytes per stored entry plus 8 per column),
    /// so that `Wᵀ V` runs column by column in parallel, and splits V and its transpose into
    /// cache-sized column panels with 16-bit indices where that pays: each side's panels are
    /// made only when they take at most 8 bytes per stored entry (6 for the entry, at most 2
    /// for the row offsets), and a sparser side (fewer than 4 entries per row and panel, as in
    /// a very wide matrix) is read unsplit. In all, at most 24 bytes per stored entry plus
    /// `8·(n + 1)` on top of `v` (about 20 per entry on typical data: 2.5 times `v`).
    ///
    /// With [`SparseOrder::Degree`](crate::SparseOrder::Degree) (see
    /// [`sparse_order`](Self::sparse_order)) the fit runs on V with its rows and columns renumbered by descending number of stored
    /// entries (faster on power-law data), which takes a permuted copy of V and its transpose
    /// (16 bytes per stored entry more); W and H come back in V's order.
    ///
    /// On [`Backend::Gpu`](crate::Backend) V and its transpose are uploaded once in CSR form
    /// (8 bytes per stored entry each, plus 4 per row and per column), split into row panels of
    /// at most one storage binding, and every product runs over the stored entries on the
    /// device. [`Backend::Auto`](crate::Backend::Auto) runs sparse data on the CPU.
    pub fn fit_sparse(&self, v: &CsrMatrix) -> Result<Factorization> {
        let start = Instant::now();
        let (m, n) = v.dim();
        let valid = self.check(m, n)?;
        if matches!(valid.loss, Loss::ItakuraSaito | Loss::Beta(_)) {
            return Err(NmfError::UnsupportedOption {
                option: "Loss::Beta and Loss::ItakuraSaito on sparse data",
                requires: "dense data (fit, not fit_sparse)",
            });
        }
        check_sparse_budget(v, &valid, self.sparse_order)?;
        // The values were checked (finite, >= 0) when the CsrMatrix was built.
        let vt = v.transpose();
        self.run(Data::Sparse { v, vt: &vt }, valid, start)
    }

    /// The start `(W₀, H₀)` (m x r, r x n) that [`fit`](Self::fit) computes from `v` with these
    /// parameters (the configured [`Init`](crate::Init) and seed), without iterating: to hand
    /// it to another model (an online fit started from the whole data's NNDSVD, say).
    pub fn initial_factors(&self, v: ArrayView2<'_, f32>) -> Result<(Array2<f32>, Array2<f32>)> {
        let (m, n) = v.dim();
        let valid = self.check(m, n)?;
        check_data(v)?;
        let mut rng = StdRng::seed_from_u64(valid.iter.seed);
        Ok(initialize(v, &valid, &mut rng))
    }

    /// [`initial_factors`](Self::initial_factors) of a sparse `v`.
    pub fn initial_factors_sparse(&self, v: &CsrMatrix) -> Result<(Array2<f32>, Array2<f32>)> {
        let (m, n) = v.dim();
        let valid = self.check(m, n)?;
        let vt = v.transpose();
        let mut rng = StdRng::seed_from_u64(valid.iter.seed);
        Ok(first_point(Data::Sparse { v, vt: &vt }, &valid, &mut rng))
    }

    /// Start from the configured point, run the solver on `data` and package the model.
    fn run(&self, data: Data<'_>, valid: ValidParams, start: Instant) -> Result<Factorization> {
        let mut rng = StdRng::seed_from_u64(valid.iter.seed);
        let (out, engine) = solve(
            data,
            &self.backend,
            &valid,
            |d, p, _| first_point(d, p, &mut rng),
            Update::Both,
            self.sparse_order,
        )?;
        Ok(Factorization::from_run(
            out,
            valid,
            self.backend.clone(),
            engine,
            start,
        ))
    }
}

/// β ≤ 0 divergences (Itakura–Saito) are infinite where V is zero and WH is not: such data
/// is refused, as scikit-learn does.
fn check_beta_data(v: ArrayView2<'_, f32>, valid: &ValidParams) -> Result<()> {
    if valid.loss.beta_value() <= 0.0 {
        if let Some(((row, col), _)) = v.indexed_iter().find(|(_, &x)| x == 0.0) {
            return Err(NmfError::InvalidParameter {
                name: "loss",
                value: format!("{} (β ≤ 0) with V[{row}, {col}] = 0", valid.loss),
                expected: "data without zeros (add a small constant) or a loss with β > 0".into(),
            });
        }
    }
    Ok(())
}

/// The configured start for the data the solver will see.
fn first_point(d: Data<'_>, p: &ValidParams, rng: &mut StdRng) -> (Array2<f32>, Array2<f32>) {
    match d {
        Data::Dense(v) => initialize(v, p, rng),
        Data::Sparse { v, vt } => initialize_sparse(SparseOp { a: v, at: vt }, || v.sum(), p, rng),
    }
}
