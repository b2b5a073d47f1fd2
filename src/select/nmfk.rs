//! NMFk (Alexandrov & Vesselinov, 2014; Vesselinov et al., 2018): the rank whose basis vectors
//! come back the same from perturbed copies of the data.
//!
//! For each rank `r`, `T` fits are run on resampled copies `V ⊙ (1 + U)` of the data, `U`
//! uniform in `[−δ, δ]` entrywise ([`perturb`], δ = 3% by default, as NMFk). The `T·r`
//! columns of the W's, scaled to unit length, are clustered into `r` clusters under NMFk's
//! constraint that each run gives exactly one column to each cluster ([`cluster_bases`]):
//! starting from the columns of the first run as centroids, each run's columns are matched to
//! the centroids by an optimal assignment (the Hungarian algorithm on the cosine distances
//! `1 − cos`), and each centroid becomes the normalised mean of its columns, until the
//! matching no longer changes.
//!
//! The **silhouette** of a column `p` in cluster `c` is `s = (b − a) / max(a, b)`, `a` its mean
//! cosine distance to the other columns of `c`, `b` the smallest mean distance to the columns
//! of another cluster ([`silhouettes`]). A rank whose basis is stable gives tight, separated
//! clusters (silhouettes near 1); past the data's rank the extra columns fit noise and differ
//! from run to run, and the minimum cluster silhouette falls.

use ndarray::{Array2, ArrayView2, Axis};
use rand::Rng;

use crate::error::{NmfError, Result};
use crate::linalg::gemm::matmul;

/// A resampled copy of `v`: each entry multiplied by `1 + u`, `u` uniform in `[−noise, noise]`
/// (NMFk's multiplicative noise). `noise` in `[0, 1)` keeps the copy nonnegative.
pub fn perturb(v: ArrayView2<'_, f32>, noise: f32, rng: &mut impl Rng) -> Array2<f32> {
    if noise == 0.0 {
        return v.to_owned();
    }
    v.mapv(|x| x * (1.0 + rng.random_range(-noise..=noise)))
}

/// `w` with each column scaled to unit Euclidean length (zero columns stay zero).
pub fn unit_columns(w: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut out = w.to_owned();
    for mut col in out.axis_iter_mut(Axis(1)) {
        let norm = col
            .iter()
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            col.mapv_inplace(|x| (x as f64 / norm) as f32);
        }
    }
    out
}

/// The clustering of the columns of `T` bases (each m x r) into `r` clusters, one column of
/// each run per cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct BasisClusters {
    /// `labels[t][k]`: the cluster of column `k` of run `t` (a permutation of `0..r` per run).
    pub labels: Vec<Vec<usize>>,
    /// The centroids (m x r), unit columns.
    pub centroids: Array2<f32>,
    /// Rounds of matching until it stopped changing.
    pub rounds: usize,
}

/// Cluster the columns of `bases` (each m x r, columns of unit length) under the constraint
/// that each run gives one column to each cluster (see the module docs).
///
/// Errors: no run, or runs of different shapes.
pub fn cluster_bases(bases: &[Array2<f32>]) -> Result<BasisClusters> {
    const MAX_ROUNDS: usize = 100;
    let first = bases.first().ok_or_else(|| NmfError::InvalidParameter {
        name: "runs",
        value: "0".into(),
        expected: "at least one basis to cluster".into(),
    })?;
    let (m, r) = first.dim();
    if let Some(bad) = bases.iter().find(|b| b.dim() != (m, r)) {
        return Err(NmfError::ShapeMismatch {
            what: "a basis W of NMFk",
            expected: format!("{m} x {r}"),
            found: format!("{} x {}", bad.nrows(), bad.ncols()),
        });
    }
    let mut centroids = first.clone();
    let mut labels: Vec<Vec<usize>> = vec![Vec::new(); bases.len()];
    let mut rounds = 0;
    while rounds < MAX_ROUNDS {
        rounds += 1;
        let mut changed = false;
        for (t, w) in bases.iter().enumerate() {
            // cos(column k of run t, centroid c)
            let sim = matmul(w.t(), centroids.view());
            let cost: Vec<Vec<f64>> = (0..r)
                .map(|k| (0..r).map(|c| 1.0 - sim[[k, c]] as f64).collect())
                .collect();
            let assign = hungarian(&cost);
            if labels[t] != assign {
                labels[t] = assign;
                changed = true;
            }
        }
        let mut next = Array2::<f32>::zeros((m, r));
        for (w, lab) in bases.iter().zip(&labels) {
            for (k, &c) in lab.iter().enumerate() {
                let mut col = next.column_mut(c);
                col += &w.column(k);
            }
        }
        centroids = unit_columns(next.view());
        if !changed {
            break;
        }
    }
    Ok(BasisClusters {
        labels,
        centroids,
        rounds,
    })
}

