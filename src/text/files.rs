//! Corpora from files: a directory of `.txt` files, or a count matrix with a terms file.

use std::path::{Component, Path, PathBuf};

use ndarray::Array2;

use super::vocabulary::{count_terms_described, Vocabulary, VocabularyOptions};
use crate::error::{NmfError, Result};
use crate::io::lines::read_text_bounded;
use crate::io::walk::{list_files, Descend};
use crate::io::{read_matrix, ReadOptions, DEFAULT_MAX_LINE_BYTES};

/// Whether [`read_text_files`] looks into subdirectories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Recursion {
    /// Every `.txt` file below the directory, at any depth (a corpus laid out as one
    /// subdirectory per class or per source).
    #[default]
    Recursive,
    /// Only the `.txt` files directly in the directory.
    TopLevel,
}

/// What [`read_text_files`] does with a file that is not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InvalidUtf8 {
    /// Stop with an [`NmfError::Format`] naming the file and the line.
    #[default]
    Error,
    /// Replace each invalid sequence by U+FFFD (which separates tokens) and go on; for
    /// corpora in Latin-1 or with a few stray bytes.
    Replace,
}

/// Options of [`read_text_files`] and [`read_text_dir`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextDirOptions {
    recursion: Recursion,
    invalid_utf8: InvalidUtf8,
    max_line: usize,
}

