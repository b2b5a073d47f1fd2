//! The builder of a plan ([`FrameSteps`]) and the plan itself ([`Frames`]): the geometry
//! resolved and checked, the baseline computed, any batch processed.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use super::baseline::{self, BaselineValues};
use super::geometry::Geometry;
use super::spec::{Baseline, Crop, FrameShape, FrameStep, DEFAULT_BASELINE_BINS};
use crate::error::{NmfError, Result};
use crate::online::{ArraySource, Source};

/// What to do to each frame: the builder of a [`Frames`] plan (see the [module docs](crate::frames)).
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

    crate::options::field_setters! {
        /// The frames' shape, where the source does not know it (a `.npy` file); checked against
        /// the source's own shape where it does.
        frame_shape: Some(FrameShape);
        /// Keep only this rectangle of each frame.
        crop: Some(Crop);
        /// Average blocks of `factor x factor` pixels (1: no downsampling).
        downsample: usize;
        /// Subtract this per-pixel baseline (and clamp at zero).
        baseline: Some(Baseline);
        /// Histogram bins per pixel of a percentile baseline (at least 2; default
        /// [`DEFAULT_BASELINE_BINS`]): more bins, a smaller error and more memory.
        baseline_bins: usize;
        /// The memory the baseline's pass may take (bytes), instead of the fit's default limit
        /// (never above the process's hard limits).
        memory_limit: Some(u64);
        /// A flag that stops the baseline's pass after its current batch
        /// ([`NmfError::Interrupted`]).
        stop_flag: Some(Arc<AtomicBool>);
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
        crate::error::check_nonzero(
            self.downsample,
            "downsample",
            "a whole number >= 1 (1: no downsampling)",
        )?;
        if let Some(Baseline::Percentile(q)) = self.baseline {
            if !(q.is_finite() && q > 0.0 && q < 100.0) {
                return Err(NmfError::InvalidParameter {
                    name: "baseline",
                    value: format!("p{q}"),
                    expected:
                        "a percentile strictly between 0 and 100 (Baseline::Min for the minimum)"
                            .into(),
                });
            }
        }
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
        self.check_rows(batch, "a batch of frames")?;
        let mut out = self.geometry.apply(batch);
        if let Some(b) = &self.baseline {
            baseline::subtract(out.view_mut(), &b.values);
        }
        Ok(out)
    }

    /// The crop and downsampling alone (no baseline) of images in the input frames' geometry
    /// (`input pixels x k`): planted footprints, masks, a mean image.
    pub fn resample(&self, images: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.check_rows(images, "images to resample")?;
        Ok(self.geometry.apply(images))
    }

    /// `x` (`what`) has a row per pixel of an input frame.
    fn check_rows(&self, x: ArrayView2<'_, f32>, what: &'static str) -> Result<()> {
        if x.nrows() != self.geometry.input_pixels() {
            return Err(NmfError::ShapeMismatch {
                what,
                expected: format!("{} rows (pixels per frame)", self.geometry.input_pixels()),
                found: format!("{} rows", x.nrows()),
            });
        }
        Ok(())
    }

    /// [`apply`](Frames::apply) to a whole matrix (`input pixels x n`), its result checked
    /// against the memory limit (`limit` bytes, by default the fit's) before it is allocated.
    pub fn apply_matrix(&self, v: ArrayView2<'_, f32>, limit: Option<u64>) -> Result<Array2<f32>> {
        let need = (self.output_pixels() as u128) * (v.ncols() as u128) * 4;
        let limit = crate::memory::fit_limit(limit);
        crate::error::check_need(need, limit, || {
            format!(
                "the preprocessed frames, {} pixels x {} frames as float32; crop or downsample more, or stream the frames (online)",
                self.output_pixels(),
                v.ncols()
            )
        })?;
        self.apply(v)
    }
}
