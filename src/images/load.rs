//! Reading a directory of images into `V`.
//!
//! Two passes over the files, both parallel (rayon): the first reads only the headers, so that
//! sizes are checked and `V` is allocated once before any pixel is decoded; the second decodes
//! the images, a few consecutive columns per task, straight into `V`. Peak memory is `V` plus
//! one decoded image per thread.

use std::cmp::Ordering;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::{GrayImage, ImageError, ImageReader};
use ndarray::{Array2, Axis};
use rayon::prelude::*;

use super::set::ImageSet;
use crate::error::{NmfError, Result};
use crate::io::walk::{list_files, Descend};

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
/// a [`SizePolicy::CenterCrop`] window ([`NmfError::ImageTooSmall`]).
pub fn load_dir(dir: impl AsRef<Path>, size: SizePolicy) -> Result<ImageSet> {
    let dir = dir.as_ref();
    if let Some((w, h)) = size.target() {
        if w == 0 || h == 0 {
            return Err(NmfError::ShapeMismatch {
                what: "the image size to resize or crop to",
                expected: "a width and a height of at least 1 pixel".to_string(),
                found: format!("{w}x{h}"),
            });
        }
    }
    let mut names = list_files(
        dir,
        "open the image directory",
        "the images",
        Descend::Recursive,
        &has_image_extension,
    )?;
    if names.is_empty() {
        return Err(NmfError::NoImages {
            dir: dir.to_path_buf(),
        });
    }
    names.sort_by(|a, b| natural_path_cmp(a, b));
    let paths: Vec<PathBuf> = names.iter().map(|name| dir.join(name)).collect();
    load_paths(&paths, names, size)
}

fn has_image_extension(name: &Path) -> bool {
    name.extension().is_some_and(|ext| {
        let ext = ext.to_string_lossy();
        IMAGE_EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e))
    })
}

/// Decode `paths` (named `names`) into one set.
fn load_paths(paths: &[PathBuf], names: Vec<PathBuf>, size: SizePolicy) -> Result<ImageSet> {
    // Pass 1: headers only.
    let dims: Vec<(u32, u32)> = paths
        .par_iter()
        .map(|p| probe(p))
        .collect::<Vec<Result<_>>>()
        .into_iter()
        .collect::<Result<_>>()?;
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
    let (width, height) = (width as usize, height as usize);

    // Pass 2: decode into V, a block of consecutive columns per task.
    let mut v = Array2::<f32>::zeros((width * height, paths.len()));
    v.axis_chunks_iter_mut(Axis(1), COLUMNS_PER_TASK)
        .into_par_iter()
        .zip(paths.par_chunks(COLUMNS_PER_TASK))
        .map(|(mut block, block_paths)| {
            for (mut column, path) in block.axis_iter_mut(Axis(1)).zip(block_paths) {
                let grey = fit_to_size(decode(path)?, size, path)?;
                if (grey.width() as usize, grey.height() as usize) != (width, height) {
                    return Err(NmfError::UndecodableImage {
                        path: path.clone(),
                        reason: format!(
                            "decoded as {}x{} though its header says {width}x{height}",
                            grey.width(),
                            grey.height()
                        ),
                    });
                }
                for (dst, &level) in column.iter_mut().zip(grey.as_raw()) {
                    *dst = f32::from(level);
                }
            }
            Ok(())
        })
        .collect::<Vec<Result<()>>>()
        .into_iter()
        .collect::<Result<()>>()?;
    ImageSet::new(v, width, height, names)
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

/// Width and height from the header.
fn probe(path: &Path) -> Result<(u32, u32)> {
    open(path)?
        .into_dimensions()
        .map_err(|e| image_error(path, e))
}

/// The decoded image as 8-bit grey.
fn decode(path: &Path) -> Result<GrayImage> {
    Ok(open(path)?
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
            reason: other.to_string(),
        },
    }
}

/// Apply the size policy to one decoded image.
fn fit_to_size(grey: GrayImage, size: SizePolicy, path: &Path) -> Result<GrayImage> {
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

/// Paths compared component by component with [`natural_cmp`].
fn natural_path_cmp(a: &Path, b: &Path) -> Ordering {
    let mut ca = a.components();
    let mut cb = b.components();
    loop {
        match (ca.next(), cb.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = natural_cmp(
                    &x.as_os_str().to_string_lossy(),
                    &y.as_os_str().to_string_lossy(),
                );
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

/// Natural order: runs of ASCII digits compare by numeric value (`"9" < "10"`), everything
/// else character by character; strings equal in this order fall back to plain order
/// (`"01" < "1"`).
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a_rest, mut b_rest) = (a, b);
    loop {
        match (a_rest.chars().next(), b_rest.chars().next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (a_num, a_tail) = split_digits(a_rest);
                let (b_num, b_tail) = split_digits(b_rest);
                let (a_sig, b_sig) = (a_num.trim_start_matches('0'), b_num.trim_start_matches('0'));
                let ord = a_sig.len().cmp(&b_sig.len()).then_with(|| a_sig.cmp(b_sig));
                if ord != Ordering::Equal {
                    return ord;
                }
                a_rest = a_tail;
                b_rest = b_tail;
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                a_rest = &a_rest[x.len_utf8()..];
                b_rest = &b_rest[y.len_utf8()..];
            }
        }
    }
}

/// The leading run of ASCII digits of `s`, and the rest.
fn split_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_digit_runs_as_numbers() {
        let mut names = vec![
            "s10/1.pgm",
            "s2/10.pgm",
            "s2/9.pgm",
            "s1/1.pgm",
            "a.png",
            "s2/09b",
        ];
        names.sort_by(|a, b| natural_path_cmp(Path::new(a), Path::new(b)));
        assert_eq!(
            names,
            [
                "a.png",
                "s1/1.pgm",
                "s2/9.pgm",
                "s2/09b",
                "s2/10.pgm",
                "s10/1.pgm"
            ]
        );
        assert_eq!(natural_cmp("01", "1"), Ordering::Less);
        assert_eq!(natural_cmp("img2", "img10"), Ordering::Less);
    }
}
