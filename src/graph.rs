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

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use ndarray::{Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{NmfError, Result};

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
}

impl Default for EdgeOptions {
    fn default() -> Self {
        EdgeOptions {
            duplicates: Duplicates::Max,
            self_loops: SelfLoops::Keep,
            max_bytes: None,
        }
    }
}

impl EdgeOptions {
    /// How repeated edges combine (default [`Duplicates::Max`]).
    pub fn duplicates(mut self, duplicates: Duplicates) -> Self {
        self.duplicates = duplicates;
        self
    }
    /// What self loops do (default [`SelfLoops::Keep`]).
    pub fn self_loops(mut self, self_loops: SelfLoops) -> Self {
        self.self_loops = self_loops;
        self
    }
    /// The largest adjacency matrix to allocate, in bytes (4·n²); default
    /// [`crate::io::default_max_bytes`].
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes);
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
                        Some(p) => NmfError::Format {
                            path: p.to_path_buf(),
                            line: Some(e.line),
                            column: None,
                            message,
                        },
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

fn format_error(path: &Path, line: usize, column: Option<usize>, message: String) -> NmfError {
    NmfError::Format {
        path: path.to_path_buf(),
        line: Some(line),
        column,
        message,
    }
}

fn open(path: &Path) -> Result<BufReader<File>> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| NmfError::Io {
            path: path.to_path_buf(),
            action: "open the file",
            source,
        })
}

/// Read an edge list (`u v [weight]` per line) with the default [`EdgeOptions`]; see the
/// [module docs](self) for the format.
pub fn read_edge_list(path: impl AsRef<Path>) -> Result<Graph> {
    read_edge_list_with(path, &EdgeOptions::default())
}

/// Read an edge list with the given options.
pub fn read_edge_list_with(path: impl AsRef<Path>, options: &EdgeOptions) -> Result<Graph> {
    let path = path.as_ref();
    parse_edge_list(open(path)?, path, options)
}

/// Parse an edge list from any reader; `source` names it in error messages.
pub fn parse_edge_list(
    reader: impl BufRead,
    source: impl AsRef<Path>,
    options: &EdgeOptions,
) -> Result<Graph> {
    let path = source.as_ref();
    let mut edges = Vec::new();
    let mut nodes = BTreeSet::new();
    let mut reader = reader;
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let read = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| NmfError::Io {
                path: path.to_path_buf(),
                action: "read the file",
                source,
            })?;
        if read == 0 {
            break;
        }
        line_no += 1;
        let text = std::str::from_utf8(&buf).map_err(|_| {
            format_error(
                path,
                line_no,
                None,
                "the line is not valid UTF-8 text; an edge list is plain text `u v [weight]` per line".into(),
            )
        })?;
        let data = match text.find(['#', '%']) {
            Some(at) => &text[..at],
            None => text,
        };
        let fields: Vec<&str> = data.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() < 2 || fields.len() > 3 {
            return Err(format_error(
                path,
                line_no,
                None,
                format!(
                    "expected `u v` or `u v weight` (2 or 3 fields separated by spaces or tabs), found {} field{}; comment lines start with # or %",
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" }
                ),
            ));
        }
        let id = |k: usize| -> Result<i64> {
            fields[k].parse::<i64>().map_err(|_| {
                format_error(
                    path,
                    line_no,
                    Some(k + 1),
                    format!(
                        "node id `{}` is not an integer; node ids must be whole numbers such as 0, 17 or -3",
                        fields[k]
                    ),
                )
            })
        };
        let (u, v) = (id(0)?, id(1)?);
        let w = match fields.get(2) {
            None => 1.0,
            Some(s) => {
                let w: f32 = s.parse().map_err(|_| {
                    format_error(
                        path,
                        line_no,
                        Some(3),
                        format!("edge weight `{s}` is not a number"),
                    )
                })?;
                if !w.is_finite() || w < 0.0 {
                    return Err(format_error(
                        path,
                        line_no,
                        Some(3),
                        format!("edge weight {w} is invalid; weights must be finite and >= 0"),
                    ));
                }
                w
            }
        };
        nodes.insert(u);
        nodes.insert(v);
        edges.push(Edge {
            u,
            v,
            w,
            line: line_no,
        });
    }
    if edges.is_empty() {
        return Err(NmfError::Format {
            path: path.to_path_buf(),
            line: None,
            column: None,
            message: "no edges found; an edge list has one edge `u v [weight]` per line".into(),
        });
    }
    build(nodes.into_iter().collect(), &edges, options, Some(path))
}

