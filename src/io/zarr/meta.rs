//! The metadata of a Zarr array: v2's `.zarray` and v3's `zarr.json`, parsed into one
//! description ([`ArrayMeta`]) of the shape, chunks, element type, chunk layout, chunk keys and
//! the codecs that decode a chunk's bytes.
//!
//! **v2 (`.zarray`).** `zarr_format` 2; `shape` and `chunks` (one extent per axis); `dtype` a
//! NumPy type string: byte order `<`, `>` or `|`, kind `b` (bool), `i`, `u` or `f`, size in
//! bytes (`<f4`, `|u1`, `>i2`, ...; structured types refused); `order` `"C"` or `"F"` (the
//! element order within a chunk); `fill_value` a number, `"NaN"`, `"Infinity"`,
//! `"-Infinity"` or null (0); `compressor` null or one of `zlib`, `gzip`, `zstd`, `blosc`,
//! `lz4`; `filters` null or empty (any filter is refused, naming it); `dimension_separator`
//! `"."` (the default) or `"/"`.
//!
//! **v3 (`zarr.json`).** `zarr_format` 3, `node_type` `"array"`; `shape`; `data_type` one of
//! `bool`, `int8`...`int64`, `uint8`...`uint64`, `float16`, `float32`, `float64`;
//! `chunk_grid` `regular` with its `chunk_shape`; `chunk_key_encoding` `default` (keys
//! `c/i/j`, separator `/` unless set to `.`) or `v2` (keys `i.j`, separator `.` unless set to
//! `/`); `fill_value` a number, `"NaN"`, `"Infinity"`, `"-Infinity"` or a hex bit pattern
//! `"0x..."`; `codecs`: optionally `transpose` (an axis permutation), then `bytes` (with
//! `endian` `little` or `big`), then any of `gzip`, `zstd`, `blosc`, `crc32c`. Sharding
//! (`sharding_indexed`), other codecs, other chunk grids and storage transformers are refused
//! with [`NmfError::UnsupportedInput`] naming them.

use std::path::Path;

use serde_json::Value;

use crate::error::{NmfError, Result};
use crate::io::samples::format_error;

/// The most axes an array may have.
pub const MAX_AXES: usize = 32;

/// The kind of a Zarr element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZarrKind {
    /// Booleans (one byte, 0 or 1).
    Bool,
    /// Signed integers.
    Int,
    /// Unsigned integers.
    UInt,
    /// IEEE floats.
    Float,
}

/// The element type of a Zarr array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZarrDtype {
    /// The kind.
    pub kind: ZarrKind,
    /// Bytes per element: 1 (bool, int8, uint8), 2, 4 or 8 (floats: 2, 4 or 8).
    pub size: usize,
    /// Whether multi-byte elements are stored big-endian.
    pub big_endian: bool,
}

impl ZarrDtype {
    /// The v3 name (`float32`, `uint16`, `bool`, ...).
    pub fn name(&self) -> String {
        match self.kind {
            ZarrKind::Bool => "bool".into(),
            ZarrKind::Int => format!("int{}", self.size * 8),
            ZarrKind::UInt => format!("uint{}", self.size * 8),
            ZarrKind::Float => format!("float{}", self.size * 8),
        }
    }

    /// The v2 type string (`<f4`, `|u1`, ...).
    pub fn v2_name(&self) -> String {
        let order = if self.size == 1 {
            '|'
        } else if self.big_endian {
            '>'
        } else {
            '<'
        };
        let kind = match self.kind {
            ZarrKind::Bool => 'b',
            ZarrKind::Int => 'i',
            ZarrKind::UInt => 'u',
            ZarrKind::Float => 'f',
        };
        format!("{order}{kind}{}", self.size)
    }

    /// Parse a v3 `data_type` name (little-endian until the `bytes` codec says otherwise).
    pub fn from_v3(name: &str) -> Option<ZarrDtype> {
        let (kind, size) = match name {
            "bool" => (ZarrKind::Bool, 1),
            "int8" => (ZarrKind::Int, 1),
            "int16" => (ZarrKind::Int, 2),
            "int32" => (ZarrKind::Int, 4),
            "int64" => (ZarrKind::Int, 8),
            "uint8" => (ZarrKind::UInt, 1),
            "uint16" => (ZarrKind::UInt, 2),
            "uint32" => (ZarrKind::UInt, 4),
            "uint64" => (ZarrKind::UInt, 8),
            "float16" => (ZarrKind::Float, 2),
            "float32" => (ZarrKind::Float, 4),
            "float64" => (ZarrKind::Float, 8),
            _ => return None,
        };
        Some(ZarrDtype {
            kind,
            size,
            big_endian: false,
        })
    }

