//! From `--backend` to the library's [`Backend`].

use nmf_gpu::{Backend, GpuContext};

use crate::args::BackendArg;
use crate::error::CliError;

/// The backend for `--backend`. `gpu` opens the GPU now, so that a missing or unusable GPU
/// is reported before any data is read.
pub fn backend(arg: BackendArg) -> Result<Backend, CliError> {
    match arg {
        BackendArg::Cpu => Ok(Backend::Cpu),
        BackendArg::Auto => Ok(Backend::Auto),
        BackendArg::Gpu => GpuContext::new().map(Backend::Gpu).map_err(|e| {
            CliError::new(format!(
                "--backend gpu: {e}; use --backend cpu (or auto, which falls back to the CPU)"
            ))
        }),
    }
}
