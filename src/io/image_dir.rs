//! Reading a directory of images into `V`.
//!
//! Two passes over the files, both parallel (rayon): the first reads only the headers, so that
//! sizes are checked and `V` is allocated once before any pixel is decoded; the second decodes
//! the images, a few consecutive columns per task, straight into `V`. Peak memory is `V` plus
//! one decoded image per thread, and both are checked against the input limit
//! ([`ReadOptions::max_bytes`]) from the sizes the headers declare, before anything is
//! allocated.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::{GrayImage, ImageDecoder, ImageError, ImageReader, Limits};
use ndarray::{Array2, ArrayViewMut1, Axis};
use rayon::prelude::*;

use super::image_set::ImageSet;
use super::walk::{list_files, Descend};
use super::ReadOptions;
use crate::error::{NmfError, Result};

/// File extensions read as images (compared without regard to case).
pub const IMAGE_EXTENSIONS: [&str; 7] = ["pgm", "pnm", "ppm", "pbm", "png", "jpg", "jpeg"];

/// Consecutive images decoded by one task: 16 f32 columns span one 64-byte cache line of a
/// row of `V`, so tasks rarely write to the same line.
const COLUMNS_PER_TASK: usize = 16;

/// How images of different sizes are brought to one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SizePolicy {
    /// Every image must have the size of the first; otherwise [`NmfError::MixedImageSizes`]
    /// names the first image and the first one that differs.
    #[default]
    Exact,
    /// Every image is resampled to `width x height` (bilinear, the aspect ratio is not kept).
    Resize {
        /// Target width in pixels.
        width: u32,
        /// Target height in pixels.
        height: u32,
    },
    /// The central `width x height` window of every image is kept (offset
    /// `((W − width)/2, (H − height)/2)`, rounded down); an image smaller than the window is an
    /// error ([`NmfError::ImageTooSmall`]).
    CenterCrop {
        /// Window width in pixels.
        width: u32,
        /// Window height in pixels.
        height: u32,
    },
}

impl SizePolicy {
    fn target(self) -> Option<(u32, u32)> {
        match self {
            SizePolicy::Exact => None,
            SizePolicy::Resize { width, height } | SizePolicy::CenterCrop { width, height } => {
                Some((width, height))
            }
        }
    }
}

/// Load every image under `dir` (recursively) into an [`ImageSet`].
///
/// - Files: those whose extension is one of [`IMAGE_EXTENSIONS`]; others (READMEs, label
///   files) and hidden entries (names starting with `.`) are skipped. Symbolic links to files
///   are followed, links to directories are not.
/// - Order: natural order of the paths relative to `dir`, component by component, where runs
///   of digits compare as numbers (`s2/10.pgm` after `s2/9.pgm`, `s10/` after `s9/`).
/// - Formats: PGM/PPM/PBM (plain P1–P3 and binary P4–P6), PNG (8 or 16 bits, any colour type),
///   baseline and progressive JPEG, recognised by their contents (the extension is only a
///   fallback). Colour becomes grey as the `image` crate's luma (`0.2126 R + 0.7152 G +
///   0.0722 B`), 16-bit levels are scaled to 8 bits, alpha is dropped.
/// - Values: grey levels `0..=255` as f32; column `j` of `V` is image `j`, row `y·width + x`
///   its pixel `(x, y)`. `names()` holds the paths relative to `dir`.
///
/// Errors: `dir` missing or unreadable ([`NmfError::Io`]) or not a directory
/// ([`NmfError::UnsupportedInput`]), no image in it ([`NmfError::NoImages`]), sizes that differ
/// under [`SizePolicy::Exact`] ([`NmfError::MixedImageSizes`]), a file that is not a complete
/// image ([`NmfError::UndecodableImage`], the first such file in order), an image smaller than
/// a [`SizePolicy::CenterCrop`] window ([`NmfError::ImageTooSmall`]), an image or a `V` larger
/// than the input limit of [`crate::io::default_max_bytes`] ([`NmfError::TooLarge`]; see
/// [`load_dir_with`]).
pub fn load_dir(dir: impl AsRef<Path>, size: SizePolicy) -> Result<ImageSet> {
    load_dir_with(dir, size, &ReadOptions::new())
}

