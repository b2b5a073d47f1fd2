//! Writing files so that a file with the final name is always complete: write a temporary file
//! in the same directory, flush it to disk, then rename it over the final name.
//!
//! A set of files that belong together (a model: W, H and a summary) is written into a temporary
//! sibling directory and exchanged with the final one as a unit by [`StagedDir`]; temporaries
//! left by dead processes are removed by the next write of the same name.

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
    /// Temporaries of dead processes beside `target` are removed first.
    pub fn write_with(
        target: impl AsRef<Path>,
        contents: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<StagedFile> {
        let target = target.as_ref().to_path_buf();
        remove_stale(&target);
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

/// An output streamed into the hidden file `.<name>.partial` beside its final path and renamed
/// there once finished ([`sync`](Self::sync), then [`rename`](Self::rename)); its owner
/// [`remove`](Self::remove)s it when dropped unfinished, so the final path never holds a
/// partial file.
#[derive(Debug)]
pub(crate) struct PartialFile {
    path: PathBuf,
    tmp: PathBuf,
}

impl PartialFile {
    /// Create the partial file of `path` (`<name>`: the file name of `path`, `default`
    /// without one).
    pub(crate) fn create(path: &Path, default: &str) -> Result<(PartialFile, File)> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| default.into());
        let partial = PartialFile {
            path: path.to_path_buf(),
            tmp: path.with_file_name(format!(".{name}.partial")),
        };
        let file = File::create(&partial.tmp).map_err(|e| partial.write_error(e))?;
        Ok((partial, file))
    }

    /// The final path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The partial file's path.
    pub(crate) fn tmp(&self) -> &Path {
        &self.tmp
    }

    /// The error of a failed write to the partial file.
    pub(crate) fn write_error(&self, source: std::io::Error) -> NmfError {
        NmfError::Io {
            path: self.tmp.clone(),
            action: "write the file",
            source,
        }
    }

    /// Flush `file` (the partial file, written) to disk.
    pub(crate) fn sync(&self, file: &File) -> Result<()> {
        file.sync_all().map_err(|e| self.write_error(e))
    }

    /// Rename the partial file to the final path.
    pub(crate) fn rename(&self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.path).map_err(|source| NmfError::Io {
            path: self.path.clone(),
            action: "move the finished file into place",
            source,
        })
    }

    /// Remove the partial file (of an output left unfinished).
    pub(crate) fn remove(&self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// A hidden, unique name `.<name>.<pid>-<host>.<n>.<suffix>` beside `target` (`<host>`: see
/// [`host_tag`]).
fn sibling_name(target: &Path, suffix: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = target
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_string());
    target.with_file_name(format!(
        ".{name}.{}-{}.{n}.{suffix}",
        std::process::id(),
        host_tag()
    ))
}

/// Eight hex digits naming this machine (a hash of its host name), so that a temporary of a
/// process on another machine sharing the directory (NFS, a cluster's home) is never taken for
/// a dead process's.
fn host_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        // FNV-1a, 32 bits.
        let hash = host_name().bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        format!("{hash:08x}")
    })
}

