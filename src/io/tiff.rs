//! Multi-page TIFF and BigTIFF stacks: a movie or an image series, one frame a sample
//! (a column of V), read with the pure-Rust `tiff` crate (feature `images`).
//!
//! **What is read.** Every page of the main chain of image directories is a frame, except the
//! reduced-resolution pages (thumbnails, `NewSubfileType` bit 0). A frame is single-channel
//! (grey), of 8-, 16-, 32- or 64-bit unsigned or signed integers or 16-, 32- or 64-bit floats,
//! stored in strips or tiles, uncompressed or compressed with LZW, Deflate (zlib) or JPEG,
//! with or without a horizontal or floating-point predictor; every frame of a stack has the
//! size and sample type of the first. Frame `j` becomes column `j` of V (`width·height x n`),
//! flattened row by row: pixel `(x, y)` at row `y·width + x`, as for image directories. The
//! values are converted to float32 as stored (no scaling); negative values of signed frames
//! are left for the fit to report.
//!
//! **Many files.** A directory of TIFF files (`.tif`, `.tiff`, searched recursively, hidden
//! entries skipped) is one stack: the files in natural order (`movie_2.tif` before
//! `movie_10.tif`), the frames of each in page order.
//!
//! **Checks before allocating.** [`TiffStack::open`] reads every page's directory (no pixel)
//! and checks the frame against the input limit: a frame's float32 column and its decoded
//! samples must fit ([`NmfError::TooLarge`]); the whole-matrix reader (`read_matrix` of a
//! `.tif`) checks the whole matrix too. Malformed files (bad signature, directory or strip offsets past the end
//! of the file, truncated strips, a page of another size or type) are [`NmfError::Format`]
//! errors naming the file and the page; nothing panics.
//!
//! **Memory of the streaming readers.** [`TiffSource`] (online fits) and the block reader
//! ([`TiffStack::read_block`], distributed fits) read the frames of a batch or block one after another,
//! each decoded into one reused buffer (one frame in its stored type, at most the input
//! limit) and converted through a staging buffer of at most [`STAGE_BYTES`] (or one frame's
//! row range, if larger) into the result. The process holds the result (`rows·cols·4`
//! bytes), one decoded frame and the staging buffer, plus the strip tables of one page; the
//! directory walk keeps 8 bytes per page passed. (The online fit's read-ahead holds one more
//! batch.)
//!
//! [`TiffWriter`] writes frames one at a time to a multi-page TIFF or BigTIFF (grey, any of
//! the sample types above, optionally LZW- or Deflate-compressed), under a temporary name
//! renamed into place by [`TiffWriter::finish`].

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ndarray::{Array2, ArrayViewMut2};
use tiff::decoder::{Decoder, DecodingResult, DecodingSampleType, Limits};
use tiff::tags::Tag;
use tiff::{ColorType, TiffError};

use super::limits::check_dims;
use super::samples::format_error;
use super::walk::{list_files, Descend};
use super::write::PartialFile;
use super::{open, ReadOptions};
use crate::error::{NmfError, Result};
use crate::online::source::Pass;
use crate::online::Source;

/// File extensions read as TIFF (compared without regard to case).
pub const TIFF_EXTENSIONS: [&str; 2] = ["tif", "tiff"];

/// The staging buffer through which decoded frames are turned into columns (bytes): frames are
/// converted a group at a time into it and then written row by row into the result, so the
/// result is filled with contiguous writes.
pub const STAGE_BYTES: usize = 8 << 20;

/// Read buffer of a TIFF file (bytes).
const READ_BUFFER: usize = 1 << 16;

/// The largest directory value the decoder reads (a strip or tile table, bytes): 16 MiB is
/// two million 64-bit offsets.
const IFD_VALUE_BYTES: usize = 16 << 20;

/// The sample type of a stack's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TiffSampleType {
    /// Unsigned 8-bit integers.
    U8,
    /// Unsigned 16-bit integers.
    U16,
    /// Unsigned 32-bit integers.
    U32,
    /// Unsigned 64-bit integers.
    U64,
    /// Signed 8-bit integers.
    I8,
    /// Signed 16-bit integers.
    I16,
    /// Signed 32-bit integers.
    I32,
    /// Signed 64-bit integers.
    I64,
    /// IEEE half-precision floats.
    F16,
    /// IEEE single-precision floats.
    F32,
    /// IEEE double-precision floats.
    F64,
}

