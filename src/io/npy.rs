//! A strict reader for NumPy's `.npy` format (versions 1.0, 2.0 and 3.0), 2-D arrays only.
//!
//! The header (a Python dict literal with `descr`, `fortran_order` and `shape`) is parsed and
//! checked, the declared size is checked against the limit and against the file's length, and
//! only then is the matrix allocated and the data converted to float32 (row-major).

use std::io::{BufReader, Read};
use std::path::Path;

use ndarray::Array2;

use super::limits::{addressable_shape, check_dims};
use super::{format_error, open, read_error, ReadOptions};
use crate::error::{NmfError, Result};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Longer headers are refused as corrupt (numpy's own default limit is 10 000 bytes).
const MAX_HEADER_LEN: usize = 1 << 20;
/// Nesting deeper than this in the header literal is refused as corrupt.
const MAX_DEPTH: usize = 8;

/// The length of `file` when it is a regular file (not a pipe or a device).
fn regular_file_len(file: &std::fs::File) -> Option<u64> {
    file.metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
}

/// Read a 2-D `.npy` file as a row-major float32 matrix.
pub(crate) fn read(path: &Path, options: &ReadOptions) -> Result<Array2<f32>> {
    let file = open(path)?;
    let file_len = regular_file_len(&file);
    let mut reader = BufReader::new(file);
    let header = read_header(path, &mut reader)?;
    let (rows, cols) = header.shape;
    let elements = check_dims(path, rows, cols, options.limit_bytes())?;
    check_length(path, file_len, &header, elements as u128)?;
    let dtype = header.dtype;
    let decode = dtype.decoder();
    let item = dtype.size;
    let mut out = vec![0f32; elements];
    const CHUNK: usize = 1 << 16;
    let mut buf = vec![0u8; CHUNK.min(elements.max(1)) * item];
    let rows_us = rows as usize;
    let cols_us = cols as usize;
    let mut done = 0;
    while done < elements {
        let n = CHUNK.min(elements - done);
        let bytes = &mut buf[..n * item];
        reader.read_exact(bytes).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                format_error(
                    path,
                    None,
                    None,
                    format!(
                        "truncated: the data ends after {} of the {elements} values the header declares",
                        done
                    ),
                )
            } else {
                read_error(path, e)
            }
        })?;
        for (t, raw) in bytes.chunks_exact(item).enumerate() {
            let k = done + t;
            let dest = match header.order {
                Order::C => k,
                // Column-major: element k is (k % rows, k / rows).
                Order::Fortran => (k % rows_us) * cols_us + k / rows_us,
            };
            out[dest] = decode(raw);
        }
        done += n;
    }
    Array2::from_shape_vec((rows_us, cols_us), out)
        .map_err(|e| format_error(path, None, None, format!("cannot shape the data: {e}")))
}

/// The data after the header must be exactly the `elements` values the header declares.
fn check_length(path: &Path, file_len: Option<u64>, header: &Header, elements: u128) -> Result<()> {
    let (rows, cols) = header.shape;
    let dtype = &header.dtype;
    let data_bytes = elements * dtype.size as u128;
    if let Some(len) = file_len {
        let present = u128::from(len.saturating_sub(header.data_offset));
        if present < data_bytes {
            return Err(format_error(
                path,
                None,
                None,
                format!(
                    "truncated: the header declares a {rows} x {cols} array of {} ({data_bytes} bytes of data) but only {present} bytes follow it",
                    dtype.descr
                ),
            ));
        }
        if present > data_bytes {
            return Err(format_error(
                path,
                None,
                None,
                format!(
                    "{} unexpected bytes follow the {rows} x {cols} array the header declares; the file is corrupt or not a single array (save it with np.save)",
                    present - data_bytes
                ),
            ));
        }
    }

    Ok(())
}

/// Where and how the values of a 2-D `.npy` file lie, for readers that take it piece by piece
/// (see `io::NpySource`).
#[derive(Debug)]
pub(crate) struct Layout {
    /// Rows and columns as stored.
    pub rows: usize,
    pub cols: usize,
    /// Column-major data.
    pub fortran: bool,
    /// Bytes per value.
    pub item: usize,
    /// One value's bytes to f32.
    pub decode: fn(&[u8]) -> f32,
    /// Byte offset of the first value.
    pub data_offset: u64,
}

