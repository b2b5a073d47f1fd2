//! Rating files (`user item rating` per line) and the dense `(V, mask)` pair they make.
//!
//! Format, one rating per line:
//!
//! ```text
//!   # comments start with '#', anywhere on a line
//!   196   242   3   881250949      <- user, item, rating; further columns are ignored
//!   alice,The Matrix,4.5           <- commas (or tabs, or "::") may separate ids with spaces
//! ```
//!
//! A line is split at tabs when it has one, else at `::`, else at commas, else at runs of
//! spaces; fields are trimmed.
//! Users and items are arbitrary ids (compared as text: `7` and `07` are different users) and
//! get dense indices in order of first appearance. Ratings must be finite and `>= 0`. A first
//! line none of whose first three fields is a number is a header and is skipped. Blank lines
//! are skipped; a UTF-8 byte-order mark and `\r\n` line ends are accepted. Anything else is an
//! error naming the line (and field) at fault. MovieLens files (`u.data`, `ratings.dat`,
//! `ratings.csv`) read as they are.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use ndarray::Array2;

use crate::error::{NmfError, Result};
use crate::io::lines::LineReader;
use crate::io::ReadOptions;
use crate::sparse::CsrMatrix;

/// One rating: a user (row) index, an item (column) index, and the value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rating {
    /// Dense index of the user: the row of `V`.
    pub user: usize,
    /// Dense index of the item: the column of `V`.
    pub item: usize,
    /// The rating, finite and `>= 0`.
    pub value: f32,
}

/// Dense indices `0, 1, 2, ...` for arbitrary text ids, in order of first appearance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap {
    ids: Vec<String>,
    index: HashMap<String, usize>,
}

impl IdMap {
    /// An empty map.
    pub fn new() -> Self {
        IdMap::default()
    }
    /// Number of ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    /// Whether the map has no ids.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    /// The index of `id`, if it has one.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }
    /// The id with index `index`, if any.
    pub fn id(&self, index: usize) -> Option<&str> {
        self.ids.get(index).map(String::as_str)
    }
    /// The index of `id`, adding it (with the next index) when new.
    pub fn insert(&mut self, id: &str) -> usize {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = self.ids.len();
        self.ids.push(id.to_string());
        self.index.insert(id.to_string(), i);
        i
    }
    /// Every id, in index order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }
}

/// Ratings read from a file (or built from triplets), with the user and item id maps.
#[derive(Debug, Clone, Default)]
pub struct Ratings {
    ratings: Vec<Rating>,
    users: IdMap,
    items: IdMap,
    source: Option<PathBuf>,
}

impl Ratings {
    /// Read a rating file (see the module docs for the format).
    pub fn read(path: impl AsRef<Path>) -> Result<Ratings> {
        Ratings::read_with_ids(path, IdMap::new(), IdMap::new())
    }

    /// Read a rating file whose ids continue given maps: ids already in `users` / `items` keep
    /// their indices, new ones are appended. Read a test file with the training file's maps
    /// so that indices agree; an index at or past the training map's length is then a user
    /// (or item) the training data never saw.
    pub fn read_with_ids(path: impl AsRef<Path>, users: IdMap, items: IdMap) -> Result<Ratings> {
        Ratings::read_with(path, users, items, &ReadOptions::new())
    }