impl TiffSampleType {
    fn from_decoding(t: DecodingSampleType) -> TiffSampleType {
        match t {
            DecodingSampleType::U8 => TiffSampleType::U8,
            DecodingSampleType::U16 => TiffSampleType::U16,
            DecodingSampleType::U32 => TiffSampleType::U32,
            DecodingSampleType::U64 => TiffSampleType::U64,
            DecodingSampleType::I8 => TiffSampleType::I8,
            DecodingSampleType::I16 => TiffSampleType::I16,
            DecodingSampleType::I32 => TiffSampleType::I32,
            DecodingSampleType::I64 => TiffSampleType::I64,
            DecodingSampleType::F16 => TiffSampleType::F16,
            DecodingSampleType::F32 => TiffSampleType::F32,
            DecodingSampleType::F64 => TiffSampleType::F64,
        }
    }

    /// Bytes per sample.
    pub fn bytes(self) -> usize {
        match self {
            TiffSampleType::U8 | TiffSampleType::I8 => 1,
            TiffSampleType::U16 | TiffSampleType::I16 | TiffSampleType::F16 => 2,
            TiffSampleType::U32 | TiffSampleType::I32 | TiffSampleType::F32 => 4,
            TiffSampleType::U64 | TiffSampleType::I64 | TiffSampleType::F64 => 8,
        }
    }

    /// The name numpy gives the type (`uint16`, `float32`, ...).
    pub fn name(self) -> &'static str {
        match self {
            TiffSampleType::U8 => "uint8",
            TiffSampleType::U16 => "uint16",
            TiffSampleType::U32 => "uint32",
            TiffSampleType::U64 => "uint64",
            TiffSampleType::I8 => "int8",
            TiffSampleType::I16 => "int16",
            TiffSampleType::I32 => "int32",
            TiffSampleType::I64 => "int64",
            TiffSampleType::F16 => "float16",
            TiffSampleType::F32 => "float32",
            TiffSampleType::F64 => "float64",
        }
    }
}

/// Whether `path` has a TIFF extension.
pub fn has_tiff_extension(path: &Path) -> bool {
    path.extension().is_some_and(|ext| {
        let ext = ext.to_string_lossy();
        TIFF_EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e))
    })
}

/// Whether the directory `dir` holds TIFF files (searched recursively, hidden entries
/// skipped); `false` when it cannot be listed.
pub fn dir_has_tiff(dir: &Path) -> bool {
    list_files(
        dir,
        "list the directory",
        "the TIFF files",
        Descend::Recursive,
        &|p| has_tiff_extension(p),
    )
    .is_ok_and(|files| !files.is_empty())
}

/// One TIFF file, or a directory of them, as a sequence of frames: the files, their frame
/// counts and the frame size and type, read from the page directories (no pixel decoded).
#[derive(Debug, Clone)]
pub struct TiffStack {
    files: Vec<PathBuf>,
    /// The first frame of each file, and `n` at the end.
    starts: Vec<usize>,
    width: usize,
    height: usize,
    sample: TiffSampleType,
    limit: u64,
}

impl TiffStack {
    /// Open the TIFF file `path`, or every TIFF file under the directory `path` in natural
    /// order, and read the page directories: the frame size and type (from the first frame),
    /// every frame checked against them and against the limit of `options` (see the module
    /// docs).
    pub fn open(path: impl AsRef<Path>, options: &ReadOptions) -> Result<TiffStack> {
        let path = path.as_ref();
        let files = if path.is_dir() {
            let names = list_files(
                path,
                "open the TIFF directory",
                "the TIFF files",
                Descend::Recursive,
                &|p| has_tiff_extension(p),
            )?;
            if names.is_empty() {
                return Err(NmfError::UnsupportedInput {
                    path: path.to_path_buf(),
                    reason: "no .tif or .tiff files found (searched recursively)".into(),
                });
            }
            names.into_iter().map(|n| path.join(n)).collect()
        } else {
            vec![path.to_path_buf()]
        };
        let limit = options.limit_bytes();
        let mut frame: Option<FrameInfo> = None;
        let mut starts = vec![0usize];
        for file in &files {
            let count = scan_file(file, &mut frame, limit)?;
            let total = starts[starts.len() - 1].saturating_add(count);
            starts.push(total);
        }
        let (n, Some(frame)) = (starts[starts.len() - 1], frame) else {
            return Err(format_error(
                path,
                "holds no frame (every page is a thumbnail)",
            ));
        };
        if n == 0 {
            return Err(NmfError::EmptyInput {
                rows: frame.width * frame.height,
                cols: 0,
            });
        }
        Ok(TiffStack {
            files,
            starts,
            width: frame.width,
            height: frame.height,
            sample: frame.sample,
            limit,
        })
    }

