//! Edge lists: one edge `u v [weight]` per line (see the [module docs](super)).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::{build, Edge, EdgeOptions, Graph};
use crate::error::Result;
use crate::io::lines::LineReader;
use crate::io::{format_error, open};

/// Read an edge list (`u v [weight]` per line) with the default [`EdgeOptions`]; see the
/// [module docs](crate::graph) for the format.
pub fn read_edge_list(path: impl AsRef<Path>) -> Result<Graph> {
    read_edge_list_with(path, &EdgeOptions::default())
}

/// Read an edge list with the given options.
pub fn read_edge_list_with(path: impl AsRef<Path>, options: &EdgeOptions) -> Result<Graph> {
    let path = path.as_ref();
    parse_edge_list(BufReader::new(open(path)?), path, options)
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
    let mut lines = LineReader::new(reader, path, options.max_line);
    while let Some((line_no, text)) = lines.next_str(
        "the line is not valid UTF-8 text; an edge list is plain text `u v [weight]` per line",
    )? {
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
                Some(line_no),
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
                    Some(line_no),
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
                        Some(line_no),
                        Some(3),
                        format!("edge weight `{s}` is not a number"),
                    )
                })?;
                if !w.is_finite() || w < 0.0 {
                    return Err(format_error(
                        path,
                        Some(line_no),
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
        return Err(format_error(
            path,
            None,
            None,
            "no edges found; an edge list has one edge `u v [weight]` per line",
        ));
    }
    build(nodes.into_iter().collect(), &edges, options, Some(path))
}
