//! Writing Zarr v2 and v3 arrays chunk by chunk (test data, benchmarks, converting a matrix
//! for another tool): every element type the reader reads, C or F chunk order (a `transpose`
//! codec in v3), and the compressors zlib, gzip, Zstandard, numcodecs' LZ4 and Blosc (LZ4 with
//! byte shuffle).

use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::ArrayViewD;
use serde_json::{json, Value};

use super::codec::{blosc_lz4_frame, crc32c};
use super::meta::{ZarrDtype, ZarrKind};
use super::{V2_ARRAY, V3_METADATA};
use crate::error::{NmfError, Result};

/// How [`ZarrWriter`] compresses chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZarrCompression {
    /// Stored as is.
    #[default]
    None,
    /// zlib (v2 only).
    Zlib,
    /// gzip.
    Gzip,
    /// Zstandard.
    Zstd,
    /// numcodecs' LZ4 (v2 only).
    Lz4,
    /// Blosc: LZ4 inside, byte shuffle, blocks of 4 KiB.
    BloscLz4,
    /// No compression, a CRC-32C checksum after each chunk (v3 only).
    Crc32c,
}

/// What [`ZarrWriter::create`] writes.
#[derive(Debug, Clone, PartialEq)]
pub struct ZarrSpec {
    /// 2 or 3.
    pub zarr_format: u8,
    /// The array's shape (first axis samples).
    pub shape: Vec<u64>,
    /// The chunk shape.
    pub chunks: Vec<u64>,
    /// The element type (its byte order included).
    pub dtype: ZarrDtype,
    /// The chunk compression.
    pub compression: ZarrCompression,
    /// Elements within a chunk in Fortran order (v2 `order: "F"`, v3 a reversing `transpose`).
    pub fortran_order: bool,
    /// The chunk key separator: `.` or `/`.
    pub separator: char,
    /// The fill value.
    pub fill_value: f64,
}

impl ZarrSpec {
    /// A v`zarr_format` array of `shape` in chunks of `chunks`, of `dtype` (little-endian),
    /// uncompressed, C order, the format's default key separator, fill value 0.
    pub fn new(zarr_format: u8, shape: &[u64], chunks: &[u64], dtype: ZarrDtype) -> ZarrSpec {
        ZarrSpec {
            zarr_format,
            shape: shape.to_vec(),
            chunks: chunks.to_vec(),
            dtype,
            compression: ZarrCompression::None,
            fortran_order: false,
            separator: if zarr_format == 3 { '/' } else { '.' },
            fill_value: 0.0,
        }
    }
}

/// A Zarr array written chunk by chunk into a directory.
#[derive(Debug)]
pub struct ZarrWriter {
    dir: PathBuf,
    spec: ZarrSpec,
}

fn io_error(path: &Path, source: std::io::Error) -> NmfError {
    NmfError::Io {
        path: path.to_path_buf(),
        action: "write the file",
        source,
    }
}

fn invalid(what: String) -> NmfError {
    NmfError::InvalidParameter {
        name: "ZarrSpec",
        value: what,
        expected: "a shape and chunks of one extent per axis (chunks >= 1), v2 or v3, and a compression the format has (zlib and lz4 are v2's, crc32c v3's)".into(),
    }
}

