//! Listing the files of a directory tree (image and text directories).

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

/// The files under `dir` whose names pass `keep`, as paths relative to `dir`, in the order the
/// file system lists them. Hidden entries (names starting with `.`) are skipped; links to files
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
