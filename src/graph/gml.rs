//! GML files: the subset of the Graph Modelling Language network data sets use (see the
//! [module docs](super)).

use std::collections::BTreeSet;
use std::path::Path;

use super::{build, Edge, EdgeOptions, Graph};
use crate::error::{NmfError, Result};
use crate::io::format_error;
use crate::io::lines::read_text_bounded;

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
/// given (e.g. `Some("value")`); see the [module docs](crate::graph).
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
    let bytes = read_text_bounded(path, "open the input", options.max_line)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = crate::io::lines::utf8_error_line(&bytes, &e);
        format_error(
            path,
            Some(line),
            None,
            "the text is not valid UTF-8; a GML file is UTF-8 (or ASCII) text",
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    parse_gml(text, path, attribute, options)
}

/// Parse GML text; `source` names it in error messages.
pub fn parse_gml(
    text: &str,
    source: impl AsRef<Path>,
    attribute: Option<&str>,
    options: &EdgeOptions,
) -> Result<GmlGraph> {
    let path = source.as_ref().to_path_buf();
    let tokens = syntax::tokenize(text, &path)?;
    let top = syntax::parse(&tokens, &path)?;
    let Some(graph) = top.iter().find_map(|e| match (&*e.key, &e.value) {
        ("graph", syntax::Value::List(items)) => Some(items),
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
        let syntax::Value::List(items) = &entry.value else {
            continue;
        };
        let int = |key: &str| -> Result<i64> {
            match items.iter().find(|e| e.key == key) {
                Some(syntax::Entry {
                    value: syntax::Value::Scalar(GmlValue::Int(i)),
                    ..
                }) => Ok(*i),
                Some(e) => Err(format_error(
                    &path,
                    Some(e.line),
                    None,
                    format!("`{key}` must be an integer node id"),
                )),
                None => Err(format_error(
                    &path,
                    Some(entry.line),
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
                        (syntax::Value::Scalar(v), true) => Some(v.clone()),
                        _ => None,
                    })
                });
                node_entries.push((id, attr, entry.line));
            }
            "edge" => {
                let (u, v) = (int("source")?, int("target")?);
                let weight = ["weight", "value"].iter().find_map(|k| {
                    items.iter().find_map(|e| match (&e.value, e.key == *k) {
                        (syntax::Value::Scalar(GmlValue::Int(i)), true) => {
                            Some((*i as f32, e.line))
                        }
                        (syntax::Value::Scalar(GmlValue::Real(x)), true) => {
                            Some((*x as f32, e.line))
                        }
                        _ => None,
                    })
                });
                let w = match weight {
                    Some((w, line)) if !w.is_finite() || w < 0.0 => {
                        return Err(format_error(
                            &path,
                            Some(line),
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
                Some(pair[1].2),
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
                    Some(e.line),
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

/// A minimal GML tokenizer and parser into key–value trees.
mod syntax {
    use std::path::Path;

    use super::GmlValue;
    use crate::error::Result;
    use crate::io::format_error;

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
                            Some(first),
                            None,
                            "a string opened here is never closed with `\"`",
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
                            Some(line),
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
                Some(*line),
                None,
                "unexpected `]` with no matching `[`",
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
                        Some(*line),
                        None,
                        "expected a key (such as node, edge, id, source) before this value",
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
                            Some(*open_line),
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
                                Some(*open_line),
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
                        Some(*line),
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
