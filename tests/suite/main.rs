//! The integration tests, in one binary (one link instead of one per file): each module is
//! one area of the library, `common` holds the shared test data. Tests that change
//! process-wide state (environment variables) live in their own binaries beside this one
//! (`tests/gpu_errors.rs`).

mod common;
#[cfg(feature = "images")]
#[path = "../../fuzz/fuzz_targets/common.rs"]
mod fuzz_common;

mod ahals;
mod api;
mod beta;
mod cli;
mod cli_beta;
mod cluster;
mod control;
mod extreme;
mod frames;
mod fuzz_regressions;
mod gpu_fit;
mod gpu_quiet;
mod gpu_tuner;
mod graph;
mod hals;
#[cfg(feature = "hdf5")]
mod hdf5;
mod images;
mod interrupt;
mod io;
mod kernels_shapes;
mod masked;
mod masked_sparse;
mod mu;
mod multi_gpu;
mod online;
mod orthogonal;
mod reliability;
mod select;
mod select_planted;
mod shaders_validate;
mod sparse;
mod sparse_order;
mod swimmer;
mod symmetric;
mod symmetric_sparse;
mod text;
mod tiff;
mod validation;
#[cfg(feature = "zarr")]
mod zarr;