/// [`load_dir`] under the memory limit of `options` ([`ReadOptions::max_bytes`]).
///
/// The limit is checked from the image headers, before any pixel is decoded and before `V`
/// is allocated: each image's decoded size (`width · height · bytes per pixel` of its colour
/// type, plus `width · height` for its grey copy) must fit, naming the image
/// ([`NmfError::TooLarge`] with its path), and so must `V` (`4 · pixels · images` bytes) with
/// one decoded image per decoding thread, naming the directory. The decoders are held to the
/// same limit while they run.
pub fn load_dir_with(
    dir: impl AsRef<Path>,
    size: SizePolicy,
    options: &ReadOptions,
) -> Result<ImageSet> {
    let dir = dir.as_ref();
    let (names, paths) = list_images(dir, size)?;
    load_paths(dir, &paths, names, size, options.limit_bytes())
}

/// The names (relative to `dir`) of the image files under `dir`, recursively, in natural order.
fn image_names(dir: &Path) -> Result<Vec<PathBuf>> {
    let what = ("open the image directory", "the images");
    list_files(
        dir,
        what.0,
        what.1,
        Descend::Recursive,
        &has_image_extension,
    )
}

/// The image files under `dir` (recursively, in natural order) to read at `size` (whose target,
/// if any, is checked first): names relative to `dir`, and paths.
pub(crate) fn list_images(dir: &Path, size: SizePolicy) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    check_target(size)?;
    let names = image_names(dir)?;
    if names.is_empty() {
        return Err(NmfError::NoImages {
            dir: dir.to_path_buf(),
        });
    }
    let paths: Vec<PathBuf> = names.iter().map(|name| dir.join(name)).collect();
    Ok((names, paths))
}

fn has_image_extension(name: &Path) -> bool {
    name.extension().is_some_and(|ext| {
        let ext = ext.to_string_lossy();
        IMAGE_EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e))
    })
}

/// A size to resize or crop to must have at least one pixel.
fn check_target(size: SizePolicy) -> Result<()> {
    if let Some((w, h)) = size.target() {
        if w == 0 || h == 0 {
            return Err(NmfError::ShapeMismatch {
                what: "the image size to resize or crop to",
                expected: "a width and a height of at least 1 pixel".to_string(),
                found: format!("{w}x{h}"),
            });
        }
    }
    Ok(())
}

/// Decode `paths` (named `names`, found in `dir`) into one set, within `limit` bytes.
fn load_paths(
    dir: &Path,
    paths: &[PathBuf],
    names: Vec<PathBuf>,
    size: SizePolicy,
    limit: u64,
) -> Result<ImageSet> {
    let (headers, (width, height)) = probe_all(paths, size, limit)?;
    check_total(dir, &headers, (width, height), limit)?;
    let (width, height) = (width as usize, height as usize);

    // Pass 2: decode into V, a block of consecutive columns per task.
    let mut v = Array2::<f32>::zeros((width * height, paths.len()));
    v.axis_chunks_iter_mut(Axis(1), COLUMNS_PER_TASK)
        .into_par_iter()
        .zip(paths.par_chunks(COLUMNS_PER_TASK))
        .map(|(mut block, block_paths)| {
            for (column, path) in block.axis_iter_mut(Axis(1)).zip(block_paths) {
                let grey = fit_to_size(decode(path, limit)?, size, path)?;
                copy_levels(&grey, path, (width, height), "its header says", column)?;
            }
            Ok(())
        })
        .collect::<Vec<Result<()>>>()
        .into_iter()
        .collect::<Result<()>>()?;
    ImageSet::new(v, width, height, names)
}

/// Copy the grey levels of `grey`, decoded from `path`, into `out` (row by row), refusing an
/// image that is not `width x height` (`expected`: whose size that is, "the images are").
pub(crate) fn copy_levels(
    grey: &GrayImage,
    path: &Path,
    (width, height): (usize, usize),
    expected: &str,
    mut out: ArrayViewMut1<'_, f32>,
) -> Result<()> {
    if (grey.width() as usize, grey.height() as usize) != (width, height) {
        return Err(NmfError::UndecodableImage {
            path: path.to_path_buf(),
            reason: format!(
                "decoded as {}x{} though {expected} {width}x{height}",
                grey.width(),
                grey.height()
            ),
        });
    }
    for (dst, &level) in out.iter_mut().zip(grey.as_raw()) {
        *dst = f32::from(level);
    }
    Ok(())
}