/// A value of a GML attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum GmlValue {
    /// An integer.
    Int(i64),
    /// A real number.
    Real(f64),
    /// A string (without its quotes).
    Str(String),
}

impl std::fmt::Display for GmlValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GmlValue::Int(i) => write!(f, "{i}"),
            GmlValue::Real(x) => write!(f, "{x}"),
            GmlValue::Str(s) => write!(f, "\"{s}\""),
        }
    }
}

/// A graph read from GML, with one node attribute if one was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct GmlGraph {
    graph: Graph,
    attribute_name: Option<String>,
    attribute: Vec<Option<GmlValue>>,
}

impl GmlGraph {
    /// The graph (nodes sorted by id).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }
    /// Take the graph.
    pub fn into_graph(self) -> Graph {
        self.graph
    }
    /// The requested attribute of each node, aligned with `graph().nodes()` (`None` where a
    /// node lacks it, or everywhere when no attribute was requested).
    pub fn attribute(&self) -> &[Option<GmlValue>] {
        &self.attribute
    }
    /// The attribute as class labels `0..c`: distinct values numbered in ascending order
    /// (integers `0..c` therefore keep their values), integers before reals before strings.
    /// Among reals `0.0` and `-0.0` are one value and NaNs sort last (a NaN read as `-nan`
    /// first), so the labels always cover `0..c` with no gap. Every node must have the
    /// attribute.
    pub fn attribute_labels(&self) -> Result<Vec<usize>> {
        let name = self.attribute_name.clone().unwrap_or_default();
        let mut values = Vec::with_capacity(self.attribute.len());
        for (i, v) in self.attribute.iter().enumerate() {
            match v {
                Some(v) => values.push(v),
                None => {
                    return Err(NmfError::InvalidParameter {
                        name: "GML node attribute",
                        value: if name.is_empty() {
                            "(none requested)".into()
                        } else {
                            name
                        },
                        expected: format!(
                            "node {} has no such attribute; every node needs one to serve as a class label",
                            self.graph.nodes[i]
                        ),
                    })
                }
            }
        }
        // Number the classes along one sort by `gml_order`: a value starts a new class exactly
        // when it differs from its predecessor under that same order, so no lookup can miss.
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&a, &b| gml_order(values[a], values[b]));
        let mut labels = vec![0usize; values.len()];
        let mut class = 0usize;
        for (pos, &i) in order.iter().enumerate() {
            if pos > 0 && gml_order(values[order[pos - 1]], values[i]) != std::cmp::Ordering::Equal
            {
                class += 1;
            }
            labels[i] = class;
        }
        Ok(labels)
    }
}

