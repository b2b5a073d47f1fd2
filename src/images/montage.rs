//! Grids of images: columns of `W`, `V` or `WH` side by side in one picture.

use std::path::Path;

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, GrayImage, ImageEncoder, Luma};
use ndarray::{ArrayView1, ArrayView2, Axis};

use crate::error::{NmfError, Result};

/// How the values of a tile become grey levels `0..=255`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum TileScale {
    /// Each tile is stretched over its own range: `255·(x − min)/(max − min)`, so the smallest
    /// value of a tile is black and its largest white; a constant tile is black. Right for
    /// basis images and eigenfaces, whose scales are arbitrary.
    #[default]
    PerTile,
    /// One range for all tiles: `255·(x − lo)/(hi − lo)`, clipped to `[0, 255]`. Right when
    /// tiles are to be compared (originals beside reconstructions).
    Range {
        /// The value drawn black.
        lo: f32,
        /// The value drawn white.
        hi: f32,
    },
}

/// The grid of a [`montage`]: tiles per row, gaps, magnification and how values are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MontageLayout {
    columns: usize,
    spacing: u32,
    zoom: u32,
    background: u8,
    scale: TileScale,
}

impl MontageLayout {
    /// `columns` tiles per row (at least 1), 1-pixel white gaps (also around the grid),
    /// zoom 1, [`TileScale::PerTile`].
    pub fn new(columns: usize) -> Self {
        MontageLayout {
            columns: columns.max(1),
            spacing: 1,
            zoom: 1,
            background: 255,
            scale: TileScale::PerTile,
        }
    }

    crate::options::field_setters! {
        /// The grey level of the gaps and of empty cells.
        background: u8;
        /// Pixels between tiles and around the grid.
        spacing: u32;
    }

    /// Draw each image pixel as a `factor x factor` block (at least 1).
    pub fn zoom(mut self, factor: u32) -> Self {
        self.zoom = factor.max(1);
        self
    }

    /// How values become grey levels.
    pub fn scale(mut self, scale: TileScale) -> Self {
        self.scale = scale;
        self
    }

    /// The size in pixels of the picture of `tiles` images of `width x height`:
    /// with `c = min(columns, tiles)` columns and `rows = ⌈tiles/c⌉`,
    /// `(c·width·zoom + (c+1)·spacing, rows·height·zoom + (rows+1)·spacing)`.
    pub fn picture_size(&self, tiles: usize, width: usize, height: usize) -> (usize, usize) {
        let cols = self.columns.min(tiles).max(1);
        let rows = tiles.div_ceil(cols).max(1);
        let (zoom, gap) = (self.zoom as usize, self.spacing as usize);
        (
            cols * width * zoom + (cols + 1) * gap,
            rows * height * zoom + (rows + 1) * gap,
        )
    }
}

/// A picture of the columns of `tiles` (`width·height x k`), each drawn as a `width x height`
/// image (pixel `(x, y)` from row `y·width + x`), left to right and top to bottom in a grid
/// of `layout`'s columns. NaN is drawn black.
///
/// Errors: [`NmfError::ShapeMismatch`] when `tiles` has no column, or a row count other than
/// `width·height`, or when the picture would exceed `u32::MAX` pixels on a side.
pub fn montage(
    tiles: ArrayView2<'_, f32>,
    width: usize,
    height: usize,
    layout: &MontageLayout,
) -> Result<GrayImage> {
    let k = tiles.ncols();
    if k == 0 || width == 0 || height == 0 || tiles.nrows() != width * height {
        return Err(NmfError::ShapeMismatch {
            what: "tiles of a montage",
            expected: format!("{width}·{height} rows (pixels) and at least one column"),
            found: format!("{} x {}", tiles.nrows(), tiles.ncols()),
        });
    }
    let (pw, ph) = layout.picture_size(k, width, height);
    let too_large = || NmfError::ShapeMismatch {
        what: "montage picture",
        expected: "at most 4294967295 pixels on a side".to_string(),
        found: format!("{pw} x {ph}"),
    };
    let mut picture = GrayImage::from_pixel(
        u32::try_from(pw).map_err(|_| too_large())?,
        u32::try_from(ph).map_err(|_| too_large())?,
        Luma([layout.background]),
    );
    let cols = layout.columns.min(k);
    let (zoom, gap) = (layout.zoom as usize, layout.spacing as usize);
    for (j, tile) in tiles.axis_iter(Axis(1)).enumerate() {
        let levels = grey_levels(tile, layout.scale);
        let x0 = gap + (j % cols) * (width * zoom + gap);
        let y0 = gap + (j / cols) * (height * zoom + gap);
        for (p, &level) in levels.iter().enumerate() {
            let (x, y) = (p % width, p / width);
            for dy in 0..zoom {
                for dx in 0..zoom {
                    // In range by construction of the picture size, which fits in u32.
                    picture.put_pixel(
                        (x0 + x * zoom + dx) as u32,
                        (y0 + y * zoom + dy) as u32,
                        Luma([level]),
                    );
                }
            }
        }
    }
    Ok(picture)
}

/// The grey levels of one tile under `scale`.
fn grey_levels(tile: ArrayView1<'_, f32>, scale: TileScale) -> Vec<u8> {
    let (lo, hi) = match scale {
        TileScale::Range { lo, hi } => (lo, hi),
        TileScale::PerTile => tile
            .iter()
            .filter(|x| x.is_finite())
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            }),
    };
    let span = hi - lo;
    tile.iter()
        .map(|&x| {
            if span > 0.0 && span.is_finite() && x.is_finite() {
                (255.0 * (x - lo) / span).round().clamp(0.0, 255.0) as u8
            } else {
                0
            }
        })
        .collect()
}

/// Write `picture` as an 8-bit grey PNG at `path` (under a temporary name first, renamed
/// when complete).
pub fn save_png(picture: &GrayImage, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let mut bytes = Vec::new();
    PngEncoder::new(&mut bytes)
        .write_image(
            picture.as_raw(),
            picture.width(),
            picture.height(),
            ExtendedColorType::L8,
        )
        .map_err(|e| NmfError::ImageEncode {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    crate::io::write_bytes_atomic(path, &bytes)
}