/// Pass 1 over `paths`: the headers only, each image's decoded size checked against the
/// limit, and the size every image will have under `size` (an error names the first image
/// that does not fit it).
pub(crate) fn probe_all(
    paths: &[PathBuf],
    size: SizePolicy,
    limit: u64,
) -> Result<(Vec<Header>, (u32, u32))> {
    // Pass 1: headers only; each image's decoded size checked against the limit.
    let headers: Vec<Header> = paths
        .par_iter()
        .map(|p| probe(p, limit))
        .collect::<Vec<Result<_>>>()
        .into_iter()
        .collect::<Result<_>>()?;
    let dims: Vec<(u32, u32)> = headers.iter().map(|h| (h.width, h.height)).collect();
    let (width, height) = match size {
        SizePolicy::Exact => {
            let first = dims[0];
            if let Some(k) = dims.iter().position(|&d| d != first) {
                return Err(NmfError::MixedImageSizes {
                    first: paths[0].clone(),
                    first_width: first.0,
                    first_height: first.1,
                    other: paths[k].clone(),
                    other_width: dims[k].0,
                    other_height: dims[k].1,
                });
            }
            first
        }
        SizePolicy::Resize { width, height } => (width, height),
        SizePolicy::CenterCrop { width, height } => {
            if let Some(k) = dims.iter().position(|&(w, h)| w < width || h < height) {
                return Err(NmfError::ImageTooSmall {
                    path: paths[k].clone(),
                    width: dims[k].0,
                    height: dims[k].1,
                    crop_width: width,
                    crop_height: height,
                });
            }
            (width, height)
        }
    };
    Ok((headers, (width, height)))
}

fn open(path: &Path) -> Result<ImageReader<BufReader<File>>> {
    ImageReader::open(path)
        .map_err(|source| NmfError::Io {
            path: path.to_path_buf(),
            action: "open the image",
            source,
        })?
        .with_guessed_format()
        .map_err(|source| NmfError::Io {
            path: path.to_path_buf(),
            action: "read the image",
            source,
        })
}

/// What an image's header declares.
pub(crate) struct Header {
    width: u32,
    height: u32,
    /// Bytes its decoding holds at once: the decoder's output (`width · height · bytes per
    /// pixel`) and the 8-bit grey copy (`width · height`).
    decoded_bytes: u128,
}

/// The image decoders held to `limit` bytes.
fn decoder_limits(limit: u64) -> Limits {
    let mut limits = Limits::no_limits();
    limits.max_alloc = Some(limit);
    limits
}

/// Read the header of `path` and check its decoded size against `limit`.
fn probe(path: &Path, limit: u64) -> Result<Header> {
    let mut reader = open(path)?;
    reader.limits(decoder_limits(limit));
    let decoder = reader.into_decoder().map_err(|e| image_error(path, e))?;
    let (width, height) = decoder.dimensions();
    let pixels = u128::from(width) * u128::from(height);
    let per_pixel = u128::from(decoder.color_type().bytes_per_pixel());
    let decoded_bytes = pixels * (per_pixel + 1);
    if decoded_bytes > u128::from(limit) {
        return Err(NmfError::TooLarge {
            path: path.to_path_buf(),
            what: format!("decoding the image, declared {width}x{height} in its header,"),
            bytes: decoded_bytes,
            limit,
        });
    }
    Ok(Header {
        width,
        height,
        decoded_bytes,
    })
}

/// Check that `V` (`width · height` rows, one column per image, float32) and one decoded
/// image per decoding thread fit in `limit`, naming `dir` when not.
fn check_total(
    dir: &Path,
    headers: &[Header],
    (width, height): (u32, u32),
    limit: u64,
) -> Result<()> {
    let n = headers.len() as u128;
    let v_bytes = u128::from(width) * u128::from(height) * n * 4;
    let threads = (rayon::current_num_threads() as u128).clamp(1, n.max(1));
    let mut largest: Vec<u128> = headers.iter().map(|h| h.decoded_bytes).collect();
    largest.sort_unstable_by(|a, b| b.cmp(a));
    let decoding: u128 = largest.iter().take(threads as usize).sum();
    let total = v_bytes + decoding;
    if total > u128::from(limit) || usize::try_from(v_bytes).is_err() {
        return Err(NmfError::TooLarge {
            path: dir.to_path_buf(),
            what: format!(
                "V of its {n} images of {width}x{height} pixels ({} x {n} float32 values, with up to {threads} image(s) decoded at once)",
                u128::from(width) * u128::from(height)
            ),
            bytes: total,
            limit,
        });
    }
    Ok(())
}

/// The decoded image as 8-bit grey, the decoder held to `limit` bytes.
pub(crate) fn decode(path: &Path, limit: u64) -> Result<GrayImage> {
    let mut reader = open(path)?;
    reader.limits(decoder_limits(limit));
    Ok(reader
        .decode()
        .map_err(|e| image_error(path, e))?
        .into_luma8())
}

