//! Writing files so that a file with the final name is always complete: write a temporary file
//! in the same directory, flush it to disk, then rename it over the final name.
//!
//! A set of files that belong together (a model: W, H and a summary) is written into a temporary
//! sibling directory and renamed into place as a unit by [`StagedDir`].

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::ArrayBase;

use crate::error::{NmfError, Result};

/// A file written under a temporary name, waiting for [`commit`](StagedFile::commit) to take its
/// final name. Dropping it uncommitted removes the temporary file.
///
/// Staging several files and committing them together keeps a set of outputs (W, H, a summary)
/// from being left half-written when one of them fails.
#[derive(Debug)]
pub struct StagedFile {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl StagedFile {
    /// Write `contents` (by the closure) to a temporary file next to `target` and flush it to disk.
    pub fn write_with(
        target: impl AsRef<Path>,
        contents: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<StagedFile> {
        let target = target.as_ref().to_path_buf();
        let temp = temp_name(&target);
        let file = File::create(&temp).map_err(|source| NmfError::Io {
            path: target.clone(),
            action: "create the output file",
            source,
        })?;
        // From here on, `staged` removes the temporary file if anything fails.
        let staged = StagedFile {
            temp,
            target,
            committed: false,
        };
        let write_err = |source| NmfError::Io {
            path: staged.target.clone(),
            action: "write the output file",
            source,
        };
        let mut w = BufWriter::new(file);
        contents(&mut w).map_err(write_err)?;
        let file = w.into_inner().map_err(|e| write_err(e.into_error()))?;
        file.sync_all().map_err(write_err)?;
        Ok(staged)
    }

    /// Stage a float32 `.npy` file holding `a` (row-major, little-endian).
    pub fn npy<S, D>(target: impl AsRef<Path>, a: &ArrayBase<S, D>) -> Result<StagedFile>
    where
        S: ndarray::Data<Elem = f32>,
        D: ndarray::Dimension,
    {
        StagedFile::write_with(target, |w| write_npy(w, a))
    }

    /// The final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Rename the temporary file to its final name (replacing any file there).
    pub fn commit(mut self) -> Result<PathBuf> {
        std::fs::rename(&self.temp, &self.target).map_err(|source| NmfError::Io {
            path: self.target.clone(),
            action: "rename the finished output into place",
            source,
        })?;
        self.committed = true;
        // Make the rename itself durable.
        if let Some(dir) = self.target.parent() {
            sync_dir(dir);
        }
        Ok(self.target.clone())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// A hidden, unique temporary name in the directory of `target`.
fn temp_name(target: &Path) -> PathBuf {
    sibling_name(target, "tmp")
}

/// A hidden, unique name `.<name>.<pid>.<n>.<suffix>` beside `target`.
fn sibling_name(target: &Path, suffix: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = target
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_string());
    target.with_file_name(format!(".{name}.{}.{n}.{suffix}", std::process::id()))
}

/// Flush the directory entry changes of `dir` (renames, creations) to disk, where the platform
/// allows opening a directory for this.
fn sync_dir(dir: &Path) {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A directory of files written under a temporary sibling name, waiting for
/// [`commit`](StagedDir::commit) to rename it to its final name as a unit.
///
/// Until the commit the final directory is untouched; after it, it holds exactly the staged
/// files. Dropping it uncommitted (an error, an early return) removes the temporary directory.
/// A directory already at the final name is *replaced*, with whatever it held: callers check
/// that it holds nothing else worth keeping.
///
/// The replacement is two renames (the old directory aside, the new one in) and the removal of
/// the old one; POSIX has no atomic exchange of two directories, so a process killed between
/// the two renames leaves the old directory under its hidden aside name
/// (`.<name>.<pid>.<n>.old`) and none at the final name, never a mixture of old and new files.
#[derive(Debug)]
pub struct StagedDir {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl StagedDir {
    /// Create an empty temporary directory beside `target` (which needs a final component:
    /// not `/`, `.` or `..`; its parent must exist).
    pub fn new(target: impl AsRef<Path>) -> Result<StagedDir> {
        let target = target.as_ref().to_path_buf();
        let named = matches!(
            target.components().next_back(),
            Some(std::path::Component::Normal(_))
        );
        if !named {
            return Err(NmfError::Io {
                path: target,
                action: "create the output directory (it needs a name: not /, . or ..)",
                source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
            });
        }
        let temp = sibling_name(&target, "tmp");
        std::fs::create_dir(&temp).map_err(|source| NmfError::Io {
            path: target.clone(),
            action: "create a temporary directory beside the output directory",
            source,
        })?;
        Ok(StagedDir {
            temp,
            target,
            committed: false,
        })
    }

    /// The final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The temporary directory (where the files are until the commit).
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// Write the file `name` into the directory (by the closure) and flush it to disk.
    pub fn write_with(
        &self,
        name: &str,
        contents: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let final_path = self.target.join(name);
        let err = |action: &'static str| {
            let path = final_path.clone();
            move |source| NmfError::Io {
                path,
                action,
                source,
            }
        };
        let file = File::create(self.temp.join(name)).map_err(err("create the output file"))?;
        let mut w = BufWriter::new(file);
        contents(&mut w).map_err(err("write the output file"))?;
        let file = w
            .into_inner()
            .map_err(|e| err("write the output file")(e.into_error()))?;
        file.sync_all().map_err(err("write the output file"))
    }

    /// Write `a` as the float32 `.npy` file `name` (row-major, little-endian).
    pub fn npy<S, D>(&self, name: &str, a: &ArrayBase<S, D>) -> Result<()>
    where
        S: ndarray::Data<Elem = f32>,
        D: ndarray::Dimension,
    {
        self.write_with(name, |w| write_npy(w, a))
    }

    /// Write `bytes` as the file `name`.
    pub fn bytes(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.write_with(name, |w| w.write_all(bytes))
    }

    /// Rename the directory to its final name, replacing a directory there (see the type's
    /// documentation). A file (not a directory) at the final name is an error.
    pub fn commit(mut self) -> Result<PathBuf> {
        let rename_err = |path: &Path, source| NmfError::Io {
            path: path.to_path_buf(),
            action: "rename the finished output directory into place",
            source,
        };
        sync_dir(&self.temp);
        let parent = self.target.parent().unwrap_or(Path::new("."));
        match std::fs::symlink_metadata(&self.target) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::rename(&self.temp, &self.target)
                    .map_err(|e| rename_err(&self.target, e))?;
            }
            Ok(meta) if meta.is_dir() => {
                let aside = sibling_name(&self.target, "old");
                std::fs::rename(&self.target, &aside).map_err(|e| rename_err(&self.target, e))?;
                if let Err(e) = std::fs::rename(&self.temp, &self.target) {
                    // Put the old directory back; the new one is removed on drop.
                    let _ = std::fs::rename(&aside, &self.target);
                    return Err(rename_err(&self.target, e));
                }
                self.committed = true;
                sync_dir(parent);
                let _ = std::fs::remove_dir_all(&aside);
                return Ok(self.target.clone());
            }
            Ok(_) => {
                return Err(rename_err(
                    &self.target,
                    std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "a file that is not a directory is in the way",
                    ),
                ))
            }
            Err(e) => return Err(rename_err(&self.target, e)),
        }
        self.committed = true;
        sync_dir(parent);
        Ok(self.target.clone())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.temp);
        }
    }
}