/// A total order: integers, then reals, then strings. Reals compare by value with `0.0` and
/// `-0.0` equal; NaNs come after every number (before them when negative) and equal each other
/// when their bits are equal.
fn gml_order(a: &GmlValue, b: &GmlValue) -> std::cmp::Ordering {
    use GmlValue::*;
    let rank = |v: &GmlValue| match v {
        Int(_) => 0,
        Real(_) => 1,
        Str(_) => 2,
    };
    match (a, b) {
        (Int(x), Int(y)) => x.cmp(y),
        (Real(x), Real(y)) if x == y => std::cmp::Ordering::Equal,
        (Real(x), Real(y)) => x.total_cmp(y),
        (Str(x), Str(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Read a GML graph with the default [`EdgeOptions`], and the node attribute `attribute` when
/// given (e.g. `Some("value")`); see the [module docs](self).
pub fn read_gml(path: impl AsRef<Path>, attribute: Option<&str>) -> Result<GmlGraph> {
    read_gml_with(path, attribute, &EdgeOptions::default())
}

/// Read a GML graph with the given options.
pub fn read_gml_with(
    path: impl AsRef<Path>,
    attribute: Option<&str>,
    options: &EdgeOptions,
) -> Result<GmlGraph> {
    let path = path.as_ref();
    let mut text = String::new();
    open(path)?
        .read_to_string(&mut text)
        .map_err(|source| NmfError::Io {
            path: path.to_path_buf(),
            action: "read the file as UTF-8 text",
            source,
        })?;
    parse_gml(&text, path, attribute, options)
}

/// Parse GML text; `source` names it in error messages.
pub fn parse_gml(
    text: &str,
    source: impl AsRef<Path>,
    attribute: Option<&str>,
    options: &EdgeOptions,
) -> Result<GmlGraph> {
    let path = source.as_ref().to_path_buf();
    let tokens = gml::tokenize(text, &path)?;
    let top = gml::parse(&tokens, &path)?;
    let Some(graph) = top.iter().find_map(|e| match (&*e.key, &e.value) {
        ("graph", gml::Value::List(items)) => Some(items),
        _ => None,
    }) else {
        return Err(NmfError::Format {
            path,
            line: None,
            column: None,
            message: "no `graph [ ... ]` block found".into(),
        });
    };
    let mut node_entries: Vec<(i64, Option<GmlValue>, usize)> = Vec::new();
    let mut edges = Vec::new();
    for entry in graph {
        let gml::Value::List(items) = &entry.value else {
            continue;
        };
        let int = |key: &str| -> Result<i64> {
            match items.iter().find(|e| e.key == key) {
                Some(gml::Entry {
                    value: gml::Value::Scalar(GmlValue::Int(i)),
                    ..
                }) => Ok(*i),
                Some(e) => Err(format_error(
                    &path,
                    e.line,
                    None,
                    format!("`{key}` must be an integer node id"),
                )),
                None => Err(format_error(
                    &path,
                    entry.line,
                    None,
                    format!("this {} has no `{key}`", entry.key),
                )),
            }
        };
        match &*entry.key {
            "node" => {
                let id = int("id")?;
                let attr = attribute.and_then(|name| {
                    items.iter().find_map(|e| match (&e.value, e.key == name) {
                        (gml::Value::Scalar(v), true) => Some(v.clone()),
                        _ => None,
                    })
                });
                node_entries.push((id, attr, entry.line));
            }
            "edge" => {
                let (u, v) = (int("source")?, int("target")?);
                let weight = ["weight", "value"].iter().find_map(|k| {
                    items.iter().find_map(|e| match (&e.value, e.key == *k) {
                        (gml::Value::Scalar(GmlValue::Int(i)), true) => Some((*i as f32, e.line)),
                        (gml::Value::Scalar(GmlValue::Real(x)), true) => Some((*x as f32, e.line)),
                        _ => None,
                    })
                });
                let w = match weight {
                    Some((w, line)) if !w.is_finite() || w < 0.0 => {
                        return Err(format_error(
                            &path,
                            line,
                            None,
                            format!("edge weight {w} is invalid; weights must be finite and >= 0"),
                        ))
                    }
                    Some((w, _)) => w,
                    None => 1.0,
                };
                edges.push(Edge {
                    u,
                    v,
                    w,
                    line: entry.line,
                });
            }
            _ => {}
        }
    }
    node_entries.sort_by_key(|&(id, _, line)| (id, line));
    for pair in node_entries.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(format_error(
                &path,
                pair[1].2,
                None,
                format!(
                    "node id {} is defined twice (also on line {}); node ids must be unique",
                    pair[1].0, pair[0].2
                ),
            ));
        }
    }
    let ids: BTreeSet<i64> = node_entries.iter().map(|n| n.0).collect();
    for e in &edges {
        for end in [e.u, e.v] {
            if !ids.contains(&end) {
                return Err(format_error(
                    &path,
                    e.line,
                    None,
                    format!("the edge refers to node {end}, which no `node [ id {end} ]` defines"),
                ));
            }
        }
    }
    if node_entries.is_empty() {
        return Err(NmfError::Format {
            path,
            line: None,
            column: None,
            message: "the graph has no nodes".into(),
        });
    }
    let nodes: Vec<i64> = node_entries.iter().map(|n| n.0).collect();
    let values = node_entries.into_iter().map(|n| n.1).collect();
    let graph = build(nodes, &edges, options, Some(&path))?;
    Ok(GmlGraph {
        graph,
        attribute_name: attribute.map(str::to_string),
        attribute: values,
    })
}

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
    if k == 0 {
        return Err(NmfError::InvalidParameter {
            name: "k",
            value: "0".into(),
            expected: "the number of groups must be at least 1".into(),
        });
    }
    if group_size == 0 {
        return Err(NmfError::InvalidParameter {
            name: "group_size",
            value: "0".into(),
            expected: "each group needs at least 1 node".into(),
        });
    }
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

/// A minimal GML tokenizer and parser into key–value trees.
mod gml {
    use std::path::Path;

    use super::{format_error, GmlValue};
    use crate::error::Result;

    /// Nesting deeper than this is refused (no real graph file comes close).
    const MAX_DEPTH: usize = 64;

    #[derive(Debug, Clone, PartialEq)]
    pub(super) enum Token {
        Key(String),
        Scalar(GmlValue),
        Open,
        Close,
    }

    #[derive(Debug, Clone, PartialEq)]
    pub(super) enum Value {
        Scalar(GmlValue),
        List(Vec<Entry>),
    }

    #[derive(Debug, Clone, PartialEq)]
    pub(super) struct Entry {
        pub key: String,
        pub value: Value,
        /// Line of the key (1-based).
        pub line: usize,
    }

    /// Split GML text into tokens with their lines; `#` starts a comment outside strings.
    pub(super) fn tokenize(text: &str, path: &Path) -> Result<Vec<(Token, usize)>> {
        let mut out = Vec::new();
        let mut line = 1usize;
        let mut chars = text.char_indices().peekable();
        while let Some(&(start, c)) = chars.peek() {
            match c {
                '\n' => {
                    line += 1;
                    chars.next();
                }
                c if c.is_whitespace() => {
                    chars.next();
                }
                '#' => {
                    while let Some(&(_, c)) = chars.peek() {
                        if c == '\n' {
                            break;
                        }
                        chars.next();
                    }
                }
                '[' => {
                    out.push((Token::Open, line));
                    chars.next();
                }
                ']' => {
                    out.push((Token::Close, line));
                    chars.next();
                }
                '"' => {
                    let first = line;
                    chars.next();
                    let mut s = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '"' {
                            closed = true;
                            break;
                        }
                        if c == '\n' {
                            line += 1;
                        }
                        s.push(c);
                    }
                    if !closed {
                        return Err(format_error(
                            path,
                            first,
                            None,
                            "a string opened here is never closed with `\"`".into(),
                        ));
                    }
                    out.push((Token::Scalar(GmlValue::Str(s)), first));
                }
                _ => {
                    let mut end = start;
                    while let Some(&(i, c)) = chars.peek() {
                        if c.is_whitespace() || c == '[' || c == ']' || c == '"' {
                            break;
                        }
                        end = i + c.len_utf8();
                        chars.next();
                    }
                    let word = &text[start..end];
                    let first = word.chars().next().unwrap_or(' ');
                    let token = if first.is_ascii_alphabetic() || first == '_' {
                        Token::Key(word.to_string())
                    } else if let Ok(i) = word.parse::<i64>() {
                        Token::Scalar(GmlValue::Int(i))
                    } else if let Ok(x) = word.parse::<f64>() {
                        Token::Scalar(GmlValue::Real(x))
                    } else {
                        return Err(format_error(
                            path,
                            line,
                            None,
                            format!("`{word}` is neither a key, a number nor a quoted string"),
                        ));
                    };
                    out.push((token, line));
                }
            }
        }
        Ok(out)
    }

    /// Parse the token stream into the top-level list of entries.
    pub(super) fn parse(tokens: &[(Token, usize)], path: &Path) -> Result<Vec<Entry>> {
        let mut pos = 0;
        let entries = list(tokens, &mut pos, path, 0)?;
        if let Some((_, line)) = tokens.get(pos) {
            return Err(format_error(
                path,
                *line,
                None,
                "unexpected `]` with no matching `[`".into(),
            ));
        }
        Ok(entries)
    }

    fn list(
        tokens: &[(Token, usize)],
        pos: &mut usize,
        path: &Path,
        depth: usize,
    ) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        while let Some((token, line)) = tokens.get(*pos) {
            let key = match token {
                Token::Close => return Ok(entries),
                Token::Key(k) => k.clone(),
                _ => {
                    return Err(format_error(
                        path,
                        *line,
                        None,
                        "expected a key (such as node, edge, id, source) before this value".into(),
                    ))
                }
            };
            *pos += 1;
            let value = match tokens.get(*pos) {
                Some((Token::Scalar(v), _)) => {
                    *pos += 1;
                    Value::Scalar(v.clone())
                }
                Some((Token::Open, open_line)) => {
                    if depth + 1 > MAX_DEPTH {
                        return Err(format_error(
                            path,
                            *open_line,
                            None,
                            format!("lists nested more than {MAX_DEPTH} deep"),
                        ));
                    }
                    *pos += 1;
                    let items = list(tokens, pos, path, depth + 1)?;
                    match tokens.get(*pos) {
                        Some((Token::Close, _)) => *pos += 1,
                        _ => {
                            return Err(format_error(
                                path,
                                *open_line,
                                None,
                                format!("the list of `{key}` opened here is never closed with `]`"),
                            ))
                        }
                    }
                    Value::List(items)
                }
                _ => {
                    return Err(format_error(
                        path,
                        *line,
                        None,
                        format!("the key `{key}` has no value"),
                    ))
                }
            };
            entries.push(Entry {
                key,
                value,
                line: *line,
            });
        }
        Ok(entries)
    }
}
