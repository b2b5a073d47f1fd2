//! Clustering from factorizations: labels from H, and purity, NMI and ARI against known labels.
//!
//! **Labels.** A factorization clusters its samples by their strongest component:
//! sample `j` of `V ≈ W H` goes to `argmax_t H[t, j]` ([`labels_from_columns`]); node `i` of a
//! symmetric factorization `A ≈ H Hᵀ` (H is n x k) goes to `argmax_t H[i, t]`
//! ([`labels_from_rows`]). Ties go to the lowest index; NaN entries never win.
//!
//! **Scores.** Labels are arbitrary `usize` ids: only the partition they induce matters, so every
//! score is invariant under renaming the clusters. With `n` samples, predicted clusters `ω_a`,
//! true classes `c_b` and the contingency table `n_ab = |ω_a ∩ c_b|` (marginals `a_a`, `b_b`):
//!
//! ```text
//!   purity = (1/n) Σ_a max_b n_ab
//!   MI     = Σ_ab (n_ab/n) ln(n·n_ab / (a_a b_b)),   H(ω) = −Σ_a (a_a/n) ln(a_a/n)
//!   NMI    = MI / ((H(ω) + H(c)) / 2)                (scikit-learn's default, arithmetic mean)
//!   ARI    = (Σ_ab C(n_ab,2) − E) / (½(Σ_a C(a_a,2) + Σ_b C(b_b,2)) − E),
//!            E = Σ_a C(a_a,2) Σ_b C(b_b,2) / C(n,2)
//! ```
//!
//! The limit cases follow scikit-learn: NMI is 1 when both labelings put every sample in one
//! cluster, and 0 when the mutual information is 0 otherwise; ARI is 1 when the two labelings
//! agree on every pair of samples (which includes `n = 1`).

use std::collections::HashMap;

use ndarray::{ArrayView1, ArrayView2};

use crate::error::{NmfError, Result};

/// The cluster of each sample of `V ≈ W H`: `argmax_t H[t, j]` for each column `j` of H (r x n).
///
/// Ties (an all-zero column, say) go to the lowest component index; NaN entries are ignored.
/// An H with no rows labels every sample 0.
pub fn labels_from_columns(h: ArrayView2<'_, f32>) -> Vec<usize> {
    h.columns().into_iter().map(argmax).collect()
}

/// The cluster of each row of an n x k factor: `argmax_t H[i, t]`, for symmetric NMF
/// (`A ≈ H Hᵀ`, node `i` goes to its strongest component).
///
/// Ties (an all-zero row, e.g. an isolated node) go to the lowest index; NaN entries are
/// ignored. An H with no columns labels every row 0.
pub fn labels_from_rows(h: ArrayView2<'_, f32>) -> Vec<usize> {
    h.rows().into_iter().map(argmax).collect()
}

/// Index of the first largest entry (NaN never wins; 0 for an empty or all-NaN lane).
fn argmax(lane: ArrayView1<'_, f32>) -> usize {
    let mut best = 0;
    let mut best_value = f32::NEG_INFINITY;
    for (i, &x) in lane.iter().enumerate() {
        if x > best_value {
            best = i;
            best_value = x;
        }
    }
    best
}

/// The contingency table of two labelings of the same samples, in sparse form.
struct Contingency {
    /// Number of samples.
    n: u64,
    /// Sizes of the predicted clusters.
    pred_sizes: Vec<u64>,
    /// Sizes of the true classes.
    truth_sizes: Vec<u64>,
    /// The nonzero cells `(a, b, n_ab)`.
    cells: Vec<(usize, usize, u64)>,
}

impl Contingency {
    fn new(pred: &[usize], truth: &[usize]) -> Result<Self> {
        check_labels(pred, truth)?;
        let dense = |labels: &[usize]| -> (Vec<usize>, Vec<u64>) {
            let mut ids: HashMap<usize, usize> = HashMap::new();
            let mut sizes = Vec::new();
            let mapped = labels
                .iter()
                .map(|&l| {
                    let next = ids.len();
                    let id = *ids.entry(l).or_insert(next);
                    if id == sizes.len() {
                        sizes.push(0);
                    }
                    sizes[id] += 1;
                    id
                })
                .collect();
            (mapped, sizes)
        };
        let (p, pred_sizes) = dense(pred);
        let (t, truth_sizes) = dense(truth);
        let mut table: HashMap<(usize, usize), u64> = HashMap::new();
        for (&a, &b) in p.iter().zip(&t) {
            *table.entry((a, b)).or_insert(0) += 1;
        }
        Ok(Contingency {
            n: pred.len() as u64,
            pred_sizes,
            truth_sizes,
            cells: table.into_iter().map(|((a, b), x)| (a, b, x)).collect(),
        })
    }