/// A decoder error: truncated or malformed contents are the file's fault
/// ([`NmfError::UndecodableImage`]), other I/O failures the system's ([`NmfError::Io`]).
fn image_error(path: &Path, e: ImageError) -> NmfError {
    match e {
        ImageError::IoError(source)
            if !matches!(
                source.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
            ) =>
        {
            NmfError::Io {
                path: path.to_path_buf(),
                action: "read the image",
                source,
            }
        }
        other => NmfError::UndecodableImage {
            path: path.to_path_buf(),
            reason: one_line(&other.to_string()),
        },
    }
}

/// `text` on one line: every run of line breaks (with the spaces around it) becomes one space,
/// for messages that wrap another library's (a decoder's) words.
fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Apply the size policy to one decoded image.
pub(crate) fn fit_to_size(grey: GrayImage, size: SizePolicy, path: &Path) -> Result<GrayImage> {
    match size {
        SizePolicy::Exact => Ok(grey),
        SizePolicy::Resize { width, height } => {
            if grey.dimensions() == (width, height) {
                Ok(grey)
            } else {
                Ok(imageops::resize(&grey, width, height, FilterType::Triangle))
            }
        }
        SizePolicy::CenterCrop { width, height } => {
            let (w, h) = grey.dimensions();
            if w < width || h < height {
                return Err(NmfError::ImageTooSmall {
                    path: path.to_path_buf(),
                    width: w,
                    height: h,
                    crop_width: width,
                    crop_height: height,
                });
            }
            let (x, y) = ((w - width) / 2, (h - height) / 2);
            Ok(imageops::crop_imm(&grey, x, y, width, height).to_image())
        }
    }
}

/// The files [`load_dir_with`] reads from `dir`, in its order (relative to `dir`), and the
/// shape `(pixels, images)` of its `V` under `size`: the size policy's target, or for
/// [`SizePolicy::Exact`] the size the first image's header declares.
pub(crate) fn plan_dir(
    dir: &Path,
    size: SizePolicy,
    options: &ReadOptions,
) -> Result<(Vec<PathBuf>, (usize, usize))> {
    let names = image_names(dir)?;
    let Some(first) = names.first() else {
        return Err(NmfError::NoImages {
            dir: dir.to_path_buf(),
        });
    };
    let (w, h) = match size.target() {
        Some(t) => t,
        None => {
            let header = probe(&dir.join(first), options.limit_bytes())?;
            (header.width, header.height)
        }
    };
    Ok((names.clone(), (w as usize * h as usize, names.len())))
}

/// Rows `rows` of the columns `cols` of the `V` that [`load_dir_with`] gives for `dir`
/// (`names` from [`plan_dir`]), decoding only the images of `cols`. Under
/// [`SizePolicy::Exact`] each image must have the size of the directory's first image.
pub(crate) fn load_dir_block(
    dir: &Path,
    names: &[PathBuf],
    size: SizePolicy,
    options: &ReadOptions,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) -> Result<Array2<f32>> {
    let (Some(first), Some(share)) = (names.first(), names.get(cols.clone())) else {
        return Err(NmfError::ShapeMismatch {
            what: "the images of a block",
            expected: format!("columns within 0..{}", names.len()),
            found: format!("{cols:?}"),
        });
    };
    let limit = options.limit_bytes();
    let (want_w, want_h) = match size.target() {
        Some(t) => t,
        None => {
            let h = probe(&dir.join(first), limit)?;
            (h.width, h.height)
        }
    };
    let paths: Vec<PathBuf> = share.iter().map(|name| dir.join(name)).collect();
    let set = load_paths(dir, &paths, share.to_vec(), size, limit)?;
    if (set.width(), set.height()) != (want_w as usize, want_h as usize) {
        return Err(NmfError::MixedImageSizes {
            first: dir.join(first),
            first_width: want_w,
            first_height: want_h,
            other: paths[0].clone(),
            other_width: set.width() as u32,
            other_height: set.height() as u32,
        });
    }
    let v = set.into_matrix();
    if rows.end > v.nrows() {
        return Err(NmfError::ShapeMismatch {
            what: "the pixel rows of a block",
            expected: format!("rows within 0..{}", v.nrows()),
            found: format!("{rows:?}"),
        });
    }
    Ok(v.slice(ndarray::s![rows, ..]).to_owned())
}
