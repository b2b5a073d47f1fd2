//! The memory this process may take, read from the system: the base of every check made
//! before a large allocation (readers, fits).

/// The limit used when the available memory cannot be determined: 16 GiB (of float32 data,
/// for the readers).
pub const FIXED_CAP_BYTES: u64 = 16 << 30;

/// Memory available now: `MemAvailable` from `/proc/meminfo`, lowered to the room left under a
/// cgroup v2 memory limit when there is one. `None` where neither can be read.
pub(crate) fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let mut bytes = kib.saturating_mul(1024);
    let read_u64 =
        |p: &str| -> Option<u64> { std::fs::read_to_string(p).ok()?.trim().parse().ok() };
    if let (Some(max), Some(current)) = (
        read_u64("/sys/fs/cgroup/memory.max"),
        read_u64("/sys/fs/cgroup/memory.current"),
    ) {
        bytes = bytes.min(max.saturating_sub(current));
    }
    Some(bytes)
}

/// The memory a fit may take by default: what is available now, or [`FIXED_CAP_BYTES`] where
/// that is unknown.
pub(crate) fn default_fit_limit() -> u64 {
    available_memory().unwrap_or(FIXED_CAP_BYTES)
}
