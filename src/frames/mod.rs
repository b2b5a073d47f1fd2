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
//! the minimum holds nothing more, the percentile `4·B + 8` bytes per output pixel (the
//! histogram and the range), and each pass one batch of the source and its processed copy.
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

mod baseline;
mod geometry;
mod source;

use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use crate::error::{NmfError, Result};
use crate::online::{ArraySource, Source};

pub use self::source::FrameSource;

use self::baseline::BaselineValues;
use self::geometry::Geometry;

/// The percentile baseline's histogram bins per pixel, unless set.
pub const DEFAULT_BASELINE_BINS: usize = 256;

/// The height and width of a frame, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameShape {
    /// Rows of pixels.
    pub height: usize,
    /// Columns of pixels.
    pub width: usize,
}

impl FrameShape {
    /// A frame of `height x width` pixels.
    pub fn new(height: usize, width: usize) -> FrameShape {
        FrameShape { height, width }
    }

    /// `height·width`, the rows of V.
    pub fn pixels(self) -> usize {
        self.height.saturating_mul(self.width)
    }
}

impl std::fmt::Display for FrameShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.height, self.width)
    }
}

impl FromStr for FrameShape {
    type Err = NmfError;

    /// `HxW` (height first, as NumPy's `(height, width)`), both at least 1.
    fn from_str(s: &str) -> Result<FrameShape> {
        let bad = || NmfError::InvalidParameter {
            name: "frame_shape",
            value: s.to_string(),
            expected: "HEIGHTxWIDTH, two whole numbers >= 1, e.g. 512x512".into(),
        };
        let (h, w) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
        let h: usize = h.trim().parse().map_err(|_| bad())?;
        let w: usize = w.trim().parse().map_err(|_| bad())?;
        if h == 0 || w == 0 {
            return Err(bad());
        }
        Ok(FrameShape::new(h, w))
    }
}

/// A rectangle of a frame: its top-left pixel `(x, y)` and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    /// First column kept.
    pub x: usize,
    /// First row kept.
    pub y: usize,
    /// Columns kept.
    pub width: usize,
    /// Rows kept.
    pub height: usize,
}

impl FromStr for Crop {
    type Err = NmfError;

    /// `X,Y,W,H`: the top-left pixel, then the width and height (both at least 1).
    fn from_str(s: &str) -> Result<Crop> {
        let bad = || {
            NmfError::InvalidParameter {
            name: "crop",
            value: s.to_string(),
            expected: "X,Y,WIDTH,HEIGHT: four whole numbers, the top-left pixel and a size >= 1, e.g. 0,0,256,256".into(),
        }
        };
        let parts: Vec<usize> = s
            .split(',')
            .map(|p| p.trim().parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| bad())?;
        match parts[..] {
            [x, y, width, height] if width > 0 && height > 0 => Ok(Crop {
                x,
                y,
                width,
                height,
            }),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Crop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{},{}", self.x, self.y, self.width, self.height)
    }
}

/// The per-pixel baseline subtracted from every frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Baseline {
    /// The pixel's minimum over the frames (exact; one pass).
    Min,
    /// The pixel's `q`-th percentile over the frames, `0 < q < 100` (nearest rank, within half
    /// a histogram bin; two passes; see the [module docs](self)).
    Percentile(f32),
}

impl Baseline {
    /// `min` or `pQ` (e.g. `p10`, `p2.5`).
    pub fn name(self) -> String {
        match self {
            Baseline::Min => "min".into(),
            Baseline::Percentile(q) => format!("p{q}"),
        }
    }
}

impl FromStr for Baseline {
    type Err = NmfError;

    /// `min`, or `pQ` with `0 < Q < 100` (`p0` is `min`).
    fn from_str(s: &str) -> Result<Baseline> {
        let t = s.trim().to_ascii_lowercase();
        if t == "min" {
            return Ok(Baseline::Min);
        }
        let q = t
            .strip_prefix('p')
            .and_then(|q| q.parse::<f32>().ok())
            .filter(|q| q.is_finite() && (0.0..100.0).contains(q));
        match q {
            Some(q) if q == 0.0 => Ok(Baseline::Min),
            Some(q) => Ok(Baseline::Percentile(q)),
            None => Err(NmfError::InvalidParameter {
                name: "baseline",
                value: s.to_string(),
                expected: "min, or pQ for the Q-th percentile with 0 <= Q < 100, e.g. p10".into(),
            }),
        }
    }
}

/// What to do to each frame: the builder of a [`Frames`] plan (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct FrameSteps {
    frame_shape: Option<FrameShape>,
    crop: Option<Crop>,
    downsample: usize,
    baseline: Option<Baseline>,
    baseline_bins: usize,
    memory_limit: Option<u64>,
    stop_flag: Option<Arc<AtomicBool>>,
}

