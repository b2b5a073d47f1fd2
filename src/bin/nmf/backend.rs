//! From `--backend` to the library's [`Backend`].

use nmf_gpu::Backend;

use crate::args::BackendArg;
use crate::error::CliError;

/// The backend for `--backend`. `gpu` (or `gpu:N`, the adapter of index N in `nmf info`) opens
/// the GPU now, so that a missing or unusable GPU is reported before any data is read.
pub fn backend(arg: BackendArg) -> Result<Backend, CliError> {
    arg.open().map_err(|e| {
        CliError::new(format!(
            "--backend {arg}: {e}; use --backend cpu (or auto, which falls back to the CPU)"
        ))
    })
}