    /// Parse a v2 (NumPy) type string such as `<f4`.
    pub fn from_v2(s: &str) -> Option<ZarrDtype> {
        let b = s.as_bytes();
        if b.len() < 3 {
            return None;
        }
        let big_endian = match b[0] {
            b'<' | b'|' => false,
            b'>' => true,
            _ => return None,
        };
        let size: usize = s.get(2..)?.parse().ok()?;
        let kind = match b[1] {
            b'b' if size == 1 => ZarrKind::Bool,
            b'i' if matches!(size, 1 | 2 | 4 | 8) => ZarrKind::Int,
            b'u' if matches!(size, 1 | 2 | 4 | 8) => ZarrKind::UInt,
            b'f' if matches!(size, 2 | 4 | 8) => ZarrKind::Float,
            _ => return None,
        };
        Some(ZarrDtype {
            kind,
            size,
            big_endian,
        })
    }

    /// The float32 value of one element's bytes (`bytes.len() == self.size`).
    pub fn value(&self, bytes: &[u8]) -> f32 {
        let mut buf = [0u8; 8];
        let n = self.size.min(8).min(bytes.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        if self.big_endian {
            buf[..n].reverse();
        }
        let u = u64::from_le_bytes(buf);
        self.value_of_bits(u)
    }

    /// The float32 value of an element whose little-endian bits are `u`.
    fn value_of_bits(&self, u: u64) -> f32 {
        match (self.kind, self.size) {
            (ZarrKind::Bool, _) => f32::from(u8::from(u & 0xff != 0)),
            (ZarrKind::UInt, _) => u as f32,
            (ZarrKind::Int, 1) => f32::from(u as u8 as i8),
            (ZarrKind::Int, 2) => f32::from(u as u16 as i16),
            (ZarrKind::Int, 4) => u as u32 as i32 as f32,
            (ZarrKind::Int, _) => u as i64 as f32,
            (ZarrKind::Float, 2) => half_to_f32(u as u16),
            (ZarrKind::Float, 4) => f32::from_bits(u as u32),
            (ZarrKind::Float, _) => f64::from_bits(u) as f32,
        }
    }
}

/// An IEEE half-precision float as float32.
fn half_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = if exp == 0 {
        if frac == 0 {
            sign
        } else {
            // Subnormal: value = frac · 2^-24.
            let v = frac as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
    } else if exp == 31 {
        sign | 0x7f80_0000 | (frac << 13)
    } else {
        sign | ((exp + 112) << 23) | (frac << 13)
    };
    f32::from_bits(bits)
}

/// A codec turning a chunk's stored bytes back into its elements' bytes, in decode order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ByteCodec {
    /// zlib (RFC 1950).
    Zlib,
    /// gzip (RFC 1952).
    Gzip,
    /// Zstandard frames.
    Zstd,
    /// Blosc (version 1 frames: LZ4, zlib or Zstd inside, byte shuffle).
    Blosc,
    /// numcodecs' LZ4: a 4-byte little-endian decoded size, then an LZ4 block.
    Lz4,
    /// A CRC-32C checksum of the rest, in the last 4 bytes (little-endian).
    Crc32c,
}

impl ByteCodec {
    /// The codec's name in metadata.
    pub fn name(&self) -> &'static str {
        match self {
            ByteCodec::Zlib => "zlib",
            ByteCodec::Gzip => "gzip",
            ByteCodec::Zstd => "zstd",
            ByteCodec::Blosc => "blosc",
            ByteCodec::Lz4 => "lz4",
            ByteCodec::Crc32c => "crc32c",
        }
    }
}

/// How chunk keys are formed from chunk indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEncoding {
    /// `Some("c")` for v3's default encoding (`c/0/1`), `None` for v2 keys (`0.1`).
    pub prefix: Option<&'static str>,
    /// The separator between indices.
    pub separator: char,
}

