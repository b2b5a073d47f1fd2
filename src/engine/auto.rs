//! What [`Backend::Auto`](crate::Backend::Auto) runs a fit on: the rule, in one place.
//!
//! A GPU fit pays a fixed price before its first iteration (opening the device, compiling the
//! pipelines it uses, uploading V: a few hundred milliseconds) and a small one per iteration
//! (encoding and launching 10–40 dispatches, reading a loss back at checks: about 0.1–0.3 ms),
//! which the CPU engine does not. The CPU engine's time per iteration grows with the data:
//! MU Frobenius takes about 0.8 ms per iteration at 361 x 2429 (0.9 M entries, r = 49) and
//! 16 ms at 4096² (r = 64) on a 2-core EPYC, sparse MU 18.5 ms at 20000 x 50000 with 5 M
//! nonzeros (r = 20) (`../shared/PERF.md`). So over a fit of a few hundred iterations the GPU
//! gains from about 2–4 M dense entries on (CPU 2–4 ms per iteration), and sparse data, whose
//! GPU kernels are weaker than the dense ones (one invocation per row), from about 4 M stored
//! entries. Hence:
//!
//! ```text
//!   dense V (m x n):       a GPU when m·n ≥ AUTO_GPU_MIN_DENSE_ENTRIES  (2²² ≈ 4.2 M, 2048²)
//!   sparse V (nnz stored): a GPU when nnz ≥ AUTO_GPU_MIN_SPARSE_NNZ     (2²² ≈ 4.2 M)
//! ```
//!
//! and the CPU engine otherwise. The GPU is the adapter [`GpuContext::new`] opens
//! (high-performance preference: a discrete GPU before an integrated one), and only a hardware
//! one: a software adapter (lavapipe, llvmpipe, SwiftShader) is slower than the CPU engine at
//! every size and is never chosen ([`Backend::Gpu`](crate::Backend::Gpu) runs on one when asked).
//! The thresholds come from the CPU figures above and the GPU engine's fixed costs, not from a
//! GPU measurement (none has been made); they are the first thing to revise when one is.
//!
//! [`GpuContext::new`]: crate::GpuContext::new

/// Dense data with at least this many entries runs on a hardware GPU under `Backend::Auto`.
pub const AUTO_GPU_MIN_DENSE_ENTRIES: usize = 1 << 22;

/// Sparse data with at least this many stored entries runs on a hardware GPU under
/// `Backend::Auto`.
pub const AUTO_GPU_MIN_SPARSE_NNZ: usize = 1 << 22;

/// The size of a data matrix, as the rule of `Backend::Auto` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSize {
    /// A dense `rows x cols` matrix.
    Dense {
        /// Rows (features).
        rows: usize,
        /// Columns (samples).
        cols: usize,
    },
    /// A sparse `rows x cols` matrix with `nnz` stored entries.
    Sparse {
        /// Rows (features).
        rows: usize,
        /// Columns (samples).
        cols: usize,
        /// Stored entries.
        nnz: usize,
    },
}

impl DataSize {
    /// Whether the data is large enough for `Backend::Auto` to take a hardware GPU.
    pub fn large_enough_for_gpu(self) -> bool {
        match self {
            DataSize::Dense { rows, cols } => {
                rows.saturating_mul(cols) >= AUTO_GPU_MIN_DENSE_ENTRIES
            }
            DataSize::Sparse { nnz, .. } => nnz >= AUTO_GPU_MIN_SPARSE_NNZ,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_data_stays_on_the_cpu_and_large_data_may_go_to_a_gpu() {
        assert!(!DataSize::Dense { rows: 50, cols: 40 }.large_enough_for_gpu());
        assert!(!DataSize::Dense {
            rows: 361,
            cols: 2429
        }
        .large_enough_for_gpu());
        assert!(DataSize::Dense {
            rows: 2048,
            cols: 2048
        }
        .large_enough_for_gpu());
        assert!(!DataSize::Dense {
            rows: 2048,
            cols: 2047
        }
        .large_enough_for_gpu());
        assert!(DataSize::Dense {
            rows: usize::MAX,
            cols: 2
        }
        .large_enough_for_gpu());
        let sparse = |nnz| DataSize::Sparse {
            rows: 20_000,
            cols: 50_000,
            nnz,
        };
        assert!(!sparse(100_000).large_enough_for_gpu());
        assert!(sparse(5_000_000).large_enough_for_gpu());
    }
}
