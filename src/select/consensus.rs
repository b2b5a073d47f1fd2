//! Consensus clustering of restarts (Brunet, Tamayo, Golub & Mesirov, PNAS 2004) and the
//! stability measures computed from it.
//!
//! Each run of NMF clusters the samples by their strongest component (sample `j` goes to
//! `argmax_k H[k, j]`); its **connectivity matrix** is `C⁽ᵗ⁾_ij = 1` when samples `i` and `j`
//! share a cluster, else 0. The **consensus matrix** is their mean over the runs,
//! `C = (1/T) Σ_t C⁽ᵗ⁾`, with entries in `[0, 1]`; a perfectly stable rank gives a 0/1 matrix.
//!
//! - **Cophenetic correlation** (Brunet et al.): cluster the samples hierarchically with
//!   average linkage (UPGMA) on the distance `D = 1 − C`; the cophenetic distance of `i` and
//!   `j` is the height at which they first share a cluster. The score is Pearson's correlation
//!   of the cophenetic distances with `D` over the pairs `i < j`: 1 when the consensus is a
//!   0/1 block matrix, lower as the runs disagree. When `D` is constant over the pairs (every
//!   run puts all samples together, say) both sets of distances coincide and the score is 1.
//! - **Dispersion** (Kim & Park, Bioinformatics 2007): `ρ = (1/n²) Σ_ij 4 (C_ij − ½)²`, in
//!   `[0, 1]`, 1 for a 0/1 consensus.
//!
//! The hierarchical clustering is the nearest-neighbour chain algorithm (Murtagh 1983) with the
//! Lance–Williams update for average linkage, `d(k, i∪j) = (|i| d(k,i) + |j| d(k,j)) / (|i|+|j|)`:
//! O(n²) time and one n x n matrix of f64.

use ndarray::{Array2, ArrayView2};

use crate::error::{NmfError, Result};

/// Bytes taken by [`consensus_matrix`] and [`average_linkage`] together for `n`
/// samples: the f32 consensus and the f64 working distances (for the memory check).
pub fn consensus_bytes(n: usize) -> u64 {
    (n as u64).saturating_mul(n as u64).saturating_mul(12)
}

/// The consensus matrix (n x n) of `runs` labelings of the same `n` samples: entry `(i, j)` is
/// the share of runs that put `i` and `j` in the same cluster.
///
/// Errors: no run, or runs of different lengths.
pub fn consensus_matrix(runs: &[Vec<usize>]) -> Result<Array2<f32>> {
    let n = match runs.first() {
        Some(first) => first.len(),
        None => {
            return Err(NmfError::InvalidParameter {
                name: "runs",
                value: "0".into(),
                expected: "at least one labeling to build a consensus matrix from".into(),
            })
        }
    };
    if let Some(bad) = runs.iter().find(|l| l.len() != n) {
        return Err(NmfError::LabelLengthMismatch {
            pred: bad.len(),
            truth: n,
        });
    }
    let mut c = Array2::<f32>::zeros((n, n));
    let share = 1.0 / runs.len() as f32;
    let mut members: Vec<Vec<usize>> = Vec::new();
    for labels in runs {
        for m in members.iter_mut() {
            m.clear();
        }
        for (j, &l) in labels.iter().enumerate() {
            if l >= members.len() {
                members.resize_with(l + 1, Vec::new);
            }
            members[l].push(j);
        }
        for group in &members {
            for &i in group {
                let mut row = c.row_mut(i);
                for &j in group {
                    row[j] += share;
                }
            }
        }
    }
    // Exact ones on the diagonal and where every run agreed (no rounding drift).
    let full = runs.len() as f32 * share;
    c.mapv_inplace(|x| {
        if (x - full).abs() < 1e-5 {
            1.0
        } else {
            x.min(1.0)
        }
    });
    Ok(c)
}

/// Dispersion of a consensus matrix (Kim & Park 2007): `(1/n²) Σ_ij 4 (C_ij − ½)²`, in
/// `[0, 1]`; 1 when every entry is 0 or 1.
pub fn dispersion(c: ArrayView2<'_, f32>) -> f64 {
    let n2 = (c.nrows() * c.ncols()) as f64;
    if n2 == 0.0 {
        return 1.0;
    }
    c.iter()
        .map(|&x| {
            let d = x as f64 - 0.5;
            4.0 * d * d
        })
        .sum::<f64>()
        / n2
}

