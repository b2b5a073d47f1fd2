//! Masked NMF over the observed entries only: `V` held as CSR (and its transpose), the mask
//! being the pattern of the stored entries (an observed zero is stored too).
//!
//! Every product of an iteration reads the stored entries only: the numerators `(M⊙V) Hᵀ`
//! and `Wᵀ (M⊙V)` are the plain sparse products, the denominators `(M⊙WH) Hᵀ` and
//! `Wᵀ (M⊙WH)` form `WH` at the stored entries ([`Engine::pattern_product`]), and the loss
//! `½ Σ_Ω (v − wh)²` likewise: `O(nnz·r)` per iteration, against `O(m·n·r)` for the dense
//! path.
//!
//! **Memory** (host, checked before anything is allocated, [`sparse_fit_bytes`]):
//! `SPARSE_FIT_BYTES_PER_ENTRY · nnz + 16·(m + n + 2) + 4·(m + n)·r·SPARSE_FIT_FACTOR_COPIES`
//! plus the randomized SVD of the filled start, `16·(m + n)·min(r + 10, m, n)`, and the
//! engines' fixed 64 MiB: no term grows with `m·n`.
//! Per stored entry: V and Vᵀ in CSR (8 bytes each), the CPU engine's column panels of both
//! (at most 8 each), and, while the filled start is formed, the signed residuals of V and Vᵀ
//! (8 each, freed before the iterations).
//!
//! **Filled start** on sparse data: the filled matrix `F` (observed entries, the bias estimate
//! `μ + b_i + b_j` elsewhere) is `S + u 1ᵀ + 1 cᵀ` with `S` sparse (the observed entries'
//! residuals from the bias estimate), `u_i = μ + b_i`, `c_j = b_j`: its randomized SVD runs on
//! that operator and never forms `F`. Unlike the dense path the bias estimate is not clipped
//! at 0 (both agree whenever no estimate is negative, as for ratings on a positive scale).

use ndarray::{Array2, ArrayView2};

use crate::engine::cpu::SparseOp;
use crate::error::{NmfError, Result};
use crate::linalg::LinearOperator;
use crate::sparse::CsrMatrix;

/// Host bytes per stored entry of a sparse masked fit (see the module docs): V and Vᵀ
/// (16), the CPU engine's panels of both (16), the filled start's signed residuals (16).
pub const SPARSE_FIT_BYTES_PER_ENTRY: u64 = 48;
/// Copies of a pair of factors (`4·(m + n)·r` bytes) a sparse masked fit holds: the start,
/// W and H, both numerators and denominators, the per-observation weights, ones and scratch
/// (6 per side), the engine's packed `Hᵀ` and pattern scratch, and the result.
pub const SPARSE_FIT_FACTOR_COPIES: u64 = 14;
/// The engines' fixed work space.
const FIXED_BYTES: u64 = 64 << 20;

/// The estimated peak host bytes of a sparse masked fit of an `m x n` matrix with `nnz`
/// observed entries at rank `r` (see the module docs): linear in `nnz`, `m + n` and `r`.
pub fn sparse_fit_bytes(m: usize, n: usize, nnz: usize, r: usize) -> u64 {
    let (m, n, nnz, r) = (m as u64, n as u64, nnz as u64, r as u64);
    let sketch = (r + 10).min(m.min(n));
    let svd = 16 * (m + n) * sketch;
    SPARSE_FIT_BYTES_PER_ENTRY
        .saturating_mul(nnz)
        .saturating_add(16 * (m + n + 2))
        .saturating_add(4 * (m + n) * r * SPARSE_FIT_FACTOR_COPIES)
        .saturating_add(svd)
        .saturating_add(FIXED_BYTES)
}

/// The observed-count damping of the bias estimate (as in the dense path).
pub(crate) fn bias_terms(v: &CsrMatrix, vt: &CsrMatrix, damping: f64) -> (f64, Vec<f64>, Vec<f64>) {
    let (m, n) = v.dim();
    let count = v.nnz().max(1) as f64;
    let mu = v.values().iter().map(|&x| x as f64).sum::<f64>() / count;
    let bi: Vec<f64> = (0..m)
        .map(|i| {
            let (_, vals) = v.row(i);
            let s: f64 = vals.iter().map(|&x| x as f64 - mu).sum();
            s / (vals.len() as f64 + damping)
        })
        .collect();
    let bj: Vec<f64> = (0..n)
        .map(|j| {
            let (rows, vals) = vt.row(j);
            let s: f64 = rows
                .iter()
                .zip(vals)
                .map(|(&i, &x)| x as f64 - mu - bi[i as usize])
                .sum();
            s / (vals.len() as f64 + damping)
        })
        .collect();
    (mu, bi, bj)
}

/// The filled matrix `F = S + u 1ᵀ + 1 cᵀ` as an operator (see the module docs).
#[derive(Clone, Copy)]
pub(crate) struct FilledOp<'a> {
    s: SparseOp<'a>,
    u: &'a [f32],
    c: &'a [f32],
}