    /// V's shape: `(width·height, frames)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.width * self.height, self.frames())
    }
    /// Frame width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }
    /// Frame height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }
    /// Number of frames (samples).
    pub fn frames(&self) -> usize {
        self.starts[self.starts.len() - 1]
    }
    /// The frames' sample type.
    pub fn sample_type(&self) -> TiffSampleType {
        self.sample
    }
    /// The files, in the order their frames are read.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
    /// The number of frames of each file, in order.
    pub fn frames_per_file(&self) -> Vec<usize> {
        self.starts.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// The file holding frame `j` and the frame's index within it.
    fn locate(&self, j: usize) -> (usize, usize) {
        // `starts` is sorted; the file is the last whose start is ≤ j (empty files skipped).
        let f = self.starts.partition_point(|&s| s <= j).saturating_sub(1);
        (f, j - self.starts[f])
    }

    /// Where frame `j` comes from, in words.
    pub fn describe(&self, j: usize) -> String {
        if j >= self.frames() {
            return format!("sample {j}");
        }
        let (f, k) = self.locate(j);
        format!("{}: frame {k} (sample {j})", self.files[f].display())
    }

    /// The whole stack as V (`width·height x frames`), checked against the limit first.
    pub fn read_all(&self) -> Result<Array2<f32>> {
        let (m, n) = self.shape();
        self.read_block(0..m, 0..n)
    }

    /// The block `rows x cols` of V (pixels `rows` of frames `cols`), checked against the limit
    /// before it is allocated; only the files of `cols` are opened, and only the frames of
    /// `cols` decoded.
    pub fn read_block(&self, rows: Range<usize>, cols: Range<usize>) -> Result<Array2<f32>> {
        let (m, n) = self.shape();
        if rows.start > rows.end || rows.end > m || cols.start > cols.end || cols.end > n {
            return Err(format_error(
                &self.files[0],
                format!(
                    "the block rows {rows:?} x columns {cols:?} lies outside the {m} x {n} stack"
                ),
            ));
        }
        check_dims(
            &self.files[0],
            rows.len() as u64,
            cols.len() as u64,
            self.limit,
        )?;
        let mut out = Array2::<f32>::zeros((rows.len(), cols.len()));
        FrameReader::default().fill(self, rows, cols, out.view_mut())?;
        Ok(out)
    }
}

/// What every frame must share with the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameInfo {
    width: usize,
    height: usize,
    sample: TiffSampleType,
}

/// The decoder limits for a reader held to `limit` bytes.
fn limits(limit: u64) -> Limits {
    let bytes = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut limits = Limits::default();
    limits.decoding_buffer_size = bytes;
    limits.intermediate_buffer_size = limits.intermediate_buffer_size.min(bytes);
    limits.ifd_value_size = IFD_VALUE_BYTES.min(bytes);
    limits
}

type TiffDecoder = Decoder<BufReader<File>>;

/// Open `path` and read its first page directory.
fn open_decoder(path: &Path, limit: u64) -> Result<TiffDecoder> {
    let file = open(path)?;
    Decoder::new(BufReader::with_capacity(READ_BUFFER, file))
        .map(|d| d.with_limits(limits(limit)))
        .map_err(|e| tiff_error(path, "the header or first page", e))
}

