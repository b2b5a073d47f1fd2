//! Planted partitions: the stochastic block model with `k` equal groups.

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Graph;
use crate::error::{NmfError, Result};

/// A planted partition: the graph and the group of each node.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantedPartition {
    graph: Graph,
    labels: Vec<usize>,
}

impl PlantedPartition {
    /// The graph; its nodes are `0..n`.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }
    /// The group `0..k` of each node.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }
    /// Take `(graph, labels)`.
    pub fn into_parts(self) -> (Graph, Vec<usize>) {
        (self.graph, self.labels)
    }
}

/// A planted-partition (stochastic block model) graph: `k` groups of `group_size` nodes
/// (node `i` is in group `i / group_size`), each pair `{i, j}`, `i ≠ j`, joined with weight 1
/// independently with probability `p_in` when in the same group and `p_out` otherwise; seeded.
///
/// The expected degree is `(group_size − 1)·p_in + (k − 1)·group_size·p_out`; the groups are
/// detectable when `p_in` clearly exceeds `p_out`.
pub fn planted_partition(
    k: usize,
    group_size: usize,
    p_in: f64,
    p_out: f64,
    seed: u64,
) -> Result<PlantedPartition> {
    crate::error::check_nonzero(k, "k", "the number of groups must be at least 1")?;
    crate::error::check_nonzero(group_size, "group_size", "each group needs at least 1 node")?;
    for (name, p) in [("p_in", p_in), ("p_out", p_out)] {
        if !(0.0..=1.0).contains(&p) {
            return Err(NmfError::InvalidParameter {
                name,
                value: p.to_string(),
                expected: "a probability in [0, 1]".into(),
            });
        }
    }
    let n = k
        .checked_mul(group_size)
        .ok_or(NmfError::InvalidParameter {
            name: "k * group_size",
            value: format!("{k} * {group_size}"),
            expected: "a number of nodes that fits in memory".into(),
        })?;
    let limit = crate::io::default_max_bytes();
    let bytes = (n as u128) * (n as u128) * 4;
    if bytes > u128::from(limit) {
        return Err(NmfError::InvalidParameter {
            name: "k * group_size",
            value: n.to_string(),
            expected: format!(
                "the dense {n} x {n} adjacency needs {bytes} bytes, more than the limit of {limit}; use fewer nodes"
            ),
        });
    }
    let labels: Vec<usize> = (0..n).map(|i| i / group_size).collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut a = Array2::<f32>::zeros((n, n));
    for i in 0..n {
        for j in (i + 1)..n {
            let p = if labels[i] == labels[j] { p_in } else { p_out };
            if rng.random::<f64>() < p {
                a[[i, j]] = 1.0;
                a[[j, i]] = 1.0;
            }
        }
    }
    Ok(PlantedPartition {
        graph: Graph {
            nodes: (0..n as i64).collect(),
            adjacency: a,
        },
        labels,
    })
}