impl KeyEncoding {
    /// The key of the chunk at `index` (a relative path).
    pub fn key(&self, index: &[u64]) -> String {
        let sep = self.separator.to_string();
        let mut parts: Vec<String> = Vec::with_capacity(index.len() + 1);
        if let Some(p) = self.prefix {
            parts.push(p.to_string());
        }
        parts.extend(index.iter().map(u64::to_string));
        if parts.is_empty() {
            // A 0-dimensional v2 array's only chunk.
            return "0".into();
        }
        parts.join(&sep)
    }
}

/// A Zarr array's metadata, v2 or v3 alike.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayMeta {
    /// 2 or 3.
    pub zarr_format: u8,
    /// The array's extent on each axis.
    pub shape: Vec<u64>,
    /// A chunk's extent on each axis.
    pub chunks: Vec<u64>,
    /// The element type.
    pub dtype: ZarrDtype,
    /// The value of elements of chunks that are not stored.
    pub fill_value: f32,
    /// The chunk's axes in the order they are stored, outermost first (`[0, 1, ..]` for C
    /// order, reversed for F order, the permutation of a v3 `transpose`).
    pub storage_order: Vec<usize>,
    /// Chunk keys.
    pub keys: KeyEncoding,
    /// The codecs to undo, in the order they are undone.
    pub decode: Vec<ByteCodec>,
}

