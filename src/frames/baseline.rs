//! The per-pixel baseline: its streaming passes (the minimum; the range, then a histogram, for a
//! percentile) and its subtraction.

use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::{Array2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use super::geometry::Geometry;
use super::spec::Baseline;
use crate::error::{NmfError, Result};
use crate::online::Source;

/// The bytes of one batch of a pass (the source's batch and its processed copy), at most; a
/// batch has at least one frame.
const PASS_BATCH_BYTES: usize = 32 << 20;

/// Integer-valued data get integer histogram bins while their values stay exact in float32.
const EXACT_INTEGERS: f32 = (1u32 << 24) as f32;

/// A computed baseline.
#[derive(Debug, Clone)]
pub(crate) struct BaselineValues {
    pub method: Baseline,
    /// One value per output pixel.
    pub values: Vec<f32>,
    /// Histogram bins per pixel (percentile only).
    pub bins: Option<usize>,
    /// The largest error of a value from the exact minimum or percentile.
    pub error_bound: f32,
    /// Passes over the source.
    pub passes: usize,
}

/// Stream `source` (rewound before and after) through `geometry` and compute the baseline
/// `method` of every output pixel; the state and one pass batch are checked against `limit`
/// bytes first.
pub(crate) fn compute<S: Source + ?Sized>(
    source: &mut S,
    geometry: &Geometry,
    method: Baseline,
    bins: usize,
    limit: u64,
    stop: Option<&AtomicBool>,
) -> Result<BaselineValues> {
    let (m_in, n) = source.dim();
    let m_out = geometry.output_pixels();
    let batch = (PASS_BATCH_BYTES / (4 * (m_in + m_out)).max(1)).clamp(1, n.max(1));
    let batch_bytes = 4 * (m_in as u128 + m_out as u128) * batch as u128;
    let (state_bytes, what) = match method {
        Baseline::Min => (4 * m_out as u128, "the minimum".to_string()),
        Baseline::Percentile(_) => {
            if bins < 2 {
                return Err(NmfError::InvalidParameter {
                    name: "baseline_bins",
                    value: bins.to_string(),
                    expected: "at least 2 histogram bins per pixel (256 by default)".into(),
                });
            }
            (
                (4 * bins as u128 + 12) * m_out as u128,
                format!("a histogram of {bins} bins for each of {m_out} pixels"),
            )
        }
    };
    let need = state_bytes + batch_bytes;
    crate::error::check_need(need, limit, || {
        format!(
            "the baseline: {what}, and a batch of {batch} frames; crop or downsample the frames, or use fewer bins (baseline_bins, --baseline-bins)"
        )
    })?;
    let mut pass = Pass {
        source,
        geometry,
        batch,
        stop,
    };
    let result = match method {
        Baseline::Min => {
            let mut low = vec![f32::INFINITY; m_out];
            pass.run(|out| {
                low.par_iter_mut().enumerate().for_each(|(r, lo)| {
                    for &x in out.row(r) {
                        if x.is_finite() && x < *lo {
                            *lo = x;
                        }
                    }
                });
            })?;
            let values = low
                .into_iter()
                .map(|lo| if lo.is_finite() { lo } else { 0.0 })
                .collect();
            BaselineValues {
                method,
                values,
                bins: None,
                error_bound: 0.0,
                passes: 1,
            }
        }
        Baseline::Percentile(q) => percentile(&mut pass, m_out, q, bins)?,
    };
    pass.source.rewind()?;
    Ok(result)
}

/// One streaming pass: the source's batches through the geometry.
struct Pass<'a, S: ?Sized> {
    source: &'a mut S,
    geometry: &'a Geometry,
    batch: usize,
    stop: Option<&'a AtomicBool>,
}

impl<S: Source + ?Sized> Pass<'_, S> {
    /// Give every processed batch (output pixels x b) to `f`, from the first frame.
    fn run(&mut self, mut f: impl FnMut(&Array2<f32>)) -> Result<()> {
        self.source.rewind()?;
        while let Some(b) = self.source.next_batch(self.batch)? {
            if self.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                return Err(NmfError::Interrupted {
                    what: "the frames' baseline pass",
                });
            }
            if b.nrows() != self.geometry.input_pixels() {
                return Err(NmfError::ShapeMismatch {
                    what: "a batch of frames",
                    expected: format!("{} rows (pixels per frame)", self.geometry.input_pixels()),
                    found: format!("{} rows", b.nrows()),
                });
            }
            let out = self.geometry.apply(b.view());
            f(&out);
        }
        Ok(())
    }
}

