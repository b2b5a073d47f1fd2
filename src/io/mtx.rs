//! MatrixMarket (`.mtx`) files, read into a dense matrix.
//!
//! Supported: `%%MatrixMarket matrix coordinate|array real|double|integer|pattern
//! general|symmetric|skew-symmetric`. Coordinate entries are 1-based `i j [value]` lines;
//! repeated entries are summed (as scipy does); symmetric files store one triangle, which is
//! mirrored. Array files list values column by column (one triangle, column by column, when
//! symmetric). Comment lines start with `%`.

use std::io::{BufRead, BufReader};
use std::path::Path;

use ndarray::Array2;

use super::limits::{addressable_shape, check_dims};
use super::lines::LineReader;
use super::{format_error, open, ReadOptions};
use crate::error::{NmfError, Result};
use crate::sparse::CsrMatrix;

/// A matrix read from a `.mtx` file.
pub(crate) struct MtxMatrix {
    pub data: Array2<f32>,
    /// Whether the file stores one triangle that was mirrored.
    pub mirrored: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Coordinate,
    Array,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Real,
    Integer,
    Pattern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Symmetry {
    General,
    Symmetric,
    SkewSymmetric,
}

/// Lines of a text file, numbered from 1, as UTF-8 strings without their line end, each at
/// most the reader's line bound long.
struct Lines<'p, R> {
    inner: LineReader<'p, R>,
}

impl<'p, R: BufRead> Lines<'p, R> {
    /// The next line, or `None` at the end of the file.
    fn next_line(&mut self) -> Result<Option<(usize, String)>> {
        Ok(self
            .inner
            .next_str("the line is not valid UTF-8 text; is this really a MatrixMarket file?")?
            .map(|(no, text)| (no, text.to_string())))
    }

    /// The next line that is neither blank nor a `%` comment.
    fn next_content(&mut self) -> Result<Option<(usize, String)>> {
        while let Some((no, line)) = self.next_line()? {
            let t = line.trim();
            if !t.is_empty() && !t.starts_with('%') {
                return Ok(Some((no, line)));
            }
        }
        Ok(None)
    }
}

/// What the banner and the size line of a file declare.
struct Header {
    layout: Layout,
    field: Field,
    symmetry: Symmetry,
    rows: u64,
    cols: u64,
    nnz: u64,
    size_line: usize,
}

impl Header {
    /// A format error unless the `nnz` entries the size line declares fit in the
    /// `rows x cols` matrix.
    fn check_entries_fit(&self, path: &Path) -> Result<()> {
        let Header {
            rows, cols, nnz, ..
        } = *self;
        if u128::from(nnz) > u128::from(rows) * u128::from(cols) {
            return Err(format_error(
                path,
                Some(self.size_line),
                Some(3),
                format!(
                    "malformed size line: {nnz} entries cannot fit in a {rows} x {cols} matrix"
                ),
            ));
        }
        Ok(())
    }

    /// A format error for a skew-symmetric file read as nonnegative entries.
    fn refuse_skew_symmetric(&self, path: &Path) -> Result<()> {
        if self.symmetry == Symmetry::SkewSymmetric {
            return Err(format_error(
                path,
                Some(1),
                None,
                "the header declares a skew-symmetric matrix, whose mirrored entries are the negated stored ones (a_ji = -a_ij); NMF needs every entry >= 0",
            ));
        }
        Ok(())
    }
}

/// The format error at a line (and column) of `path`.
fn line_error(path: &Path) -> impl Fn(usize, Option<usize>, String) -> NmfError + '_ {
    move |line, col, msg| format_error(path, Some(line), col, msg)
}

/// A format error unless the file (of `file_len` bytes, when known) can hold the `values` the
/// size line declares at `min_bytes` bytes each at the least.
fn check_length(path: &Path, file_len: Option<u64>, values: u128, min_bytes: u128) -> Result<()> {
    if let Some(len) = file_len {
        if values.saturating_mul(min_bytes) > u128::from(len) {
            return Err(format_error(
                path,
                None,
                None,
                format!("truncated: the size line declares {values} values but the file is only {len} bytes long"),
            ));
        }
    }
    Ok(())
}

