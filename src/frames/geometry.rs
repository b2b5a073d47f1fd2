//! The crop and the block-mean downsampling: which input pixels make each output pixel.

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use super::spec::{Crop, FrameShape, FrameStep};
use crate::error::{NmfError, Result};

/// The crop and downsampling of frames of a known shape, or none of a flat frame.
#[derive(Debug, Clone)]
pub(crate) struct Geometry {
    /// The input frame (`1 x m` for a frame of unknown shape).
    input: FrameShape,
    /// The rectangle kept (the whole frame when no crop was asked for).
    crop: Crop,
    /// Whether a crop was asked for.
    cropped: bool,
    /// The factor `k`.
    factor: usize,
    /// The output frame: `⌊crop.height/k⌋ x ⌊crop.width/k⌋`.
    output: FrameShape,
}

impl Geometry {
    /// Frames of `input`, cropped to `crop` if given, downsampled by `factor`; every rule
    /// checked ([`NmfError::InvalidParameter`] naming the step).
    pub(crate) fn new(input: FrameShape, crop: Option<Crop>, factor: usize) -> Result<Geometry> {
        let cropped = crop.is_some();
        let crop = crop.unwrap_or(Crop {
            x: 0,
            y: 0,
            width: input.width,
            height: input.height,
        });
        let right = crop.x.checked_add(crop.width);
        let bottom = crop.y.checked_add(crop.height);
        if crop.width == 0
            || crop.height == 0
            || right.is_none_or(|r| r > input.width)
            || bottom.is_none_or(|b| b > input.height)
        {
            return Err(NmfError::InvalidParameter {
                name: "crop",
                value: crop.to_string(),
                expected: format!(
                    "a rectangle X,Y,WIDTH,HEIGHT of size >= 1 inside the {}x{} (height x width) frame: X + WIDTH <= {} and Y + HEIGHT <= {}",
                    input.height, input.width, input.width, input.height
                ),
            });
        }
        if factor == 0 || factor > crop.width || factor > crop.height {
            return Err(NmfError::InvalidParameter {
                name: "downsample",
                value: factor.to_string(),
                expected: format!(
                    "a whole number from 1 to {}, the smaller side of the {}x{} (height x width) frame{}",
                    crop.width.min(crop.height),
                    crop.height,
                    crop.width,
                    if cropped { " after the crop" } else { "" }
                ),
            });
        }
        Ok(Geometry {
            input,
            crop,
            cropped,
            factor,
            output: FrameShape::new(crop.height / factor, crop.width / factor),
        })
    }

    /// No crop, no downsampling, for frames of `m` pixels of unknown shape.
    pub(crate) fn flat(m: usize) -> Geometry {
        let input = FrameShape::new(1, m);
        Geometry {
            input,
            crop: Crop {
                x: 0,
                y: 0,
                width: m,
                height: 1,
            },
            cropped: false,
            factor: 1,
            output: input,
        }
    }

    pub(crate) fn input_pixels(&self) -> usize {
        self.input.pixels()
    }

    pub(crate) fn output_pixels(&self) -> usize {
        self.output.pixels()
    }

    pub(crate) fn output_shape(&self) -> FrameShape {
        self.output
    }

    /// Whether the output is the input, pixel for pixel.
    fn is_identity(&self) -> bool {
        self.factor == 1 && self.output == self.input
    }

    /// The geometry's steps, in order.
    pub(crate) fn steps(&self) -> Vec<FrameStep> {
        let mut steps = Vec::new();
        if self.cropped {
            steps.push(FrameStep::Crop(self.crop));
        }
        if self.factor > 1 {
            steps.push(FrameStep::Downsample {
                factor: self.factor,
                dropped_rows: self.crop.height % self.factor,
                dropped_cols: self.crop.width % self.factor,
            });
        }
        steps
    }

    /// The output frames of a batch of input frames (`input pixels x b`, checked by the
    /// caller): output row `Y·w' + X` is the mean of the `k²` input rows
    /// `(crop.y + kY + dy)·width + crop.x + kX + dx`, summed in that order (dy, then dx).
    pub(crate) fn apply(&self, batch: ArrayView2<'_, f32>) -> Array2<f32> {
        let b = batch.ncols();
        if self.is_identity() {
            return batch.as_standard_layout().into_owned();
        }
        let k = self.factor;
        let (w_in, w_out) = (self.input.width, self.output.width);
        let (x0, y0) = (self.crop.x, self.crop.y);
        let scale = 1.0 / (k * k) as f32;
        let mut out = Array2::<f32>::zeros((self.output.pixels(), b));
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(row, mut dst)| {
                let (yo, xo) = (row / w_out, row % w_out);
                for dy in 0..k {
                    let y = y0 + k * yo + dy;
                    for dx in 0..k {
                        let x = x0 + k * xo + dx;
                        let src = batch.row(y * w_in + x);
                        dst.zip_mut_with(&src, |d, &s| *d += s);
                    }
                }
                if k > 1 {
                    dst.mapv_inplace(|v| v * scale);
                }
            });
        out
    }
}
