//! Scaling the grey levels of `V` before a fit.

use ndarray::{ArrayViewMut2, Axis};
use rayon::prelude::*;

/// How the grey levels `0..=255` of `V` are rescaled; applied column by column (image by image).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preprocess {
    /// `x ← x / 255`: grey levels to `[0, 1]`.
    #[default]
    Unit,
    /// Lee & Seung (1999): for each image, `x ← 0.25 + 0.25·(x − μ)/σ`, clipped to `[0, 1]`,
    /// where `μ` and `σ` are the image's mean and (population) standard deviation, so that
    /// before clipping every image has mean 0.25 and standard deviation 0.25. A constant image
    /// (`σ = 0`) becomes 0.25 everywhere.
    LeeSeung,
    /// Values left as they are.
    None,
}

impl Preprocess {
    /// Short name, as used on command lines and in files: `unit`, `lee-seung` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            Preprocess::Unit => "unit",
            Preprocess::LeeSeung => "lee-seung",
            Preprocess::None => "none",
        }
    }

    /// Rescale `v` (pixels x images) in place.
    pub fn apply(self, mut v: ArrayViewMut2<'_, f32>) {
        match self {
            Preprocess::None => {}
            Preprocess::Unit => v.par_mapv_inplace(|x| x / 255.0),
            Preprocess::LeeSeung => {
                v.axis_iter_mut(Axis(1))
                    .into_par_iter()
                    .for_each(|mut column| {
                        let n = column.len().max(1) as f64;
                        let mean = column.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
                        let var = column
                            .iter()
                            .map(|&x| (f64::from(x) - mean).powi(2))
                            .sum::<f64>()
                            / n;
                        let sd = var.sqrt();
                        let gain = if sd > 0.0 { 0.25 / sd } else { 0.0 };
                        column.mapv_inplace(|x| {
                            (0.25 + gain * (f64::from(x) - mean)).clamp(0.0, 1.0) as f32
                        });
                    })
            }
        }
    }
}

impl std::fmt::Display for Preprocess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