/// The residuals `S` (and `Sᵀ`) of the observed entries from the bias estimate, and `u`, `c`.
pub(crate) struct Filled {
    s: CsrMatrix,
    st: CsrMatrix,
    u: Vec<f32>,
    c: Vec<f32>,
}

impl Filled {
    /// The parts of the filled matrix of `v` (with `vt = v.transpose()`).
    pub(crate) fn new(v: &CsrMatrix, vt: &CsrMatrix, damping: f64) -> Result<Filled> {
        let (m, n) = v.dim();
        let (mu, bi, bj) = bias_terms(v, vt, damping);
        let mut t = Vec::with_capacity(v.nnz());
        for (i, &b_i) in bi.iter().enumerate() {
            let (cols, vals) = v.row(i);
            for (&j, &x) in cols.iter().zip(vals) {
                let b = mu + b_i + bj[j as usize];
                t.push((i as u32, j, (x as f64 - b) as f32));
            }
        }
        // Signed values: this matrix is only ever read as an operator.
        let s = CsrMatrix::from_checked_triplets(m, n, t)?;
        let st = s.transpose();
        Ok(Filled {
            s,
            st,
            u: bi.iter().map(|&b| (mu + b) as f32).collect(),
            c: bj.iter().map(|&b| b as f32).collect(),
        })
    }

    /// `F` as an operator.
    pub(crate) fn op(&self) -> FilledOp<'_> {
        FilledOp {
            s: SparseOp {
                a: &self.s,
                at: &self.st,
            },
            u: &self.u,
            c: &self.c,
        }
    }

    /// The mean entry of `F`.
    pub(crate) fn mean(&self) -> f64 {
        let (m, n) = self.s.dim();
        let s: f64 = self.s.values().iter().map(|&x| x as f64).sum();
        let u: f64 = self.u.iter().map(|&x| x as f64).sum();
        let c: f64 = self.c.iter().map(|&x| x as f64).sum();
        (s + n as f64 * u + m as f64 * c) / ((m as f64) * (n as f64)).max(1.0)
    }
}

/// `(1ᵀ X, aᵀ X)` in f64 for `x` (rows x l) and one weight `a[i]` a row: the column sums of
/// `x` and their sums weighted by `a`, accumulated row by row.
fn column_sums(x: ArrayView2<'_, f32>, a: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let l = x.ncols();
    let mut ones_x = vec![0.0f64; l];
    let mut a_x = vec![0.0f64; l];
    for (row, &ai) in x.rows().into_iter().zip(a) {
        for (k, &xv) in row.iter().enumerate() {
            ones_x[k] += xv as f64;
            a_x[k] += ai as f64 * xv as f64;
        }
    }
    (ones_x, a_x)
}

impl LinearOperator for FilledOp<'_> {
    fn dim(&self) -> (usize, usize) {
        self.s.dim()
    }
    /// `F X = S X + u (1ᵀ X) + 1 (cᵀ X)`.
    fn mul(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        let mut out = self.s.mul(x);
        let (ones_x, c_x) = column_sums(x, self.c);
        for (mut orow, &ui) in out.rows_mut().into_iter().zip(self.u) {
            for (k, o) in orow.iter_mut().enumerate() {
                *o += (ui as f64 * ones_x[k] + c_x[k]) as f32;
            }
        }
        out
    }
    /// `Xᵀ F = Xᵀ S + (Xᵀ u) 1ᵀ + (Xᵀ 1) cᵀ`.
    fn t_mul(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        let mut out = self.s.t_mul(x);
        let (x_1, x_u) = column_sums(x, self.u);
        for (k, mut orow) in out.rows_mut().into_iter().enumerate() {
            for (o, &cj) in orow.iter_mut().zip(self.c) {
                *o += (x_u[k] + x_1[k] * cj as f64) as f32;
            }
        }
        out
    }
    fn transposed(&self) -> Self {
        FilledOp {
            s: self.s.transposed(),
            u: self.c,
            c: self.u,
        }
    }
}

/// Refuse a sparse masked fit whose estimate ([`sparse_fit_bytes`], plus 16 bytes per entry
/// for the copies of V and Vᵀ scaled into the safe range when `scaled`) exceeds `limit`.
pub(crate) fn check_budget(
    (m, n): (usize, usize),
    nnz: usize,
    r: usize,
    scaled: bool,
    limit: u64,
) -> Result<()> {
    let extra = if scaled { 16 * nnz as u64 } else { 0 };
    let need = sparse_fit_bytes(m, n, nnz, r).saturating_add(extra);
    if need > limit {
        return Err(NmfError::FitTooLarge {
            need,
            limit,
            detail: format!(
                "a sparse masked fit of {m} x {n} data with {nnz} observed entries, rank {r} \
                 ({SPARSE_FIT_BYTES_PER_ENTRY} bytes per entry plus the factors)"
            ),
        });
    }
    Ok(())
}
