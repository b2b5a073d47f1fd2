//! The memory this process may take: the base of every check made before a large allocation
//! (readers, fits).
//!
//! The budget is the smallest of the limits that apply to the process:
//!
//! - `MemAvailable` of `/proc/meminfo` (the machine's memory not yet taken);
//! - the address-space limit `RLIMIT_AS` (`ulimit -v`) less the address space already mapped
//!   (`VmSize`), and the data-segment limit `RLIMIT_DATA` (`ulimit -d`) less the data already
//!   mapped (`VmData`);
//! - the room left in the process's own cgroup: `memory.max − memory.current` (cgroup v2) of
//!   its cgroup and of every ancestor, or `memory.limit_in_bytes − memory.usage_in_bytes`
//!   (cgroup v1) of its memory cgroup — what containers and Slurm jobs set.
//!
//! A limit set by the caller (`memory_limit`, `ReadOptions::max_bytes`)
//! replaces `MemAvailable` (which is soft: the kernel may reclaim or swap) but never lifts the
//! hard limits, past which an allocation aborts the process.
//!
//! Each budget handed out is recorded with the limit it came from, so that a refusal
//! ([`NmfError::TooLarge`](crate::NmfError::TooLarge),
//! [`NmfError::FitTooLarge`](crate::NmfError::FitTooLarge)) can name the limit it met from the
//! number alone ([`origin_of`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The limit used when no limit can be read: 16 GiB (of float32 data, for the readers).
pub const FIXED_CAP_BYTES: u64 = 16 << 30;

/// Budgets remembered with their origin, most recent last; older ones are forgotten past this.
const REMEMBERED: usize = 32;

/// Which limit a budget came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// `MemAvailable` of `/proc/meminfo`.
    Available,
    /// `RLIMIT_AS` less the mapped address space.
    AddressSpace,
    /// `RLIMIT_DATA` less the mapped data.
    DataSegment,
    /// cgroup v2 `memory.max` less `memory.current`.
    CgroupV2,
    /// cgroup v1 `memory.limit_in_bytes` less `memory.usage_in_bytes`.
    CgroupV1,
    /// No limit could be read: [`FIXED_CAP_BYTES`].
    Fixed,
    /// The caller's own limit.
    User,
}

impl Bound {
    /// The limit in words, for a refusal.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Bound::Available => "the machine's available memory (MemAvailable)",
            Bound::AddressSpace => "the process's address-space limit (RLIMIT_AS, ulimit -v)",
            Bound::DataSegment => "the process's data-segment limit (RLIMIT_DATA, ulimit -d)",
            Bound::CgroupV2 => "the memory limit of the process's cgroup (memory.max)",
            Bound::CgroupV1 => "the memory limit of the process's cgroup (memory.limit_in_bytes)",
            Bound::Fixed => "the fixed cap used where no memory limit can be read",
            Bound::User => "the limit set with memory_limit or ReadOptions::max_bytes",
        }
    }
}

/// How much memory may be taken, and which limit says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    /// Bytes.
    pub bytes: u64,
    /// The limit that set it (the smallest).
    pub bound: Bound,
}

/// Where a limit handed out by this module came from: the budget it was taken from, and
/// whether it is half of it (the readers' share).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin {
    /// The budget.
    pub budget: Budget,
    /// The limit is half of the budget.
    pub half: bool,
}

fn remembered() -> &'static Mutex<Vec<(u64, Origin)>> {
    static ISSUED: Mutex<Vec<(u64, Origin)>> = Mutex::new(Vec::new());
    &ISSUED
}

/// Remember that `limit` came from `origin`; return `limit`.
fn remember(limit: u64, origin: Origin) -> u64 {
    if let Ok(mut issued) = remembered().lock() {
        issued.retain(|(l, _)| *l != limit);
        if issued.len() >= REMEMBERED {
            issued.remove(0);
        }
        issued.push((limit, origin));
    }
    limit
}