/// The host name, or "" where it cannot be read.
fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: `gethostname` writes at most `buf.len()` bytes into the buffer it is given.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            return String::from_utf8_lossy(&buf[..len]).into_owned();
        }
    }
    String::new()
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
/// [`commit`](StagedDir::commit) to put it at its final name as a unit.
///
/// Until the commit the final directory is untouched; after it, it holds exactly the staged
/// files. Dropping it uncommitted (an error, an early return) removes the temporary directory.
/// A directory already at the final name is *replaced*, with whatever it held: callers check
/// that it holds nothing else worth keeping.
///
/// A final name that is a symbolic link to a directory stands for that directory: the link is
/// kept and the directory it points to is replaced (as `cp -r` and `mkdir -p` follow it). A link
/// to anything else, or a dangling one, is refused by [`new`](StagedDir::new), before any work.
///
/// **Atomicity.** On Linux the replacement is one `renameat2(RENAME_EXCHANGE)`: at every instant
/// the final name holds either the old or the new complete directory, whatever kills the
/// process; the old directory, now under the temporary name, is removed afterwards. A new
/// directory takes a missing final name with `renameat2(RENAME_NOREPLACE)`. Where the file
/// system (or the platform) has no exchange, the fallback is two renames, the old directory
/// aside (`.<name>.<pid>-<host>.<n>.old`) and the new one in, with a window between them in which the
/// final name is missing; a process killed there leaves the old directory under its aside name.
///
/// **Leftovers.** Temporaries (`.<name>.<pid>-<host>.<n>.tmp` / `.old`) beside the final name
/// whose process is gone (on this machine: `<host>` is a hash of its name) are removed by the
/// next [`new`](StagedDir::new) for that name; an aside directory left by the fallback is first
/// moved back to a missing final name.
///
/// **Concurrent writers.** Each commit replaces whatever model is there, and the last commit
/// stays: the final name always holds one writer's complete directory. A writer that finds its
/// directory moved away by another writer in the fallback's window reports
/// [`NmfError::Io`] naming the lost race.
#[derive(Debug)]
pub struct StagedDir {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl StagedDir {
    /// Create an empty temporary directory beside `target` (which needs a final component:
    /// not `/`, `.` or `..`; its parent must exist). A `target` that is a symbolic link is
    /// resolved: to a directory, that directory is the target; to anything else, an error.
    /// Temporaries of dead processes beside the target are removed first.
    pub fn new(target: impl AsRef<Path>) -> Result<StagedDir> {
        let target = resolve_target(target.as_ref())?;
        remove_stale(&target);
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

    /// The final path (a symbolic link given to [`new`](Self::new) resolved).
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

    /// Put the directory at its final name, replacing a directory there (see the type's
    /// documentation). A file (not a directory) at the final name is an error.
    pub fn commit(mut self) -> Result<PathBuf> {
        sync_dir(&self.temp);
        let parent = parent_of(&self.target);
        // Another writer may create or remove the final directory between two steps: each
        // turn of the loop looks again, a bounded number of times.
        for _ in 0..COMMIT_TRIES {
            match std::fs::symlink_metadata(&self.target) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    match rename_noreplace(&self.temp, &self.target) {
                        Ok(()) => {
                            self.committed = true;
                            sync_dir(&parent);
                            return Ok(self.target.clone());
                        }
                        // Another writer's directory arrived first: replace it.
                        Err(e) if is_occupied(&e) => continue,
                        Err(e) => return Err(commit_error(&self.target, e)),
                    }
                }
                Ok(meta) if meta.is_dir() => match exchange(&self.temp, &self.target) {
                    Ok(true) => {
                        // The old directory is now under the temporary name.
                        self.committed = true;
                        sync_dir(&parent);
                        let _ = std::fs::remove_dir_all(&self.temp);
                        return Ok(self.target.clone());
                    }
                    Ok(false) => return self.commit_by_two_renames(),
                    // The final directory went away meanwhile: take the missing name.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(commit_error(&self.target, e)),
                },
                Ok(_) => {
                    return Err(commit_error(
                        &self.target,
                        std::io::Error::new(
                            std::io::ErrorKind::AlreadyExists,
                            "a file that is not a directory is in the way",
                        ),
                    ))
                }
                Err(e) => return Err(commit_error(&self.target, e)),
            }
        }
        Err(lost_race(&self.target))
    }

    /// The fallback of [`commit`](Self::commit) where the file system cannot exchange two
    /// names: the old directory aside, the new one in, the old one removed.
    fn commit_by_two_renames(mut self) -> Result<PathBuf> {
        let aside = sibling_name(&self.target, "old");
        match std::fs::rename(&self.target, &aside) {
            Ok(()) => {}
            // Another writer moved it first: ours goes in below, or loses to theirs.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(commit_error(&self.target, e)),
        }
        if let Err(e) = rename_noreplace(&self.temp, &self.target) {
            // Put the old directory back; the new one is removed on drop.
            let _ = rename_noreplace(&aside, &self.target);
            let _ = std::fs::remove_dir_all(&aside);
            return Err(if is_occupied(&e) {
                lost_race(&self.target)
            } else {
                commit_error(&self.target, e)
            });
        }
        self.committed = true;
        sync_dir(&parent_of(&self.target));
        let _ = std::fs::remove_dir_all(&aside);
        Ok(self.target.clone())
    }
}

/// The directory holding `path` (`.` for a bare name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// How many times [`StagedDir::commit`] looks again when other writers change the final name
/// under it.
const COMMIT_TRIES: usize = 64;

fn commit_error(target: &Path, source: std::io::Error) -> NmfError {
    NmfError::Io {
        path: target.to_path_buf(),
        action: "rename the finished output directory into place",
        source,
    }
}

/// The error of a writer whose directory another process's replaced at the same moment.
fn lost_race(target: &Path) -> NmfError {
    NmfError::Io {
        path: target.to_path_buf(),
        action: "put the finished output directory in place",
        source: std::io::Error::other(
            "another process wrote this output directory at the same time and its result is the one kept (lost the race to it)",
        ),
    }
}

/// A rename refused because the destination is taken (a non-empty directory or an entry there).
fn is_occupied(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == libc::EEXIST || code == libc::ENOTEMPTY)
}

/// `target` with a final symbolic link resolved (see [`StagedDir::new`]), after checking that it
/// has a name.
fn resolve_target(target: &Path) -> Result<PathBuf> {
    let named = matches!(
        target.components().next_back(),
        Some(std::path::Component::Normal(_))
    );
    let invalid = |action: &'static str| NmfError::Io {
        path: target.to_path_buf(),
        action,
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    };
    if !named {
        return Err(invalid(
            "create the output directory (it needs a name: not /, . or ..)",
        ));
    }
    match std::fs::symlink_metadata(target) {
        Ok(meta) if meta.file_type().is_symlink() => match std::fs::canonicalize(target) {
            Ok(resolved) if resolved.is_dir() => Ok(resolved),
            Ok(_) => Err(invalid(
                "use the output directory (it is a symbolic link to something that is not a directory)",
            )),
            Err(source) => Err(NmfError::Io {
                path: target.to_path_buf(),
                action: "follow the output directory's symbolic link (it points nowhere)",
                source,
            }),
        },
        _ => Ok(target.to_path_buf()),
    }
}