/// Open `path` and check its header and length (the whole file need not fit in memory: only
/// the header is read).
pub(crate) fn open_layout(path: &Path) -> Result<(std::fs::File, Layout)> {
    let file = open(path)?;
    let file_len = regular_file_len(&file);
    let header = read_header(path, &mut BufReader::new(&file))?;
    let (rows, cols) = header.shape;
    let too_large = || {
        format_error(
            path,
            None,
            None,
            format!("the declared shape {rows} x {cols} is too large to address"),
        )
    };
    let rows = usize::try_from(rows).map_err(|_| too_large())?;
    let cols = usize::try_from(cols).map_err(|_| too_large())?;
    let elements = (rows as u128) * (cols as u128);
    if elements * (header.dtype.size as u128) > u128::from(u64::MAX / 2) {
        return Err(too_large());
    }
    check_length(path, file_len, &header, elements)?;
    let layout = Layout {
        rows,
        cols,
        fortran: header.order == Order::Fortran,
        item: header.dtype.size,
        decode: header.dtype.decoder(),
        data_offset: header.data_offset,
    };
    Ok((file, layout))
}

/// Memory order of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Row-major (`fortran_order: False`).
    C,
    /// Column-major (`fortran_order: True`).
    Fortran,
}

/// What the header declares.
#[derive(Debug)]
struct Header {
    dtype: Dtype,
    order: Order,
    shape: (u64, u64),
    /// Byte offset of the first data byte.
    data_offset: u64,
}

/// Read and check the magic string, version, header length and header dict.
fn read_header(path: &Path, r: &mut impl Read) -> Result<Header> {
    let bad = |msg: String| format_error(path, None, None, msg);
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre)
        .map_err(|e| preamble_error(path, e, "the file is too short to be a .npy file"))?;
    if &pre[..6] != MAGIC {
        return Err(bad(
            "not a .npy file: it does not start with numpy's magic string \\x93NUMPY (write it with np.save, or give the file its real extension)".to_string(),
        ));
    }
    let (major, minor) = (pre[6], pre[7]);
    let len_bytes = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => {
            return Err(bad(format!(
                "unsupported .npy format version {major}.{minor} (1.0, 2.0 and 3.0 are supported)"
            )))
        }
    };
    let mut len_buf = [0u8; 4];
    r.read_exact(&mut len_buf[..len_bytes])
        .map_err(|e| preamble_error(path, e, "truncated inside the header length"))?;
    let header_len = u32::from_le_bytes(len_buf) as usize;
    if header_len > MAX_HEADER_LEN {
        return Err(bad(format!(
            "malformed header: declared header length {header_len} bytes is implausible (the file is corrupt)"
        )));
    }
    let mut text = vec![0u8; header_len];
    r.read_exact(&mut text)
        .map_err(|e| preamble_error(path, e, "truncated inside the header"))?;
    let text = std::str::from_utf8(&text)
        .map_err(|_| bad("malformed header: it is not text".to_string()))?;
    let dict = PyParser::parse(text)
        .map_err(|msg| bad(format!("malformed header {:?}: {msg}", text.trim_end())))?;
    let header = interpret(&dict).map_err(|msg| match msg {
        HeaderProblem::Malformed(m) => bad(format!("malformed header {:?}: {m}", text.trim_end())),
        HeaderProblem::Unsupported(reason) => NmfError::UnsupportedInput {
            path: path.to_path_buf(),
            reason,
        },
    })?;
    Ok(Header {
        data_offset: (6 + 2 + len_bytes + header_len) as u64,
        ..header
    })
}

/// A failed read of the preamble: too short (end of file), or an I/O error.
fn preamble_error(path: &Path, e: std::io::Error, truncated: &str) -> NmfError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        format_error(path, None, None, truncated.to_string())
    } else {
        read_error(path, e)
    }
}

/// Why a parsed header cannot be used.
enum HeaderProblem {
    /// Not a valid `.npy` header.
    Malformed(String),
    /// Valid, but describes an array this reader does not take (dtype, dimensions).
    Unsupported(String),
}