/// Whether the current page is a reduced-resolution copy (a thumbnail), not a frame.
fn is_thumbnail(decoder: &mut TiffDecoder, path: &Path, page: usize) -> Result<bool> {
    let kind = decoder
        .find_tag_unsigned::<u32>(Tag::NewSubfileType)
        .map_err(|e| tiff_error(path, &format!("page {page}"), e))?;
    Ok(kind.is_some_and(|k| k & 1 == 1))
}

/// The size and type of the current page, checked as a frame (grey, a readable sample type,
/// within `limit`).
fn frame_info(
    decoder: &mut TiffDecoder,
    path: &Path,
    page: usize,
    limit: u64,
) -> Result<FrameInfo> {
    let at = format!("page {page}");
    let (w, h) = decoder.dimensions().map_err(|e| tiff_error(path, &at, e))?;
    let color = decoder.colortype().map_err(|e| tiff_error(path, &at, e))?;
    let bits = match color {
        ColorType::Gray(bits) => bits,
        other => {
            return Err(format_error(
                path,
                format!("{at}: frames of {other:?} pixels; only single-channel (grey) frames are read (save one channel per page)"),
            ))
        }
    };
    if !matches!(bits, 8 | 16 | 32 | 64) {
        return Err(format_error(
            path,
            format!("{at}: {bits}-bit samples; frames of 8, 16, 32 or 64 bits per sample are read"),
        ));
    }
    // Declared sizes are checked before the decoder is asked for its buffer layout, which
    // multiplies them.
    let (width, height) = (w as usize, h as usize);
    if width == 0 || height == 0 {
        return Err(format_error(path, format!("{at}: an empty {w}x{h} frame")));
    }
    let pixels = u64::from(w) * u64::from(h);
    let decoded = u128::from(pixels) * u128::from(bits / 8) + u128::from(pixels) * 4;
    if decoded > u128::from(limit) || usize::try_from(pixels).is_err() {
        return Err(NmfError::TooLarge {
            path: path.to_path_buf(),
            what: format!("{at}, a {w}x{h} frame of {bits}-bit samples decoded and as float32"),
            bytes: decoded,
            limit,
        });
    }
    let layout = decoder
        .image_buffer_layout()
        .map_err(|e| tiff_error(path, &at, e))?;
    let Some(sample) = layout.sample_type else {
        return Err(format_error(
            path,
            format!(
                "{at}: samples of format {:?} with {bits} bits are not read",
                layout.sample_format
            ),
        ));
    };
    let sample = TiffSampleType::from_decoding(sample);
    if layout.planes != 1 || layout.complete_len != layout.len {
        return Err(format_error(
            path,
            format!(
                "{at}: a frame of {} planes; only single-channel frames are read",
                layout.planes
            ),
        ));
    }
    if layout.len as u128 != u128::from(pixels) * sample.bytes() as u128 {
        return Err(format_error(
            path,
            format!(
                "{at}: a {w}x{h} frame whose decoded size is {} bytes",
                layout.len
            ),
        ));
    }
    Ok(FrameInfo {
        width,
        height,
        sample,
    })
}

/// Walk the pages of `path`, checking each frame against `first` (set from the first frame
/// of the stack); return the number of frames.
fn scan_file(path: &Path, first: &mut Option<FrameInfo>, limit: u64) -> Result<usize> {
    let mut decoder = open_decoder(path, limit)?;
    let mut frames = 0usize;
    let mut page = 0usize;
    loop {
        if !is_thumbnail(&mut decoder, path, page)? {
            let info = frame_info(&mut decoder, path, page, limit)?;
            match first {
                None => *first = Some(info),
                Some(f) if *f == info => {}
                Some(f) => {
                    return Err(format_error(
                        path,
                        format!(
                            "page {page}: a {}x{} frame of {} though the stack's frames are {}x{} of {}",
                            info.width,
                            info.height,
                            info.sample.name(),
                            f.width,
                            f.height,
                            f.sample.name()
                        ),
                    ))
                }
            }
            frames += 1;
        }
        if !decoder.more_images() {
            return Ok(frames);
        }
        page += 1;
        decoder
            .next_image()
            .map_err(|e| tiff_error(path, &format!("page {page}"), e))?;
    }
}

/// A decoder positioned on a frame of a stack.
struct Cursor {
    file: usize,
    decoder: TiffDecoder,
    /// The page the decoder is on.
    page: usize,
    /// The stack's index of the frame the decoder is on.
    frame: usize,
}

