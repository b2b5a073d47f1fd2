//! Frame preprocessing for movies and image stacks: a crop, spatial downsampling and per-pixel
//! baseline removal, decided once and applied to every frame as it streams.
//!
//! A frame is one sample, a column of V (`height·width` pixels, pixel `(x, y)` at row
//! `y·width + x`, as [`io::tiff`](crate::io) and image directories lay it out). The steps run
//! in this fixed order, each on the output of the one before:
//!
//! 1. **crop** `(x, y, width, height)`: the pixels `x ≤ x' < x + width`, `y ≤ y' < y + height`;
//!    the rectangle must lie inside the frame ([`NmfError::InvalidParameter`] otherwise);
//! 2. **downsample** by an integer factor `k ≥ 1` (block mean): output pixel `(X, Y)` is
//!    `(1/k²) Σ_{0≤dx,dy<k} v(kX + dx, kY + dy)`; the frame becomes
//!    `⌊height/k⌋ x ⌊width/k⌋`, the last `height mod k` rows and `width mod k` columns (which
//!    fill no whole block) are cropped away, and both counts are recorded in the step;
//! 3. **baseline** removal: `v'(p, t) = max(v(p, t) − b(p), 0)`, so V stays nonnegative, where
//!    `b(p)` is the minimum of pixel `p` over the `n` frames ([`Baseline::Min`], exact, one
//!    pass) or its `q`-th percentile ([`Baseline::Percentile`], two passes), computed by a
//!    first streaming pass over the source before the fit reads it ([`FrameSource::new`]).
//!    A NaN stays NaN (the fit reports it).
//!
//! **The percentile.** The `q`-th percentile of pixel `p` is its nearest-rank order statistic
//! `x_(k)`, `k = max(1, ⌈q·n/100⌉)` (NumPy's `percentile(..., method="inverted_cdf")`). It is
//! found from a histogram of `B` bins per pixel ([`FrameSteps::baseline_bins`], 256 by
//! default) over the pixel's own range `[lo, hi]` (exact minimum and maximum, the first
//! pass; the counts, the second): the bin holding `x_(k)` is exact, and its centre is
//! returned, so the error is at most half a bin, `(hi − lo)/(2B)`. Integer-valued data (8- or
//! 16-bit frames, not downsampled) get integer bins of width `w = ⌈(hi − lo + 1)/B⌉`, and the
//! error is at most `(w − 1)/2`: **exact** when a pixel spans fewer than `B` levels. The
//! largest bound over the pixels is reported ([`Frames::steps`]).
//!
//! **Memory.** The baseline holds one value per output pixel (4 bytes); while it is computed,
//! the minimum holds nothing more, the percentile `4·B + 8` bytes more per output pixel (the
//! histogram and the range), and each pass one batch of the source and its processed copy
//! (at most 32 MB, or one frame and its copy if larger).
//! This is checked against the memory limit ([`FrameSteps::memory_limit`], by default the
//! fit's: the least of the available memory and the process's hard limits) before anything
//! is allocated ([`NmfError::FitTooLarge`]). Streaming then holds one source batch and its
//! processed copy.
//!
//! **Frame geometry.** A crop or downsampling needs the frame's height and width: from the
//! source when it knows them ([`Source::frame_shape`]: TIFF stacks, image directories),
//! else given ([`FrameSteps::frame_shape`], `--frame-shape HxW`); neither is
//! [`NmfError::UnknownFrameShape`]. The baseline alone needs no geometry.
//!
//! ```
//! use nmf_gpu::frames::{Baseline, Crop, FrameShape, FrameSource, FrameSteps};
//! use nmf_gpu::ndarray::Array2;
//! use nmf_gpu::online::{ArraySource, Source};
//!
//! // 30 frames of 6 x 8 pixels, one per column.
//! let v = Array2::from_shape_fn((48, 30), |(p, t)| (p % 8 + t % 5) as f32);
//! let steps = FrameSteps::new()
//!     .frame_shape(FrameShape::new(6, 8))
//!     .crop(Crop { x: 1, y: 0, width: 6, height: 5 })
//!     .downsample(2)
//!     .baseline(Baseline::Min);
//! let mut src = FrameSource::new(ArraySource::new(v.view()), &steps)?;
//! assert_eq!(src.dim(), (2 * 3, 30));            // 5 x 6 cropped, then 2 x 3 blocks
//! let batch = src.next_batch(10)?.unwrap();      // 6 pixels x 10 frames
//! assert_eq!(batch.column(0).iter().sum::<f32>(), 0.0); // frame 0 is each pixel's minimum
//! # Ok::<(), nmf_gpu::NmfError>(())
//! ```
//!
//! [`NmfError::InvalidParameter`]: crate::NmfError::InvalidParameter
//! [`NmfError::FitTooLarge`]: crate::NmfError::FitTooLarge
//! [`NmfError::UnknownFrameShape`]: crate::NmfError::UnknownFrameShape
//! [`Source::frame_shape`]: crate::online::Source::frame_shape

mod baseline;
mod geometry;
mod plan;
mod source;
mod spec;

pub use self::plan::{FrameSteps, Frames};
pub use self::source::FrameSource;
pub use self::spec::{Baseline, Crop, FrameShape, FrameStep, DEFAULT_BASELINE_BINS};