/// Turn the header dict into a [`Header`] (with `data_offset` still 0).
fn interpret(dict: &Py) -> std::result::Result<Header, HeaderProblem> {
    use HeaderProblem::{Malformed, Unsupported};
    let Py::Dict(entries) = dict else {
        return Err(Malformed("it is not a dict".into()));
    };
    let get = |key: &str| {
        entries.iter().find_map(|(k, v)| match k {
            Py::Str(s) if s == key => Some(v),
            _ => None,
        })
    };
    let descr = match get("descr") {
        Some(Py::Str(s)) => s.as_str(),
        Some(Py::List(_)) => {
            return Err(Unsupported(
                "holds a structured (record) array; save a plain 2-D numeric array instead".into(),
            ))
        }
        Some(_) => return Err(Malformed("'descr' is not a string".into())),
        None => return Err(Malformed("the key 'descr' is missing".into())),
    };
    let order = match get("fortran_order") {
        Some(Py::Bool(true)) => Order::Fortran,
        Some(Py::Bool(false)) => Order::C,
        Some(_) => return Err(Malformed("'fortran_order' is not True or False".into())),
        None => return Err(Malformed("the key 'fortran_order' is missing".into())),
    };
    let dims = match get("shape") {
        Some(Py::Tuple(items)) => items
            .iter()
            .map(|d| match d {
                Py::Int(v) => u64::try_from(*v)
                    .map_err(|_| Malformed(format!("the dimension {v} in 'shape' is invalid"))),
                _ => Err(Malformed(
                    "'shape' holds something other than integers".into(),
                )),
            })
            .collect::<std::result::Result<Vec<u64>, HeaderProblem>>()?,
        Some(_) => return Err(Malformed("'shape' is not a tuple".into())),
        None => return Err(Malformed("the key 'shape' is missing".into())),
    };
    let shape = match dims.as_slice() {
        [rows, cols] => (*rows, *cols),
        [n] => {
            return Err(Unsupported(format!(
                "holds a 1-D array of shape ({n},); NMF needs a 2-D matrix (reshape it, e.g. x.reshape(-1, 1), and save again)"
            )))
        }
        other => {
            return Err(Unsupported(format!(
                "holds a {}-D array of shape {other:?}; NMF needs a 2-D matrix (reshape it, e.g. x.reshape(x.shape[0], -1), and save again)",
                other.len()
            )))
        }
    };
    let dtype = Dtype::parse(descr).ok_or_else(|| {
        Unsupported(format!(
            "has dtype {descr:?}, which is not supported; save it as float32 or float64 (e.g. np.save(path, x.astype(np.float32)))"
        ))
    })?;
    Ok(Header {
        dtype,
        order,
        shape,
        data_offset: 0,
    })
}

/// Byte order of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

/// Kind of number stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Float,
    Int,
    UInt,
    Bool,
}

/// A supported element type.
#[derive(Debug, Clone)]
struct Dtype {
    descr: String,
    kind: Kind,
    size: usize,
    endian: Endian,
}

impl Dtype {
    /// Parse a simple `descr` such as `<f4`, `>f8`, `|u1`, `<i8`, `|b1`.
    fn parse(descr: &str) -> Option<Dtype> {
        let native = if cfg!(target_endian = "big") {
            Endian::Big
        } else {
            Endian::Little
        };
        let (endian, rest) = match descr.as_bytes().first()? {
            b'<' => (Endian::Little, &descr[1..]),
            b'>' => (Endian::Big, &descr[1..]),
            b'|' | b'=' => (native, &descr[1..]),
            _ => (native, descr),
        };
        let mut chars = rest.chars();
        let kind = match chars.next()? {
            'f' => Kind::Float,
            'i' => Kind::Int,
            'u' => Kind::UInt,
            'b' => Kind::Bool,
            _ => return None,
        };
        let size: usize = chars.as_str().parse().ok()?;
        let ok = match kind {
            Kind::Float => matches!(size, 2 | 4 | 8),
            Kind::Int | Kind::UInt => matches!(size, 1 | 2 | 4 | 8),
            Kind::Bool => size == 1,
        };
        ok.then(|| Dtype {
            descr: descr.to_string(),
            kind,
            size,
            endian,
        })
    }

