//! Listing the files of a directory tree (image and text directories), in natural order.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use crate::error::{NmfError, Result};

/// Whether a listing enters subdirectories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Descend {
    /// Every level below the directory.
    Recursive,
    /// The directory's own entries only.
    #[cfg_attr(not(feature = "text"), allow(dead_code))]
    TopLevel,
}

/// The files under `dir` whose names pass `keep`, as paths relative to `dir`, sorted by
/// [`natural_path_cmp`] (the column order of image and text matrices). Hidden entries (names starting with `.`) are skipped; links to files
/// are followed, links to directories are not.
///
/// Errors: `dir` missing or unreadable (`NmfError::Io` with `action`), or not a directory
/// (`NmfError::UnsupportedInput`, telling the user to give the directory that holds `holds`).
pub(crate) fn list_files(
    dir: &Path,
    action: &'static str,
    holds: &str,
    descend: Descend,
    keep: &dyn Fn(&Path) -> bool,
) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(dir).map_err(|source| NmfError::Io {
        path: dir.to_path_buf(),
        action,
        source,
    })?;
    if !meta.is_dir() {
        return Err(NmfError::UnsupportedInput {
            path: dir.to_path_buf(),
            reason: format!("is a file, not a directory; give the directory that holds {holds}"),
        });
    }
    let mut out = Vec::new();
    collect(dir, Path::new(""), descend, keep, &mut out)?;
    out.sort_by(|a, b| natural_path_cmp(a, b));
    Ok(out)
}

/// Append to `out` the kept files under `root/rel`, as paths relative to `root`.
fn collect(
    root: &Path,
    rel: &Path,
    descend: Descend,
    keep: &dyn Fn(&Path) -> bool,
    out: &mut Vec<PathBuf>,
) -> Result<()> {
    let here = root.join(rel);
    let list_err = |source| NmfError::Io {
        path: here.clone(),
        action: "list the directory",
        source,
    };
    for entry in std::fs::read_dir(&here).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        let name = PathBuf::from(entry.file_name());
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let file_type = entry.file_type().map_err(list_err)?;
        let rel_name = rel.join(&name);
        if file_type.is_dir() {
            if descend == Descend::Recursive {
                collect(root, &rel_name, descend, keep, out)?;
            }
        } else if keep(&name)
            && (file_type.is_file() || std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()))
        {
            out.push(rel_name);
        }
    }
    Ok(())
}

/// Natural order of relative paths: component by component with [`natural_cmp`], so that
/// `s2/10.pgm` comes after `s2/9.pgm`, `s10/` after `s9/`, and `a/z.txt` before `b.txt`.
pub(crate) fn natural_path_cmp(a: &Path, b: &Path) -> Ordering {
    let mut ca = a.components();
    let mut cb = b.components();
    loop {
        match (ca.next(), cb.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = natural_cmp(
                    &x.as_os_str().to_string_lossy(),
                    &y.as_os_str().to_string_lossy(),
                );
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

/// Natural order of names: runs of ASCII digits compare by numeric value (`"9" < "10"`),
/// everything else character by character (so `"B" < "a"`). Names equal in this order (they
/// differ only in leading zeros) fall back to plain order (`"01" < "1"`), so the order is
/// total and agrees with equality.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a_rest, mut b_rest) = (a, b);
    loop {
        match (a_rest.chars().next(), b_rest.chars().next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (a_num, a_tail) = split_digits(a_rest);
                let (b_num, b_tail) = split_digits(b_rest);
                let (a_sig, b_sig) = (a_num.trim_start_matches('0'), b_num.trim_start_matches('0'));
                let ord = a_sig.len().cmp(&b_sig.len()).then_with(|| a_sig.cmp(b_sig));
                if ord != Ordering::Equal {
                    return ord;
                }
                a_rest = a_tail;
                b_rest = b_tail;
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                a_rest = &a_rest[x.len_utf8()..];
                b_rest = &b_rest[y.len_utf8()..];
            }
        }
    }
}

/// The leading run of ASCII digits of `s`, and the rest.
fn split_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_digit_runs_as_numbers() {
        let mut names = vec![
            "s10/1.pgm",
            "s2/10.pgm",
            "s2/9.pgm",
            "s1/1.pgm",
            "a.png",
            "s2/09b",
            "b.txt",
            "B.txt",
            "a/z.txt",
        ];
        names.sort_by(|a, b| natural_path_cmp(Path::new(a), Path::new(b)));
        assert_eq!(
            names,
            [
                "B.txt",
                "a/z.txt",
                "a.png",
                "b.txt",
                "s1/1.pgm",
                "s2/9.pgm",
                "s2/09b",
                "s2/10.pgm",
                "s10/1.pgm"
            ]
        );
        assert_eq!(natural_cmp("01", "1"), Ordering::Less);
        assert_eq!(natural_cmp("doc2.txt", "doc02.txt"), Ordering::Greater);
        assert_eq!(natural_cmp("img2", "img10"), Ordering::Less);
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
    }
}