impl ZarrWriter {
    /// Create the array directory `dir` (and its parents) and write its metadata.
    pub fn create(dir: impl AsRef<Path>, spec: ZarrSpec) -> Result<ZarrWriter> {
        let dir = dir.as_ref().to_path_buf();
        let v3 = match spec.zarr_format {
            2 => false,
            3 => true,
            other => return Err(invalid(format!("zarr_format {other}"))),
        };
        if spec.chunks.len() != spec.shape.len() || spec.chunks.contains(&0) {
            return Err(invalid(format!(
                "shape {:?}, chunks {:?}",
                spec.shape, spec.chunks
            )));
        }
        let wrong_format = match spec.compression {
            ZarrCompression::Zlib | ZarrCompression::Lz4 => v3,
            ZarrCompression::Crc32c => !v3,
            _ => false,
        };
        if wrong_format {
            return Err(invalid(format!(
                "{:?} in a v{} array",
                spec.compression, spec.zarr_format
            )));
        }
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        let fill = if spec.dtype.kind == ZarrKind::Float {
            json!(spec.fill_value)
        } else if spec.dtype.kind == ZarrKind::Bool {
            json!(spec.fill_value != 0.0)
        } else {
            json!(spec.fill_value as i64)
        };
        let (name, meta) = if v3 {
            let mut codecs: Vec<Value> = Vec::new();
            if spec.fortran_order {
                let order: Vec<usize> = (0..spec.shape.len()).rev().collect();
                codecs.push(json!({"name": "transpose", "configuration": {"order": order}}));
            }
            let endian = if spec.dtype.big_endian {
                "big"
            } else {
                "little"
            };
            codecs.push(json!({"name": "bytes", "configuration": {"endian": endian}}));
            match spec.compression {
                ZarrCompression::Gzip => {
                    codecs.push(json!({"name": "gzip", "configuration": {"level": 5}}))
                }
                ZarrCompression::Zstd => codecs.push(
                    json!({"name": "zstd", "configuration": {"level": 1, "checksum": false}}),
                ),
                ZarrCompression::BloscLz4 => {
                    codecs.push(json!({"name": "blosc", "configuration": {
                    "cname": "lz4", "clevel": 5, "shuffle": "shuffle",
                    "typesize": spec.dtype.size, "blocksize": 0}}))
                }
                ZarrCompression::Crc32c => codecs.push(json!({"name": "crc32c"})),
                _ => {}
            }
            let meta = json!({
                "zarr_format": 3,
                "node_type": "array",
                "shape": spec.shape,
                "data_type": spec.dtype.name(),
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": spec.chunks}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": spec.separator.to_string()}},
                "fill_value": fill,
                "codecs": codecs,
                "attributes": {},
            });
            (V3_METADATA, meta)
        } else {
            let compressor = match spec.compression {
                ZarrCompression::None | ZarrCompression::Crc32c => Value::Null,
                ZarrCompression::Zlib => json!({"id": "zlib", "level": 1}),
                ZarrCompression::Gzip => json!({"id": "gzip", "level": 1}),
                ZarrCompression::Zstd => json!({"id": "zstd", "level": 1}),
                ZarrCompression::Lz4 => json!({"id": "lz4", "acceleration": 1}),
                ZarrCompression::BloscLz4 => {
                    json!({"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0})
                }
            };
            let meta = json!({
                "zarr_format": 2,
                "shape": spec.shape,
                "chunks": spec.chunks,
                "dtype": spec.dtype.v2_name(),
                "compressor": compressor,
                "fill_value": fill,
                "order": if spec.fortran_order { "F" } else { "C" },
                "filters": null,
                "dimension_separator": spec.separator.to_string(),
            });
            (V2_ARRAY, meta)
        };
        let path = dir.join(name);
        let text = serde_json::to_vec_pretty(&meta)
            .map_err(|e| io_error(&path, std::io::Error::other(e.to_string())))?;
        std::fs::write(&path, text).map_err(|e| io_error(&path, e))?;
        Ok(ZarrWriter { dir, spec })
    }

    /// The array's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write the chunk at grid position `index`: `values` holds the chunk's elements in C
    /// order over the full chunk shape (an edge chunk padded past the array), converted to the
    /// element type as `as` casts do.
    pub fn write_chunk(&self, index: &[u64], values: &[f64]) -> Result<()> {
        let spec = &self.spec;
        let elements: usize = spec.chunks.iter().map(|&c| c as usize).product();
        if index.len() != spec.shape.len() || values.len() != elements {
            return Err(NmfError::ShapeMismatch {
                what: "a Zarr chunk",
                expected: format!("{} values at a {}-axis index", elements, spec.shape.len()),
                found: format!("{} values at {index:?}", values.len()),
            });
        }
        // The storage order of the chunk's elements.
        let k = spec.chunks.len();
        let order: Vec<usize> = if spec.fortran_order {
            (0..k).rev().collect()
        } else {
            (0..k).collect()
        };
        let mut strides = vec![0usize; k];
        let mut acc = 1usize;
        for &axis in order.iter().rev() {
            strides[axis] = acc;
            acc *= spec.chunks[axis] as usize;
        }
        let size = spec.dtype.size;
        let mut raw = vec![0u8; elements * size];
        let mut pos = vec![0usize; k];
        for &v in values {
            let off: usize = pos.iter().zip(&strides).map(|(p, s)| p * s).sum();
            encode_value(spec.dtype, v, &mut raw[off * size..(off + 1) * size]);
            for d in (0..k).rev() {
                pos[d] += 1;
                if pos[d] < spec.chunks[d] as usize {
                    break;
                }
                pos[d] = 0;
            }
        }
        let key = super::meta::KeyEncoding {
            prefix: if spec.zarr_format == 3 {
                Some("c")
            } else {
                None
            },
            separator: spec.separator,
        }
        .key(index);
        let path = self.dir.join(&key);
        let stored = compress(spec.compression, &raw, size).map_err(|e| io_error(&path, e))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
        }
        std::fs::write(&path, stored).map_err(|e| io_error(&path, e))
    }

    /// Write every chunk of `data` (of the array's shape).
    pub fn write_array(&self, data: ArrayViewD<'_, f64>) -> Result<()> {
        let spec = &self.spec;
        let shape: Vec<usize> = spec.shape.iter().map(|&s| s as usize).collect();
        if data.shape() != shape.as_slice() {
            return Err(NmfError::ShapeMismatch {
                what: "the data of a Zarr array",
                expected: format!("{shape:?}"),
                found: format!("{:?}", data.shape()),
            });
        }
        let k = shape.len();
        let chunks: Vec<usize> = spec.chunks.iter().map(|&c| c as usize).collect();
        let grid: Vec<usize> = shape
            .iter()
            .zip(&chunks)
            .map(|(&s, &c)| s.div_ceil(c))
            .collect();
        if grid.contains(&0) {
            return Ok(());
        }
        let elements: usize = chunks.iter().product();
        let mut idx = vec![0usize; k];
        let mut values = vec![0f64; elements];
        loop {
            let mut local = vec![0usize; k];
            for v in values.iter_mut() {
                let global: Vec<usize> = (0..k).map(|d| idx[d] * chunks[d] + local[d]).collect();
                *v = if global.iter().zip(&shape).all(|(g, s)| g < s) {
                    data[global.as_slice()]
                } else {
                    spec.fill_value
                };
                for d in (0..k).rev() {
                    local[d] += 1;
                    if local[d] < chunks[d] {
                        break;
                    }
                    local[d] = 0;
                }
            }
            let index: Vec<u64> = idx.iter().map(|&i| i as u64).collect();
            self.write_chunk(&index, &values)?;
            let mut d = k;
            loop {
                if d == 0 {
                    return Ok(());
                }
                d -= 1;
                idx[d] += 1;
                if idx[d] < grid[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }
}

/// `v` as one element of `dtype` into `out` (`dtype.size` bytes).
fn encode_value(dtype: ZarrDtype, v: f64, out: &mut [u8]) {
    let le: [u8; 8] = match (dtype.kind, dtype.size) {
        (ZarrKind::Bool, _) => u64::from(v != 0.0).to_le_bytes(),
        (ZarrKind::Int, _) => (v as i64).to_le_bytes(),
        (ZarrKind::UInt, _) => (v as u64).to_le_bytes(),
        (ZarrKind::Float, 2) => u64::from(f32_to_half(v as f32)).to_le_bytes(),
        (ZarrKind::Float, 4) => u64::from((v as f32).to_bits()).to_le_bytes(),
        (ZarrKind::Float, _) => v.to_bits().to_le_bytes(),
    };
    let n = out.len();
    out.copy_from_slice(&le[..n]);
    if dtype.big_endian {
        out.reverse();
    }
}

/// A float32 as IEEE half precision (rounding toward zero; values a half holds exactly are
/// exact).
fn f32_to_half(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let frac = b & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if frac != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 31 {
        sign | 0x7c00
    } else if e <= 0 {
        if e < -10 {
            sign
        } else {
            let m = (frac | 0x80_0000) >> (14 - e);
            sign | m as u16
        }
    } else {
        sign | ((e as u16) << 10) | (frac >> 13) as u16
    }
}

/// A chunk's stored bytes.
fn compress(c: ZarrCompression, raw: &[u8], typesize: usize) -> std::io::Result<Vec<u8>> {
    Ok(match c {
        ZarrCompression::None => raw.to_vec(),
        ZarrCompression::Zlib => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(raw)?;
            e.finish()?
        }
        ZarrCompression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(raw)?;
            e.finish()?
        }
        ZarrCompression::Zstd => {
            ruzstd::encoding::compress_to_vec(raw, ruzstd::encoding::CompressionLevel::Fastest)
        }
        ZarrCompression::Lz4 => {
            let mut out = (raw.len() as u32).to_le_bytes().to_vec();
            out.extend_from_slice(&lz4_flex::block::compress(raw));
            out
        }
        ZarrCompression::BloscLz4 => blosc_lz4_frame(raw, typesize, 4096),
        ZarrCompression::Crc32c => {
            let mut out = raw.to_vec();
            out.extend_from_slice(&crc32c(raw).to_le_bytes());
            out
        }
    })
}
