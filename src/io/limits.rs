//! How large a matrix the readers agree to allocate, and the check made before allocating.

use std::path::Path;

use crate::error::{NmfError, Result};

/// The limit used when the available memory cannot be determined: 16 GiB of float32 data.
pub const FIXED_CAP_BYTES: u64 = 16 << 30;

/// The default input limit: half of the memory available to this process (the fit needs room
/// for the factors and the engine's work space too), or [`FIXED_CAP_BYTES`] where the available
/// memory is unknown.
pub fn default_max_bytes() -> u64 {
    match available_memory() {
        Some(bytes) => bytes / 2,
        None => FIXED_CAP_BYTES,
    }
}

/// Memory available now: `MemAvailable` from `/proc/meminfo`, lowered to the room left under a
/// cgroup v2 memory limit when there is one. `None` where neither can be read.
fn available_memory() -> Option<u64> {
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

/// Check that a declared `rows x cols` float32 matrix fits in `max_bytes`; return its element count.
pub(crate) fn check_dims(path: &Path, rows: u64, cols: u64, max_bytes: u64) -> Result<usize> {
    let elements = u128::from(rows) * u128::from(cols);
    let bytes = elements * 4;
    if bytes > u128::from(max_bytes) || usize::try_from(elements).is_err() {
        return Err(NmfError::TooLarge {
            path: path.to_path_buf(),
            what: format!("the declared {rows} x {cols} matrix"),
            bytes,
            limit: max_bytes,
        });
    }
    // `elements` fits in usize (checked above).
    Ok(elements as usize)
}

/// The largest number of float32 values `max_bytes` allows.
pub(crate) fn max_elements(max_bytes: u64) -> usize {
    usize::try_from(max_bytes / 4).unwrap_or(usize::MAX)
}