impl Default for FrameSteps {
    fn default() -> Self {
        FrameSteps::new()
    }
}

impl FrameSteps {
    /// No step: frames pass unchanged.
    pub fn new() -> FrameSteps {
        FrameSteps {
            frame_shape: None,
            crop: None,
            downsample: 1,
            baseline: None,
            baseline_bins: DEFAULT_BASELINE_BINS,
            memory_limit: None,
            stop_flag: None,
        }
    }

    /// The frames' shape, where the source does not know it (a `.npy` file); checked against
    /// the source's own shape where it does.
    pub fn frame_shape(mut self, shape: FrameShape) -> Self {
        self.frame_shape = Some(shape);
        self
    }

    /// Keep only this rectangle of each frame.
    pub fn crop(mut self, crop: Crop) -> Self {
        self.crop = Some(crop);
        self
    }

    /// Average blocks of `factor x factor` pixels (1: no downsampling).
    pub fn downsample(mut self, factor: usize) -> Self {
        self.downsample = factor;
        self
    }

    /// Subtract this per-pixel baseline (and clamp at zero).
    pub fn baseline(mut self, baseline: Baseline) -> Self {
        self.baseline = Some(baseline);
        self
    }

    /// Histogram bins per pixel of a percentile baseline (at least 2; default
    /// [`DEFAULT_BASELINE_BINS`]): more bins, a smaller error and more memory.
    pub fn baseline_bins(mut self, bins: usize) -> Self {
        self.baseline_bins = bins;
        self
    }

    /// The memory the baseline's pass may take (bytes), instead of the fit's default limit
    /// (never above the process's hard limits).
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// A flag that stops the baseline's pass after its current batch
    /// ([`NmfError::Interrupted`]).
    pub fn stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop_flag = Some(flag);
        self
    }

    /// Whether no step is asked for.
    pub fn is_empty(&self) -> bool {
        self.crop.is_none() && self.downsample == 1 && self.baseline.is_none()
    }

    /// The frame shape given, if any.
    pub fn given_frame_shape(&self) -> Option<FrameShape> {
        self.frame_shape
    }

    /// Resolve the geometry against `source` (m pixels per frame, its own frame shape if it
    /// knows it), check every step, and compute the baseline by streaming `source` from its
    /// start (it is rewound before and after). Nothing is allocated before the checks.
    pub fn plan<S: Source + ?Sized>(&self, source: &mut S) -> Result<Frames> {
        let known = source.frame_shape().map(|(h, w)| FrameShape::new(h, w));
        self.plan_known(source, known)
    }

    /// [`plan`](FrameSteps::plan) for a whole matrix in memory (`pixels x frames`), whose
    /// frames are `known` to have that shape where the file said so (a TIFF stack read whole).
    pub fn plan_matrix(&self, v: ArrayView2<'_, f32>, known: Option<FrameShape>) -> Result<Frames> {
        self.plan_known(&mut ArraySource::new(v), known)
    }

    fn plan_known<S: Source + ?Sized>(
        &self,
        source: &mut S,
        known: Option<FrameShape>,
    ) -> Result<Frames> {
        let (m, _) = source.dim();
        let input = resolve_shape(self.frame_shape, known, m)?;
        let needs_shape = self.crop.is_some() || self.downsample != 1;
        let geometry = match input {
            Some(shape) => Geometry::new(shape, self.crop, self.downsample)?,
            None if needs_shape => return Err(NmfError::UnknownFrameShape { pixels: m }),
            None => Geometry::flat(m),
        };
        let baseline = match self.baseline {
            None => None,
            Some(method) => Some(baseline::compute(
                source,
                &geometry,
                method,
                self.baseline_bins,
                crate::memory::fit_limit(self.memory_limit),
                self.stop_flag.as_deref(),
            )?),
        };
        Ok(Frames {
            input,
            geometry,
            baseline,
        })
    }
}

/// The frame shape: the one given, checked against the source's and against `m` pixels.
fn resolve_shape(
    given: Option<FrameShape>,
    known: Option<FrameShape>,
    m: usize,
) -> Result<Option<FrameShape>> {
    match (given, known) {
        (Some(g), Some(k)) if g != k => Err(NmfError::InvalidParameter {
            name: "frame_shape",
            value: g.to_string(),
            expected: format!("the source's own frame shape, {k} (height x width); leave the frame shape out to use it"),
        }),
        (Some(g), _) if g.pixels() != m => Err(NmfError::InvalidParameter {
            name: "frame_shape",
            value: g.to_string(),
            expected: format!(
                "height x width = {m}, the pixels (rows of V, features) of each frame of the input; {} has {}",
                g,
                g.pixels()
            ),
        }),
        (Some(g), _) => Ok(Some(g)),
        (None, k) => Ok(k),
    }
}