/// Why an entry `v` of a file read as nonnegative is refused (`at` names the entry), if it is.
fn negative_or_non_finite(v: f32, at: impl FnOnce() -> String) -> Option<String> {
    if v.is_finite() && v >= 0.0 {
        return None;
    }
    let at = at();
    Some(if v.is_finite() {
        format!("negative value {v} at {at}; NMF needs every entry >= 0 (clip, shift or take absolute values first)")
    } else {
        format!("non-finite value {v} at {at} (NaN, infinite, or beyond float32); remove or impute it first")
    })
}

/// Open `path`, read its banner and size line; returns the lines that follow and the file's
/// length (when it is a regular file).
fn open_header<'p>(
    path: &'p Path,
    options: &ReadOptions,
) -> Result<(Lines<'p, BufReader<std::fs::File>>, Header, Option<u64>)> {
    let file = open(path)?;
    let file_len = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let mut lines = Lines {
        inner: LineReader::new(BufReader::new(file), path, options.line_limit_bytes()),
    };
    let err = line_error(path);

    // The banner.
    let Some((_, banner)) = lines.next_line()? else {
        return Err(format_error(path, None, None, "the file is empty"));
    };
    let (layout, field, symmetry) = parse_banner(&banner).map_err(|m| match m {
        BannerProblem::Malformed(m) => err(1, None, format!("malformed header: {m}")),
        BannerProblem::Unsupported(reason) => NmfError::UnsupportedInput {
            path: path.to_path_buf(),
            reason,
        },
    })?;

    // The size line.
    let Some((size_line, size_text)) = lines.next_content()? else {
        return Err(format_error(
            path,
            None,
            None,
            "truncated: the size line after the header is missing",
        ));
    };
    let want = if layout == Layout::Coordinate { 3 } else { 2 };
    let sizes = size_text.split_whitespace().collect::<Vec<_>>();
    if sizes.len() != want {
        return Err(err(
            size_line,
            None,
            format!(
                "malformed size line {:?}: expected {} (rows columns{})",
                size_text.trim(),
                if want == 3 {
                    "three integers"
                } else {
                    "two integers"
                },
                if want == 3 { " entries" } else { "" }
            ),
        ));
    }
    let mut dims = [0u64; 3];
    for (k, s) in sizes.iter().enumerate() {
        dims[k] = s.parse().map_err(|_| {
            err(
                size_line,
                Some(k + 1),
                format!("malformed size line: {s:?} is not a nonnegative integer"),
            )
        })?;
    }
    let (rows, cols, nnz) = (dims[0], dims[1], dims[2]);
    if symmetry != Symmetry::General && rows != cols {
        return Err(err(
            size_line,
            None,
            format!("malformed header: a {} matrix must be square, but the size line says {rows} x {cols}", symmetry_name(symmetry)),
        ));
    }
    let header = Header {
        layout,
        field,
        symmetry,
        rows,
        cols,
        nnz,
        size_line,
    };
    Ok((lines, header, file_len))
}