    /// `Σ x ln(x / n)` over the given counts, divided by n (minus the entropy).
    fn neg_entropy(&self, sizes: &[u64]) -> f64 {
        let n = self.n as f64;
        sizes
            .iter()
            .filter(|&&s| s > 0)
            .map(|&s| {
                let p = s as f64 / n;
                p * p.ln()
            })
            .sum()
    }
}

/// Purity: the share of samples whose predicted cluster's most common true class is their own,
/// `(1/n) Σ_a max_b n_ab`, in `(0, 1]`.
///
/// Not symmetric in its arguments, and it rewards many small clusters (n singletons score 1);
/// compare partitions with the same number of clusters, or prefer
/// [`normalized_mutual_info`] / [`adjusted_rand_index`].
pub fn purity(pred: &[usize], truth: &[usize]) -> Result<f64> {
    check_labels(pred, truth)?;
    let mut table: HashMap<usize, HashMap<usize, u64>> = HashMap::new();
    for (&a, &b) in pred.iter().zip(truth) {
        *table.entry(a).or_default().entry(b).or_insert(0) += 1;
    }
    let hits: u64 = table
        .values()
        .map(|row| row.values().copied().max().unwrap_or(0))
        .sum();
    Ok(hits as f64 / pred.len() as f64)
}

/// Normalized mutual information `MI / ((H(pred) + H(truth)) / 2)` in `[0, 1]`, the arithmetic
/// normalisation of scikit-learn's `normalized_mutual_info_score` (natural logarithms; the base
/// cancels). Symmetric in its arguments; 1 for the same partition under any renaming.
pub fn normalized_mutual_info(pred: &[usize], truth: &[usize]) -> Result<f64> {
    let c = Contingency::new(pred, truth)?;
    let (kp, kt) = (c.pred_sizes.len(), c.truth_sizes.len());
    if kp == 1 && kt == 1 {
        // Neither labeling splits the data: a perfect (trivial) match.
        return Ok(1.0);
    }
    let n = c.n as f64;
    let mi: f64 = c
        .cells
        .iter()
        .map(|&(a, b, x)| {
            let x = x as f64;
            let outer = c.pred_sizes[a] as f64 * c.truth_sizes[b] as f64;
            (x / n) * (n * x / outer).ln()
        })
        .sum::<f64>()
        .max(0.0);
    if mi == 0.0 {
        return Ok(0.0);
    }
    let (hp, ht) = (
        -c.neg_entropy(&c.pred_sizes),
        -c.neg_entropy(&c.truth_sizes),
    );
    let normalizer = 0.5 * (hp + ht);
    Ok((mi / normalizer).clamp(0.0, 1.0))
}

/// Adjusted Rand index (Hubert & Arabie 1985), as scikit-learn's `adjusted_rand_score`: the
/// share of sample pairs on which the labelings agree, corrected for chance. 1 for the same
/// partition, about 0 for independent labelings, negative when worse than chance (down to
/// −1/2). Symmetric in its arguments.
pub fn adjusted_rand_index(pred: &[usize], truth: &[usize]) -> Result<f64> {
    let c = Contingency::new(pred, truth)?;
    // Ordered pair counts, as scikit-learn's pair_confusion_matrix (each pair counted twice).
    let n = u128::from(c.n);
    let sum_squares: u128 = c
        .cells
        .iter()
        .map(|&(_, _, x)| u128::from(x) * u128::from(x))
        .sum();
    let pred_sq: u128 = c
        .pred_sizes
        .iter()
        .map(|&x| u128::from(x) * u128::from(x))
        .sum();
    let truth_sq: u128 = c
        .truth_sizes
        .iter()
        .map(|&x| u128::from(x) * u128::from(x))
        .sum();
    // Pairs together in both, in pred only, in truth only, in neither.
    let tp = sum_squares - n;
    let fp = pred_sq - sum_squares;
    let fn_ = truth_sq - sum_squares;
    let tn = n * n - fp - fn_ - sum_squares;
    if fp == 0 && fn_ == 0 {
        return Ok(1.0);
    }
    let (tp, fp, fn_, tn) = (tp as f64, fp as f64, fn_ as f64, tn as f64);
    let num = 2.0 * (tp * tn - fn_ * fp);
    let den = (tp + fn_) * (fn_ + tn) + (tp + fp) * (fp + tn);
    Ok(num / den)
}

/// `Ok` when the two labelings are of the same, nonzero number of items.
fn check_labels(pred: &[usize], truth: &[usize]) -> Result<()> {
    if pred.len() != truth.len() {
        return Err(NmfError::LabelLengthMismatch {
            pred: pred.len(),
            truth: truth.len(),
        });
    }
    if pred.is_empty() {
        return Err(NmfError::EmptyLabels);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn argmax_ties_and_nan() {
        let h = array![[0.0, 1.0, f32::NAN], [0.0, 2.0, 1.0]];
        assert_eq!(labels_from_columns(h.view()), vec![0, 1, 1]);
        assert_eq!(labels_from_rows(h.view()), vec![1, 1]);
    }
}
