//! HDF5 datasets (feature `hdf5`, through the system HDF5 library, 1.10 or later): an
//! n-dimensional dataset whose first axis is samples, read as V.
//!
//! **Which dataset.** [`ReadOptions::dataset`] names it (`/group/name`; `--dataset` on the
//! command line). Without a name, a file holding exactly one dataset gives that one; otherwise
//! the error lists the datasets (up to 64).
//!
//! **Orientation.** A dataset of shape `(n, d1, d2, ...)` is `n` samples (the columns of V) of
//! `d1·d2·...` features (the rows, in C order): a movie stored `(frames, height, width)` gives V
//! of `height·width x frames`, as a TIFF stack does; a 2-D `(samples, features)` dataset gives
//! its transpose.
//!
//! **What is read.** Signed and unsigned integers of 8 to 64 bits and floats of 32 or 64 bits,
//! any byte order, contiguous or chunked with any filter the HDF5 library applies (deflate,
//! shuffle, Fletcher-32, and plugins it finds); the library converts the values to float32.
//! Compound, string, enum, reference and half-float datasets are refused
//! ([`NmfError::UnsupportedInput`]).
//!
//! **Checks before allocating** ([`header::check`]): the shape must give a non-empty V whose
//! one sample fits the input limit, and one chunk must fit the limit; the whole-matrix reader
//! checks the whole matrix too. A file that is not HDF5, is cut short or has damaged metadata
//! or chunks gives [`NmfError::Format`] naming the file and the library's message.
//!
//! **Memory.** Reads follow chunks: each hyperslab read covers whole chunks of the first axis
//! ([`header::slabs`]) and holds at most [`STAGE_BYTES`] of float32 (or one chunk's samples,
//! if more), converted into the result; the library decompresses one chunk at a time. The
//! block reader ([`Hdf5Dataset::read_block`], distributed fits) holds its block and one
//! staging read; the streaming source ([`Hdf5Source`], online fits) reads chunk-aligned
//! batches: at most `2·m·(b + c − 1)·4` bytes for `m` features, batches of `b` samples and
//! chunks of `c` samples, plus the staging read.

pub mod header;

use std::ops::Range;
use std::path::{Path, PathBuf};

use hdf5_metno as h5;
use ndarray::{Array2, ArrayViewMut2, IxDyn};

use self::header::{Hdf5Element, Hdf5Header, Hdf5Plan};
use super::limits::check_dims;
use super::samples::{self, format_error, SampleArray, Stream};
use super::ReadOptions;
use crate::error::{NmfError, Result};

/// The largest hyperslab read at once (float32 bytes), unless one chunk's samples need more.
pub const STAGE_BYTES: usize = 8 << 20;

/// The most datasets listed in the error for a file without `--dataset`.
const LISTED: usize = 64;

/// An HDF5 dataset opened for reading: its header, checked.
#[derive(Debug, Clone)]
pub struct Hdf5Dataset {
    path: PathBuf,
    name: String,
    /// Held so that the file stays open as long as the dataset.
    _file: h5::File,
    dataset: h5::Dataset,
    header: Hdf5Header,
    plan: Hdf5Plan,
    limit: u64,
}

impl Hdf5Dataset {
    /// Open the dataset [`ReadOptions::dataset`] names in the HDF5 file `path` (or its only
    /// dataset) and check its header against the limit of `options` (see the module docs).
    pub fn open(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Hdf5Dataset> {
        let path = path.as_ref();
        let file = h5::File::open(path)
            .map_err(|e| format_error(path, format!("not a readable HDF5 file ({e})")))?;
        let name = match options.dataset_name() {
            Some(name) => name.to_string(),
            None => {
                let found = list_datasets(&file, LISTED + 1);
                match found.as_slice() {
                    [one] => one.clone(),
                    [] => {
                        return Err(NmfError::UnsupportedInput {
                            path: path.to_path_buf(),
                            reason: "the file holds no dataset".into(),
                        })
                    }
                    many => {
                        let shown: Vec<&str> =
                            many.iter().take(LISTED).map(String::as_str).collect();
                        return Err(NmfError::UnsupportedInput {
                            path: path.to_path_buf(),
                            reason: format!(
                                "the file holds several datasets; name one with --dataset (ReadOptions::dataset): {}{}",
                                shown.join(", "),
                                if many.len() > LISTED { ", ..." } else { "" }
                            ),
                        });
                    }
                }
            }
        };
        let dataset = file.dataset(&name).map_err(|e| {
            let listed = list_datasets(&file, LISTED);
            NmfError::UnsupportedInput {
                path: path.to_path_buf(),
                reason: format!(
                    "no dataset {name:?} ({}); the file's datasets: {}",
                    one_line(&e.to_string()),
                    if listed.is_empty() {
                        "none".into()
                    } else {
                        listed.join(", ")
                    }
                ),
            }
        })?;
        let at = |e: h5::Error| {
            format_error(
                path,
                format!("dataset {name}: {}", one_line(&e.to_string())),
            )
        };
        let element = match dataset.dtype().and_then(|t| t.to_descriptor()) {
            Ok(h5::types::TypeDescriptor::Integer(s)) => Hdf5Element::Int(s as usize),
            Ok(h5::types::TypeDescriptor::Unsigned(s)) => Hdf5Element::UInt(s as usize),
            Ok(h5::types::TypeDescriptor::Float(s)) => Hdf5Element::Float(s as usize),
            Ok(other) => Hdf5Element::Other(format!("{other}")),
            Err(e) => {
                Hdf5Element::Other(format!("of a type not read ({})", one_line(&e.to_string())))
            }
        };
        let space = dataset.space().map_err(at)?;
        let shape: Vec<u64> = space.shape().iter().map(|&d| d as u64).collect();
        let chunk = dataset
            .chunk()
            .map(|c| c.iter().map(|&d| d as u64).collect());
        let header = Hdf5Header {
            shape,
            chunk,
            element,
        };
        let limit = options.limit_bytes();
        let plan = header::check(path, &header, limit)?;
        Ok(Hdf5Dataset {
            path: path.to_path_buf(),
            name,
            _file: file,
            dataset,
            header,
            plan,
            limit,
        })
    }

    /// V's shape: `(features, samples)`.
    pub fn shape(&self) -> (usize, usize) {
        self.plan.v
    }
    /// The dataset's header (shape, chunks, element type).
    pub fn header(&self) -> &Hdf5Header {
        &self.header
    }
    /// The dataset's path in the file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where sample `j` comes from, in words.
    pub fn describe(&self, j: usize) -> String {
        format!(
            "{}: dataset {}, sample {j} (index {j} of the first axis)",
            self.path.display(),
            self.name
        )
    }

    /// The whole dataset as V (`features x samples`), checked against the limit first.
    pub fn read_all(&self) -> Result<Array2<f32>> {
        let (m, n) = self.plan.v;
        self.read_block(0..m, 0..n)
    }

    /// The block `rows x cols` of V, checked against the limit before it is allocated; only
    /// its hyperslab is read.
    pub fn read_block(&self, rows: Range<usize>, cols: Range<usize>) -> Result<Array2<f32>> {
        samples::read_block(self, rows, cols)
    }
}

impl SampleArray for Hdf5Dataset {
    fn path(&self) -> &Path {
        &self.path
    }
    fn v_shape(&self) -> (usize, usize) {
        self.plan.v
    }
    fn chunk_samples(&self) -> usize {
        self.plan.chunk_samples
    }
    fn limit(&self) -> u64 {
        self.limit
    }