/// Read a MatrixMarket file as a dense float32 matrix.
pub(crate) fn read(path: &Path, options: &ReadOptions) -> Result<MtxMatrix> {
    let (mut lines, header, file_len) = open_header(path, options)?;
    let Header {
        layout,
        field,
        symmetry,
        rows,
        cols,
        nnz,
        size_line,
    } = header;
    let err = line_error(path);
    let elements = check_dims(path, rows, cols, options.limit_bytes())?;
    let (r, c) = (rows as usize, cols as usize);

    // How many values the file must hold, checked against its length before allocating.
    let expected: u128 = match (layout, symmetry) {
        (Layout::Coordinate, _) => u128::from(nnz),
        (Layout::Array, Symmetry::General) => elements as u128,
        (Layout::Array, Symmetry::Symmetric) => (r as u128) * (r as u128 + 1) / 2,
        (Layout::Array, Symmetry::SkewSymmetric) => (r as u128) * (r as u128).saturating_sub(1) / 2,
    };
    if layout == Layout::Coordinate {
        header.check_entries_fit(path)?;
    }
    // Each coordinate entry takes at least 4 bytes ("1 1\n"), each array value 2 ("0\n").
    let min_bytes = if layout == Layout::Coordinate { 4 } else { 2 };
    check_length(path, file_len, expected, min_bytes)?;

    let mut data = Array2::<f32>::zeros((r, c));
    match layout {
        Layout::Coordinate => {
            read_entries(&mut lines, &header, path, |no, i, j, v| {
                match symmetry {
                    Symmetry::General => data[[i, j]] += v,
                    Symmetry::Symmetric => {
                        data[[i, j]] += v;
                        if i != j {
                            data[[j, i]] += v;
                        }
                    }
                    Symmetry::SkewSymmetric => {
                        if i == j {
                            return Err(err(
                                no,
                                None,
                                "a skew-symmetric matrix stores no diagonal entries".to_string(),
                            ));
                        }
                        data[[i, j]] += v;
                        data[[j, i]] -= v;
                    }
                }
                Ok(())
            })?;
        }
        Layout::Array => {
            let mut found: u128 = 0;
            // Position k of the stored sequence, column by column.
            let mut col = 0usize;
            let mut row = match symmetry {
                Symmetry::General | Symmetry::Symmetric => 0,
                Symmetry::SkewSymmetric => 1,
            };
            while let Some((no, line)) = lines.next_content()? {
                for (t, token) in line.split_whitespace().enumerate() {
                    if found == expected {
                        return Err(err(
                            no,
                            Some(t + 1),
                            format!("more values than the {expected} the size line (line {size_line}) declares"),
                        ));
                    }
                    let v = parse_value(token, field).map_err(|m| err(no, Some(t + 1), m))?;
                    data[[row, col]] = v;
                    match symmetry {
                        Symmetry::General => {}
                        Symmetry::Symmetric => data[[col, row]] = v,
                        Symmetry::SkewSymmetric => data[[col, row]] = -v,
                    }
                    found += 1;
                    row += 1;
                    if row == r {
                        col += 1;
                        row = match symmetry {
                            Symmetry::General => 0,
                            Symmetry::Symmetric => col,
                            Symmetry::SkewSymmetric => col + 1,
                        };
                        // A skew-symmetric column may hold nothing (the last one).
                        while row >= r && col < c {
                            col += 1;
                            row = col + 1;
                        }
                    }
                }
            }
            if found < expected {
                return Err(format_error(
                    path,
                    None,
                    None,
                    format!(
                        "truncated: the size line (line {size_line}) declares {expected} values but the file holds {found}"
                    ),
                ));
            }
        }
    }
    Ok(MtxMatrix {
        data,
        mirrored: symmetry != Symmetry::General,
    })
}

/// Bytes a sparse read of `stored` entries into a `rows x cols` [`CsrMatrix`] is counted
/// against the limit: the triplets held while reading (12 bytes each, `(u32, u32, f32)`), the
/// CSR arrays (8 bytes per entry and per row, plus one) and the transposed copy that
/// `fit_sparse` makes (8 bytes per entry and per column, plus one). The read itself peaks
/// lower (the triplets are freed before the transpose is made).
fn sparse_bytes(stored: u128, rows: u64, cols: u64) -> u128 {
    stored * (12 + 8 + 8) + 8 * (u128::from(rows) + 1) + 8 * (u128::from(cols) + 1)
}