/// Silhouettes of a [`BasisClusters`] clustering (cosine distance).
#[derive(Debug, Clone, PartialEq)]
pub struct Silhouettes {
    /// The mean silhouette of each cluster's columns.
    pub per_cluster: Vec<f64>,
    /// The smallest of `per_cluster`: NMFk's measure of the least stable component.
    pub min: f64,
    /// The mean silhouette over every column.
    pub mean: f64,
}

/// The silhouettes of the columns of `bases` (each m x r, unit columns) clustered by
/// `clusters`. With one run, or one cluster, every silhouette is 0 (nothing to compare).
pub fn silhouettes(bases: &[Array2<f32>], clusters: &BasisClusters) -> Result<Silhouettes> {
    let t_runs = bases.len();
    let r = clusters.centroids.ncols();
    let m = clusters.centroids.nrows();
    if clusters.labels.len() != t_runs || bases.iter().any(|b| b.dim() != (m, r)) {
        return Err(NmfError::ShapeMismatch {
            what: "the bases of a silhouette computation",
            expected: format!("{} runs of {m} x {r}", clusters.labels.len()),
            found: format!("{t_runs} runs"),
        });
    }
    if t_runs < 2 || r < 2 {
        return Ok(Silhouettes {
            per_cluster: vec![0.0; r],
            min: 0.0,
            mean: 0.0,
        });
    }
    // Every column side by side (m x T·r), point p = t·r + k, and its cluster.
    let points = t_runs * r;
    let mut x = Array2::<f32>::zeros((m, points));
    let mut cluster_of = vec![0usize; points];
    for (t, (w, lab)) in bases.iter().zip(&clusters.labels).enumerate() {
        for k in 0..r {
            x.column_mut(t * r + k).assign(&w.column(k));
            cluster_of[t * r + k] = lab[k];
        }
    }
    let gram = matmul(x.t(), x.view());
    let mut per_cluster = vec![0.0f64; r];
    let mut total = 0.0f64;
    let mut sums = vec![0.0f64; r];
    for p in 0..points {
        sums.iter_mut().for_each(|s| *s = 0.0);
        let row = gram.row(p);
        for q in 0..points {
            if q != p {
                let d = (1.0 - row[q] as f64).clamp(0.0, 2.0);
                sums[cluster_of[q]] += d;
            }
        }
        let own = cluster_of[p];
        let a = sums[own] / (t_runs - 1) as f64;
        let b = (0..r)
            .filter(|&c| c != own)
            .map(|c| sums[c] / t_runs as f64)
            .fold(f64::INFINITY, f64::min);
        let s = if a.max(b) > 0.0 {
            (b - a) / a.max(b)
        } else {
            0.0
        };
        per_cluster[own] += s / t_runs as f64;
        total += s;
    }
    let min = per_cluster.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(Silhouettes {
        per_cluster,
        min,
        mean: total / points as f64,
    })
}

/// The minimum-cost assignment of a square cost matrix (Hungarian algorithm, O(n³)):
/// `result[row] = column`.
pub(crate) fn hungarian(cost: &[Vec<f64>]) -> Vec<usize> {
    let n = cost.len();
    let score = ndarray::Array2::from_shape_fn((n, n), |(i, j)| -cost[i][j]);
    let mut assignment = vec![0usize; n];
    for (i, j) in crate::linalg::assign_max(score.view()) {
        assignment[i] = j;
    }
    assignment
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hungarian_finds_the_optimum() {
        let cost = vec![
            vec![4.0, 1.0, 3.0],
            vec![2.0, 0.0, 5.0],
            vec![3.0, 2.0, 2.0],
        ];
        let a = hungarian(&cost);
        let total: f64 = a.iter().enumerate().map(|(i, &j)| cost[i][j]).sum();
        assert_eq!(total, 5.0);
        let mut cols = a.clone();
        cols.sort();
        assert_eq!(cols, vec![0, 1, 2]);
    }

    #[test]
    fn permuted_copies_cluster_perfectly() {
        let base = unit_columns(
            Array2::from_shape_fn((6, 3), |(i, k)| if i / 2 == k { 1.0 } else { 0.05 }).view(),
        );
        let perms = [[0, 1, 2], [2, 0, 1], [1, 2, 0], [0, 2, 1]];
        let bases: Vec<Array2<f32>> = perms
            .iter()
            .map(|p| Array2::from_shape_fn((6, 3), |(i, k)| base[[i, p[k]]]))
            .collect();
        let cl = cluster_bases(&bases).unwrap();
        for (t, p) in perms.iter().enumerate() {
            // Columns holding the same original column share a cluster across runs.
            for (k, original) in p.iter().enumerate() {
                let k0 = perms[0].iter().position(|x| x == original).unwrap();
                assert_eq!(cl.labels[t][k], cl.labels[0][k0]);
            }
        }
        let s = silhouettes(&bases, &cl).unwrap();
        assert!(s.min > 0.99, "{s:?}");
    }
}
