//! Zarr v2 and v3 arrays in a local store (feature `zarr`): an n-dimensional array whose first
//! axis is samples, read as V (the other axes flattened as features: see
//! [`io`](crate::io)'s table and the orientation rule below), chunk by chunk, in pure Rust.
//!
//! **Which array.** The path is a store directory, an array directory, or an array's metadata
//! file (`zarr.json`, `.zarray`); [`ReadOptions::dataset`] names the array inside the store
//! (`group/array`, a leading `/` ignored). A store that is a group, without a name, is refused
//! with the arrays it holds listed.
//!
//! **Orientation.** An array of shape `(n, d1, d2, ...)` is `n` samples (the columns of V) of
//! `d1·d2·...` features (the rows, in C order): a movie stored `(frames, height, width)` gives V
//! of `height·width x frames`, as a TIFF stack does.
//!
//! **What is read and refused** is listed in [`meta`] (metadata) and [`codec`] (compressors).
//! A chunk that is not stored reads as the fill value. Values are converted to float32 as
//! stored (no scaling); negative or non-finite values are left for the fit to report.
//!
//! **Checks before allocating.** The metadata file is read only up to 1 MiB; the shape must
//! give a non-empty V whose one sample fits the input limit, and one decoded chunk (and its
//! stored file) must fit the limit ([`NmfError::TooLarge`]); the whole-matrix reader checks
//! the whole matrix too. A chunk file that does not decode to exactly its chunk's size is a
//! format error naming it; nothing panics.
//!
//! **Memory.** The block reader ([`ZarrArray::read_block`], distributed fits) decodes the
//! chunks that meet the block one at a time, a chunk row (the chunks of one index of the first
//! axis) after another, gathering the row's samples in a staging buffer of at most
//! [`STAGE_BYTES`] before writing them into the result: it holds the result, the staging
//! buffer, one stored chunk and one decoded chunk. The streaming source ([`ZarrSource`],
//! online fits) reads chunk-aligned (each read runs to a chunk boundary of the first axis, the
//! samples past the batch kept for the next): at most `2·m·(b + c − 1)·4` bytes of batches for
//! `m` features, batches of `b` samples and chunks of `c` samples, plus the block reader's
//! buffers.

pub mod codec;
pub mod meta;
mod write;

use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayViewMut2};

use self::codec::DecodeError;
use self::meta::{ArrayMeta, ZarrKind};
use super::samples::{self, format_error, SampleArray, Stream};
use super::ReadOptions;
use crate::error::{NmfError, Result};

pub use self::meta::ZarrDtype;
pub use self::write::{ZarrCompression, ZarrSpec, ZarrWriter};

/// The largest staging buffer of the block reader (float32 bytes): the samples of one chunk row
/// are gathered there before they are written into the result's rows, unless they need more.
pub const STAGE_BYTES: usize = 64 << 20;

/// The largest metadata file read (bytes).
pub const MAX_METADATA_BYTES: u64 = 1 << 20;

/// The metadata file of a v3 node.
pub const V3_METADATA: &str = "zarr.json";
/// The metadata file of a v2 array.
pub const V2_ARRAY: &str = ".zarray";
/// The metadata file of a v2 group.
pub const V2_GROUP: &str = ".zgroup";

/// Whether `path` is a Zarr store, array or metadata file (from names only: a directory
/// holding `zarr.json`, `.zarray` or `.zgroup`, or named `*.zarr`; a file named `zarr.json`
/// or `.zarray`).
pub fn is_zarr(path: &Path) -> bool {
    super::looks_like_zarr(path)
}

/// A Zarr array opened for reading: its metadata, checked.
#[derive(Debug, Clone)]
pub struct ZarrArray {
    dir: PathBuf,
    meta: ArrayMeta,
    /// V's shape.
    v: (usize, usize),
    limit: u64,
}