/// Read a MatrixMarket file straight into a [`CsrMatrix`]: coordinate files entry by entry
/// (repeated entries summed, symmetric files mirrored), never forming the dense matrix; array
/// files are dense on disk and are read densely first. The limit of `options` applies to
/// [`sparse_bytes`] (about 28 bytes per stored entry plus 8 per row and per column) rather
/// than to `rows x cols`, and is checked, as are the dimensions (at most `u32::MAX` each),
/// before any entry is read.
///
/// Each value is checked on its line: a negative or non-finite one is a format error naming
/// the file, the line and the entry. Repeated entries are summed after reading, so a sum that
/// overflows to infinity gives [`NmfError::NonFiniteInput`] with its (0-based) row and column.
/// Skew-symmetric files are refused from their header: a nonzero skew-symmetric matrix always
/// has negative entries.
pub(crate) fn read_sparse(path: &Path, options: &ReadOptions) -> Result<CsrMatrix> {
    let (mut lines, header, file_len) = open_header(path, options)?;
    header.refuse_skew_symmetric(path)?;
    if header.layout == Layout::Array {
        drop(lines);
        return CsrMatrix::from_dense(read(path, options)?.data.view());
    }
    let Header {
        symmetry,
        rows,
        cols,
        nnz,
        size_line,
        ..
    } = header;
    let err = line_error(path);
    for (k, (n, what)) in [(rows, "rows"), (cols, "columns")].into_iter().enumerate() {
        if u32::try_from(n).is_err() {
            return Err(err(
                size_line,
                Some(k + 1),
                format!(
                    "{n} {what} is more than the {} a sparse matrix indexes (u32 indices)",
                    u32::MAX
                ),
            ));
        }
    }
    header.check_entries_fit(path)?;
    let stored = if symmetry == Symmetry::General {
        u128::from(nnz)
    } else {
        2 * u128::from(nnz)
    };
    let bytes = sparse_bytes(stored, rows, cols);
    if bytes > u128::from(options.limit_bytes()) || usize::try_from(bytes).is_err() {
        return Err(NmfError::TooLarge {
            path: path.to_path_buf(),
            what: format!(
                "the {nnz} declared entries of the {rows} x {cols} sparse matrix (with its offsets and transposed copy)"
            ),
            bytes,
            limit: options.limit_bytes(),
        });
    }
    check_length(path, file_len, u128::from(nnz), 4)?;
    // `stored` fits in usize: its bytes do (checked above).
    let mut triplets: Vec<(u32, u32, f32)> = Vec::with_capacity(stored as usize);
    read_entries(&mut lines, &header, path, |no, i, j, v| {
        let at = || {
            if symmetry == Symmetry::Symmetric && i != j {
                format!(
                    "entry ({}, {}) or its mirror ({}, {})",
                    i + 1,
                    j + 1,
                    j + 1,
                    i + 1
                )
            } else {
                format!("entry ({}, {})", i + 1, j + 1)
            }
        };
        if let Some(msg) = negative_or_non_finite(v, at) {
            return Err(err(no, Some(3), msg));
        }
        // Both fit in u32 (the dimensions were checked above).
        let (i, j) = (i as u32, j as u32);
        triplets.push((i, j, v));
        if symmetry == Symmetry::Symmetric && i != j {
            triplets.push((j, i, v));
        }
        Ok(())
    })?;
    // The dimensions fit in u32 and every index is in range (checked above).
    CsrMatrix::from_checked_triplets(rows as usize, cols as usize, triplets)
}

