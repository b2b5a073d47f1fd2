//! How large a matrix the readers agree to allocate, and the check made before allocating.

use std::path::Path;

use crate::error::{NmfError, Result};

pub use crate::memory::FIXED_CAP_BYTES;

/// The default input limit: half of the memory this process may take (the fit needs room for
/// the factors and the engine's work space too): the smallest of the available memory, the
/// process's `RLIMIT_AS` / `RLIMIT_DATA` and its cgroup's memory limit, or [`FIXED_CAP_BYTES`]
/// where none can be read.
pub fn default_max_bytes() -> u64 {
    crate::memory::default_read_limit()
}

/// `Err(Format)` unless the block `rows x cols` lies within the `m x n` `what` (matrix,
/// array) of the file `path`.
pub(crate) fn check_block(
    path: &Path,
    (rows, cols): (&std::ops::Range<usize>, &std::ops::Range<usize>),
    (m, n): (u64, u64),
    what: &str,
) -> Result<()> {
    if rows.end as u64 > m || cols.end as u64 > n || rows.start > rows.end || cols.start > cols.end
    {
        return Err(super::format_error(
            path,
            None,
            None,
            format!("the block rows {rows:?} x columns {cols:?} lies outside the {m} x {n} {what}"),
        ));
    }
    Ok(())
}

/// A declared shape `(rows, cols)` as `usize`s; one that does not fit in memory addresses is a
/// format error of `path` (at `line`, where the shape is declared on one).
pub(crate) fn addressable_shape(
    path: &Path,
    line: Option<usize>,
    (rows, cols): (u64, u64),
) -> Result<(usize, usize)> {
    let too_big = || {
        super::format_error(
            path,
            line,
            None,
            "the declared shape does not fit in memory addresses",
        )
    };
    Ok((
        usize::try_from(rows).map_err(|_| too_big())?,
        usize::try_from(cols).map_err(|_| too_big())?,
    ))
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
