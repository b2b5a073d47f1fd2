//! Image datasets in, parts-based pictures out.
//!
//! A set of `n` grey images of `width x height` pixels becomes the data matrix
//! `V` (`width·height x n`): column `j` is image `j` flattened row by row (pixel `(x, y)` at
//! row `y·width + x`), in grey levels `0..=255`. Then:
//!
//! - [`load_dir`] reads a directory of PGM (P2/P5), PNG and JPEG files (recursively, in
//!   natural file order, decoded in parallel); [`synthetic_faces`] and [`swimmer`] make data
//!   without any files;
//! - [`Preprocess`] scales `V` (`unit`: `x/255`; `lee-seung`: per image mean and standard
//!   deviation 0.25, clipped to `[0, 1]`);
//! - [`montage`] turns columns (of `W`, of `V`, of `WH`) into one grid picture, written by
//!   [`save_png`];
//! - [`hoyer_sparseness`] measures how sparse the basis images and encodings are;
//! - [`pca`] gives the eigenfaces of the same `V`, the holistic counterpart of NMF's parts.
//!
//! ```
//! use nmf_gpu::images::{self, Preprocess, TileScale};
//! use nmf_gpu::{Nmf, Solver};
//!
//! let mut set = images::swimmer();                   // 256 images of 32x32, values 0 and 1
//! Preprocess::None.apply(set.matrix_mut());           // (grey levels 0..=255 would use Unit)
//! let fit = Nmf::params(17).solver(Solver::Hals).max_iter(50).fit(set.matrix())?;
//! let picture = images::montage(
//!     fit.w(),
//!     set.width(),
//!     set.height(),
//!     &images::MontageLayout::new(6).scale(TileScale::PerTile),
//! )?;
//! assert_eq!(picture.width(), 6 * 32 + 7);          // 6 tiles and 7 gaps of 1 pixel
//! let s = images::mean_column_sparseness(fit.w());   // in [0, 1]
//! assert!((0.0..=1.0).contains(&s));
//! # Ok::<(), nmf_gpu::NmfError>(())
//! ```

mod montage;
pub mod movie;
mod pca;
mod preprocess;
mod sparseness;
mod stream;
mod swimmer;
mod synthetic;

pub use crate::io::image_dir::{load_dir, load_dir_with, SizePolicy, IMAGE_EXTENSIONS};
pub(crate) use crate::io::image_dir::{load_dir_block, plan_dir};
pub use crate::io::image_set::ImageSet;
pub use image::GrayImage;
pub use montage::{montage, save_png, MontageLayout, TileScale};
pub use pca::{pca, Pca};
pub use preprocess::Preprocess;
pub use sparseness::{column_sparseness, hoyer_sparseness, mean_column_sparseness};
pub use stream::ImageDirSource;
pub use swimmer::{read_swimmer, swimmer, swimmer_torso, SwimmerLimb, SWIMMER_LIMBS, SWIMMER_SIDE};
pub use synthetic::{synthetic_faces, FacePart, SyntheticFaces};