/// Read the entries of a coordinate file after its size line, calling
/// `visit(line, row, col, value)` (0-based indices, checked against the size line; pattern
/// files give 1.0) for each; more or fewer entries than declared are format errors.
fn read_entries<R: BufRead>(
    lines: &mut Lines<'_, R>,
    header: &Header,
    path: &Path,
    mut visit: impl FnMut(usize, usize, usize, f32) -> Result<()>,
) -> Result<()> {
    let Header {
        field,
        rows,
        cols,
        nnz,
        size_line,
        ..
    } = *header;
    let err = line_error(path);
    let fields = if field == Field::Pattern { 2 } else { 3 };
    let mut found: u64 = 0;
    while let Some((no, line)) = lines.next_content()? {
        if found == nnz {
            return Err(err(
                no,
                None,
                format!("more entries than the {nnz} the size line (line {size_line}) declares"),
            ));
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() != fields {
            return Err(err(
                no,
                None,
                format!(
                    "expected {fields} fields (row column{}), found {}",
                    if fields == 3 { " value" } else { "" },
                    parts.len()
                ),
            ));
        }
        let i = parse_index(parts[0], rows).map_err(|m| err(no, Some(1), m))?;
        let j = parse_index(parts[1], cols).map_err(|m| err(no, Some(2), m))?;
        let v = if field == Field::Pattern {
            1.0
        } else {
            parse_value(parts[2], field).map_err(|m| err(no, Some(3), m))?
        };
        visit(no, i, j, v)?;
        found += 1;
    }
    if found < nnz {
        return Err(format_error(
            path,
            None,
            None,
            format!("truncated: the size line (line {size_line}) declares {nnz} entries but the file holds {found}"),
        ));
    }
    Ok(())
}

/// Why a banner cannot be used.
enum BannerProblem {
    Malformed(String),
    Unsupported(String),
}

/// Parse `%%MatrixMarket matrix <layout> <field> <symmetry>` (case-insensitive).
fn parse_banner(line: &str) -> std::result::Result<(Layout, Field, Symmetry), BannerProblem> {
    use BannerProblem::{Malformed, Unsupported};
    let words: Vec<String> = line
        .split_whitespace()
        .map(|w| w.to_ascii_lowercase())
        .collect();
    if words.first().map(String::as_str) != Some("%%matrixmarket") {
        return Err(Malformed(
            "the first line must start with %%MatrixMarket (is this a MatrixMarket file?)".into(),
        ));
    }
    if words.len() != 5 {
        return Err(Malformed(format!(
            "expected \"%%MatrixMarket matrix <coordinate|array> <real|integer|pattern> <general|symmetric>\", found {:?}",
            line.trim()
        )));
    }
    if words[1] != "matrix" {
        return Err(Unsupported(format!(
            "holds a MatrixMarket '{}' object; only 'matrix' is supported",
            words[1]
        )));
    }
    let layout = match words[2].as_str() {
        "coordinate" => Layout::Coordinate,
        "array" => Layout::Array,
        other => return Err(unknown_word("format", other, "coordinate or array")),
    };
    let field = match words[3].as_str() {
        "real" | "double" => Field::Real,
        "integer" => Field::Integer,
        "pattern" if layout == Layout::Coordinate => Field::Pattern,
        "pattern" => {
            return Err(Malformed(
                "the pattern field is only valid with the coordinate format".into(),
            ))
        }
        "complex" => return Err(complex_values("complex")),
        other => return Err(unknown_word("field", other, "real, integer or pattern")),
    };
    let symmetry = match words[4].as_str() {
        "general" => Symmetry::General,
        "symmetric" => Symmetry::Symmetric,
        "skew-symmetric" => Symmetry::SkewSymmetric,
        "hermitian" => return Err(complex_values("hermitian (complex)")),
        other => return Err(unknown_word("symmetry", other, "general or symmetric")),
    };
    Ok((layout, field, symmetry))
}

/// A banner word `word` in the place of `what` that names nothing known (`expected`: what does).
fn unknown_word(what: &str, word: &str, expected: &str) -> BannerProblem {
    BannerProblem::Malformed(format!("unknown {what} '{word}' (expected {expected})"))
}

/// A banner that declares complex values (`kind`: how it says so).
fn complex_values(kind: &str) -> BannerProblem {
    BannerProblem::Unsupported(format!(
        "holds a {kind} matrix; NMF needs real nonnegative values"
    ))
}

fn symmetry_name(s: Symmetry) -> &'static str {
    match s {
        Symmetry::General => "general",
        Symmetry::Symmetric => "symmetric",
        Symmetry::SkewSymmetric => "skew-symmetric",
    }
}

