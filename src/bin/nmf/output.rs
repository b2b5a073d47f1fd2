//! The output directory: made (or checked) before any work, so that a long fit never ends in
//! "cannot write".

use std::path::Path;

use crate::error::{at, CliError};

/// Create `dir` if needed and check that a file can be created in it.
pub fn prepare_dir(dir: &Path) -> Result<(), CliError> {
    if dir.exists() && !dir.is_dir() {
        return Err(at(
            dir,
            "the output directory is a file, not a directory; choose another --output-dir",
        ));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| at(dir, format!("could not create the output directory: {e}")))?;
    let probe = dir.join(format!(".nmf-write-check-{}", std::process::id()));
    std::fs::File::create(&probe)
        .map_err(|e| at(dir, format!("the output directory is not writable: {e}")))?;
    let _ = std::fs::remove_file(&probe);
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
