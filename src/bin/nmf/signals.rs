//! SIGINT and SIGTERM: the first one raises a flag that the fit checks after every iteration
//! (it then stops, and the command writes what it has and exits with 128 + the signal: 130 for
//! SIGINT, 143 for SIGTERM); a second one ends the process at once with that code.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::error::CliError;

/// The stop request of one command.
#[derive(Debug, Clone)]
pub struct Stop {
    flag: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
}

impl Stop {
    /// Install the handlers of SIGINT and SIGTERM.
    pub fn install() -> Result<Stop, CliError> {
        let stop = Stop {
            flag: Arc::new(AtomicBool::new(false)),
            signal: Arc::new(AtomicUsize::new(0)),
        };
        for sig in [SIGINT, SIGTERM] {
            let code = 128 + sig;
            // Registered first, so that it sees the flag as the previous signal left it: a
            // second signal exits at once.
            signal_hook::flag::register_conditional_shutdown(sig, code, stop.flag.clone())
                .and_then(|_| {
                    signal_hook::flag::register_usize(sig, stop.signal.clone(), sig as usize)
                })
                .and_then(|_| signal_hook::flag::register(sig, stop.flag.clone()))
                .map_err(|e| {
                    CliError::new(format!("could not install the signal handlers: {e}"))
                })?;
        }
        Ok(stop)
    }

    /// The flag for `NmfParams::stop_flag`.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// The first signal received, as its name.
    pub fn name(&self) -> &'static str {
        match self.signal.load(Ordering::SeqCst) as i32 {
            SIGTERM => "SIGTERM",
            _ => "SIGINT",
        }
    }

    /// The exit code after a stop: 128 + the signal (130 for SIGINT, 143 for SIGTERM).
    pub fn exit_code(&self) -> u8 {
        match self.signal.load(Ordering::SeqCst) as i32 {
            SIGTERM => 128 + SIGTERM as u8,
            _ => 128 + SIGINT as u8,
        }
    }
}