/// Where the limit `limit` (a number of bytes in a refusal) came from, if this module handed
/// it out; `None` for a limit the caller set.
pub(crate) fn origin_of(limit: u64) -> Option<Origin> {
    let issued = remembered().lock().ok()?;
    issued
        .iter()
        .rev()
        .find(|(l, _)| *l == limit)
        .map(|&(_, o)| o)
}

/// The smallest of the hard limits (address space, data segment, cgroup), if any applies.
fn hard_budget() -> Option<Budget> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut candidates = Vec::new();
    if let Some(room) = rlimit_room(libc::RLIMIT_AS as i32, status_bytes(&status, "VmSize")) {
        candidates.push(Budget {
            bytes: room,
            bound: Bound::AddressSpace,
        });
    }
    if let Some(room) = rlimit_room(libc::RLIMIT_DATA as i32, status_bytes(&status, "VmData")) {
        candidates.push(Budget {
            bytes: room,
            bound: Bound::DataSegment,
        });
    }
    candidates.extend(cgroup_room(&cgroups, Path::new(CGROUP_ROOT)));
    candidates.into_iter().min_by_key(|b| b.bytes)
}

/// The memory budget of the process now: the smallest of every limit that applies (see the
/// module docs), or [`FIXED_CAP_BYTES`] where none can be read.
pub(crate) fn budget() -> Budget {
    let available = meminfo_available().map(|bytes| Budget {
        bytes,
        bound: Bound::Available,
    });
    [available, hard_budget()]
        .into_iter()
        .flatten()
        .min_by_key(|b| b.bytes)
        .unwrap_or(Budget {
            bytes: FIXED_CAP_BYTES,
            bound: Bound::Fixed,
        })
}

/// The memory a fit may take by default: the whole [`budget`].
pub(crate) fn default_fit_limit() -> u64 {
    let budget = budget();
    remember(
        budget.bytes,
        Origin {
            budget,
            half: false,
        },
    )
}

/// The limit of a fit whose caller set `user` bytes: `user`, lowered to the hard limits when
/// they leave less.
pub(crate) fn fit_limit(user: Option<u64>) -> u64 {
    match user {
        None => default_fit_limit(),
        Some(user) => capped(user, false),
    }
}

/// The readers' default limit: half of the [`budget`] (the fit needs room for the factors and
/// the engine's work space too).
pub(crate) fn default_read_limit() -> u64 {
    let budget = budget();
    remember(budget.bytes / 2, Origin { budget, half: true })
}

/// A reader limit set by the caller: `user`, lowered to half of the hard limits when they leave
/// less.
pub(crate) fn read_limit(user: u64) -> u64 {
    capped(user, true)
}

/// `user`, or the hard budget (halved when `half`) where that is lower.
fn capped(user: u64, half: bool) -> u64 {
    match hard_budget() {
        Some(budget) => {
            let hard = if half { budget.bytes / 2 } else { budget.bytes };
            if hard < user {
                remember(hard, Origin { budget, half })
            } else {
                user
            }
        }
        None => user,
    }
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
fn meminfo_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    kib_field(&meminfo, "MemAvailable")
}

/// The value in bytes of a `Name:   123 kB` line of a `/proc` file.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib.saturating_mul(1024))
}

/// A `Vm…` field of `/proc/self/status` in bytes (0 where absent).
fn status_bytes(status: &str, name: &str) -> u64 {
    kib_field(status, name).unwrap_or(0)
}

/// The soft limit of `resource` less `used` bytes; `None` when unlimited or unreadable.
// `rlim_t` is u64 on Linux, but not on every platform.
#[allow(clippy::useless_conversion)]
fn rlimit_room(resource: i32, used: u64) -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes one `rlimit` through a valid, exclusive pointer.
    let rc = unsafe { libc::getrlimit(resource as _, &mut limit) };
    if rc != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    Some(u64::try_from(limit.rlim_cur).ok()?.saturating_sub(used))
}

/// Where the cgroup file systems are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// cgroup v1 reports "no limit" as a page-rounded `i64::MAX`; anything at or above this is
/// treated as unlimited.
const V1_UNLIMITED: u64 = 1 << 60;