impl Default for TextDirOptions {
    fn default() -> Self {
        TextDirOptions {
            recursion: Recursion::default(),
            invalid_utf8: InvalidUtf8::default(),
            max_line: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

impl TextDirOptions {
    /// Defaults: [`Recursion::Recursive`], [`InvalidUtf8::Error`], lines of at most
    /// [`DEFAULT_MAX_LINE_BYTES`].
    pub fn new() -> Self {
        Self::default()
    }
    /// The longest line (bytes before its `\n`) a document may have; a longer one is
    /// [`NmfError::LineTooLong`].
    pub fn max_line_bytes(mut self, max_line_bytes: usize) -> Self {
        self.max_line = max_line_bytes;
        self
    }
    /// The line bound in bytes.
    pub fn line_limit_bytes(&self) -> usize {
        self.max_line
    }

    crate::options::field_setters! {
        /// Whether subdirectories are read.
        recursion: Recursion;
        /// What to do with bytes that are not UTF-8.
        invalid_utf8: InvalidUtf8;
    }
    /// The recursion setting.
    pub fn recursion_mode(&self) -> Recursion {
        self.recursion
    }
    /// The UTF-8 setting.
    pub fn invalid_utf8_mode(&self) -> InvalidUtf8 {
        self.invalid_utf8
    }
}

/// One document read by [`read_text_files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextFile {
    /// The path relative to the directory, components joined by `/` (e.g. `sports/012.txt`).
    pub name: String,
    /// The full path.
    pub path: PathBuf,
    /// The contents (a leading byte order mark removed).
    pub text: String,
}

/// Read every `.txt` file (extension compared without regard to case) in `dir`.
///
/// - Which files: regular files (or links to files) named `*.txt`; hidden entries (names
///   starting with `.`) are skipped, and so are subdirectories under [`Recursion::TopLevel`].
///   Links to directories are not followed.
/// - Order: sorted by path relative to `dir`, component by component, in natural order: runs
///   of digits compare as numbers (`doc2.txt` before `doc10.txt`), then byte order
///   (`a/z.txt` before `b.txt`, `B.txt` before `a.txt`). This is the column order of the
///   count matrix.
///
/// Errors: `dir` missing or unreadable ([`NmfError::Io`]) or not a directory
/// ([`NmfError::UnsupportedInput`]), no `.txt` file found ([`NmfError::NoTextFiles`]), a file
/// that cannot be read ([`NmfError::Io`]) or is not UTF-8 under [`InvalidUtf8::Error`]
/// ([`NmfError::Format`], with the line), a line longer than the bound
/// ([`NmfError::LineTooLong`]).
pub fn read_text_files(dir: impl AsRef<Path>, options: &TextDirOptions) -> Result<Vec<TextFile>> {
    let dir = dir.as_ref();
    let descend = match options.recursion {
        Recursion::Recursive => Descend::Recursive,
        Recursion::TopLevel => Descend::TopLevel,
    };
    let names = list_files(
        dir,
        "open the text directory",
        "the .txt files",
        descend,
        &is_txt,
    )?;
    if names.is_empty() {
        return Err(NmfError::NoTextFiles {
            dir: dir.to_path_buf(),
            recursive: options.recursion == Recursion::Recursive,
        });
    }
    names
        .into_iter()
        .map(|rel| {
            let path = dir.join(&rel);
            let text = read_text(&path, options.invalid_utf8, options.max_line)?;
            let name = rel
                .components()
                .filter_map(|c| match c {
                    Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("/");
            Ok(TextFile { name, path, text })
        })
        .collect()
}

fn is_txt(name: &Path) -> bool {
    name.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("txt"))
}

/// The contents of a text file as UTF-8, without a leading byte order mark.
fn read_text(path: &Path, invalid: InvalidUtf8, max_line: usize) -> Result<String> {
    let bytes = read_text_bounded(path, "read the file", max_line)?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(_) if invalid == InvalidUtf8::Replace => {
            Ok(String::from_utf8_lossy(bytes).into_owned())
        }
        Err(e) => {
            let line = crate::io::lines::utf8_error_line(bytes, &e);
            Err(NmfError::Format {
                path: path.to_path_buf(),
                line: Some(line),
                column: None,
                message: "the text is not valid UTF-8; convert the file to UTF-8 (e.g. \
                          `iconv -f latin1 -t utf-8`), or read with InvalidUtf8::Replace"
                    .to_string(),
            })
        }
    }
}

/// A term x document count matrix with its terms and document names.
#[derive(Debug, Clone)]
pub struct Corpus {
    vocabulary: Vocabulary,
    counts: Array2<f32>,
    documents: Vec<String>,
}

impl Corpus {
    /// A corpus from its parts: `counts` is `vocabulary.len() x documents.len()`, otherwise
    /// [`NmfError::ShapeMismatch`].
    pub fn new(
        vocabulary: Vocabulary,
        counts: Array2<f32>,
        documents: Vec<String>,
    ) -> Result<Corpus> {
        if counts.dim() != (vocabulary.len(), documents.len()) {
            return Err(NmfError::ShapeMismatch {
                what: "the count matrix of a corpus (terms x documents)",
                expected: format!("{} x {}", vocabulary.len(), documents.len()),
                found: format!("{} x {}", counts.nrows(), counts.ncols()),
            });
        }
        Ok(Corpus {
            vocabulary,
            counts,
            documents,
        })
    }
    /// The terms; term `i` names row `i` of [`Corpus::counts`].
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }
    /// The `terms x documents` counts.
    pub fn counts(&self) -> &Array2<f32> {
        &self.counts
    }
    /// The name of each document (column): the relative path of a `.txt` file, or the 1-based
    /// column number of a matrix file.
    pub fn documents(&self) -> &[String] {
        &self.documents
    }
    /// The parts: vocabulary, counts, document names.
    pub fn into_parts(self) -> (Vocabulary, Array2<f32>, Vec<String>) {
        (self.vocabulary, self.counts, self.documents)
    }
}

/// Read the `.txt` files of `dir` ([`read_text_files`]) and count their terms
/// ([`count_terms`](super::count_terms)): one column per file, in the order of
/// [`read_text_files`], named by its relative path.
///
/// Errors: those of [`read_text_files`] and of [`count_terms`](super::count_terms)
/// ([`NmfError::NoTerms`] names the directory).
pub fn read_text_dir(
    dir: impl AsRef<Path>,
    dir_options: &TextDirOptions,
    vocabulary: &VocabularyOptions,
) -> Result<Corpus> {
    let dir = dir.as_ref();
    let files = read_text_files(dir, dir_options)?;
    let texts: Vec<&str> = files.iter().map(|f| f.text.as_str()).collect();
    let (vocabulary, counts) = count_terms_described(&texts, vocabulary, || {
        format!("the {} .txt files in {}", files.len(), dir.display())
    })?;
    let documents = files.into_iter().map(|f| f.name).collect();
    Corpus::new(vocabulary, counts, documents)
}

/// Read a terms file: UTF-8 text, one term per line; line `i` (1-based) names row `i` of the
/// matching count matrix. Each line is taken as a whole, less surrounding whitespace and a
/// `\r` line end (terms are not lowercased or tokenized); a leading byte order mark is
/// dropped, and so are blank lines at the end of the file.
///
/// Errors ([`NmfError::Format`], with the line): a blank line before the last term (it would
/// shift every later row), a term listed twice, text that is not UTF-8, a file with no term;
/// [`NmfError::Io`] when the file cannot be read, [`NmfError::LineTooLong`] for a line longer
/// than [`DEFAULT_MAX_LINE_BYTES`].
pub fn read_terms(path: impl AsRef<Path>) -> Result<Vocabulary> {
    read_terms_with(path, &ReadOptions::new())
}

/// [`read_terms`] with the line bound of `options` ([`ReadOptions::max_line_bytes`]).
pub fn read_terms_with(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Vocabulary> {
    let path = path.as_ref();
    let bytes = read_text_bounded(path, "read the terms file", options.line_limit_bytes())?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let format = |line: usize, message: String| NmfError::Format {
        path: path.to_path_buf(),
        line: Some(line),
        column: None,
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = crate::io::lines::utf8_error_line(bytes, &e);
        format(
            line,
            "the terms file is not valid UTF-8; convert it to UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"
                .to_string(),
        )
    })?;
    let mut lines: Vec<&str> = text.lines().map(str::trim).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        return Err(NmfError::Format {
            path: path.to_path_buf(),
            line: None,
            column: None,
            message: "the terms file holds no term; it needs one term per line, line i naming \
                      row i of the count matrix"
                .to_string(),
        });
    }
    let mut first_line = std::collections::HashMap::with_capacity(lines.len());
    for (i, term) in lines.iter().enumerate() {
        if term.is_empty() {
            return Err(format(
                i + 1,
                "blank line; every line up to the last term must hold one term (line i names \
                 row i of the count matrix)"
                    .to_string(),
            ));
        }
        if let Some(first) = first_line.insert(*term, i + 1) {
            return Err(format(
                i + 1,
                format!(
                    "the term {term:?} is already on line {first}; each term must be listed once"
                ),
            ));
        }
    }
    Vocabulary::from_terms(lines.into_iter().map(str::to_string))
}