/// Reads frames of a stack in order, keeping the decoder between calls so a sequential read
/// walks every page directory once.
#[derive(Default)]
struct FrameReader {
    cursor: Option<Cursor>,
    decoded: Option<DecodingResult>,
    stage: Vec<f32>,
}

impl FrameReader {
    /// Put the cursor on frame `j` of `stack`.
    fn seek(&mut self, stack: &TiffStack, j: usize) -> Result<()> {
        let (f, _) = stack.locate(j);
        let reuse = matches!(&self.cursor, Some(c) if c.file == f && c.frame <= j);
        if !reuse {
            let path = &stack.files[f];
            let mut decoder = open_decoder(path, stack.limit)?;
            let mut page = 0;
            while is_thumbnail(&mut decoder, path, page)? {
                page += 1;
                next_page(&mut decoder, path, page, stack.starts[f])?;
            }
            self.cursor = Some(Cursor {
                file: f,
                decoder,
                page,
                frame: stack.starts[f],
            });
        }
        let path = &stack.files[f];
        let Some(cursor) = self.cursor.as_mut() else {
            return Err(format_error(path, "internal: no decoder for the frame"));
        };
        while cursor.frame < j {
            loop {
                cursor.page += 1;
                next_page(&mut cursor.decoder, path, cursor.page, cursor.frame + 1)?;
                if !is_thumbnail(&mut cursor.decoder, path, cursor.page)? {
                    break;
                }
            }
            cursor.frame += 1;
        }
        Ok(())
    }

    /// Decode frame `j` of `stack` into `self.decoded`.
    fn decode(&mut self, stack: &TiffStack, j: usize) -> Result<()> {
        let limit = stack.limit;
        self.seek(stack, j)?;
        let Some(cursor) = self.cursor.as_mut() else {
            return Err(format_error(
                &stack.files[0],
                "internal: no decoder for the frame",
            ));
        };
        let path = &stack.files[cursor.file];
        let page = cursor.page;
        let info = frame_info(&mut cursor.decoder, path, page, limit)?;
        let expected = FrameInfo {
            width: stack.width,
            height: stack.height,
            sample: stack.sample,
        };
        if info != expected {
            return Err(format_error(
                path,
                format!("page {page} changed since the stack was opened (was the file rewritten while being read?)"),
            ));
        }
        let decoded = self
            .decoded
            .get_or_insert_with(|| DecodingResult::U8(Vec::new()));
        cursor
            .decoder
            .read_image_to_buffer(decoded)
            .map_err(|e| tiff_error(path, &format!("page {page}"), e))?;
        if decoded_len(decoded) != stack.width * stack.height {
            return Err(format_error(
                path,
                format!(
                    "page {page}: decoded {} samples, not the {}x{} of the frame",
                    decoded_len(decoded),
                    stack.width,
                    stack.height
                ),
            ));
        }
        Ok(())
    }

    /// Fill `out` (`rows.len() x cols.len()`) with pixels `rows` of frames `cols` of `stack`.
    fn fill(
        &mut self,
        stack: &TiffStack,
        rows: Range<usize>,
        cols: Range<usize>,
        mut out: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        let height = rows.len();
        if height == 0 || cols.is_empty() {
            return Ok(());
        }
        let group = (STAGE_BYTES / (height * 4)).clamp(1, cols.len());
        self.stage.resize(group * height, 0.0);
        let mut c = 0;
        while c < cols.len() {
            let k = group.min(cols.len() - c);
            for t in 0..k {
                self.decode(stack, cols.start + c + t)?;
                let dst = &mut self.stage[t * height..(t + 1) * height];
                if let Some(decoded) = &self.decoded {
                    convert(decoded, rows.clone(), dst);
                }
            }
            for (i, mut row) in out.rows_mut().into_iter().enumerate() {
                for t in 0..k {
                    row[c + t] = self.stage[t * height + i];
                }
            }
            c += k;
        }
        Ok(())
    }
}