/// The room left under the memory limit of the process's cgroup, from the text of
/// `/proc/self/cgroup` and the cgroup file systems mounted at `root`: the smallest
/// `memory.max − memory.current` over the cgroup v2 hierarchy from its cgroup up to the root,
/// and `memory.limit_in_bytes − memory.usage_in_bytes` of its cgroup v1 memory cgroup.
/// `None` where no limit is set or none can be read.
pub(crate) fn cgroup_room(proc_cgroup: &str, root: &Path) -> Option<Budget> {
    let mut rooms = Vec::new();
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let relative = path.trim().trim_start_matches('/');
        if id == "0" && controllers.is_empty() {
            let room = v2_room(root, relative);
            rooms.extend(room.map(|bytes| Budget {
                bytes,
                bound: Bound::CgroupV2,
            }));
        } else if controllers.split(',').any(|c| c == "memory") {
            let room = v1_room(&root.join("memory"), relative);
            rooms.extend(room.map(|bytes| Budget {
                bytes,
                bound: Bound::CgroupV1,
            }));
        }
    }
    rooms.into_iter().min_by_key(|b| b.bytes)
}

/// A file holding one unsigned number, or `max` (no limit: `Some(None)`).
fn read_limit_file(path: &Path) -> Option<Option<u64>> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    if text == "max" {
        return Some(None);
    }
    text.parse().ok().map(Some)
}

/// The directories of cgroup `relative` under `mount` and of its ancestors, deepest first. A
/// path that is not mounted there (a cgroup namespace shows the mount's root as `/`) is looked
/// up at the mount's root alone.
fn cgroup_dirs(mount: &Path, relative: &str) -> Vec<PathBuf> {
    let own = mount.join(relative);
    let start = if relative.is_empty() || !own.is_dir() {
        mount.to_path_buf()
    } else {
        own
    };
    let mut dirs = Vec::new();
    let mut dir = Some(start.as_path());
    while let Some(d) = dir {
        dirs.push(d.to_path_buf());
        if d == mount {
            break;
        }
        dir = d.parent();
    }
    dirs
}

/// cgroup v2: the smallest `memory.max − memory.current` from the cgroup up to the root.
fn v2_room(mount: &Path, relative: &str) -> Option<u64> {
    cgroup_dirs(mount, relative)
        .iter()
        .filter_map(|dir| {
            let max = read_limit_file(&dir.join("memory.max"))??;
            let current = read_limit_file(&dir.join("memory.current"))
                .flatten()
                .unwrap_or(0);
            Some(max.saturating_sub(current))
        })
        .min()
}

