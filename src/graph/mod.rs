//! Graphs for symmetric NMF: edge-list and GML readers, adjacency matrices, planted-partition generators.
//!
//! A [`Graph`] is an undirected weighted graph held as its dense symmetric adjacency matrix `A`
//! (n x n, f32, `A[i,j] = A[j,i] = w` for an edge `{u_i, u_j}` of weight `w`, zero elsewhere)
//! together with the sorted list of node ids: row and column `i` of `A` belong to
//! `nodes()[i]`. This is the input of [`crate::symmetric`] (`A ≈ H Hᵀ`).
//!
//! **Edge lists** ([`read_edge_list`]): one edge `u v [weight]` per line, fields separated by
//! spaces or tabs, integer node ids (any `i64`), an optional finite nonnegative weight
//! (default 1). Blank lines and lines starting with `#` or `%` are skipped, and text from a `#`
//! or `%` to the end of a line is a comment. Node ids need not be contiguous: the graph's nodes
//! are the ids that appear, sorted ascending. Direction is ignored. By default
//! ([`EdgeOptions::default`]):
//! - an edge listed more than once, in either direction, keeps its largest weight
//!   ([`Duplicates::Max`]), so a file that lists every edge both ways gives the same graph as one
//!   that lists it once ([`Duplicates::Sum`] adds the weights instead, [`Duplicates::Error`]
//!   refuses the file);
//! - a self loop `u u w` sets the diagonal entry `A[u,u] = w` ([`SelfLoops::Keep`];
//!   [`SelfLoops::Drop`] ignores it, though the node still belongs to the graph).
//!
//! **GML** ([`read_gml`]): the subset of the Graph Modelling Language that network data sets
//! use: `graph [ node [ id N ... ] ... edge [ source S target T ... ] ... ]`, with one node
//! attribute read on request (e.g. `value`, a class label) and the edge weight from `weight`
//! (else a numeric `value`, else 1). Other keys are skipped.
//!
//! **Planted partitions** ([`planted_partition`]): the stochastic block model with `k` equal
//! groups, each pair of nodes joined independently with probability `p_in` inside a group and
//! `p_out` across groups.
//!
//! Every reader refuses a graph whose dense adjacency would exceed the input limit of
//! [`crate::io::default_max_bytes`] before allocating it, and reports malformed input as
//! [`NmfError::Format`] with the file, line and field.
//!
//! The readers share the error helpers of [`crate::io`] and bound the length of a line
//! ([`EdgeOptions::max_line_bytes`], [`NmfError::LineTooLong`]).

mod edgelist;
mod gml;
mod planted;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use ndarray::{Array2, ArrayView2};

use crate::error::{NmfError, Result};
use crate::io::format_error;
use crate::io::DEFAULT_MAX_LINE_BYTES;

pub use edgelist::{parse_edge_list, read_edge_list, read_edge_list_with};
pub use gml::{parse_gml, read_gml, read_gml_with, GmlGraph, GmlValue};
pub use planted::{planted_partition, PlantedPartition};

/// An undirected weighted graph: sorted node ids and the dense symmetric adjacency matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    nodes: Vec<i64>,
    adjacency: Array2<f32>,
}

impl Graph {
    /// Build a graph from edges `(u, v, weight)`; the nodes are the ids that appear, sorted
    /// ascending. Weights must be finite and `>= 0`; duplicates and self loops are handled as
    /// `options` says (see the [module docs](self)).
    pub fn from_edges(
        edges: impl IntoIterator<Item = (i64, i64, f32)>,
        options: &EdgeOptions,
    ) -> Result<Graph> {
        let edges: Vec<Edge> = edges
            .into_iter()
            .enumerate()
            .map(|(i, (u, v, w))| Edge {
                u,
                v,
                w,
                line: i + 1,
            })
            .collect();
        for e in &edges {
            if !e.w.is_finite() || e.w < 0.0 {
                return Err(NmfError::InvalidParameter {
                    name: "edge weight",
                    value: format!("{} (edge {} of the list, {}–{})", e.w, e.line, e.u, e.v),
                    expected: "weights must be finite and >= 0".into(),
                });
            }
        }
        let nodes: Vec<i64> = edges
            .iter()
            .flat_map(|e| [e.u, e.v])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        build(nodes, &edges, options, None)
    }

    /// The node ids, ascending; row and column `i` of the adjacency belong to `nodes()[i]`.
    pub fn nodes(&self) -> &[i64] {
        &self.nodes
    }
    /// Number of nodes n.
    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }
    /// Number of node pairs `{i, j}` (self loops `i = j` included) joined with a nonzero weight.
    pub fn n_edges(&self) -> usize {
        let n = self.n_nodes();
        (0..n)
            .map(|i| (i..n).filter(|&j| self.adjacency[[i, j]] != 0.0).count())
            .sum()
    }
    /// The row (and column) of node `id` in the adjacency, if the graph has that node.
    pub fn index_of(&self, id: i64) -> Option<usize> {
        self.nodes.binary_search(&id).ok()
    }
    /// The symmetric adjacency matrix (n x n).
    pub fn adjacency(&self) -> ArrayView2<'_, f32> {
        self.adjacency.view()
    }
    /// Weighted degrees `d_i = Σ_j A[i,j]` (a self loop counts once).
    pub fn degrees(&self) -> Vec<f64> {
        self.adjacency
            .rows()
            .into_iter()
            .map(|r| r.iter().map(|&x| f64::from(x)).sum())
            .collect()
    }
    /// Take ownership of `(node ids, adjacency)`.
    pub fn into_parts(self) -> (Vec<i64>, Array2<f32>) {
        (self.nodes, self.adjacency)
    }
}