/// A dendrogram of `n` leaves: merge `k` (0-based) creates node `n + k` from two nodes
/// (leaves are `0..n`) at a height.
#[derive(Debug, Clone, PartialEq)]
pub struct Dendrogram {
    /// Number of leaves.
    pub leaves: usize,
    /// `(left, right, height, size)` of each merge, in the order they were made.
    pub merges: Vec<(usize, usize, f64, usize)>,
}

impl Dendrogram {
    /// The leaves in the order a depth-first walk from the root visits them (left child
    /// first): samples of a cluster are contiguous, the order used to draw a heat map.
    pub fn leaf_order(&self) -> Vec<usize> {
        let n = self.leaves;
        if n == 0 {
            return Vec::new();
        }
        let mut order = Vec::with_capacity(n);
        // The roots: the last merge, or every leaf not merged (none when n > 1).
        let mut stack = vec![n + self.merges.len().saturating_sub(1)];
        if self.merges.is_empty() {
            stack = (0..n).rev().collect();
        }
        while let Some(node) = stack.pop() {
            if node < n {
                order.push(node);
            } else {
                let (a, b, _, _) = self.merges[node - n];
                stack.push(b);
                stack.push(a);
            }
        }
        order
    }
}

/// Average-linkage (UPGMA) hierarchical clustering of `n` points from their distances
/// (`dist` n x n, symmetric, read on and above the diagonal only), with the cophenetic
/// correlation against those distances. Returns `(dendrogram, cophenetic correlation)`.
pub fn average_linkage(dist: ArrayView2<'_, f32>) -> Result<(Dendrogram, f64)> {
    let n = dist.nrows();
    if dist.ncols() != n {
        return Err(NmfError::ShapeMismatch {
            what: "the distance matrix",
            expected: format!("{n} x {n} (square)"),
            found: format!("{} x {}", dist.nrows(), dist.ncols()),
        });
    }
    if let Some(((i, j), &x)) = dist
        .indexed_iter()
        .find(|&((i, j), x)| j > i && !x.is_finite())
    {
        return Err(NmfError::NonFiniteInput {
            row: i,
            col: j,
            value: x,
        });
    }
    // Working distances between the active clusters, in f64 (Lance–Williams updates).
    let mut d = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        for j in i + 1..n {
            let x = dist[[i, j]] as f64;
            d[[i, j]] = x;
            d[[j, i]] = x;
        }
    }
    let mut active = vec![true; n];
    let mut size = vec![1usize; n];
    let mut node: Vec<usize> = (0..n).collect();
    let mut members: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    let mut merges = Vec::with_capacity(n.saturating_sub(1));
    let mut chain: Vec<usize> = Vec::with_capacity(n);
    let mut stats = PairStats::default();
    let mut remaining = n;
    while remaining > 1 {
        if chain.is_empty() {
            if let Some(first) = active.iter().position(|&a| a) {
                chain.push(first);
            }
        }
        let (a, b) = loop {
            let Some(&a) = chain.last() else {
                return Err(NmfError::InvalidParameter {
                    name: "distance matrix",
                    value: format!("{n} x {n}"),
                    expected: "finite distances".into(),
                });
            };
            let prev = chain.len().checked_sub(2).map(|k| chain[k]);
            // The previous element wins ties, so the chain always ends at a reciprocal pair.
            let mut best = prev;
            let mut best_d = prev.map_or(f64::INFINITY, |p| d[[a, p]]);
            for k in 0..n {
                if k != a && active[k] && d[[a, k]] < best_d {
                    best = Some(k);
                    best_d = d[[a, k]];
                }
            }
            let Some(b) = best else {
                return Err(NmfError::InvalidParameter {
                    name: "distance matrix",
                    value: format!("{n} x {n}"),
                    expected: "finite distances".into(),
                });
            };
            if Some(b) == prev {
                chain.pop();
                chain.pop();
                break (a, b);
            }
            chain.push(b);
        };
        // Merge b into a's slot.
        let (keep, gone) = if a < b { (a, b) } else { (b, a) };
        let height = d[[a, b]];
        for &x in &members[keep] {
            for &y in &members[gone] {
                stats.add(height, dist_at(dist, x, y));
            }
        }
        let (sa, sb) = (size[keep] as f64, size[gone] as f64);
        for k in 0..n {
            if active[k] && k != keep && k != gone {
                let v = (sa * d[[keep, k]] + sb * d[[gone, k]]) / (sa + sb);
                d[[keep, k]] = v;
                d[[k, keep]] = v;
            }
        }
        active[gone] = false;
        size[keep] += size[gone];
        let moved = std::mem::take(&mut members[gone]);
        members[keep].extend(moved);
        merges.push((node[keep], node[gone], height, size[keep]));
        node[keep] = n + merges.len() - 1;
        remaining -= 1;
    }
    Ok((Dendrogram { leaves: n, merges }, stats.correlation()))
}