/// Move the decoder to page `page`, whose frame is the stack's `frame` (for the message).
fn next_page(decoder: &mut TiffDecoder, path: &Path, page: usize, frame: usize) -> Result<()> {
    if !decoder.more_images() {
        return Err(format_error(
            path,
            format!("the file ends before frame {frame} (was it rewritten while being read?)"),
        ));
    }
    decoder
        .next_image()
        .map_err(|e| tiff_error(path, &format!("page {page}"), e))
}

fn decoded_len(d: &DecodingResult) -> usize {
    match d {
        DecodingResult::U8(v) => v.len(),
        DecodingResult::U16(v) => v.len(),
        DecodingResult::U32(v) => v.len(),
        DecodingResult::U64(v) => v.len(),
        DecodingResult::I8(v) => v.len(),
        DecodingResult::I16(v) => v.len(),
        DecodingResult::I32(v) => v.len(),
        DecodingResult::I64(v) => v.len(),
        DecodingResult::F16(v) => v.len(),
        DecodingResult::F32(v) => v.len(),
        DecodingResult::F64(v) => v.len(),
    }
}

/// Convert samples `rows` of a decoded frame to float32 into `dst`.
fn convert(d: &DecodingResult, rows: Range<usize>, dst: &mut [f32]) {
    macro_rules! each {
        ($v:expr, $x:ident => $f:expr) => {
            for (o, &$x) in dst.iter_mut().zip(&$v[rows]) {
                *o = $f;
            }
        };
    }
    match d {
        DecodingResult::U8(v) => each!(v, x => f32::from(x)),
        DecodingResult::U16(v) => each!(v, x => f32::from(x)),
        DecodingResult::U32(v) => each!(v, x => x as f32),
        DecodingResult::U64(v) => each!(v, x => x as f32),
        DecodingResult::I8(v) => each!(v, x => f32::from(x)),
        DecodingResult::I16(v) => each!(v, x => f32::from(x)),
        DecodingResult::I32(v) => each!(v, x => x as f32),
        DecodingResult::I64(v) => each!(v, x => x as f32),
        DecodingResult::F16(v) => each!(v, x => x.to_f32()),
        DecodingResult::F32(v) => each!(v, x => x),
        DecodingResult::F64(v) => each!(v, x => x as f32),
    }
}

/// A TIFF file or a directory of TIFF files streamed a batch of frames at a time (online
/// fits): the page directories are read when it is opened ([`TiffStack::open`]), the pixels
/// batch by batch, frames in order (see the module docs for the memory it holds).
pub struct TiffSource {
    stack: TiffStack,
    reader: FrameReader,
    pass: Pass,
}

impl std::fmt::Debug for TiffSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TiffSource")
            .field("stack", &self.stack)
            .field("pass", &self.pass)
            .finish()
    }
}

impl TiffSource {
    /// Open the TIFF file or directory `path` with the limits of `options`.
    pub fn open(path: impl AsRef<Path>, options: &ReadOptions) -> Result<TiffSource> {
        Ok(TiffSource::new(TiffStack::open(path, options)?))
    }
    /// Stream an opened stack.
    pub fn new(stack: TiffStack) -> TiffSource {
        TiffSource {
            stack,
            reader: FrameReader::default(),
            pass: Pass::default(),
        }
    }
    /// The stack streamed.
    pub fn stack(&self) -> &TiffStack {
        &self.stack
    }
}

impl Source for TiffSource {
    fn dim(&self) -> (usize, usize) {
        self.stack.shape()
    }

    fn rewind(&mut self) -> Result<()> {
        self.pass.rewind()
    }

    fn next_batch(&mut self, max_cols: usize) -> Result<Option<Array2<f32>>> {
        let (stack, reader) = (&self.stack, &mut self.reader);
        let (m, n) = stack.shape();
        self.pass.next_batch(n, max_cols, |cols| {
            check_dims(&stack.files[0], m as u64, cols.len() as u64, stack.limit)?;
            let mut out = Array2::<f32>::zeros((m, cols.len()));
            reader.fill(stack, 0..m, cols, out.view_mut())?;
            Ok(out)
        })
    }

    fn describe(&self, col: usize) -> String {
        self.stack.describe(col)
    }

    fn frame_shape(&self) -> Option<(usize, usize)> {
        Some((self.stack.height(), self.stack.width()))
    }
}