/// What to do with an edge listed more than once (in either direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Duplicates {
    /// Keep the largest weight: listing an edge twice, or both ways, changes nothing.
    #[default]
    Max,
    /// Add the weights (a multigraph collapsed to counts).
    Sum,
    /// Refuse the input, naming both lines.
    Error,
}

/// What to do with a self loop `u u w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SelfLoops {
    /// Put the weight on the diagonal: `A[u,u] = w` (duplicates as [`Duplicates`] says).
    #[default]
    Keep,
    /// Ignore the loop (the node still belongs to the graph).
    Drop,
}

/// Options of the edge-list and GML readers; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeOptions {
    duplicates: Duplicates,
    self_loops: SelfLoops,
    max_bytes: Option<u64>,
    max_line: usize,
}

impl Default for EdgeOptions {
    fn default() -> Self {
        EdgeOptions {
            duplicates: Duplicates::Max,
            self_loops: SelfLoops::Keep,
            max_bytes: None,
            max_line: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

impl EdgeOptions {
    crate::options::field_setters! {
        /// How repeated edges combine (default [`Duplicates::Max`]).
        duplicates: Duplicates;
        /// What self loops do (default [`SelfLoops::Keep`]).
        self_loops: SelfLoops;
        /// The largest adjacency matrix to allocate, in bytes (4·n²); default
        /// [`crate::io::default_max_bytes`].
        max_bytes: Some(u64);
    }
    /// The longest line (bytes before its `\n`) a reader accepts; a longer one is
    /// [`NmfError::LineTooLong`]. Default [`DEFAULT_MAX_LINE_BYTES`].
    pub fn max_line_bytes(mut self, max_line_bytes: usize) -> Self {
        self.max_line = max_line_bytes;
        self
    }
    fn limit(&self) -> u64 {
        self.max_bytes.unwrap_or_else(crate::io::default_max_bytes)
    }
}

/// One edge with the line it came from (1-based).
#[derive(Debug, Clone, Copy)]
struct Edge {
    u: i64,
    v: i64,
    w: f32,
    line: usize,
}

/// The dense adjacency of `edges` over the sorted `nodes` (every endpoint must be a node).
fn build(
    nodes: Vec<i64>,
    edges: &[Edge],
    options: &EdgeOptions,
    path: Option<&Path>,
) -> Result<Graph> {
    let n = nodes.len();
    let bytes = (n as u128) * (n as u128) * 4;
    let limit = options.limit();
    if bytes > u128::from(limit) {
        return Err(match path {
            Some(p) => NmfError::TooLarge {
                path: p.to_path_buf(),
                what: format!("the {n} x {n} adjacency matrix of its {n} nodes"),
                bytes,
                limit,
            },
            None => NmfError::InvalidParameter {
                name: "number of nodes",
                value: n.to_string(),
                expected: format!(
                    "the dense {n} x {n} adjacency needs {bytes} bytes, more than the limit of {limit}; use a smaller graph"
                ),
            },
        });
    }
    let index: HashMap<i64, usize> = nodes.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let mut a = Array2::<f32>::zeros((n, n));
    let mut first_line: HashMap<(usize, usize), usize> = HashMap::new();
    for e in edges {
        // Both endpoints are nodes by construction.
        let (Some(&i), Some(&j)) = (index.get(&e.u), index.get(&e.v)) else {
            continue;
        };
        if i == j && options.self_loops == SelfLoops::Drop {
            continue;
        }
        let key = (i.min(j), i.max(j));
        if let Some(&first) = first_line.get(&key) {
            match options.duplicates {
                Duplicates::Max => {
                    let w = a[[i, j]].max(e.w);
                    a[[i, j]] = w;
                    a[[j, i]] = w;
                }
                Duplicates::Sum => {
                    let w = a[[i, j]] + e.w;
                    a[[i, j]] = w;
                    a[[j, i]] = w;
                }
                Duplicates::Error => {
                    let message = format!(
                        "the edge {}–{} appears again (first on line {first}); remove the repeated line, or read with Duplicates::Max or Duplicates::Sum",
                        e.u, e.v
                    );
                    return Err(match path {
                        Some(p) => format_error(p, Some(e.line), None, message),
                        None => NmfError::InvalidParameter {
                            name: "edges",
                            value: format!("entry {}", e.line),
                            expected: message,
                        },
                    });
                }
            }
        } else {
            first_line.insert(key, e.line);
            a[[i, j]] = e.w;
            a[[j, i]] = e.w;
        }
    }
    Ok(Graph {
        nodes,
        adjacency: a,
    })
}