/// `dist[min(x,y), max(x,y)]` (the upper triangle is the one read).
fn dist_at(dist: ArrayView2<'_, f32>, x: usize, y: usize) -> f64 {
    if x < y {
        dist[[x, y]] as f64
    } else {
        dist[[y, x]] as f64
    }
}

/// Running sums for Pearson's correlation of (cophenetic, original) distance pairs.
#[derive(Debug, Default)]
struct PairStats {
    count: f64,
    sx: f64,
    sy: f64,
    sxx: f64,
    syy: f64,
    sxy: f64,
}

impl PairStats {
    fn add(&mut self, x: f64, y: f64) {
        self.count += 1.0;
        self.sx += x;
        self.sy += y;
        self.sxx += x * x;
        self.syy += y * y;
        self.sxy += x * y;
    }

    /// Pearson's r; 1 when the original distances are constant (the cophenetic ones then
    /// equal them) or there are no pairs.
    fn correlation(&self) -> f64 {
        if self.count == 0.0 {
            return 1.0;
        }
        let c = self.count;
        let vx = self.sxx - self.sx * self.sx / c;
        let vy = self.syy - self.sy * self.sy / c;
        let cov = self.sxy - self.sx * self.sy / c;
        let scale = self.sxx.max(self.syy).max(1e-300);
        if vy <= 1e-12 * scale || vx <= 1e-12 * scale {
            return 1.0;
        }
        (cov / (vx.sqrt() * vy.sqrt())).clamp(-1.0, 1.0)
    }
}

/// The consensus of one rank: the matrix and its measures.
#[derive(Debug, Clone)]
pub struct Consensus {
    /// The consensus matrix (n x n).
    pub matrix: Array2<f32>,
    /// Average-linkage clustering of `1 − matrix`.
    pub dendrogram: Dendrogram,
    /// Cophenetic correlation of that clustering.
    pub cophenetic: f64,
    /// Dispersion of the matrix.
    pub dispersion: f64,
}

impl Consensus {
    /// The consensus of the labelings `runs` (each of the same `n` samples) and its measures.
    pub fn of(runs: &[Vec<usize>]) -> Result<Consensus> {
        let matrix = consensus_matrix(runs)?;
        let dist = matrix.mapv(|x| 1.0 - x);
        let (dendrogram, cophenetic) = average_linkage(dist.view())?;
        let dispersion = dispersion(matrix.view());
        Ok(Consensus {
            matrix,
            dendrogram,
            cophenetic,
            dispersion,
        })
    }

    /// The samples in the order of the clustering (clusters contiguous).
    pub fn order(&self) -> Vec<usize> {
        self.dendrogram.leaf_order()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgma_matches_a_hand_example() {
        // Points on a line at 0, 1, 5, 6.5: {0,1} at 1, {2,3} at 1.5, then at the mean 5.25.
        let x = [0.0f32, 1.0, 5.0, 6.5];
        let d = Array2::from_shape_fn((4, 4), |(i, j)| (x[i] - x[j]).abs());
        let (tree, coph) = average_linkage(d.view()).unwrap();
        let mut heights: Vec<f64> = tree.merges.iter().map(|m| m.2).collect();
        heights.sort_by(f64::total_cmp);
        assert!((heights[0] - 1.0).abs() < 1e-9);
        assert!((heights[1] - 1.5).abs() < 1e-9);
        assert!((heights[2] - (5.0 + 6.5 + 4.0 + 5.5) / 4.0).abs() < 1e-9);
        assert!(coph > 0.9 && coph <= 1.0);
        let order = tree.leaf_order();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2, 3]);
        let pos = |k: usize| order.iter().position(|&o| o == k).unwrap();
        assert_eq!((pos(0) as isize - pos(1) as isize).abs(), 1);
    }

    #[test]
    fn stable_consensus_has_unit_scores() {
        let labels = vec![0, 0, 1, 1, 2, 2, 2];
        let renamed = vec![2, 2, 0, 0, 1, 1, 1];
        let c = Consensus::of(&[labels, renamed]).unwrap();
        assert!((c.cophenetic - 1.0).abs() < 1e-12);
        assert!((c.dispersion - 1.0).abs() < 1e-12);
    }
}
