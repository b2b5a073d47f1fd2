//! What frame preprocessing is asked for and what was done: frame shapes, crops, baselines
//! (with their text forms, as on the command line) and the steps of a plan.

use std::str::FromStr;

use crate::error::{NmfError, Result};

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
    /// a histogram bin; two passes; see the [module docs](crate::frames)).
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
            Some(0.0) => Ok(Baseline::Min),
            Some(q) => Ok(Baseline::Percentile(q)),
            None => Err(NmfError::InvalidParameter {
                name: "baseline",
                value: s.to_string(),
                expected: "min, or pQ for the Q-th percentile with 0 <= Q < 100, e.g. p10".into(),
            }),
        }
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
