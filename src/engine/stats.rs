//! Counters of the work a GPU engine sent to the device.

/// What a GPU fit asked of the device, counted by the engine (see
/// [`Factorization::gpu_stats`](crate::Factorization::gpu_stats)).
///
/// Uploads count matrix data only (V once, the initial W and H); the small per-dispatch
/// parameter blocks are not included. Read-backs count the loss partial sums read at each
/// convergence check and the final W and H.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpuStats {
    /// Command buffers submitted to the queue.
    pub submissions: u64,
    /// Compute dispatches encoded.
    pub dispatches: u64,
    /// Bytes of matrix data copied from the host to the device.
    pub bytes_uploaded: u64,
    /// Bytes copied from the device back to the host.
    pub bytes_read_back: u64,
}
