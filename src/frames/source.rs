//! Any source of frames, preprocessed as it streams.

use ndarray::Array2;

use super::plan::{FrameSteps, Frames};
use crate::error::Result;
use crate::online::Source;

/// A [`Source`] of frames whose batches come out cropped, downsampled and less their baseline
/// ([`Frames::apply`]); the baseline is computed when it is made, by streaming the inner
/// source once (minimum) or twice (percentile). It holds the inner source's batch and its
/// processed copy while it streams.
#[derive(Debug)]
pub struct FrameSource<S> {
    inner: S,
    frames: Frames,
}

impl<S: Source> FrameSource<S> {
    /// Plan `steps` against `inner` ([`FrameSteps::plan`]: the checks, then the baseline's
    /// passes) and stream it processed, from its first frame.
    pub fn new(mut inner: S, steps: &FrameSteps) -> Result<FrameSource<S>> {
        let frames = steps.plan(&mut inner)?;
        inner.rewind()?;
        Ok(FrameSource { inner, frames })
    }

    /// Stream `inner` with a plan already made (e.g. by [`FrameSteps::plan`] on the same data).
    pub fn with_frames(inner: S, frames: Frames) -> FrameSource<S> {
        FrameSource { inner, frames }
    }

    /// The plan applied.
    pub fn frames(&self) -> &Frames {
        &self.frames
    }

    /// The source of the raw frames.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The source of the raw frames, and the plan.
    pub fn into_parts(self) -> (S, Frames) {
        (self.inner, self.frames)
    }
}

impl<S: Source> Source for FrameSource<S> {
    fn dim(&self) -> (usize, usize) {
        (self.frames.output_pixels(), self.inner.dim().1)
    }

    fn rewind(&mut self) -> Result<()> {
        self.inner.rewind()
    }

    fn next_batch(&mut self, max_cols: usize) -> Result<Option<Array2<f32>>> {
        match self.inner.next_batch(max_cols)? {
            None => Ok(None),
            Some(b) => self.frames.apply(b.view()).map(Some),
        }
    }

    fn describe(&self, col: usize) -> String {
        self.inner.describe(col)
    }

    fn frame_shape(&self) -> Option<(usize, usize)> {
        self.frames.output_shape().map(|s| (s.height, s.width))
    }
}