impl ArrayMeta {
    /// Parse `.zarray` (v2) text.
    pub fn parse_v2(path: &Path, text: &[u8]) -> Result<ArrayMeta> {
        let obj = &metadata(path, text, 2, ".zarray")?;
        let shape = extents(path, obj.get("shape"), "shape")?;
        let chunks = extents(path, obj.get("chunks"), "chunks")?;
        check_chunks(path, &shape, &chunks)?;
        let dtype = element_type(path, obj, 2)?;
        let storage_order: Vec<usize> = match obj.get("order").and_then(Value::as_str) {
            Some("C") | None => (0..shape.len()).collect(),
            Some("F") => (0..shape.len()).rev().collect(),
            Some(other) => {
                return Err(format_error(
                    path,
                    format!("order {other:?}; a .zarray's order is \"C\" or \"F\""),
                ))
            }
        };
        match obj.get("filters") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) if a.is_empty() => {}
            Some(Value::Array(a)) => {
                let names: Vec<String> = a.iter().map(codec_id).collect();
                return Err(unsupported(
                    path,
                    format!(
                        "the filters {} are not read (only arrays without filters are)",
                        names.join(", ")
                    ),
                ));
            }
            Some(other) => return Err(format_error(path, format!("filters {other}"))),
        }
        let mut decode = Vec::new();
        match obj.get("compressor") {
            None | Some(Value::Null) => {}
            Some(c) => {
                let id = codec_id(c);
                decode.push(match id.as_str() {
                    "zlib" => ByteCodec::Zlib,
                    "gzip" => ByteCodec::Gzip,
                    "zstd" => ByteCodec::Zstd,
                    "blosc" => ByteCodec::Blosc,
                    "lz4" => ByteCodec::Lz4,
                    other => return Err(unsupported_codec(path, other)),
                });
            }
        }
        let separator = match obj.get("dimension_separator").and_then(Value::as_str) {
            None | Some(".") => '.',
            Some("/") => '/',
            Some(other) => {
                return Err(format_error(
                    path,
                    format!("dimension_separator {other:?}; it is \".\" or \"/\""),
                ))
            }
        };
        let fill_value = fill(path, obj.get("fill_value"), &dtype)?;
        Ok(ArrayMeta {
            zarr_format: 2,
            shape,
            chunks,
            dtype,
            fill_value,
            storage_order,
            keys: KeyEncoding {
                prefix: None,
                separator,
            },
            decode,
        })
    }

    /// Parse `zarr.json` (v3) text.
    pub fn parse_v3(path: &Path, text: &[u8]) -> Result<ArrayMeta> {
        let obj = &metadata(path, text, 3, "zarr.json")?;
        match obj.get("node_type").and_then(Value::as_str) {
            Some("array") => {}
            Some("group") => return Err(unsupported(
                path,
                "a Zarr group, not an array; name the array with --dataset (ReadOptions::dataset)",
            )),
            other => return Err(format_error(path, format!("node_type {other:?}"))),
        }
        let shape = extents(path, obj.get("shape"), "shape")?;
        let grid = object(
            path,
            obj.get("chunk_grid").unwrap_or(&Value::Null),
            "chunk_grid",
        )?;
        match grid.get("name").and_then(Value::as_str) {
            Some("regular") => {}
            other => {
                return Err(unsupported(
                    path,
                    format!("the chunk grid {other:?} is not read (only \"regular\" is)"),
                ))
            }
        }
        let conf = grid.get("configuration").unwrap_or(&Value::Null);
        let chunks = extents(path, conf.get("chunk_shape"), "chunk_shape")?;
        check_chunks(path, &shape, &chunks)?;
        let mut dtype = element_type(path, obj, 3)?;
        match obj.get("storage_transformers") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) if a.is_empty() => {}
            Some(other) => {
                return Err(unsupported(
                    path,
                    format!("storage transformers ({other}) are not read"),
                ))
            }
        }
        let keys = match obj.get("chunk_key_encoding") {
            None => KeyEncoding {
                prefix: Some("c"),
                separator: '/',
            },
            Some(k) => {
                let name = k.get("name").and_then(Value::as_str);
                let sep = k
                    .get("configuration")
                    .and_then(|c| c.get("separator"))
                    .and_then(Value::as_str);
                let separator = match sep {
                    None => None,
                    Some("/") => Some('/'),
                    Some(".") => Some('.'),
                    Some(other) => {
                        return Err(format_error(
                            path,
                            format!("chunk key separator {other:?}; it is \"/\" or \".\""),
                        ))
                    }
                };
                match name {
                    Some("default") => KeyEncoding {
                        prefix: Some("c"),
                        separator: separator.unwrap_or('/'),
                    },
                    Some("v2") => KeyEncoding {
                        prefix: None,
                        separator: separator.unwrap_or('.'),
                    },
                    other => {
                        return Err(unsupported(
                            path,
                            format!("the chunk key encoding {other:?} is not read (\"default\" and \"v2\" are)"),
                        ))
                    }
                }
            }
        };
        let codecs = match obj.get("codecs") {
            Some(Value::Array(a)) => a.as_slice(),
            _ => return Err(format_error(path, "the metadata has no list of codecs")),
        };
        let mut storage_order: Vec<usize> = (0..shape.len()).collect();
        let mut seen_bytes = false;
        let mut encode: Vec<ByteCodec> = Vec::new();
        for c in codecs {
            let name = codec_id(c);
            let conf = c.get("configuration").unwrap_or(&Value::Null);
            match name.as_str() {
                "transpose" if !seen_bytes => {
                    let order = transpose_order(path, conf.get("order"), shape.len())?;
                    // Transposes compose: stored axis i is axis storage_order[order[i]].
                    storage_order = order.iter().map(|&i| storage_order[i]).collect();
                }
                "bytes" if !seen_bytes => {
                    seen_bytes = true;
                    match conf.get("endian").and_then(Value::as_str) {
                        Some("little") => dtype.big_endian = false,
                        Some("big") => dtype.big_endian = true,
                        None if dtype.size == 1 => {}
                        other => {
                            return Err(format_error(
                                path,
                                format!("the bytes codec's endian {other:?}; it is \"little\" or \"big\""),
                            ))
                        }
                    }
                }
                "gzip" if seen_bytes => encode.push(ByteCodec::Gzip),
                "zstd" if seen_bytes => encode.push(ByteCodec::Zstd),
                "blosc" if seen_bytes => encode.push(ByteCodec::Blosc),
                "crc32c" if seen_bytes => encode.push(ByteCodec::Crc32c),
                "sharding_indexed" => {
                    return Err(unsupported(
                        path,
                        "the array is sharded (codec \"sharding_indexed\"), which is not read; rewrite it without shards (e.g. zarr-python's `shards=None`)",
                    ))
                }
                "transpose" | "bytes" | "gzip" | "zstd" | "blosc" | "crc32c" => {
                    return Err(format_error(
                        path,
                        format!("the codec {name:?} is out of place in the codec list"),
                    ))
                }
                other => return Err(unsupported_codec(path, other)),
            }
        }
        if !seen_bytes {
            return Err(format_error(
                path,
                "the codec list has no array-to-bytes codec (\"bytes\")",
            ));
        }
        encode.reverse();
        let fill_value = fill(path, obj.get("fill_value"), &dtype)?;
        Ok(ArrayMeta {
            zarr_format: 3,
            shape,
            chunks,
            dtype,
            fill_value,
            storage_order,
            keys,
            decode: encode,
        })
    }

    /// Elements per chunk (checked to fit when the metadata was parsed).
    pub fn chunk_elements(&self) -> u128 {
        self.chunks.iter().map(|&c| u128::from(c)).product()
    }

    /// The number of chunks along each axis.
    pub fn grid(&self) -> Vec<u64> {
        self.shape
            .iter()
            .zip(&self.chunks)
            .map(|(&s, &c)| s.div_ceil(c))
            .collect()
    }

    /// The element strides (in elements) of each axis within a decoded chunk.
    pub fn chunk_strides(&self) -> Vec<usize> {
        let k = self.chunks.len();
        let mut strides = vec![0usize; k];
        let mut acc = 1usize;
        for &axis in self.storage_order.iter().rev() {
            strides[axis] = acc;
            acc = acc.saturating_mul(self.chunks[axis] as usize);
        }
        strides
    }
}