/// Read the TIFF file or directory of TIFF files `path` as V (pixels x frames).
pub(crate) fn read(path: &Path, options: &ReadOptions) -> Result<Array2<f32>> {
    let stack = TiffStack::open(path, options)?;
    let (m, n) = stack.shape();
    check_dims(path, m as u64, n as u64, options.limit_bytes())?;
    stack.read_all()
}

/// The error for a page of a TIFF file.
fn tiff_error(path: &Path, at: &str, e: TiffError) -> NmfError {
    match e {
        TiffError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => format_error(
            path,
            format!("{at}: truncated: the file ends inside the data or directory this page points to"),
        ),
        // An error of the operating system; the decoders' own I/O errors are format errors.
        TiffError::IoError(source) if source.raw_os_error().is_some() => NmfError::Io {
            path: path.to_path_buf(),
            action: "read the file",
            source,
        },
        TiffError::IoError(source) => format_error(path, format!("{at}: {source}")),
        TiffError::LimitsExceeded => format_error(
            path,
            format!("{at}: a directory value or strip larger than the reader's limits (a corrupt header, or raise the memory limit)"),
        ),
        other => format_error(path, format!("{at}: {other}")),
    }
}

/// How [`TiffWriter`] compresses the strips it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TiffCompression {
    /// Stored as is.
    #[default]
    None,
    /// LZW.
    Lzw,
    /// Deflate (zlib), the default level.
    Deflate,
}

/// One frame's samples for [`TiffWriter::push`], `width·height` of them, row by row.
#[derive(Debug, Clone, Copy)]
pub enum TiffFrame<'a> {
    /// Unsigned 8-bit.
    U8(&'a [u8]),
    /// Unsigned 16-bit.
    U16(&'a [u16]),
    /// Unsigned 32-bit.
    U32(&'a [u32]),
    /// Signed 8-bit.
    I8(&'a [i8]),
    /// Signed 16-bit.
    I16(&'a [i16]),
    /// Signed 32-bit.
    I32(&'a [i32]),
    /// 32-bit float.
    F32(&'a [f32]),
    /// 64-bit float.
    F64(&'a [f64]),
}

impl TiffFrame<'_> {
    fn len(&self) -> usize {
        match self {
            TiffFrame::U8(v) => v.len(),
            TiffFrame::U16(v) => v.len(),
            TiffFrame::U32(v) => v.len(),
            TiffFrame::I8(v) => v.len(),
            TiffFrame::I16(v) => v.len(),
            TiffFrame::I32(v) => v.len(),
            TiffFrame::F32(v) => v.len(),
            TiffFrame::F64(v) => v.len(),
        }
    }
}

/// The file a [`TiffWriter`] writes, buffered, shared with the encoder so that the writer can
/// take it back to flush and sync it (the encoder does not give its writer back).
#[derive(Clone)]
struct Sink(Arc<Mutex<BufWriter<File>>>);

impl Sink {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        let mut out = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("a TIFF writer's lock was poisoned"))?;
        f(&mut out)
    }
}

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.with(|out| out.write(buf))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.with(|out| out.flush())
    }
}

impl std::io::Seek for Sink {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.with(|out| out.seek(pos))
    }
}

enum Encoder {
    Standard(tiff::encoder::TiffEncoder<Sink>),
    Big(tiff::encoder::TiffEncoder<Sink, tiff::encoder::TiffKindBig>),
}

/// Write `frame` as one page of `enc`.
fn write_page<K: tiff::encoder::TiffKind>(
    enc: &mut tiff::encoder::TiffEncoder<Sink, K>,
    width: u32,
    height: u32,
    frame: TiffFrame<'_>,
) -> tiff::TiffResult<()> {
    use tiff::encoder::colortype as ct;
    match frame {
        TiffFrame::U8(v) => enc.write_image::<ct::Gray8>(width, height, v),
        TiffFrame::U16(v) => enc.write_image::<ct::Gray16>(width, height, v),
        TiffFrame::U32(v) => enc.write_image::<ct::Gray32>(width, height, v),
        TiffFrame::I8(v) => enc.write_image::<ct::GrayI8>(width, height, v),
        TiffFrame::I16(v) => enc.write_image::<ct::GrayI16>(width, height, v),
        TiffFrame::I32(v) => enc.write_image::<ct::GrayI32>(width, height, v),
        TiffFrame::F32(v) => enc.write_image::<ct::Gray32Float>(width, height, v),
        TiffFrame::F64(v) => enc.write_image::<ct::Gray64Float>(width, height, v),
    }
}

/// A multi-page grey TIFF (or BigTIFF) written a frame at a time, under a temporary name
/// beside the final one until [`finish`](Self::finish) renames it; a writer dropped before
/// that removes it.
pub struct TiffWriter {
    file: PartialFile,
    encoder: Option<Encoder>,
    sink: Sink,
    width: u32,
    height: u32,
    frames: usize,
}

impl std::fmt::Debug for TiffWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TiffWriter")
            .field("path", &self.file.path())
            .field("width", &self.width)
            .field("height", &self.height)
            .field("frames", &self.frames)
            .finish()
    }
}

