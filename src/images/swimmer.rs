//! The Swimmer data set (Donoho & Stodden, "When does non-negative matrix factorization give a
//! correct decomposition into parts?", NIPS 2003): 256 images of 32x32 pixels, each a
//! fixed torso plus four limbs, each limb in one of four positions.
//!
//! Geometry (row, column), 0-based: the torso is column 15 from row 9 to row 21 plus the four
//! joints (9, 14), (9, 16), (21, 14) and (21, 16): 17 pixels. Each limb is a segment of 5
//! pixels leaving its joint `(jr, jc)` in horizontal direction `sx` (−1 left, +1 right) and
//! vertical direction `sy` (−1 for the arms, up; +1 for the legs, down). Its four positions,
//! for `t = 1..=5`:
//!
//! | position | pixels |
//! |---|---|
//! | 0, sideways | `(jr, jc + sx·t)` |
//! | 1, straight | `(jr + sy·t, jc)` |
//! | 2, diagonal down | `(jr + t, jc + sx·t)` |
//! | 3, diagonal up | `(jr − t, jc + sx·t)` |
//!
//! Every image has 17 + 4·5 = 37 pixels on. Image `i = 64a + 16b + 4c + d` has the upper-left
//! limb in position `a`, the upper-right in `b`, the lower-left in `c` and the lower-right in
//! `d`: the order of the data set's usual file, which [`swimmer`] reproduces exactly.

use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::Array2;

use crate::error::{NmfError, Result};
use crate::io::image_set::ImageSet;

/// Width and height of a Swimmer image.
pub const SWIMMER_SIDE: usize = 32;

/// The four limbs, in the order of the image index (`a`, `b`, `c`, `d`).
pub const SWIMMER_LIMBS: [SwimmerLimb; 4] = [
    SwimmerLimb::UpperLeft,
    SwimmerLimb::UpperRight,
    SwimmerLimb::LowerLeft,
    SwimmerLimb::LowerRight,
];

const IMAGES: usize = 256;
const PIXELS: usize = SWIMMER_SIDE * SWIMMER_SIDE;
const LIMB_LENGTH: isize = 5;

/// One limb of the swimmer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwimmerLimb {
    /// Left arm, joint (9, 14).
    UpperLeft,
    /// Right arm, joint (9, 16).
    UpperRight,
    /// Left leg, joint (21, 14).
    LowerLeft,
    /// Right leg, joint (21, 16).
    LowerRight,
}

impl SwimmerLimb {
    /// Joint (row, column) and directions `(sx, sy)`.
    fn geometry(self) -> ((isize, isize), (isize, isize)) {
        match self {
            SwimmerLimb::UpperLeft => ((9, 14), (-1, -1)),
            SwimmerLimb::UpperRight => ((9, 16), (1, -1)),
            SwimmerLimb::LowerLeft => ((21, 14), (-1, 1)),
            SwimmerLimb::LowerRight => ((21, 16), (1, 1)),
        }
    }

    /// The pixel indices (`row·32 + column`) of this limb in `position` (0..4; see the module
    /// documentation).
    pub fn pixels(self, position: usize) -> Vec<usize> {
        let ((jr, jc), (sx, sy)) = self.geometry();
        (1..=LIMB_LENGTH)
            .map(|t| {
                let (r, c) = match position % 4 {
                    0 => (jr, jc + sx * t),
                    1 => (jr + sy * t, jc),
                    2 => (jr + t, jc + sx * t),
                    _ => (jr - t, jc + sx * t),
                };
                // Every limb stays inside the 32x32 frame (rows 4..=26, columns 9..=21).
                r as usize * SWIMMER_SIDE + c as usize
            })
            .collect()
    }
}

/// The pixel indices of the torso (17 pixels, on in every image).
pub fn swimmer_torso() -> Vec<usize> {
    let mut pixels: Vec<usize> = (9..=21).map(|r| r * SWIMMER_SIDE + 15).collect();
    pixels.extend([(9, 14), (9, 16), (21, 14), (21, 16)].map(|(r, c)| r * SWIMMER_SIDE + c));
    pixels
}

/// The 256 Swimmer images (1024 pixels x 256, values 0 and 1), generated; identical to the
/// data set's usual file (see the module documentation for the geometry and the order).
pub fn swimmer() -> ImageSet {
    let mut v = Array2::<f32>::zeros((PIXELS, IMAGES));
    let torso = swimmer_torso();
    for i in 0..IMAGES {
        for &p in &torso {
            v[[p, i]] = 1.0;
        }
        let positions = [i / 64, (i / 16) % 4, (i / 4) % 4, i % 4];
        for (limb, position) in SWIMMER_LIMBS.iter().zip(positions) {
            for p in limb.pixels(position) {
                v[[p, i]] = 1.0;
            }
        }
    }
    ImageSet::from_parts(v, SWIMMER_SIDE, SWIMMER_SIDE, names())
}

/// Read the Swimmer images from a raw file: 262,144 bytes, no header, one image per row of
/// 1024 bytes (32 rows of 32 pixels, row-major), values 0 and 1. Returns 1024 pixels x 256
/// images with values 0 and 1.
///
/// Errors: [`NmfError::Io`] when the file cannot be read, [`NmfError::Format`] when its size
/// is not 262,144 bytes or a byte is other than 0 or 1.
pub fn read_swimmer(path: impl AsRef<Path>) -> Result<ImageSet> {
    let path = path.as_ref();
    // At most one byte more than the file's fixed size is read (a longer file, or a link to
    // a device such as /dev/zero, is refused without reading it all).
    let mut bytes = Vec::with_capacity(IMAGES * PIXELS + 1);
    std::fs::File::open(path)
        .and_then(|f| f.take((IMAGES * PIXELS + 1) as u64).read_to_end(&mut bytes))
        .map_err(|source| NmfError::Io {
            path: path.to_path_buf(),
            action: "read the Swimmer file",
            source,
        })?;
    let format_error = |message: String| NmfError::Format {
        path: path.to_path_buf(),
        line: None,
        column: None,
        message,
    };
    if bytes.len() != IMAGES * PIXELS {
        return Err(format_error(format!(
            "{} bytes, but the Swimmer file is exactly {} (256 images of 32x32 bytes, no header)",
            if bytes.len() > IMAGES * PIXELS {
                format!("more than {}", IMAGES * PIXELS)
            } else {
                bytes.len().to_string()
            },
            IMAGES * PIXELS
        )));
    }
    if let Some(at) = bytes.iter().position(|&b| b > 1) {
        return Err(format_error(format!(
            "byte {at} is {}, but Swimmer pixels are 0 or 1",
            bytes[at]
        )));
    }
    // Byte i·1024 + p is pixel p of image i; V[[p, i]] is the same pixel.
    let v = Array2::from_shape_fn((PIXELS, IMAGES), |(p, i)| f32::from(bytes[i * PIXELS + p]));
    Ok(ImageSet::from_parts(v, SWIMMER_SIDE, SWIMMER_SIDE, names()))
}

fn names() -> Vec<PathBuf> {
    (0..IMAGES)
        .map(|i| PathBuf::from(format!("swimmer/{i:03}")))
        .collect()
}