fn parse_json(path: &Path, text: &[u8]) -> Result<Value> {
    serde_json::from_slice(text).map_err(|e| format_error(path, format!("not valid JSON: {e}")))
}

/// The metadata object of a `file` (`.zarray`, `zarr.json`), parsed from `text`, that must
/// declare `zarr_format` `format`.
fn metadata(
    path: &Path,
    text: &[u8],
    format: u64,
    file: &str,
) -> Result<serde_json::Map<String, Value>> {
    let Value::Object(obj) = parse_json(path, text)? else {
        return Err(format_error(path, "the metadata is not a JSON object"));
    };
    match obj.get("zarr_format").and_then(Value::as_u64) {
        Some(f) if f == format => Ok(obj),
        other => Err(format_error(
            path,
            format!("zarr_format is {other:?}, not {format}, in a {file} file"),
        )),
    }
}

/// The element type the metadata `obj` of Zarr format `zarr_format` declares: a v2 `dtype`
/// ([`ZarrDtype::from_v2`]) or a v3 `data_type` ([`ZarrDtype::from_v3`]); a numeric type is
/// read, any other refused.
fn element_type(
    path: &Path,
    obj: &serde_json::Map<String, Value>,
    zarr_format: u8,
) -> Result<ZarrDtype> {
    type FromName = fn(&str) -> Option<ZarrDtype>;
    // The key, its name in messages, its parser, then what a message on a name not read and
    // one on a value that is no name end with.
    let (key, what, from_name, read, not_a_name): (&str, &str, FromName, &str, &str) =
        if zarr_format == 2 {
            (
                "dtype",
                "dtype",
                ZarrDtype::from_v2,
                "numeric types are (bool, int8-64, uint8-64, float16-64, such as \"<f4\" or \"|u1\")",
                " (a structured type) is not read; numeric types are",
            )
        } else {
            (
                "data_type",
                "data type",
                ZarrDtype::from_v3,
                "bool, int8-64, uint8-64 and float16-64 are",
                " is not read",
            )
        };
    match obj.get(key) {
        Some(Value::String(s)) => from_name(s)
            .ok_or_else(|| unsupported(path, format!("the {what} {s:?} is not read; {read}"))),
        Some(other) => Err(unsupported(path, format!("the {what} {other}{not_a_name}"))),
        None => Err(format_error(path, format!("the metadata has no {key}"))),
    }
}

fn object<'a>(path: &Path, v: &'a Value, what: &str) -> Result<&'a serde_json::Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| format_error(path, format!("{what} is not a JSON object")))
}

/// A codec's name: a v2 compressor's or filter's `id`, a v3 codec's `name` (or a bare string).
fn codec_id(c: &Value) -> String {
    let s = c
        .get("id")
        .or_else(|| c.get("name"))
        .and_then(Value::as_str)
        .or_else(|| c.as_str());
    s.map_or_else(|| c.to_string(), str::to_string)
}