    /// [`read_with_ids`](Self::read_with_ids) with the line bound of `options`
    /// ([`ReadOptions::max_line_bytes`]; a longer line is [`NmfError::LineTooLong`]).
    pub fn read_with(
        path: impl AsRef<Path>,
        users: IdMap,
        items: IdMap,
        options: &ReadOptions,
    ) -> Result<Ratings> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|source| NmfError::Io {
            path: path.to_path_buf(),
            action: "open the ratings file",
            source,
        })?;
        Ratings::from_reader_with(BufReader::new(file), path, users, items, options)
    }

    /// Parse ratings from `reader`; `name` is the file name errors report. Lines are bounded
    /// by [`crate::io::DEFAULT_MAX_LINE_BYTES`].
    pub fn from_reader(
        reader: impl BufRead,
        name: impl AsRef<Path>,
        users: IdMap,
        items: IdMap,
    ) -> Result<Ratings> {
        Ratings::from_reader_with(reader, name, users, items, &ReadOptions::new())
    }

    /// [`from_reader`](Self::from_reader) with the line bound of `options`.
    pub fn from_reader_with(
        reader: impl BufRead,
        name: impl AsRef<Path>,
        users: IdMap,
        items: IdMap,
        options: &ReadOptions,
    ) -> Result<Ratings> {
        let path = name.as_ref();
        let format = |line: usize, column: Option<usize>, message: String| NmfError::Format {
            path: path.to_path_buf(),
            line: Some(line),
            column,
            message,
        };
        let mut out = Ratings {
            ratings: Vec::new(),
            users,
            items,
            source: Some(path.to_path_buf()),
        };
        let mut lines = LineReader::new(reader, path, options.line_limit_bytes());
        let mut first_content = true;
        while let Some((line_no, text)) =
            lines.next_str("the line is not valid UTF-8 text; is this really a ratings file?")?
        {
            let text = text.split('#').next().unwrap_or("").trim();
            if text.is_empty() {
                continue;
            }
            let fields: Vec<&str> = if text.contains('\t') {
                text.split('\t').map(str::trim).collect()
            } else if text.contains("::") {
                text.split("::").map(str::trim).collect()
            } else if text.contains(',') {
                text.split(',').map(str::trim).collect()
            } else {
                text.split_whitespace().collect()
            };
            let is_header = first_content
                && fields.len() >= 3
                && fields[..3].iter().all(|f| f.parse::<f64>().is_err());
            first_content = false;
            if is_header {
                continue;
            }
            if fields.len() < 3 {
                return Err(format(
                    line_no,
                    None,
                    format!(
                        "expected `user item rating` (separated by tabs, \"::\", commas or spaces), found {} field{}: {:?}",
                        fields.len(),
                        if fields.len() == 1 { "" } else { "s" },
                        text
                    ),
                ));
            }
            if let Some(k) = fields[..3].iter().position(|f| f.is_empty()) {
                return Err(format(
                    line_no,
                    Some(k + 1),
                    format!(
                        "the {} is empty; expected `user item rating`",
                        ["user id", "item id", "rating"][k]
                    ),
                ));
            }
            let value: f32 = fields[2].parse().map_err(|_| {
                format(
                    line_no,
                    Some(3),
                    format!("the rating {:?} is not a number", fields[2]),
                )
            })?;
            if !value.is_finite() || value < 0.0 {
                return Err(format(
                    line_no,
                    Some(3),
                    format!("the rating {value} must be finite and >= 0 (NMF needs nonnegative data; shift the rating scale first)"),
                ));
            }
            let user = out.users.insert(fields[0]);
            let item = out.items.insert(fields[1]);
            out.ratings.push(Rating { user, item, value });
        }
        if out.ratings.is_empty() {
            return Err(NmfError::Format {
                path: path.to_path_buf(),
                line: None,
                column: None,
                message: "no ratings found; expected lines of `user item rating`".to_string(),
            });
        }
        Ok(out)
    }

    /// Ratings from `(user id, item id, rating)` triplets; ids get indices in order of first
    /// appearance. Ratings must be finite and `>= 0`.
    pub fn from_triplets<'a>(
        triplets: impl IntoIterator<Item = (&'a str, &'a str, f32)>,
    ) -> Result<Ratings> {
        Ratings::from_triplets_with_ids(triplets, IdMap::new(), IdMap::new())
    }

    /// Ratings from `(user id, item id, rating)` triplets whose ids continue given maps (as in
    /// [`read_with_ids`](Self::read_with_ids)).
    pub fn from_triplets_with_ids<'a>(
        triplets: impl IntoIterator<Item = (&'a str, &'a str, f32)>,
        users: IdMap,
        items: IdMap,
    ) -> Result<Ratings> {
        let mut out = Ratings {
            ratings: Vec::new(),
            users,
            items,
            source: None,
        };
        for (u, i, value) in triplets {
            let user = out.users.insert(u);
            let item = out.items.insert(i);
            if !value.is_finite() || value < 0.0 {
                return Err(NmfError::InvalidObservedEntry {
                    row: user,
                    col: item,
                    value,
                });
            }
            out.ratings.push(Rating { user, item, value });
        }
        Ok(out)
    }

    /// The ratings, in file order.
    pub fn ratings(&self) -> &[Rating] {
        &self.ratings
    }
    /// Number of ratings.
    pub fn len(&self) -> usize {
        self.ratings.len()
    }
    /// Whether there are no ratings.
    pub fn is_empty(&self) -> bool {
        self.ratings.is_empty()
    }
    /// The user ids (rows).
    pub fn users(&self) -> &IdMap {
        &self.users
    }
    /// The item ids (columns).
    pub fn items(&self) -> &IdMap {
        &self.items
    }
    /// `(users, items)`: the shape of [`to_dense`](Self::to_dense).
    pub fn dim(&self) -> (usize, usize) {
        (self.users.len(), self.items.len())
    }
    /// The smallest and largest rating (`None` without ratings).
    pub fn value_range(&self) -> Option<(f32, f32)> {
        self.ratings.iter().fold(None, |acc, r| match acc {
            None => Some((r.value, r.value)),
            Some((lo, hi)) => Some((lo.min(r.value), hi.max(r.value))),
        })
    }
    /// The mean rating (`None` without ratings).
    pub fn mean(&self) -> Option<f64> {
        if self.ratings.is_empty() {
            return None;
        }
        let s: f64 = self.ratings.iter().map(|r| r.value as f64).sum();
        Some(s / self.ratings.len() as f64)
    }

    /// The users x items matrix `V` (zero where unrated) and the mask of rated entries; a pair
    /// rated more than once keeps its last rating.
    ///
    /// Refused with [`NmfError::TooLarge`] when a masked fit of it would not fit in the input
    /// limit of [`crate::io::default_max_bytes`]: the fit takes about [`DENSE_FIT_BYTES`] bytes
    /// per user x item entry, not just the 5 of this pair.
    pub fn to_dense(&self) -> Result<(Array2<f32>, Array2<bool>)> {
        let (m, n) = self.dim();
        check_dense_size(self.source.as_deref(), m, n)?;
        let mut v = Array2::<f32>::zeros((m, n));
        let mut mask = Array2::<bool>::from_elem((m, n), false);
        for r in &self.ratings {
            v[[r.user, r.item]] = r.value;
            mask[[r.user, r.item]] = true;
        }
        Ok((v, mask))
    }

    /// The users x items matrix of the ratings in CSR form, one stored entry per rated pair
    /// (a pair rated more than once keeps its last rating; a rating of 0 is stored): the input
    /// of [`MaskedParams::fit_sparse`](super::MaskedParams::fit_sparse), about 8 bytes per
    /// rating.
    pub fn to_csr(&self) -> Result<CsrMatrix> {
        let (m, n) = self.dim();
        let index = |x: usize| {
            u32::try_from(x).map_err(|_| NmfError::InvalidSparse {
                reason: format!("{m} x {n} ratings: an index does not fit in 32 bits"),
            })
        };
        index(m)?;
        index(n)?;
        let mut t = self
            .ratings
            .iter()
            .map(|r| Ok((index(r.user)?, index(r.item)?, r.value)))
            .collect::<Result<Vec<(u32, u32, f32)>>>()?;
        // A stable sort keeps the ratings of a pair in input order: the last one wins.
        t.sort_by_key(|&(i, j, _)| (i, j));
        let mut kept = 0;
        for k in 0..t.len() {
            if kept > 0 && (t[kept - 1].0, t[kept - 1].1) == (t[k].0, t[k].1) {
                t[kept - 1].2 = t[k].2;
            } else {
                t[kept] = t[k];
                kept += 1;
            }
        }
        t.truncate(kept);
        for &(i, j, value) in &t {
            if !(0.0..=f32::MAX).contains(&value) {
                return Err(NmfError::InvalidObservedEntry {
                    row: i as usize,
                    col: j as usize,
                    value,
                });
            }
        }
        CsrMatrix::from_checked_triplets(m, n, t)
    }
}