impl TiffWriter {
    /// Start a stack of `width x height` frames at `path`: a BigTIFF (64-bit offsets, for
    /// files past 4 GiB) when `bigtiff`, strips compressed as `compression` says.
    pub fn create(
        path: impl AsRef<Path>,
        width: u32,
        height: u32,
        bigtiff: bool,
        compression: TiffCompression,
    ) -> Result<TiffWriter> {
        let (partial, file) = PartialFile::create(path.as_ref(), "out.tif")?;
        let sink = Sink(Arc::new(Mutex::new(BufWriter::with_capacity(
            1 << 20,
            file,
        ))));
        let compression = match compression {
            TiffCompression::None => tiff::encoder::Compression::Uncompressed,
            TiffCompression::Lzw => tiff::encoder::Compression::Lzw,
            TiffCompression::Deflate => {
                tiff::encoder::Compression::Deflate(tiff::encoder::DeflateLevel::default())
            }
        };
        let encoder = if bigtiff {
            tiff::encoder::TiffEncoder::new_big(sink.clone())
                .map(|e| Encoder::Big(e.with_compression(compression)))
        } else {
            tiff::encoder::TiffEncoder::new(sink.clone())
                .map(|e| Encoder::Standard(e.with_compression(compression)))
        };
        let encoder = encoder.map_err(|e| write_error(partial.tmp(), e))?;
        Ok(TiffWriter {
            file: partial,
            encoder: Some(encoder),
            sink,
            width,
            height,
            frames: 0,
        })
    }

    /// Append one frame (`width·height` samples, row by row).
    pub fn push(&mut self, frame: TiffFrame<'_>) -> Result<()> {
        let pixels = self.width as usize * self.height as usize;
        if frame.len() != pixels {
            return Err(NmfError::ShapeMismatch {
                what: "a frame for a TIFF stack",
                expected: format!("{}x{} = {pixels} samples", self.width, self.height),
                found: format!("{} samples", frame.len()),
            });
        }
        let (w, h) = (self.width, self.height);
        let written = match self.encoder.as_mut() {
            Some(Encoder::Standard(e)) => write_page(e, w, h, frame),
            Some(Encoder::Big(e)) => write_page(e, w, h, frame),
            None => Ok(()),
        };
        written.map_err(|e| write_error(self.file.tmp(), e))?;
        self.frames += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Flush, sync and rename the file to its final path.
    pub fn finish(mut self) -> Result<()> {
        if self.encoder.take().is_none() {
            return Ok(());
        }
        let file = self
            .sink
            .with(|out| {
                out.flush()?;
                out.get_ref().try_clone()
            })
            .map_err(|e| self.file.write_error(e))?;
        self.file.sync(&file)?;
        self.file.rename()
    }
}

impl Drop for TiffWriter {
    fn drop(&mut self) {
        if self.encoder.take().is_some() {
            self.file.remove();
        }
    }
}

fn write_error(path: &Path, e: TiffError) -> NmfError {
    match e {
        TiffError::IoError(source) => NmfError::Io {
            path: path.to_path_buf(),
            action: "write the file",
            source,
        },
        other => NmfError::Io {
            path: path.to_path_buf(),
            action: "write the file",
            source: std::io::Error::other(other.to_string()),
        },
    }
}