/// The `q`-th percentile of every pixel from its range (pass 1) and a histogram of `bins`
/// bins over the range (pass 2); see the module docs of `frames` for the bins and the bound.
fn percentile<S: Source + ?Sized>(
    pass: &mut Pass<'_, S>,
    m: usize,
    q: f32,
    bins: usize,
) -> Result<BaselineValues> {
    // Pass 1: each pixel's finite minimum and maximum, and whether every value is an integer.
    let mut range = vec![(f32::INFINITY, f32::NEG_INFINITY); m];
    let mut integral = true;
    pass.run(|out| {
        let all_integers = range
            .par_iter_mut()
            .enumerate()
            .map(|(r, (lo, hi))| {
                let mut ints = true;
                for &x in out.row(r) {
                    if x.is_finite() {
                        *lo = lo.min(x);
                        *hi = hi.max(x);
                        ints &= x.fract() == 0.0 && x.abs() < EXACT_INTEGERS;
                    }
                }
                ints
            })
            .reduce(|| true, |a, b| a && b);
        integral &= all_integers;
    })?;
    // Each pixel's bins: integer bins of width w from lo, or `bins` equal bins over [lo, hi].
    let width = |lo: f32, hi: f32| -> f64 {
        let span = f64::from(hi) - f64::from(lo);
        if integral {
            ((span + 1.0) / bins as f64).ceil().max(1.0)
        } else {
            span / bins as f64
        }
    };
    let bin_of = |x: f32, lo: f32, w: f64| -> usize {
        if w <= 0.0 {
            return 0;
        }
        let t = (f64::from(x) - f64::from(lo)) / w;
        (t.floor().max(0.0) as usize).min(bins - 1)
    };
    // Pass 2: the counts.
    let mut hist = vec![0u32; m * bins];
    pass.run(|out| {
        hist.par_chunks_mut(bins)
            .zip(range.par_iter())
            .enumerate()
            .for_each(|(r, (h, &(lo, hi)))| {
                if lo > hi {
                    return;
                }
                let w = width(lo, hi);
                for &x in out.row(r) {
                    if x.is_finite() {
                        let c = &mut h[bin_of(x, lo, w)];
                        *c = c.saturating_add(1);
                    }
                }
            });
    })?;
    // The bin of the k-th smallest value, and its centre.
    let (values, bounds): (Vec<f32>, Vec<f64>) = hist
        .par_chunks(bins)
        .zip(range.par_iter())
        .map(|(h, &(lo, hi))| {
            let total: u64 = h.iter().map(|&c| u64::from(c)).sum();
            if total == 0 || lo > hi {
                return (0.0, 0.0);
            }
            let k = ((f64::from(q) / 100.0 * total as f64).ceil() as u64).clamp(1, total);
            let mut seen = 0u64;
            let mut j = bins - 1;
            for (i, &c) in h.iter().enumerate() {
                seen += u64::from(c);
                if seen >= k {
                    j = i;
                    break;
                }
            }
            let w = width(lo, hi);
            let (centre, bound) = if integral {
                let half = (w - 1.0) / 2.0;
                (f64::from(lo) + j as f64 * w + half, half)
            } else {
                (f64::from(lo) + (j as f64 + 0.5) * w, w / 2.0)
            };
            let value = centre.clamp(f64::from(lo), f64::from(hi));
            (value as f32, bound)
        })
        .unzip();
    let error_bound = bounds.into_iter().fold(0.0f64, f64::max) as f32;
    Ok(BaselineValues {
        method: Baseline::Percentile(q),
        values,
        bins: Some(bins),
        error_bound,
        passes: 2,
    })
}

/// `v(p, t) ← max(v(p, t) − b(p), 0)`; a NaN stays NaN.
pub(crate) fn subtract(mut v: ArrayViewMut2<'_, f32>, baseline: &[f32]) {
    v.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(baseline.par_iter())
        .for_each(|(mut row, &b)| {
            row.mapv_inplace(|x| {
                let d = x - b;
                if d < 0.0 {
                    0.0
                } else {
                    d
                }
            })
        });
}