/// A 1-based index in `1..=n`, returned 0-based.
fn parse_index(s: &str, n: u64) -> std::result::Result<usize, String> {
    match s.parse::<u64>() {
        Ok(i) if (1..=n).contains(&i) => Ok((i - 1) as usize),
        Ok(i) => Err(format!("index {i} is out of range 1..={n}")),
        Err(_) => Err(format!("{s:?} is not a valid 1-based index")),
    }
}

/// A value of the declared field.
fn parse_value(s: &str, field: Field) -> std::result::Result<f32, String> {
    match field {
        Field::Integer => s
            .parse::<i64>()
            .map(|v| v as f32)
            .map_err(|_| format!("cannot parse {s:?} as an integer (the header says integer)")),
        _ => s
            .parse::<f64>()
            .map(|v| v as f32)
            .map_err(|_| format!("cannot parse {s:?} as a number")),
    }
}

/// The shape `(rows, cols)` a MatrixMarket file declares (its header only).
pub(crate) fn shape(path: &Path, options: &ReadOptions) -> Result<(usize, usize)> {
    let (_, header, _) = open_header(path, options)?;
    addressable_shape(path, Some(header.size_line), (header.rows, header.cols))
}

/// Read the block `rows x cols` of a MatrixMarket coordinate file as CSR: every entry of the
/// file is parsed (and checked) but only those inside the block are kept, shifted to the
/// block's origin (symmetric files mirrored first, repeated entries summed). The entries kept
/// are counted against the limit of `options` ([`sparse_bytes`] per entry) as they are read.
/// Array files are refused (they are dense: save them as `.npy`).
pub(crate) fn read_sparse_block(
    path: &Path,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    options: &ReadOptions,
) -> Result<CsrMatrix> {
    let (mut lines, header, _) = open_header(path, options)?;
    if header.layout == Layout::Array {
        return Err(NmfError::UnsupportedInput {
            path: path.to_path_buf(),
            reason: "a MatrixMarket array file is dense: a distributed fit reads its block from a .npy file (numpy.save) or a coordinate .mtx file".into(),
        });
    }
    header.refuse_skew_symmetric(path)?;
    let (m, n) = (header.rows, header.cols);
    super::limits::check_block(path, (&rows, &cols), (m, n), "matrix")?;
    let (br, bc) = (rows.len(), cols.len());
    if u32::try_from(br).is_err() || u32::try_from(bc).is_err() {
        return Err(format_error(
            path,
            None,
            None,
            format!("a {br} x {bc} block is more than a sparse matrix indexes (u32 indices); use more ranks"),
        ));
    }
    let symmetric = header.symmetry == Symmetry::Symmetric;
    let limit = u128::from(options.limit_bytes());
    let mut triplets: Vec<(u32, u32, f32)> = Vec::new();
    let err = line_error(path);
    read_entries(&mut lines, &header, path, |no, i, j, v| {
        if let Some(msg) = negative_or_non_finite(v, || format!("entry ({}, {})", i + 1, j + 1)) {
            return Err(err(no, Some(3), msg));
        }
        let mut keep = |a: usize, b: usize| -> Result<()> {
            if rows.contains(&a) && cols.contains(&b) {
                if sparse_bytes(triplets.len() as u128 + 1, br as u64, bc as u64) > limit {
                    return Err(NmfError::TooLarge {
                        path: path.to_path_buf(),
                        what: format!("the entries of the {br} x {bc} block"),
                        bytes: sparse_bytes(triplets.len() as u128 + 1, br as u64, bc as u64),
                        limit: options.limit_bytes(),
                    });
                }
                // Both fit in u32 (the block's dimensions were checked above).
                triplets.push(((a - rows.start) as u32, (b - cols.start) as u32, v));
            }
            Ok(())
        };
        keep(i, j)?;
        if symmetric && i != j {
            keep(j, i)?;
        }
        Ok(())
    })?;
    CsrMatrix::from_checked_triplets(br, bc, triplets)
}