/// One step of a plan, with its parameters, as recorded for reproducing a fit.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameStep {
    /// The rectangle kept.
    Crop(Crop),
    /// Block means of `factor x factor` pixels; the rows and columns that fill no whole block
    /// were dropped (the bottom and right edges).
    Downsample {
        /// The factor `k`.
        factor: usize,
        /// Rows cropped at the bottom (`height mod k`).
        dropped_rows: usize,
        /// Columns cropped at the right (`width mod k`).
        dropped_cols: usize,
    },
    /// The baseline subtracted (clamped at zero).
    Baseline {
        /// Minimum or percentile.
        method: Baseline,
        /// Histogram bins per pixel (percentile only).
        bins: Option<usize>,
        /// The largest error of a pixel's baseline from its exact value (0 for the minimum).
        error_bound: f32,
        /// Streaming passes over the source it took.
        passes: usize,
    },
}

/// A resolved plan: the geometry of the input and output frames and the computed baseline;
/// [`apply`](Frames::apply) turns any batch of input frames into output frames.
#[derive(Debug, Clone)]
pub struct Frames {
    input: Option<FrameShape>,
    geometry: Geometry,
    baseline: Option<BaselineValues>,
}

impl Frames {
    /// The input frame's shape (`None` when neither given nor known; then no geometry step).
    pub fn input_shape(&self) -> Option<FrameShape> {
        self.input
    }

    /// The output frame's shape (`None` as for the input).
    pub fn output_shape(&self) -> Option<FrameShape> {
        self.input.map(|_| self.geometry.output_shape())
    }

    /// Pixels of an output frame: the rows of the processed V.
    pub fn output_pixels(&self) -> usize {
        self.geometry.output_pixels()
    }

    /// Pixels of an input frame.
    pub fn input_pixels(&self) -> usize {
        self.geometry.input_pixels()
    }

    /// The baseline of each output pixel, if one is subtracted.
    pub fn baseline(&self) -> Option<&[f32]> {
        self.baseline.as_ref().map(|b| b.values.as_slice())
    }

    /// The steps, in the order they are applied, with their parameters.
    pub fn steps(&self) -> Vec<FrameStep> {
        let mut steps = self.geometry.steps();
        if let Some(b) = &self.baseline {
            steps.push(FrameStep::Baseline {
                method: b.method,
                bins: b.bins,
                error_bound: b.error_bound,
                passes: b.passes,
            });
        }
        steps
    }

    /// Process a batch of input frames (`input pixels x b`): its output frames (`output
    /// pixels x b`). The batch's row count must be the input frame's pixels.
    pub fn apply(&self, batch: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        if batch.nrows() != self.geometry.input_pixels() {
            return Err(NmfError::ShapeMismatch {
                what: "a batch of frames",
                expected: format!("{} rows (pixels per frame)", self.geometry.input_pixels()),
                found: format!("{} rows", batch.nrows()),
            });
        }
        let mut out = self.geometry.apply(batch);
        if let Some(b) = &self.baseline {
            baseline::subtract(out.view_mut(), &b.values);
        }
        Ok(out)
    }

    /// The crop and downsampling alone (no baseline) of images in the input frames' geometry
    /// (`input pixels x k`): planted footprints, masks, a mean image.
    pub fn resample(&self, images: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        if images.nrows() != self.geometry.input_pixels() {
            return Err(NmfError::ShapeMismatch {
                what: "images to resample",
                expected: format!("{} rows (pixels per frame)", self.geometry.input_pixels()),
                found: format!("{} rows", images.nrows()),
            });
        }
        Ok(self.geometry.apply(images))
    }

    /// [`apply`](Frames::apply) to a whole matrix (`input pixels x n`), its result checked
    /// against the memory limit (`limit` bytes, by default the fit's) before it is allocated.
    pub fn apply_matrix(&self, v: ArrayView2<'_, f32>, limit: Option<u64>) -> Result<Array2<f32>> {
        let need = (self.output_pixels() as u128) * (v.ncols() as u128) * 4;
        let limit = crate::memory::fit_limit(limit);
        if need > u128::from(limit) {
            return Err(NmfError::FitTooLarge {
                need: u64::try_from(need).unwrap_or(u64::MAX),
                limit,
                detail: format!(
                    "the preprocessed frames, {} pixels x {} frames as float32; crop or downsample more, or stream the frames (online)",
                    self.output_pixels(),
                    v.ncols()
                ),
            });
        }
        self.apply(v)
    }
}