/// Move `from` to a missing `to`; an error with `EEXIST`/`ENOTEMPTY` when `to` exists.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        match renameat2(from, to, libc::RENAME_NOREPLACE) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => {}
            other => return other,
        }
    }
    // Without RENAME_NOREPLACE: rename(2) onto a non-empty directory fails, onto an empty one
    // replaces it (never one holding a model).
    std::fs::rename(from, to)
}

/// Exchange the directories `a` and `b` atomically. `Ok(false)` where the file system or the
/// platform cannot.
fn exchange(a: &Path, b: &Path) -> std::io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        match renameat2(a, b, libc::RENAME_EXCHANGE) {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (a, b);
        Ok(false)
    }
}

/// `renameat2(2)` relative to the working directory.
#[cfg(target_os = "linux")]
fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: both paths are NUL-terminated strings that live across the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The process id and kind (`tmp` or `old`) of a temporary name made on this machine by
/// [`sibling_name`] for the final name `name` (also the older form `.<name>.<pid>.<n>.<kind>`,
/// without the machine); `None` for any other name, a temporary of another machine included.
fn parse_sibling<'a>(entry: &'a str, name: &str) -> Option<(u32, &'a str)> {
    let rest = entry
        .strip_prefix('.')?
        .strip_prefix(name)?
        .strip_prefix('.')?;
    let mut parts = rest.split('.');
    let (owner, n, kind) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !matches!(kind, "tmp" | "old") {
        return None;
    }
    n.parse::<u64>().ok()?;
    let pid = match owner.split_once('-') {
        Some((pid, host)) if host == host_tag() => pid,
        Some(_) => return None,
        None => owner,
    };
    Some((pid.parse().ok()?, kind))
}

/// Whether process `pid` is running (or may be: anything but a definite "no such process").
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        if pid <= 0 {
            return true;
        }
        // SAFETY: signal 0 only checks that the process exists and may be signalled.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Remove the temporaries of dead processes beside `target` (see [`StagedDir`]): an aside
/// directory (`.old`) is first moved back to a missing `target`, the previous model it holds.
pub(crate) fn remove_stale(target: &Path) {
    let Some(name) = target.file_name().map(|s| s.to_string_lossy().into_owned()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(parent_of(target)) else {
        return;
    };
    let mut stale: Vec<(PathBuf, bool)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let entry = e.file_name().to_string_lossy().into_owned();
            let (pid, kind) = parse_sibling(&entry, &name)?;
            (pid != std::process::id() && !process_alive(pid)).then(|| (e.path(), kind == "old"))
        })
        .collect();
    stale.sort();
    for (path, old) in stale {
        if old && rename_noreplace(&path, target).is_ok() {
            continue;
        }
        let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        let _ = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_parsed_back_for_their_own_target_and_machine() {
        let target = Path::new("dir/model.v2");
        let tmp = sibling_name(target, "tmp");
        let entry = tmp.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            parse_sibling(&entry, "model.v2"),
            Some((std::process::id(), "tmp"))
        );
        // The older form, without the machine.
        assert_eq!(
            parse_sibling(".model.v2.42.7.old", "model.v2"),
            Some((42, "old"))
        );
        // Another machine's, another target's, other suffixes, malformed counters.
        let other_host = if host_tag() == "00000000" {
            "00000001"
        } else {
            "00000000"
        };
        let foreign = format!(".model.v2.42-{other_host}.7.tmp");
        assert_eq!(parse_sibling(&foreign, "model.v2"), None);
        assert_eq!(parse_sibling(".model.42.7.tmp", "model.v2"), None);
        assert_eq!(parse_sibling(".model.v2.5.42.7.tmp", "model"), None);
        assert_eq!(parse_sibling(".model.v2.42.7.bak", "model.v2"), None);
        assert_eq!(parse_sibling(".model.v2.42.x.tmp", "model.v2"), None);
        assert_eq!(parse_sibling("model.v2.42.7.tmp", "model.v2"), None);
    }

    /// The entries of `dir`, sorted.
    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_two_rename_fallback_replaces_the_directory_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("model");
        for (round, name) in ["old.txt", "new.txt"].iter().enumerate() {
            let staged = StagedDir::new(&target).unwrap();
            staged.bytes(name, b"x").unwrap();
            // The first round takes the missing name, the second replaces the directory.
            staged.commit_by_two_renames().unwrap();
            assert_eq!(entries(&target), [name.to_string()], "round {round}");
            assert_eq!(entries(dir.path()), ["model"], "round {round}");
        }
    }

    #[test]
    fn this_process_is_alive() {
        assert!(process_alive(std::process::id()));
    }
}