    /// The function converting one element's bytes to f32.
    fn decoder(&self) -> fn(&[u8]) -> f32 {
        macro_rules! dec {
            ($t:ty, $n:literal, $from:ident) => {
                |b: &[u8]| {
                    let mut a = [0u8; $n];
                    a.copy_from_slice(&b[..$n]);
                    <$t>::$from(a) as f32
                }
            };
        }
        use Endian::{Big, Little};
        match (self.kind, self.size, self.endian) {
            (Kind::Float, 2, Little) => |b: &[u8]| f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
            (Kind::Float, 2, Big) => |b: &[u8]| f16_to_f32(u16::from_be_bytes([b[0], b[1]])),
            (Kind::Float, 4, Little) => dec!(f32, 4, from_le_bytes),
            (Kind::Float, 4, Big) => dec!(f32, 4, from_be_bytes),
            (Kind::Float, _, Little) => dec!(f64, 8, from_le_bytes),
            (Kind::Float, _, Big) => dec!(f64, 8, from_be_bytes),
            (Kind::Int, 1, _) => dec!(i8, 1, from_le_bytes),
            (Kind::Int, 2, Little) => dec!(i16, 2, from_le_bytes),
            (Kind::Int, 2, Big) => dec!(i16, 2, from_be_bytes),
            (Kind::Int, 4, Little) => dec!(i32, 4, from_le_bytes),
            (Kind::Int, 4, Big) => dec!(i32, 4, from_be_bytes),
            (Kind::Int, _, Little) => dec!(i64, 8, from_le_bytes),
            (Kind::Int, _, Big) => dec!(i64, 8, from_be_bytes),
            (Kind::UInt | Kind::Bool, 1, _) => dec!(u8, 1, from_le_bytes),
            (Kind::UInt, 2, Little) => dec!(u16, 2, from_le_bytes),
            (Kind::UInt, 2, Big) => dec!(u16, 2, from_be_bytes),
            (Kind::UInt, 4, Little) => dec!(u32, 4, from_le_bytes),
            (Kind::UInt, 4, Big) => dec!(u32, 4, from_be_bytes),
            (Kind::UInt | Kind::Bool, _, Little) => dec!(u64, 8, from_le_bytes),
            (Kind::UInt | Kind::Bool, _, Big) => dec!(u64, 8, from_be_bytes),
        }
    }
}

/// An IEEE 754 half-precision number, widened exactly.
fn f16_to_f32(bits: u16) -> f32 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let mantissa = f32::from(bits & 0x3ff);
    sign * match exponent {
        0 => mantissa * 2f32.powi(-24),
        0x1f if mantissa == 0.0 => f32::INFINITY,
        0x1f => f32::NAN,
        e => (1.0 + mantissa / 1024.0) * 2f32.powi(e - 15),
    }
}

/// The subset of Python literals a `.npy` header uses.
#[derive(Debug, Clone, PartialEq)]
enum Py {
    Str(String),
    Bool(bool),
    None,
    Int(i128),
    Tuple(Vec<Py>),
    List(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

/// A recursive-descent parser for [`Py`] literals.
struct PyParser<'a> {
    s: &'a [u8],
    pos: usize,
}

type ParseResult<T> = std::result::Result<T, String>;

impl<'a> PyParser<'a> {
    /// Parse a whole header: one literal, then only whitespace (the header ends with `\n`).
    fn parse(text: &'a str) -> ParseResult<Py> {
        let mut p = PyParser {
            s: text.as_bytes(),
            pos: 0,
        };
        let v = p.value(0)?;
        p.skip_ws();
        if p.pos != p.s.len() {
            return Err(format!("unexpected text at byte {}", p.pos));
        }
        Ok(v)
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> ParseResult<()> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.pos))
        }
    }

    fn value(&mut self, depth: usize) -> ParseResult<Py> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        match self.peek() {
            None => Err("unexpected end".into()),
            Some(b'{') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        return Ok(Py::Dict(items));
                    }
                    let k = self.value(depth + 1)?;
                    self.expect(b':')?;
                    let v = self.value(depth + 1)?;
                    items.push((k, v));
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {}
                        _ => return Err(format!("expected ',' or '}}' at byte {}", self.pos)),
                    }
                }
            }
            Some(open @ (b'(' | b'[')) => {
                self.pos += 1;
                let close = if open == b'(' { b')' } else { b']' };
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        return Ok(if open == b'(' {
                            Py::Tuple(items)
                        } else {
                            Py::List(items)
                        });
                    }
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(c) if c == close => {}
                        _ => {
                            return Err(format!(
                                "expected ',' or '{}' at byte {}",
                                close as char, self.pos
                            ))
                        }
                    }
                }
            }
            Some(q @ (b'\'' | b'"')) => {
                self.pos += 1;
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos] != q {
                    if self.s[self.pos] == b'\\' {
                        return Err("escapes in strings are not supported".into());
                    }
                    self.pos += 1;
                }
                if self.pos >= self.s.len() {
                    return Err("unterminated string".into());
                }
                let text = std::str::from_utf8(&self.s[start..self.pos])
                    .map_err(|_| "a string is not valid UTF-8".to_string())?;
                self.pos += 1;
                Ok(Py::Str(text.to_string()))
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' => {
                let start = self.pos;
                self.pos += 1;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
                    self.pos += 1;
                }
                let digits = std::str::from_utf8(&self.s[start..self.pos])
                    .map_err(|_| "bad number".to_string())?;
                let v: i128 = digits
                    .parse()
                    .map_err(|_| format!("bad integer {digits:?}"))?;
                // Python 2 wrote long integers with an `L` suffix.
                if self.s.get(self.pos) == Some(&b'L') {
                    self.pos += 1;
                }
                Ok(Py::Int(v))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_alphanumeric() {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"True" => Ok(Py::Bool(true)),
                    b"False" => Ok(Py::Bool(false)),
                    b"None" => Ok(Py::None),
                    other => Err(format!(
                        "unexpected word {:?}",
                        String::from_utf8_lossy(other)
                    )),
                }
            }
            Some(c) => Err(format!(
                "unexpected character {:?} at byte {}",
                c as char, self.pos
            )),
        }
    }
}

