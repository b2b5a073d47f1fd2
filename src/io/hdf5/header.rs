//! What the HDF5 reader checks of a dataset before reading any element, and how it splits a
//! block into the hyperslabs it reads: plain arithmetic on the dataset's header (no HDF5 call),
//! so that it can be tested and fuzzed on its own.

use std::ops::Range;
use std::path::Path;

use crate::error::{NmfError, Result};
use crate::io::samples::{self, format_error};

/// The most axes an HDF5 dataspace has.
pub const MAX_AXES: usize = 32;

/// The element type of a dataset, as the reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hdf5Element {
    /// Signed integers of this many bytes.
    Int(usize),
    /// Unsigned integers of this many bytes.
    UInt(usize),
    /// IEEE floats of this many bytes.
    Float(usize),
    /// Anything else (compound, string, enum, reference, half float...), in words.
    Other(String),
}

impl Hdf5Element {
    /// The NumPy name (`uint16`, `float32`, ...), or the description of another type.
    pub fn name(&self) -> String {
        match self {
            Hdf5Element::Int(b) => format!("int{}", b * 8),
            Hdf5Element::UInt(b) => format!("uint{}", b * 8),
            Hdf5Element::Float(b) => format!("float{}", b * 8),
            Hdf5Element::Other(s) => s.clone(),
        }
    }
    /// Bytes per element (0 for a type not read).
    pub fn bytes(&self) -> usize {
        match self {
            Hdf5Element::Int(b) | Hdf5Element::UInt(b) | Hdf5Element::Float(b) => *b,
            Hdf5Element::Other(_) => 0,
        }
    }
}

/// A dataset's header: its shape, chunk shape (`None` when it is not chunked) and element type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hdf5Header {
    /// The extent of each axis (first axis samples).
    pub shape: Vec<u64>,
    /// The chunk extent of each axis, for a chunked dataset.
    pub chunk: Option<Vec<u64>>,
    /// The element type.
    pub element: Hdf5Element,
}

/// What [`check`] found: V's shape and the chunking of the first axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hdf5Plan {
    /// V's shape `(features, samples)`.
    pub v: (usize, usize),
    /// Samples per chunk along the first axis (1 for a dataset not chunked).
    pub chunk_samples: usize,
}

/// Check a dataset's header against the input limit `limit`, before any element is read:
///
/// - at most [`MAX_AXES`] axes, none empty ([`NmfError::EmptyInput`]), not a scalar;
/// - a numeric element type: signed or unsigned integers of 1, 2, 4 or 8 bytes, floats of 4
///   or 8 bytes ([`NmfError::UnsupportedInput`] otherwise, naming the type);
/// - one sample's column of float32 within `limit` ([`NmfError::TooLarge`]);
/// - for a chunked dataset, one chunk extent per axis, each at least 1, and one chunk (which
///   the library decompresses whole) within `limit`.
pub fn check(path: &Path, header: &Hdf5Header, limit: u64) -> Result<Hdf5Plan> {
    if header.shape.len() > MAX_AXES {
        return Err(format_error(
            path,
            format!(
                "a dataset of {} axes (HDF5 has at most {MAX_AXES})",
                header.shape.len()
            ),
        ));
    }
    let size = match &header.element {
        Hdf5Element::Int(b) | Hdf5Element::UInt(b) if matches!(b, 1 | 2 | 4 | 8) => *b,
        Hdf5Element::Float(b) if matches!(b, 4 | 8) => *b,
        other => {
            return Err(NmfError::UnsupportedInput {
                path: path.to_path_buf(),
                reason: format!(
                    "the dataset's elements are {}; datasets of integers (8 to 64 bits) or floats (32 or 64 bits) are read",
                    other.name()
                ),
            })
        }
    };
    let v = samples::v_shape(path, &header.shape, limit)?;
    let chunk_samples = match &header.chunk {
        None => 1,
        Some(chunk) => {
            if chunk.len() != header.shape.len() || chunk.contains(&0) {
                return Err(format_error(
                    path,
                    format!(
                        "chunks of {} for a dataset of {}",
                        samples::shape_text(chunk),
                        samples::shape_text(&header.shape)
                    ),
                ));
            }
            let mut bytes = size as u128;
            for &c in chunk {
                bytes = bytes.saturating_mul(u128::from(c));
            }
            if bytes > u128::from(limit) {
                return Err(NmfError::TooLarge {
                    path: path.to_path_buf(),
                    what: format!("one {} chunk of the dataset", samples::shape_text(chunk)),
                    bytes,
                    limit,
                });
            }
            usize::try_from(chunk[0].min(header.shape[0])).unwrap_or(usize::MAX)
        }
    };
    Ok(Hdf5Plan { v, chunk_samples })
}

/// One hyperslab read for a block: samples `samples` (first axis), indices `axis1` of the
/// second axis (all of it for a 1-D dataset: `0..1`) and the whole of the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slab {
    /// Indices of the first axis.
    pub samples: Range<usize>,
    /// Indices of the second axis.
    pub axis1: Range<usize>,
}

/// The hyperslabs that read rows `rows` and columns `cols` of V (both non-empty and inside V)
/// from a dataset of `shape`, chunked every `chunk_samples` samples: the rows of the second
/// axis covering `rows`, and the samples split at chunk boundaries into runs of at most
/// `max(chunk_samples, stage_bytes / (4 · features read per sample))` samples, so that each
/// read covers whole chunks along the first axis and holds at most that many float32 values.
pub fn slabs(
    shape: &[u64],
    chunk_samples: usize,
    rows: Range<usize>,
    cols: Range<usize>,
    stage_bytes: usize,
) -> Vec<Slab> {
    let k = shape.len();
    let inner: usize = shape.iter().skip(2).map(|&d| d as usize).product();
    let axis1 = if k >= 2 && inner > 0 {
        rows.start / inner..(rows.end.saturating_sub(1)) / inner + 1
    } else {
        0..1
    };
    let span = axis1.len().saturating_mul(inner.max(1)).max(1);
    let c = chunk_samples.max(1);
    let fit = (stage_bytes / 4 / span).max(1);
    // Runs of whole chunks when a chunk fits the stage, else one chunk at a time.
    let run = if fit >= c { fit / c * c } else { c };
    let mut out = Vec::new();
    let mut j = cols.start;
    while j < cols.end {
        // The end of the run: `run` samples on from the chunk boundary at or before j.
        let base = j / c * c;
        let end = base.saturating_add(run).min(cols.end).max(j + 1);
        out.push(Slab {
            samples: j..end,
            axis1: axis1.clone(),
        });
        j = end;
    }
    out
}