/// How a matrix file lays out terms and documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Orientation {
    /// Rows are terms, columns documents (the layout of `V` in this crate).
    #[default]
    TermsByDocuments,
    /// Rows are documents, columns terms (scikit-learn's `X`, the UCI bag-of-words files); the
    /// matrix is transposed after reading.
    DocumentsByTerms,
}

/// Read a count matrix (any format of [`read_matrix`]: `.mtx`, `.npy`, `.csv`, `.tsv`) and
/// its terms file ([`read_terms`]) into a [`Corpus`]; documents are named by their 1-based
/// column (row, for [`Orientation::DocumentsByTerms`]) number.
///
/// Errors: those of [`read_matrix`] and [`read_terms`], and [`NmfError::TermCountMismatch`]
/// when the matrix does not have one term row per line of the terms file.
pub fn read_term_document(
    matrix: impl AsRef<Path>,
    terms: impl AsRef<Path>,
    orientation: Orientation,
) -> Result<Corpus> {
    let (matrix, terms_path) = (matrix.as_ref(), terms.as_ref());
    let vocabulary = read_terms(terms_path)?;
    let data = read_matrix(matrix, &ReadOptions::new())?;
    let counts = match orientation {
        Orientation::TermsByDocuments => data,
        Orientation::DocumentsByTerms => data.reversed_axes().as_standard_layout().into_owned(),
    };
    if counts.nrows() != vocabulary.len() {
        return Err(NmfError::TermCountMismatch {
            matrix: matrix.to_path_buf(),
            rows: counts.nrows(),
            cols: counts.ncols(),
            terms_file: terms_path.to_path_buf(),
            terms: vocabulary.len(),
            transposed: orientation == Orientation::DocumentsByTerms,
        });
    }
    let documents = (1..=counts.ncols()).map(|j| j.to_string()).collect();
    Corpus::new(vocabulary, counts, documents)
}