    fn fill(
        &self,
        rows: Range<usize>,
        cols: Range<usize>,
        mut out: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        let shape = &self.header.shape;
        let k = shape.len();
        let inner: usize = shape.iter().skip(2).map(|&d| d as usize).product();
        for slab in header::slabs(
            shape,
            self.plan.chunk_samples,
            rows.clone(),
            cols.clone(),
            STAGE_BYTES,
        ) {
            let mut sel: Vec<h5::SliceOrIndex> = vec![slab.samples.clone().into()];
            if k >= 2 {
                sel.push(slab.axis1.clone().into());
                for &d in &shape[2..] {
                    sel.push((0..d as usize).into());
                }
            }
            let span = if k >= 2 { slab.axis1.len() * inner } else { 1 };
            check_dims(
                &self.path,
                slab.samples.len() as u64,
                span as u64,
                self.limit,
            )?;
            let hyperslab = h5::Hyperslab::from(sel);
            let data = self
                .dataset
                .as_reader()
                .read_slice::<f32, _, IxDyn>(h5::Selection::from(hyperslab))
                .map_err(|e| {
                    format_error(
                        &self.path,
                        format!(
                            "dataset {}, samples {:?}: {}",
                            self.name,
                            slab.samples,
                            one_line(&e.to_string())
                        ),
                    )
                })?;
            let Some(buf) = data.as_slice() else {
                return Err(format_error(
                    &self.path,
                    "internal: a hyperslab read not in C order",
                ));
            };
            if buf.len() != slab.samples.len() * span {
                return Err(format_error(
                    &self.path,
                    format!(
                        "dataset {}: a read of {} values where {} were asked",
                        self.name,
                        buf.len(),
                        slab.samples.len() * span
                    ),
                ));
            }
            // The slab's features start at `first`, at or before rows.start; it covers `rows`.
            let first = if k >= 2 { slab.axis1.start * inner } else { 0 };
            samples::scatter(
                buf,
                span,
                slab.samples.len(),
                rows.start - first,
                &mut out,
                slab.samples.start - cols.start,
            );
        }
        Ok(())
    }
}

/// The datasets of `file` (full paths, in name order), at most `max`.
fn list_datasets(file: &h5::File, max: usize) -> Vec<String> {
    let mut found = Vec::new();
    let mut groups: Vec<h5::Group> = match file.as_group() {
        Ok(g) => vec![g],
        Err(_) => return found,
    };
    let mut visited = 0usize;
    while let Some(g) = groups.pop() {
        visited += 1;
        if visited > 4096 {
            break;
        }
        if let Ok(ds) = g.datasets() {
            found.extend(ds.iter().map(|d| d.name()));
        }
        if found.len() >= max {
            break;
        }
        if let Ok(sub) = g.groups() {
            groups.extend(sub);
        }
    }
    found.sort();
    found.truncate(max);
    found
}

/// A message on one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An HDF5 dataset streamed a batch of samples at a time (online fits), chunk-aligned (see the
/// module docs for the memory it holds).
#[derive(Debug)]
pub struct Hdf5Source {
    dataset: Hdf5Dataset,
    stream: Stream,
}

samples::sample_source!(Hdf5Source, dataset: Hdf5Dataset, |a| a.header.shape.as_slice());