impl ZarrArray {
    /// Open the array at `path` (a store with [`ReadOptions::dataset`] naming the array, an
    /// array directory or its metadata file) and check its metadata against the limit of
    /// `options` (see the module docs).
    pub fn open(path: impl AsRef<Path>, options: &ReadOptions) -> Result<ZarrArray> {
        let path = path.as_ref();
        let mut dir = match path.file_name().and_then(|n| n.to_str()) {
            Some(V3_METADATA) | Some(V2_ARRAY) if path.is_file() => path
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            _ => path.to_path_buf(),
        };
        if let Some(name) = options.dataset_name() {
            let name = name.trim_start_matches('/');
            if name
                .split('/')
                .any(|part| part == ".." || part == "." || part.is_empty())
                && !name.is_empty()
            {
                return Err(NmfError::UnsupportedInput {
                    path: path.to_path_buf(),
                    reason: format!(
                        "the dataset name {name:?} is not a path of array names inside the store"
                    ),
                });
            }
            if !name.is_empty() {
                dir = dir.join(name);
            }
        }
        let limit = options.limit_bytes();
        let v3 = dir.join(V3_METADATA);
        let v2 = dir.join(V2_ARRAY);
        let meta = if v3.is_file() {
            let text = read_metadata(&v3)?;
            let is_group = serde_json::from_slice::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| {
                    v.get("node_type")
                        .and_then(|t| t.as_str())
                        .map(|t| t == "group")
                })
                .unwrap_or(false);
            if is_group {
                return Err(group_error(&dir, options));
            }
            ArrayMeta::parse_v3(&v3, &text)?
        } else if v2.is_file() {
            ArrayMeta::parse_v2(&v2, &read_metadata(&v2)?)?
        } else if dir.join(V2_GROUP).is_file() {
            return Err(group_error(&dir, options));
        } else if !dir.exists() {
            return Err(NmfError::UnsupportedInput {
                path: dir.clone(),
                reason: match options.dataset_name() {
                    Some(name) => format!("no array {name:?} in the Zarr store {}", path.display()),
                    None => "no such Zarr array".into(),
                },
            });
        } else {
            return Err(NmfError::UnsupportedInput {
                path: dir.clone(),
                reason: "not a Zarr array: no zarr.json (v3) or .zarray (v2) in it".into(),
            });
        };
        let meta_path = if meta.zarr_format == 3 { v3 } else { v2 };
        let v = samples::v_shape(&meta_path, &meta.shape, limit)?;
        let chunk_bytes = meta.chunk_elements() * meta.dtype.size as u128;
        if chunk_bytes > u128::from(limit) || usize::try_from(chunk_bytes).is_err() {
            return Err(NmfError::TooLarge {
                path: meta_path,
                what: format!(
                    "one {} chunk of {}",
                    samples::shape_text(&meta.chunks),
                    meta.dtype.name()
                ),
                bytes: chunk_bytes,
                limit,
            });
        }
        Ok(ZarrArray {
            dir,
            meta,
            v,
            limit,
        })
    }

    /// V's shape: `(features, samples)`.
    pub fn shape(&self) -> (usize, usize) {
        self.v
    }
    /// The array's own shape (first axis samples).
    pub fn array_shape(&self) -> &[u64] {
        &self.meta.shape
    }
    /// The chunk shape.
    pub fn chunk_shape(&self) -> &[u64] {
        &self.meta.chunks
    }
    /// The element type.
    pub fn dtype(&self) -> ZarrDtype {
        self.meta.dtype
    }
    /// 2 or 3.
    pub fn zarr_format(&self) -> u8 {
        self.meta.zarr_format
    }
    /// The array's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where sample `j` comes from, in words.
    pub fn describe(&self, j: usize) -> String {
        format!(
            "{}: sample {j} (index {j} of the first axis)",
            self.dir.display()
        )
    }

    /// The whole array as V (`features x samples`), checked against the limit first.
    pub fn read_all(&self) -> Result<Array2<f32>> {
        let (m, n) = self.v;
        self.read_block(0..m, 0..n)
    }

    /// The block `rows x cols` of V, checked against the limit before it is allocated; only
    /// the chunks meeting the block are read.
    pub fn read_block(&self, rows: Range<usize>, cols: Range<usize>) -> Result<Array2<f32>> {
        samples::read_block(self, rows, cols)
    }

    /// The decoded bytes of the chunk at `index`, or `None` when it is not stored.
    fn chunk(&self, index: &[u64]) -> Result<Option<Vec<u8>>> {
        let key = self.meta.keys.key(index);
        let path = self.dir.join(&key);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(NmfError::Io {
                    path,
                    action: "open the chunk",
                    source,
                })
            }
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len > self.limit {
            return Err(NmfError::TooLarge {
                path,
                what: "a stored chunk".into(),
                bytes: u128::from(len),
                limit: self.limit,
            });
        }
        let mut data = Vec::new();
        file.take(self.limit)
            .read_to_end(&mut data)
            .map_err(|source| NmfError::Io {
                path: path.clone(),
                action: "read the chunk",
                source,
            })?;
        let expected = (self.meta.chunk_elements() * self.meta.dtype.size as u128) as usize;
        let bound = usize::try_from(self.limit).unwrap_or(usize::MAX);
        codec::decode(&self.meta.decode, data, expected, bound)
            .map(Some)
            .map_err(|e| match e {
                DecodeError::Corrupt(m) => format_error(&path, format!("chunk {key}: {m}")),
                DecodeError::Unsupported(what) => NmfError::UnsupportedInput {
                    path: path.clone(),
                    reason: format!("chunk {key}: {what} is not read; recompress the array (blosc with lz4, zlib or zstd and byte shuffle, or zlib, gzip, zstd alone)"),
                },
            })
    }
}

