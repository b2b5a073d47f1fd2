//! The command's error: one message for the user; the process exits with code 1, or 2 for a
//! usage error (options that cannot go together).

use std::fmt;
use std::path::Path;

use nmf_gpu::io::LoadedMatrix;
use nmf_gpu::NmfError;

use crate::Orientation;

/// An error to print as `error: <message>`.
#[derive(Debug)]
pub struct CliError {
    message: String,
    code: u8,
}

impl CliError {
    /// An error with this message (exit code 1).
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: 1,
        }
    }

    /// A usage error: options that cannot be used together (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: 2,
        }
    }

    /// An error with its own exit code (e.g. 130 after SIGINT).
    pub fn with_code(message: impl Into<String>, code: u8) -> Self {
        CliError {
            message: message.into(),
            code,
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        self.code
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<NmfError> for CliError {
    /// Library errors about files already name the file.
    fn from(e: NmfError) -> Self {
        CliError::new(e.to_string())
    }
}

/// An error from fitting (or transforming) the data of `input`, in the file's terms: a bad
/// entry is located where it is stored in the file (line and column of a text table, element
/// index of a .npy, 1-based entry of a .mtx), whatever the orientation used for the fit; any
/// other error is prefixed with the file and the matrix shape.
pub fn data_error(e: NmfError, input: &LoadedMatrix, orientation: Orientation) -> CliError {
    located_error(e, &input.path, input.data.dim(), orientation, |row, col| {
        input.locate(row, col)
    })
}

/// [`data_error`] for any input: `file_shape` is rows x columns as stored in `path`, and
/// `locate` names the place of entry `(row, col)` (0-based, the file's orientation).
pub fn located_error(
    e: NmfError,
    path: &Path,
    file_shape: (usize, usize),
    orientation: Orientation,
    locate: impl Fn(usize, usize) -> String,
) -> CliError {
    let to_file = |row: usize, col: usize| match orientation {
        Orientation::SamplesAsColumns => (row, col),
        Orientation::SamplesAsRows => (col, row),
    };
    let path = path.display();
    match e {
        NmfError::NegativeInput { row, col, value } => {
            let (row, col) = to_file(row, col);
            CliError::new(format!(
                "{path} ({}): negative entry {value}; NMF needs every entry >= 0 (clip, shift or take absolute values first)",
                locate(row, col)
            ))
        }
        NmfError::NonFiniteInput { row, col, value } => {
            let (row, col) = to_file(row, col);
            CliError::new(format!(
                "{path} ({}): non-finite entry {value}; remove or impute NaN/Inf values first",
                locate(row, col)
            ))
        }
        other => {
            let (rows, cols) = file_shape;
            CliError::new(format!("{path} ({rows} x {cols}): {other}"))
        }
    }
}

/// `path: message`.
pub fn at(path: &Path, message: impl fmt::Display) -> CliError {
    CliError::new(format!("{}: {message}", path.display()))
}