/// The shape `(rows, cols)` a 2-D `.npy` file declares (its header only).
pub(crate) fn shape(path: &Path) -> Result<(usize, usize)> {
    let mut reader = BufReader::new(open(path)?);
    let header = read_header(path, &mut reader)?;
    addressable_shape(path, None, header.shape)
}

/// Read the block `rows x cols` of a 2-D `.npy` file as a row-major float32 matrix, reading
/// only its bytes (by offsets: one read per row of the block in C order, per column in
/// Fortran order). The block's size is checked against the limit, and the file's length
/// against the declared shape, before anything is allocated.
pub(crate) fn read_block(
    path: &Path,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    options: &ReadOptions,
) -> Result<Array2<f32>> {
    use std::io::{Seek, SeekFrom};
    let mut file = open(path)?;
    let file_len = file.metadata().map_err(|e| read_error(path, e))?.len();
    let header = read_header(path, &mut BufReader::new(&file))?;
    let (m, n) = (header.shape.0 as usize, header.shape.1 as usize);
    super::limits::check_block(path, (&rows, &cols), (m as u64, n as u64), "array")?;
    let (br, bc) = (rows.len(), cols.len());
    let elements = check_dims(path, br as u64, bc as u64, options.limit_bytes())?;
    let item = header.dtype.size as u64;
    let data_bytes = (m as u128) * (n as u128) * u128::from(item);
    if u128::from(file_len.saturating_sub(header.data_offset)) < data_bytes {
        return Err(format_error(
            path,
            None,
            None,
            format!(
                "truncated: the header declares a {m} x {n} array of {} ({data_bytes} bytes of data) but only {} bytes follow it",
                header.dtype.descr,
                file_len.saturating_sub(header.data_offset)
            ),
        ));
    }
    let decode = header.dtype.decoder();
    let mut out = vec![0f32; elements];
    // A run of contiguous values: a row segment (C order) or a column segment (Fortran).
    let (outer, inner, run_len) = match header.order {
        Order::C => (rows.clone(), cols.clone(), bc),
        Order::Fortran => (cols.clone(), rows.clone(), br),
    };
    let stride = match header.order {
        Order::C => n as u64,
        Order::Fortran => m as u64,
    };
    let mut buf = vec![0u8; run_len * item as usize];
    for (a, o) in outer.enumerate() {
        let offset = header.data_offset + (o as u64 * stride + inner.start as u64) * item;
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| read_error(path, e))?;
        for (b, raw) in buf.chunks_exact(item as usize).enumerate() {
            let dest = match header.order {
                Order::C => a * bc + b,
                Order::Fortran => b * bc + a,
            };
            out[dest] = decode(raw);
        }
    }
    Array2::from_shape_vec((br, bc), out)
        .map_err(|e| format_error(path, None, None, format!("cannot shape the data: {e}")))
}