impl SampleArray for ZarrArray {
    fn path(&self) -> &Path {
        &self.dir
    }
    fn v_shape(&self) -> (usize, usize) {
        self.v
    }
    fn chunk_samples(&self) -> usize {
        usize::try_from(self.meta.chunks[0]).unwrap_or(usize::MAX)
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
        let meta = &self.meta;
        let k = meta.shape.len();
        // Every extent fits in usize: the element count does (checked on opening).
        let shape: Vec<usize> = meta.shape.iter().map(|&s| s as usize).collect();
        let chunks: Vec<usize> = meta.chunks.iter().map(|&c| c as usize).collect();
        // Feature strides of axes 1.. (C order over the feature axes).
        let mut fstride = vec![0usize; k];
        let mut acc = 1usize;
        for d in (1..k).rev() {
            fstride[d] = acc;
            acc *= shape[d];
        }
        // The selection: samples `cols` on axis 0, the rows of axis 1 covering `rows`, the
        // whole of the others: features `fbase..fbase + span` of each sample.
        let mut lo: Vec<usize> = vec![0; k];
        let mut hi: Vec<usize> = shape.clone();
        lo[0] = cols.start;
        hi[0] = cols.end;
        let (fbase, span) = if k >= 2 {
            lo[1] = rows.start / fstride[1];
            hi[1] = (rows.end - 1) / fstride[1] + 1;
            (lo[1] * fstride[1], (hi[1] - lo[1]) * fstride[1])
        } else {
            (0, 1)
        };
        let first: Vec<usize> = (0..k).map(|d| lo[d] / chunks[d]).collect();
        let last: Vec<usize> = (0..k).map(|d| (hi[d] - 1) / chunks[d]).collect();
        let cstride = meta.chunk_strides();
        let size = meta.dtype.size;
        let dtype = meta.dtype;
        let mut run: Vec<f32> = Vec::new();
        let mut stage: Vec<f32> = Vec::new();
        // One chunk row (the chunks of one index of axis 0) at a time: its samples are staged
        // sample-major (runs along the last axis are contiguous there), then written into
        // `out` by rows, unless the stage would pass STAGE_BYTES: then written directly.
        for i0 in first[0]..=last[0] {
            let s_lo = lo[0].max(i0 * chunks[0]);
            let s_hi = hi[0].min((i0 + 1) * chunks[0]);
            let staged = (s_hi - s_lo) as u128 * span as u128 * 4 <= STAGE_BYTES as u128;
            if staged {
                stage.clear();
                stage.resize((s_hi - s_lo) * span, meta.fill_value);
            }
            let mut idx = first.clone();
            idx[0] = i0;
            loop {
                let index: Vec<u64> = idx.iter().map(|&i| i as u64).collect();
                let data = self.chunk(&index)?;
                let origin: Vec<usize> = (0..k).map(|d| idx[d] * chunks[d]).collect();
                let blo: Vec<usize> = (0..k).map(|d| lo[d].max(origin[d])).collect();
                let bhi: Vec<usize> = (0..k).map(|d| hi[d].min(origin[d] + chunks[d])).collect();
                let inner = k - 1;
                let mut pos = blo.clone();
                loop {
                    // One run along the last axis.
                    let count = bhi[inner] - blo[inner];
                    let mut off = 0usize;
                    for d in 0..inner {
                        off += (pos[d] - origin[d]) * cstride[d];
                    }
                    off += (blo[inner] - origin[inner]) * cstride[inner];
                    run.clear();
                    match &data {
                        Some(bytes) => {
                            convert_run(dtype, bytes, off, cstride[inner], count, size, &mut run)
                        }
                        None => run.resize(count, meta.fill_value),
                    }
                    if k == 1 {
                        // The run is along the samples; V has one row.
                        if staged {
                            stage[blo[0] - s_lo..blo[0] - s_lo + count].copy_from_slice(&run);
                        } else if rows.start == 0 {
                            for (t, &v) in run.iter().enumerate() {
                                out[[0, blo[0] + t - cols.start]] = v;
                            }
                        }
                    } else {
                        // The run's features f0.. are consecutive (the last axis's stride is 1).
                        let mut f0 = 0usize;
                        for d in 1..inner {
                            f0 += pos[d] * fstride[d];
                        }
                        f0 += blo[inner] * fstride[inner];
                        if staged {
                            let at = (pos[0] - s_lo) * span + f0 - fbase;
                            stage[at..at + count].copy_from_slice(&run);
                        } else {
                            let sample = pos[0] - cols.start;
                            let (a, b) = (f0.max(rows.start), (f0 + count).min(rows.end));
                            for f in a..b {
                                out[[f - rows.start, sample]] = run[f - f0];
                            }
                        }
                    }
                    // Next position of the outer axes (0..inner) within the box, the last
                    // fastest.
                    let mut advanced = false;
                    for d in (0..inner).rev() {
                        pos[d] += 1;
                        if pos[d] < bhi[d] {
                            advanced = true;
                            break;
                        }
                        pos[d] = blo[d];
                    }
                    if !advanced {
                        break;
                    }
                }
                // Next chunk of this chunk row (axes 1.., the last fastest).
                let mut advanced = false;
                for d in (1..k).rev() {
                    idx[d] += 1;
                    if idx[d] <= last[d] {
                        advanced = true;
                        break;
                    }
                    idx[d] = first[d];
                }
                if !advanced {
                    break;
                }
            }
            if staged {
                samples::scatter(
                    &stage,
                    span,
                    s_hi - s_lo,
                    rows.start - fbase,
                    &mut out,
                    s_lo - cols.start,
                );
            }
        }
        Ok(())
    }
}

