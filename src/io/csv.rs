//! Delimited text tables (`.csv`, `.tsv`): one matrix row per line, numbers only.
//!
//! Blank lines are skipped, a UTF-8 byte-order mark and `\r\n` line ends are accepted, fields
//! may be padded with spaces or wrapped in double quotes. Every data line must have as many
//! fields as the first. Anything else is an error naming the line and column (both 1-based).

use std::io::BufReader;
use std::path::Path;

use ndarray::Array2;

use super::limits::max_elements;
use super::lines::LineReader;
use super::{format_error, open, HeaderMode, ReadOptions};
use crate::error::{NmfError, Result};

/// A table read from a file.
pub(crate) struct Table {
    /// The values, one row per data line.
    pub data: Array2<f32>,
    /// The 1-based line number of each row.
    pub row_lines: Vec<usize>,
}

/// Read a table of numbers separated by `delimiter`.
pub(crate) fn read(path: &Path, delimiter: u8, options: &ReadOptions) -> Result<Table> {
    let mut lines = LineReader::new(
        BufReader::new(open(path)?),
        path,
        options.line_limit_bytes(),
    );
    let limit = max_elements(options.limit_bytes());
    let mut values: Vec<f32> = Vec::new();
    let mut row_lines: Vec<usize> = Vec::new();
    let mut ncols: Option<(usize, usize)> = None; // (fields, line of the first data row)
    let mut header_pending = options.header_mode();
    // Whether header detection took the first line for data (a hint for errors on it).
    let mut header_auto_data = false;
    while let Some((line_no, text)) =
        lines.next_str("the line is not valid UTF-8 text; is this really a text table?")?
    {
        if text.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = text
            .split(delimiter as char)
            .map(|f| {
                let f = f.trim();
                f.strip_prefix('"')
                    .and_then(|g| g.strip_suffix('"'))
                    .unwrap_or(f)
                    .trim()
            })
            .collect();

        match header_pending {
            HeaderMode::Present => {
                header_pending = HeaderMode::Absent;
                continue;
            }
            HeaderMode::Auto => {
                header_pending = HeaderMode::Absent;
                if fields.iter().all(|f| parse_number(f).is_none()) {
                    continue;
                }
                header_auto_data = true;
            }
            HeaderMode::Absent => {}
        }

        match ncols {
            None => ncols = Some((fields.len(), line_no)),
            Some((expected, first_line)) if fields.len() != expected => {
                return Err(format_error(
                    path,
                    Some(line_no),
                    None,
                    format!(
                        "this line has {} fields but line {first_line} has {expected}; every row needs the same number of {}-separated fields",
                        fields.len(),
                        delimiter_name(delimiter)
                    ),
                ));
            }
            Some(_) => {}
        }
        if values.len() + fields.len() > limit {
            return Err(NmfError::TooLarge {
                path: path.to_path_buf(),
                what: format!("the table (more than {} rows so far)", row_lines.len()),
                bytes: (values.len() as u128 + fields.len() as u128) * 4,
                limit: options.limit_bytes(),
            });
        }
        for (c, field) in fields.iter().enumerate() {
            match parse_number(field) {
                Some(v) => values.push(v),
                None => {
                    return Err(format_error(
                        path,
                        Some(line_no),
                        Some(c + 1),
                        cell_message(field, delimiter, row_lines.is_empty() && header_auto_data),
                    ));
                }
            }
        }
        row_lines.push(line_no);
    }
    let Some((cols, _)) = ncols else {
        return Err(format_error(
            path,
            None,
            None,
            "the file holds no data rows",
        ));
    };
    let rows = row_lines.len();
    let data = Array2::from_shape_vec((rows, cols), values)
        .map_err(|e| format_error(path, None, None, format!("cannot shape the data: {e}")))?;
    Ok(Table { data, row_lines })
}

/// A number as Rust reads it (`1`, `-2.5e-3`, `.5`, `NaN`, `inf`), as f32.
fn parse_number(field: &str) -> Option<f32> {
    if field.is_empty() {
        return None;
    }
    field.parse::<f32>().ok()
}

/// Why `field` is not a number, with a hint where one helps.
fn cell_message(field: &str, delimiter: u8, first_line_taken_as_data: bool) -> String {
    if field.is_empty() {
        return "empty field; every cell must hold a number".to_string();
    }
    let other_separator = [',', '\t', ';']
        .into_iter()
        .find(|&c| c != delimiter as char && field.contains(c));
    let hint = if let Some(sep) = other_separator {
        format!(
            " (it holds {:?}: fields are separated by commas in a .csv file and by tabs in a .tsv file; rename the file or change its separator)",
            sep
        )
    } else if first_line_taken_as_data {
        " (if this line is a header, pass --header)".to_string()
    } else {
        String::new()
    };
    format!("cannot parse {field:?} as a number{hint}")
}

fn delimiter_name(delimiter: u8) -> &'static str {
    match delimiter {
        b',' => "comma",
        b'\t' => "tab",
        _ => "delimiter",
    }
}
