//! The output directory of a fit: checked before any work, so that a long fit never ends in
//! "cannot write", and written as a unit (W.npy, H.npy and summary.json appear together or not
//! at all).

use std::path::Path;

use nmf_gpu::io::StagedDir;
use nmf_gpu::ndarray::ArrayView2;

use crate::error::{at, CliError};
use crate::summary::{H_FILE, SUMMARY_FILE, W_FILE};

/// The files of a model directory; a directory holding anything else is not replaced.
const MODEL_FILES: [&str; 3] = [W_FILE, H_FILE, SUMMARY_FILE];

/// Check that `dir` can receive a model: it is missing, empty, or holds only a model's files
/// (which the new model replaces), and a directory can be created beside it. Missing parent
/// directories are created.
pub fn prepare_dir(dir: &Path) -> Result<(), CliError> {
    prepare_dir_for(dir, &MODEL_FILES, "a model")
}

/// Check that `dir` can receive `what`, made of the files `known`: it is missing, empty, or
/// holds only such files (which the new results replace), and a directory can be created beside
/// it. Missing parent directories are created. A `dir` that is a symbolic link to a directory
/// stands for that directory (the link is kept, the directory it points to receives the
/// results); a link to anything else, or to nothing, is refused here, before any work.
pub fn prepare_dir_for(dir: &Path, known: &[&str], what: &str) -> Result<(), CliError> {
    check_path(dir)?;
    if dir.is_dir() {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| at(dir, format!("could not list the output directory: {e}")))?;
        let mut foreign = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| at(dir, format!("could not list the output directory: {e}")))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !known.contains(&name.as_str()) {
                foreign.push(name);
            }
        }
        if !foreign.is_empty() {
            foreign.sort();
            let shown: Vec<&str> = foreign.iter().take(5).map(String::as_str).collect();
            return Err(at(
                dir,
                format!(
                    "the output directory holds files that are not part of {what} ({}{}); writing {what} replaces the whole directory, so choose a new or empty --output-dir",
                    shown.join(", "),
                    if foreign.len() > shown.len() { ", ..." } else { "" }
                ),
            ));
        }
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| at(dir, format!("could not create the output directory: {e}")))?;
    }
    // Creating (and dropping) the temporary directory checks that the parent is writable.
    StagedDir::new(dir)
        .map_err(|e| at(dir, format!("could not create the output directory: {e}")))?;
    Ok(())
}

/// Write W.npy, H.npy and `summary` (summary.json) into a temporary directory beside `dir` and
/// rename it to `dir`, replacing the model there. On any error nothing at `dir` changes and
/// the temporary directory is removed.
pub fn stage_model(
    dir: &Path,
    w: ArrayView2<'_, f32>,
    h: ArrayView2<'_, f32>,
    summary: &str,
) -> nmf_gpu::Result<()> {
    let staged = StagedDir::new(dir)?;
    staged.npy(W_FILE, &w)?;
    staged.npy(H_FILE, &h)?;
    staged.bytes(SUMMARY_FILE, summary.as_bytes())?;
    staged.commit()?;
    Ok(())
}

/// Refuse an output directory path that cannot become a directory: one that is (or links to) a
/// file, a symbolic link pointing nowhere, or a path under a file.
fn check_path(dir: &Path) -> Result<(), CliError> {
    let link = std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
    if link {
        let shown = std::fs::read_link(dir)
            .map(|t| t.display().to_string())
            .unwrap_or_default();
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(at(
                    dir,
                    format!("the output directory is a symbolic link to {shown}, which is a file, not a directory; choose another --output-dir"),
                ))
            }
            Err(e) => {
                return Err(at(
                    dir,
                    format!("the output directory is a symbolic link to {shown}, which cannot be followed ({e}); create its target or choose another --output-dir"),
                ))
            }
        }
    }
    if dir.exists() && !dir.is_dir() {
        return Err(at(
            dir,
            "the output directory is a file, not a directory; choose another --output-dir",
        ));
    }
    // The nearest existing ancestor must be a directory (followed through symbolic links).
    for ancestor in dir.ancestors().skip(1) {
        if ancestor.as_os_str().is_empty() {
            break;
        }
        match std::fs::metadata(ancestor) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => {
                return Err(at(
                    dir,
                    format!("the output directory would be under {}, which is a file, not a directory; choose another --output-dir", ancestor.display()),
                ))
            }
            Err(_) => continue,
        }
    }
    Ok(())
}

/// Check that the directory that will hold `file` exists and is writable.
pub fn check_parent(file: &Path) -> Result<(), CliError> {
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(at(
            file,
            "cannot be written: its directory does not exist (create it first)",
        ));
    }
    let probe = parent.join(format!(".nmf-write-check-{}", std::process::id()));
    std::fs::File::create(&probe).map_err(|e| {
        at(
            file,
            format!("cannot be written: its directory is not writable: {e}"),
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