/// Write `a` as a float32 `.npy` (format 1.0, or 2.0 if the header needs it) to `w`.
fn write_npy<S, D>(w: &mut dyn Write, a: &ArrayBase<S, D>) -> std::io::Result<()>
where
    S: ndarray::Data<Elem = f32>,
    D: ndarray::Dimension,
{
    let shape = match a.shape() {
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad with spaces so that the data starts on a 64-byte boundary, and end with '\n'.
    let (version, len_bytes) = if dict.len() + 1 + 10 <= u16::MAX as usize {
        (1u8, 2usize)
    } else {
        (2u8, 4usize)
    };
    let unpadded = 6 + 2 + len_bytes + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let header_len = dict.len() + pad + 1;
    w.write_all(b"\x93NUMPY")?;
    w.write_all(&[version, 0])?;
    if version == 1 {
        w.write_all(&(header_len as u16).to_le_bytes())?;
    } else {
        w.write_all(&(header_len as u32).to_le_bytes())?;
    }
    w.write_all(dict.as_bytes())?;
    w.write_all(&vec![b' '; pad])?;
    w.write_all(b"\n")?;
    let mut buf = Vec::with_capacity(1 << 16);
    for &x in a.iter() {
        buf.extend_from_slice(&x.to_le_bytes());
        if buf.len() >= 1 << 16 {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)
}

/// Write `a` to `path` as a float32 `.npy` file, atomically: the file at `path` is either the
/// old one or the complete new one, never a partial write.
pub fn write_npy_atomic<S, D>(path: impl AsRef<Path>, a: &ArrayBase<S, D>) -> Result<()>
where
    S: ndarray::Data<Elem = f32>,
    D: ndarray::Dimension,
{
    StagedFile::npy(path, a)?.commit().map(|_| ())
}

/// Write `bytes` to `path` atomically (see [`write_npy_atomic`]).
pub fn write_bytes_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    StagedFile::write_with(path, |w| w.write_all(bytes))?
        .commit()
        .map(|_| ())
}
