//! [`ImageSet`]: images of one size as the columns of a data matrix.

use std::path::PathBuf;

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use crate::error::{NmfError, Result};

/// `n` images of `width x height` pixels as the columns of `V` (`width·height x n`, f32).
///
/// Pixel `(x, y)` of image `j` is `V[[y·width + x, j]]`. Images read from files or made by
/// this module's generators hold grey levels `0..=255` until a [`Preprocess`](crate::images::Preprocess)
/// rescales them. Each image has a name: its path relative to the directory it was loaded
/// from, or a made-up one (`synthetic/0001`) for generated images.
#[derive(Debug, Clone)]
pub struct ImageSet {
    v: Array2<f32>,
    width: usize,
    height: usize,
    names: Vec<PathBuf>,
}

impl ImageSet {
    /// A set from its matrix (`width·height x n`) and the `n` names of its columns.
    pub fn new(v: Array2<f32>, width: usize, height: usize, names: Vec<PathBuf>) -> Result<Self> {
        let pixels = width.checked_mul(height);
        if pixels != Some(v.nrows()) || names.len() != v.ncols() {
            return Err(NmfError::ShapeMismatch {
                what: "ImageSet::new",
                expected: format!(
                    "{width}·{height} rows (pixels) and {} columns (one per name)",
                    names.len()
                ),
                found: format!("{} x {}", v.nrows(), v.ncols()),
            });
        }
        Ok(ImageSet {
            v,
            width,
            height,
            names,
        })
    }

    /// A set whose shape its maker guarantees (`v` is `width·height x names.len()`).
    pub(crate) fn from_parts(
        v: Array2<f32>,
        width: usize,
        height: usize,
        names: Vec<PathBuf>,
    ) -> Self {
        debug_assert_eq!((v.nrows(), v.ncols()), (width * height, names.len()));
        ImageSet {
            v,
            width,
            height,
            names,
        }
    }

    /// `V`: pixels x images.
    pub fn matrix(&self) -> ArrayView2<'_, f32> {
        self.v.view()
    }

    /// `V`, to rescale in place (see [`Preprocess::apply`](crate::images::Preprocess::apply)).
    pub fn matrix_mut(&mut self) -> ArrayViewMut2<'_, f32> {
        self.v.view_mut()
    }

    /// Take ownership of `V`.
    pub fn into_matrix(self) -> Array2<f32> {
        self.v
    }

    /// Width of every image, in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height of every image, in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Number of pixels of one image (`width·height`, the rows of `V`).
    pub fn pixels(&self) -> usize {
        self.v.nrows()
    }

    /// Number of images (the columns of `V`).
    pub fn len(&self) -> usize {
        self.v.ncols()
    }

    /// Whether the set has no image.
    pub fn is_empty(&self) -> bool {
        self.v.ncols() == 0
    }

    /// The names of the images, in column order.
    pub fn names(&self) -> &[PathBuf] {
        &self.names
    }
}