/// A list of extents (`shape`, `chunks`), each an integer `>= 0`, at most [`MAX_AXES`].
fn extents(path: &Path, v: Option<&Value>, what: &str) -> Result<Vec<u64>> {
    let Some(Value::Array(a)) = v else {
        return Err(format_error(
            path,
            format!("{what} is not a list of integers"),
        ));
    };
    if a.len() > MAX_AXES {
        return Err(format_error(
            path,
            format!("{what} has {} axes, more than {MAX_AXES}", a.len()),
        ));
    }
    a.iter()
        .map(|x| {
            x.as_u64()
                .ok_or_else(|| format_error(path, format!("{what} holds {x}, not an integer >= 0")))
        })
        .collect()
}

/// Chunks: one extent per axis, each at least 1, and a chunk's element count in `u64`.
fn check_chunks(path: &Path, shape: &[u64], chunks: &[u64]) -> Result<()> {
    if chunks.len() != shape.len() {
        return Err(format_error(
            path,
            format!("{} chunk extents for {} axes", chunks.len(), shape.len()),
        ));
    }
    if chunks.contains(&0) {
        return Err(format_error(path, "a chunk extent of 0"));
    }
    let mut n: u128 = 1;
    for &c in chunks {
        n = n.saturating_mul(u128::from(c));
    }
    if n > u128::from(u64::MAX >> 4) {
        return Err(format_error(
            path,
            "chunks of more elements than can be addressed",
        ));
    }
    Ok(())
}

/// The permutation of a v3 transpose codec (`[2, 0, 1]`, or `"C"` / `"F"`).
fn transpose_order(path: &Path, v: Option<&Value>, k: usize) -> Result<Vec<usize>> {
    let order: Vec<usize> = match v {
        Some(Value::String(s)) if s == "C" => (0..k).collect(),
        Some(Value::String(s)) if s == "F" => (0..k).rev().collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_u64().map(|i| i as usize).unwrap_or(usize::MAX))
            .collect(),
        _ => return Err(format_error(path, "the transpose codec has no order")),
    };
    let mut seen = vec![false; k];
    let valid = order.len() == k
        && order
            .iter()
            .all(|&i| i < k && !std::mem::replace(&mut seen[i], true));
    if !valid {
        return Err(format_error(
            path,
            format!("the transpose order {order:?} is not a permutation of the {k} axes"),
        ));
    }
    Ok(order)
}

/// The fill value as float32.
fn fill(path: &Path, v: Option<&Value>, dtype: &ZarrDtype) -> Result<f32> {
    match v {
        None | Some(Value::Null) => Ok(0.0),
        Some(Value::Bool(b)) => Ok(f32::from(u8::from(*b))),
        Some(Value::Number(x)) => {
            if let Some(u) = x.as_u64() {
                Ok(u as f32)
            } else if let Some(i) = x.as_i64() {
                Ok(i as f32)
            } else {
                Ok(x.as_f64().unwrap_or(0.0) as f32)
            }
        }
        Some(Value::String(s)) => match s.as_str() {
            "NaN" => Ok(f32::NAN),
            "Infinity" => Ok(f32::INFINITY),
            "-Infinity" => Ok(f32::NEG_INFINITY),
            hex if hex.starts_with("0x") => {
                let bits = u64::from_str_radix(&hex[2..], 16)
                    .map_err(|_| format_error(path, format!("the fill value {hex:?}")))?;
                Ok(dtype.value_of_bits(bits))
            }
            other => Err(format_error(path, format!("the fill value {other:?}"))),
        },
        Some(other) => Err(format_error(path, format!("the fill value {other}"))),
    }
}

fn unsupported(path: &Path, reason: impl Into<String>) -> NmfError {
    NmfError::UnsupportedInput {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn unsupported_codec(path: &Path, name: &str) -> NmfError {
    unsupported(
        path,
        format!("the codec {name:?} is not read (zlib, gzip, zstd, blosc with lz4/zlib/zstd inside, lz4 and crc32c are); recompress the array with one of them"),
    )
}
