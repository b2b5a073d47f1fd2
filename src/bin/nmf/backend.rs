//! From `--backend` to the library's [`Backend`].

use nmf_gpu::Backend;

use crate::args::BackendArg;
use crate::error::CliError;

/// The backend for `--backend`. `gpu` opens the GPU now, so that a missing or unusable GPU
/// is reported before any data is read.
pub fn backend(arg: BackendArg) -> Result<Backend, CliError> {
    match arg {
        BackendArg::Cpu => Ok(Backend::Cpu),
        BackendArg::Auto => Ok(Backend::Auto),
        #[cfg(feature = "gpu")]
        BackendArg::Gpu => nmf_gpu::GpuContext::new()
            .map(Backend::Gpu)
            .map_err(|e| {
                CliError::new(format!(
                    "--backend gpu: {e}; use --backend cpu (or auto, which falls back to the CPU)"
                ))
            }),
        #[cfg(not(feature = "gpu"))]
        BackendArg::Gpu => Err(CliError::new(
            "--backend gpu: this nmf was built without the `gpu` feature; use --backend cpu (or auto)",
        )),
    }
}
