//! Term frequency–inverse document frequency weighting.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

use crate::error::{NmfError, Result};

/// How a raw count becomes a term frequency in [`TfIdf`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TermFrequency {
    /// `tf = c`, the count itself (scikit-learn's default).
    #[default]
    Raw,
    /// `tf = 1 + ln c` for `c > 0`, and 0 for `c = 0` (scikit-learn's `sublinear_tf=True`):
    /// a term said 100 times weighs about 5.6 times one said once, not 100 times. Clamped at 0,
    /// which only matters for fractional counts below `1/e`.
    Sublinear,
}

/// Tf-idf weights learnt from a `terms x documents` count matrix, as scikit-learn's
/// `TfidfTransformer` with its defaults (`norm='l2', use_idf=True, smooth_idf=True`), for
/// documents in columns. With `n` documents and `df_i` the number of documents (columns) in
/// which term `i` has a nonzero count:
///
/// ```text
///   idf_i   = ln((1 + n) / (1 + df_i)) + 1                     (smooth idf)
///   x_ij    = tf(C_ij) · idf_i                                 (tf: TermFrequency)
///   X[i, j] = x_ij / sqrt(Σ_k x_kj²)                           (unit l2 norm per document)
/// ```
///
/// The `+1` inside the ratio acts as one extra document that holds every term once, so no idf
/// is infinite; the `+1` outside keeps terms found in every document (`idf = 1`). A document
/// with no counts stays a zero column. Computed in f64, stored as f32.
#[derive(Debug, Clone, PartialEq)]
pub struct TfIdf {
    tf: TermFrequency,
    idf: Array1<f32>,
}

impl TfIdf {
    /// Learn the idf weights of the `terms x documents` matrix `counts`.
    ///
    /// Errors: [`NmfError::EmptyInput`] for a matrix without rows or columns,
    /// [`NmfError::NegativeInput`] / [`NmfError::NonFiniteInput`] for a bad count (row =
    /// term, column = document).
    pub fn fit(counts: ArrayView2<'_, f32>, tf: TermFrequency) -> Result<TfIdf> {
        check_counts(counts)?;
        let n = counts.ncols() as f64;
        let idf = counts.map_axis(Axis(1), |row| {
            let df = row.iter().filter(|&&c| c > 0.0).count() as f64;
            (((1.0 + n) / (1.0 + df)).ln() + 1.0) as f32
        });
        Ok(TfIdf { tf, idf })
    }

    /// The idf weight of each term (row).
    pub fn idf(&self) -> ArrayView1<'_, f32> {
        self.idf.view()
    }

    /// The term-frequency rule.
    pub fn term_frequency(&self) -> TermFrequency {
        self.tf
    }

    /// Weight the `terms x documents` matrix `counts` (the one it was fit on, or new
    /// documents counted with the same vocabulary) and normalise each column to unit l2 norm.
    ///
    /// Errors: as [`TfIdf::fit`], and [`NmfError::ShapeMismatch`] when `counts` does not have
    /// one row per term.
    pub fn transform(&self, counts: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        if counts.nrows() != self.idf.len() {
            return Err(NmfError::ShapeMismatch {
                what: "the count matrix to weight with tf-idf",
                expected: format!("{} rows (one per term)", self.idf.len()),
                found: format!("{} x {}", counts.nrows(), counts.ncols()),
            });
        }
        check_counts(counts)?;
        // x_ij = tf(C_ij) · idf_i, row by row (the layout of V); then column norms in f64.
        let idf = self.idf.to_vec();
        let mut out = Array2::<f32>::zeros(counts.raw_dim());
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(counts.axis_iter(Axis(0)).into_par_iter())
            .zip(idf.par_iter())
            .for_each(|((mut x, c), &idf)| {
                for (x, &c) in x.iter_mut().zip(c.iter()) {
                    *x = (self.tf_of(c) * f64::from(idf)) as f32;
                }
            });
        let mut norms = vec![0.0f64; counts.ncols()];
        for row in out.rows() {
            for (s, &x) in norms.iter_mut().zip(row.iter()) {
                *s += f64::from(x) * f64::from(x);
            }
        }
        let scale: Vec<f64> = norms
            .iter()
            .map(|&s| if s > 0.0 { 1.0 / s.sqrt() } else { 0.0 })
            .collect();
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .for_each(|mut row| {
                for (x, &k) in row.iter_mut().zip(&scale) {
                    *x = (f64::from(*x) * k) as f32;
                }
            });
        Ok(out)
    }

    fn tf_of(&self, c: f32) -> f64 {
        let c = f64::from(c);
        match self.tf {
            TermFrequency::Raw => c,
            TermFrequency::Sublinear if c > 0.0 => (1.0 + c.ln()).max(0.0),
            TermFrequency::Sublinear => 0.0,
        }
    }
}

/// Tf-idf of a `terms x documents` count matrix: [`TfIdf::fit`] then [`TfIdf::transform`] on
/// the same matrix. Each column `j` of the result is `tf(C[:, j]) ⊙ idf` scaled to unit l2
/// norm, `idf_i = ln((1 + n) / (1 + df_i)) + 1` (formulas at [`TfIdf`]).
///
/// ```
/// use nmf_gpu::ndarray::array;
/// use nmf_gpu::text::{tfidf, TermFrequency};
///
/// // 2 terms x 2 documents; term 0 is in both documents (idf 1), term 1 only in document 1
/// // (idf ln(3/2) + 1).
/// let x = tfidf(array![[1.0, 1.0], [0.0, 1.0]].view(), TermFrequency::Raw)?;
/// let idf1 = (1.5f32).ln() + 1.0;
/// assert_eq!(x[[0, 0]], 1.0);
/// assert!((x[[1, 1]] - idf1 / (1.0 + idf1 * idf1).sqrt()).abs() < 1e-6);
/// # Ok::<(), nmf_gpu::NmfError>(())
/// ```
pub fn tfidf(counts: ArrayView2<'_, f32>, tf: TermFrequency) -> Result<Array2<f32>> {
    TfIdf::fit(counts, tf)?.transform(counts)
}

fn check_counts(counts: ArrayView2<'_, f32>) -> Result<()> {
    crate::engine::check_data(counts)
}
