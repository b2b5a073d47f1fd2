//! `nmf`: factorize matrices stored in files from the shell.
//!
//! `nmf fit`, `nmf transform`, `nmf rank` and `nmf info`; `nmf <command> --help` documents each. Errors
//! are printed as `error: <file>: <problem>` and exit with code 1; usage errors (an unknown
//! option, an invalid option value, options that cannot go together) exit with code 2; a fit
//! stopped by SIGINT / SIGTERM writes the model reached and exits with 130 / 143.

mod args;
mod backend;
#[cfg(feature = "mpi")]
mod distributed;
mod error;
mod fit;
mod frames;
mod info;
mod online;
mod output;
mod progress;
mod rank;
mod resume;
mod signals;
mod storage;
mod summary;
mod transform;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

/// How samples are laid out in an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orientation {
    /// One sample per column (the library's V: features x samples).
    SamplesAsColumns,
    /// One sample per row (scikit-learn's X: samples x features); transposed before fitting.
    SamplesAsRows,
}

impl Orientation {
    /// From `--samples-as-rows`.
    pub fn from_flag(samples_as_rows: bool) -> Orientation {
        if samples_as_rows {
            Orientation::SamplesAsRows
        } else {
            Orientation::SamplesAsColumns
        }
    }
}

/// Print to standard output; a closed pipe (`nmf ... | head`) is not an error.
pub fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

fn main() -> ExitCode {
    env_logger::init();
    let cli = Cli::parse();
    let result = match &cli.command {
        #[cfg(feature = "mpi")]
        Command::Fit(args) if distributed::requested(args) => distributed::run(args),
        Command::Fit(args) => fit::run(args),
        Command::Transform(args) => transform::run(args).map(|()| 0),
        Command::Rank(args) => rank::run(args),
        Command::Info(args) => {
            info::run();
            if args.tune {
                info::tune().map(|()| 0)
            } else {
                Ok(0)
            }
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // One write of the whole line (eprintln! writes it in pieces).
            let line = format!("error: {e}\n");
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(line.as_bytes()).and_then(|()| err.flush());
            ExitCode::from(e.exit_code())
        }
    }
}