/// Convert `count` elements of `bytes` (each `size` bytes, `stride` elements apart, the first
/// at element `off`) to float32 into `run`.
fn convert_run(
    dtype: ZarrDtype,
    bytes: &[u8],
    off: usize,
    stride: usize,
    count: usize,
    size: usize,
    run: &mut Vec<f32>,
) {
    macro_rules! each {
        ($n:literal, $conv:expr) => {{
            for t in 0..count {
                let at = (off + t * stride) * $n;
                let mut b = [0u8; $n];
                b.copy_from_slice(&bytes[at..at + $n]);
                if dtype.big_endian {
                    b.reverse();
                }
                run.push($conv(b));
            }
        }};
    }
    match (dtype.kind, size) {
        (ZarrKind::UInt, 1) => each!(1, |b: [u8; 1]| f32::from(b[0])),
        (ZarrKind::Bool, _) => each!(1, |b: [u8; 1]| f32::from(u8::from(b[0] != 0))),
        (ZarrKind::Int, 1) => each!(1, |b: [u8; 1]| f32::from(b[0] as i8)),
        (ZarrKind::UInt, 2) => each!(2, |b| f32::from(u16::from_le_bytes(b))),
        (ZarrKind::Int, 2) => each!(2, |b| f32::from(i16::from_le_bytes(b))),
        (ZarrKind::UInt, 4) => each!(4, |b| u32::from_le_bytes(b) as f32),
        (ZarrKind::Int, 4) => each!(4, |b| i32::from_le_bytes(b) as f32),
        (ZarrKind::Float, 4) => each!(4, f32::from_le_bytes),
        (ZarrKind::UInt, 8) => each!(8, |b| u64::from_le_bytes(b) as f32),
        (ZarrKind::Int, 8) => each!(8, |b| i64::from_le_bytes(b) as f32),
        (ZarrKind::Float, 8) => each!(8, |b| f64::from_le_bytes(b) as f32),
        _ => {
            for t in 0..count {
                let at = (off + t * stride) * size;
                run.push(dtype.value(&bytes[at..at + size]));
            }
        }
    }
}