/// The dense `rows x cols` matrix `V` (zero elsewhere) and the mask of given entries from
/// `(row, column, value)` triplets; an entry given twice keeps its last value. Indices must be
/// in range and values finite and `>= 0`. Refused like [`Ratings::to_dense`] when a masked fit
/// of a `rows x cols` matrix would exceed the input limit.
pub fn dense_from_triplets(
    rows: usize,
    cols: usize,
    triplets: impl IntoIterator<Item = (usize, usize, f32)>,
) -> Result<(Array2<f32>, Array2<bool>)> {
    check_dense_size(None, rows, cols)?;
    let mut v = Array2::<f32>::zeros((rows, cols));
    let mut mask = Array2::<bool>::from_elem((rows, cols), false);
    for (i, j, value) in triplets {
        if i >= rows || j >= cols {
            return Err(NmfError::ShapeMismatch {
                what: "a triplet's position",
                expected: format!("row < {rows} and column < {cols}"),
                found: format!("row {i}, column {j}"),
            });
        }
        if !value.is_finite() || value < 0.0 {
            return Err(NmfError::InvalidObservedEntry {
                row: i,
                col: j,
                value,
            });
        }
        v[[i, j]] = value;
        mask[[i, j]] = true;
    }
    Ok((v, mask))
}

/// Host memory a masked fit of a dense pair takes per entry of the `m x n` matrix: the pair
/// itself (an f32 value and a bool mask, 5 bytes), the fit's `M ⊙ V` and `M` as f32 (8 bytes)
/// and the filled copy of `V` that the default [`MaskedInit::Filled`](super::MaskedInit::Filled)
/// factorizes (4 bytes). The factors and the engine's work space, `O((m + n) r)`, come on top.
pub const DENSE_FIT_BYTES: u64 = 17;

/// Refuse a dense `m x n` pair whose masked fit ([`DENSE_FIT_BYTES`] per entry) would exceed
/// the input limit of [`crate::io::default_max_bytes`].
fn check_dense_size(source: Option<&Path>, m: usize, n: usize) -> Result<()> {
    let limit = crate::io::default_max_bytes();
    let bytes = (m as u128) * (n as u128) * u128::from(DENSE_FIT_BYTES);
    if bytes > u128::from(limit) {
        return Err(NmfError::TooLarge {
            path: source.map_or_else(|| PathBuf::from("<triplets>"), Path::to_path_buf),
            what: format!(
                "a masked fit of the dense {m} x {n} ratings matrix (with its mask and the fit's \
                 copies, {DENSE_FIT_BYTES} bytes per entry)"
            ),
            bytes,
            limit,
        });
    }
    Ok(())
}