/// cgroup v1: `memory.limit_in_bytes − memory.usage_in_bytes` of the memory cgroup (whose
/// limit already accounts for its ancestors' in `memory.limit_in_bytes` only when set there,
/// so the ancestors are read too).
fn v1_room(mount: &Path, relative: &str) -> Option<u64> {
    cgroup_dirs(mount, relative)
        .iter()
        .filter_map(|dir| {
            let limit = read_limit_file(&dir.join("memory.limit_in_bytes"))??;
            if limit >= V1_UNLIMITED {
                return None;
            }
            let usage = read_limit_file(&dir.join("memory.usage_in_bytes"))
                .flatten()
                .unwrap_or(0);
            Some(limit.saturating_sub(usage))
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cgroup tree under a temporary directory: `files` are (path, contents).
    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (path, contents) in files {
            let p = root.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, contents).unwrap();
        }
        root
    }

    /// [`cgroup_room`] of `proc_cgroup` over a tree of `files` (see [`tree`]).
    fn room(files: &[(&str, &str)], proc_cgroup: &str) -> Option<Budget> {
        cgroup_room(proc_cgroup, tree(files).path())
    }

    /// The room a cgroup leaves: `bytes` under `bound`.
    fn limit(bytes: u64, bound: Bound) -> Option<Budget> {
        Some(Budget { bytes, bound })
    }

    #[test]
    fn v2_limit_less_usage_of_the_own_cgroup() {
        let files = [
            ("job/memory.max", "1000000\n"),
            ("job/memory.current", "250000\n"),
        ];
        assert_eq!(room(&files, "0::/job\n"), limit(750_000, Bound::CgroupV2));
    }

    #[test]
    fn v2_max_means_no_limit_but_an_ancestor_still_applies() {
        let files = [
            ("slurm/memory.max", "5000\n"),
            ("slurm/memory.current", "1000\n"),
            ("slurm/step/memory.max", "max\n"),
            ("slurm/step/memory.current", "900\n"),
        ];
        assert_eq!(
            room(&files, "0::/slurm/step\n"),
            limit(4000, Bound::CgroupV2)
        );
        let unlimited = [("a/memory.max", "max\n"), ("a/memory.current", "7\n")];
        assert_eq!(room(&unlimited, "0::/a\n"), None);
    }

    #[test]
    fn v2_namespaced_root_and_missing_files() {
        // A cgroup namespace: /proc/self/cgroup says "/" and the limit is at the mount's root.
        let files = [("memory.max", "4096\n"), ("memory.current", "1024\n")];
        assert_eq!(room(&files, "0::/\n"), limit(3072, Bound::CgroupV2));
        // A path not mounted here falls back to the root.
        assert_eq!(room(&files, "0::/not/here\n"), limit(3072, Bound::CgroupV2));
        for text in ["0::/job\n", "", "garbage line\n"] {
            assert_eq!(room(&[], text), None);
        }
        // Unparsable numbers are no limit, not an error.
        assert_eq!(room(&[("memory.max", "lots\n")], "0::/\n"), None);
    }

    #[test]
    fn v1_memory_controller_limit_and_unlimited_marker() {
        let files = [
            ("memory/job/memory.limit_in_bytes", "2000000\n"),
            ("memory/job/memory.usage_in_bytes", "500000\n"),
            ("memory/memory.limit_in_bytes", "9223372036854771712\n"),
        ];
        let text = "9:name=systemd:/\n4:cpuacct,memory:/job\n0::/\n";
        assert_eq!(room(&files, text), limit(1_500_000, Bound::CgroupV1));
        let unlimited = [("memory/memory.limit_in_bytes", "9223372036854771712\n")];
        assert_eq!(room(&unlimited, "4:memory:/\n"), None);
    }

    #[test]
    fn the_smaller_of_v1_and_v2_wins() {
        let files = [
            ("memory/memory.limit_in_bytes", "100\n"),
            ("memory/memory.usage_in_bytes", "40\n"),
            ("memory.max", "1000\n"),
            ("memory.current", "10\n"),
        ];
        assert_eq!(
            room(&files, "4:memory:/\n0::/\n"),
            limit(60, Bound::CgroupV1)
        );
    }

    #[test]
    fn proc_fields_in_kib() {
        let status = "Name:\tnmf\nVmSize:\t  2048 kB\nVmData:\t 512 kB\n";
        assert_eq!(status_bytes(status, "VmSize"), 2 << 20);
        assert_eq!(status_bytes(status, "VmData"), 512 << 10);
        assert_eq!(status_bytes(status, "VmRSS"), 0);
        // A field whose name is a prefix of another is not confused with it.
        assert_eq!(kib_field("MemAvailableX: 5 kB\n", "MemAvailable"), None);
    }

    #[test]
    fn issued_limits_are_traced_to_their_bound() {
        let budget = Budget {
            bytes: 123_456_789,
            bound: Bound::AddressSpace,
        };
        let limit = remember(budget.bytes / 2, Origin { budget, half: true });
        let origin = origin_of(limit).unwrap();
        assert_eq!(origin.budget.bound, Bound::AddressSpace);
        assert!(origin.half);
        assert_eq!(origin_of(987_654_321_000), None);
    }

    #[test]
    fn the_budget_is_never_above_the_available_memory() {
        let b = budget();
        if let Some(available) = meminfo_available() {
            assert!(b.bytes <= available);
        }
        assert!(fit_limit(Some(1)) == 1);
    }
}