/// The error for a store that is a group: the arrays it holds, to pick one with `--dataset`.
fn group_error(dir: &Path, options: &ReadOptions) -> NmfError {
    let arrays = list_arrays(dir, 64);
    let what = match options.dataset_name() {
        Some(name) => format!("{name:?} is a Zarr group, not an array"),
        None => "a Zarr group".into(),
    };
    NmfError::UnsupportedInput {
        path: dir.to_path_buf(),
        reason: if arrays.is_empty() {
            format!("{what}, and it holds no array")
        } else {
            format!(
                "{what}; name one of its arrays with --dataset (ReadOptions::dataset): {}",
                arrays.join(", ")
            )
        },
    }
}

/// The arrays under the group `dir` (relative names), at most `max`, in order.
pub fn list_arrays(dir: &Path, max: usize) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new(), 0usize)];
    while let Some((d, prefix, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        for name in names.into_iter().rev() {
            let p = d.join(&name);
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            if p.join(V2_ARRAY).is_file() || is_v3_array(&p) {
                found.push(rel);
            } else if depth < 8 && (p.join(V2_GROUP).is_file() || p.join(V3_METADATA).is_file()) {
                stack.push((p, rel, depth + 1));
            }
        }
        if found.len() >= max {
            break;
        }
    }
    found.sort();
    found.truncate(max);
    found
}

fn is_v3_array(dir: &Path) -> bool {
    std::fs::read(dir.join(V3_METADATA))
        .ok()
        .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v.get("node_type").and_then(|t| t.as_str()) == Some("array"))
}

/// A metadata file, read up to [`MAX_METADATA_BYTES`].
fn read_metadata(path: &Path) -> Result<Vec<u8>> {
    let file = super::open(path)?;
    let mut text = Vec::new();
    file.take(MAX_METADATA_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| super::read_error(path, e))?;
    if text.len() as u64 > MAX_METADATA_BYTES {
        return Err(format_error(
            path,
            format!("a metadata file larger than {MAX_METADATA_BYTES} bytes"),
        ));
    }
    Ok(text)
}

/// A Zarr array streamed a batch of samples at a time (online fits), chunk-aligned (see the
/// module docs for the memory it holds).
#[derive(Debug)]
pub struct ZarrSource {
    array: ZarrArray,
    stream: Stream,
}

samples::sample_source!(ZarrSource, array: ZarrArray, |a| a.meta.shape.as_slice());
