//! Counters of the work a GPU engine sent to the device.

/// What a GPU fit asked of the device, counted by the engine (see
/// [`Factorization::gpu_stats`](crate::Factorization::gpu_stats)).
///
/// Uploads count matrix data only (V once, the initial W and H, and in a distributed fit the
/// gathered factor blocks of every iteration); the small per-dispatch parameter blocks are not
/// included. Read-backs count the loss partial sums read at each convergence check and the
/// final W and H (and in a distributed fit the partial products of every iteration): between
/// two loss checks a single-process fit reads nothing back (accelerated HALS and online NMF
/// decide their inner stopping rules on the device). [`GpuStats::per_iteration`] divides the
/// counters by a number of iterations; [`GpuStats::since`] takes the work between two readings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpuStats {
    /// Command buffers submitted to the queue.
    pub submissions: u64,
    /// Compute passes encoded (one per submission that dispatches anything).
    pub compute_passes: u64,
    /// Compute dispatches encoded.
    pub dispatches: u64,
    /// Bind groups built (each is reused for every later dispatch of the same kernel over the
    /// same buffers).
    pub bind_groups_created: u64,
    /// Device buffers allocated on the engine's device since the engine started (V's panels,
    /// factors, products, scratch and staging buffers), counted by its context: engines
    /// sharing one context at the same time (threads) count each other's too.
    pub buffers_created: u64,
    /// Bytes of matrix data copied from the host to the device.
    pub bytes_uploaded: u64,
    /// Copies from the device back to the host (each one waits for the device).
    pub read_backs: u64,
    /// Bytes copied from the device back to the host.
    pub bytes_read_back: u64,
}

/// [`GpuStats`] per iteration of a fit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GpuRates {
    /// Submissions per iteration.
    pub submissions: f64,
    /// Dispatches per iteration.
    pub dispatches: f64,
    /// Read-backs per iteration.
    pub read_backs: f64,
    /// Bytes read back per iteration.
    pub bytes_read_back: f64,
}

impl GpuStats {
    /// The counters divided by `iterations` (by 1 when it is 0).
    pub fn per_iteration(&self, iterations: usize) -> GpuRates {
        let it = iterations.max(1) as f64;
        GpuRates {
            submissions: self.submissions as f64 / it,
            dispatches: self.dispatches as f64 / it,
            read_backs: self.read_backs as f64 / it,
            bytes_read_back: self.bytes_read_back as f64 / it,
        }
    }

    /// The counters as a fixed list, in field order (for sums and messages between processes).
    pub fn to_array(&self) -> [u64; 8] {
        [
            self.submissions,
            self.compute_passes,
            self.dispatches,
            self.bind_groups_created,
            self.buffers_created,
            self.bytes_uploaded,
            self.read_backs,
            self.bytes_read_back,
        ]
    }

    /// The counters from [`GpuStats::to_array`]'s list.
    pub fn from_array(a: [u64; 8]) -> GpuStats {
        GpuStats {
            submissions: a[0],
            compute_passes: a[1],
            dispatches: a[2],
            bind_groups_created: a[3],
            buffers_created: a[4],
            bytes_uploaded: a[5],
            read_backs: a[6],
            bytes_read_back: a[7],
        }
    }

    /// The work counted since the reading `earlier` of the same engine (`self − earlier`,
    /// counter by counter, 0 where `earlier` is larger).
    pub fn since(&self, earlier: &GpuStats) -> GpuStats {
        let (a, b) = (self.to_array(), earlier.to_array());
        GpuStats::from_array(std::array::from_fn(|k| a[k].saturating_sub(b[k])))
    }

    /// Both readings' counters added (the work of two engines, or of two spans of one).
    pub fn plus(&self, other: &GpuStats) -> GpuStats {
        let (a, b) = (self.to_array(), other.to_array());
        GpuStats::from_array(std::array::from_fn(|k| a[k].saturating_add(b[k])))
    }
}
