//! Synthetic calcium-imaging movies with known parts, and the match of found parts to them.
//!
//! [`write_synthetic_movie`] writes, frame by frame (the movie is never held), a multi-page
//! 16-bit TIFF of `neurons` cells seen through a microscope:
//!
//! - each neuron a Gaussian footprint (peak 1, standard deviation [`MovieSpec::radius`]
//!   pixels) at a random place; footprints overlap;
//! - its trace a Bernoulli spike train (rate [`MovieSpec::spike_rate`] per frame, amplitudes
//!   uniform in `[0.5, 1.5]`) convolved with an exponential decay of time constant
//!   [`MovieSpec::tau`] frames (`c_t = e^{-1/τ} c_{t−1} + s_t`);
//! - a slowly varying background: a fixed smooth illumination gradient times a slow drift in
//!   time;
//! - Poisson-like noise: a Gaussian of variance equal to the expected count, rounded and
//!   clipped to `0..=65535`.
//!
//! It returns the ground truth ([`SyntheticMovie`]: footprints and traces). [`match_parts`]
//! pairs found parts (columns of W) with true footprints by the largest total correlation
//! (an optimal assignment, [`assign_max`], the Hungarian method) and reports each pair's
//! Pearson correlation.

use std::path::Path;

use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use crate::error::{NmfError, Result};
use crate::io::tiff::{TiffCompression, TiffFrame, TiffWriter};

/// The shape and statistics of a synthetic movie.
#[derive(Debug, Clone, PartialEq)]
pub struct MovieSpec {
    /// Frame width in pixels.
    pub width: usize,
    /// Frame height in pixels.
    pub height: usize,
    /// Number of frames.
    pub frames: usize,
    /// Number of neurons.
    pub neurons: usize,
    /// Standard deviation of a footprint, pixels.
    pub radius: f32,
    /// Probability of a spike per frame.
    pub spike_rate: f32,
    /// Decay time constant of the calcium indicator, frames.
    pub tau: f32,
    /// Expected count of the brightest background pixel.
    pub background: f32,
    /// Expected count added by a trace of 1 at a footprint's peak.
    pub gain: f32,
    /// Seed of the random generator.
    pub seed: u64,
}

impl Default for MovieSpec {
    /// A 64x64 movie of 1000 frames and 12 neurons of radius 3, spiking at 2% per frame with a
    /// decay of 8 frames, over a background of 200 counts, 600 counts per unit of trace.
    fn default() -> Self {
        MovieSpec {
            width: 64,
            height: 64,
            frames: 1000,
            neurons: 12,
            radius: 3.0,
            spike_rate: 0.02,
            tau: 8.0,
            background: 200.0,
            gain: 600.0,
            seed: 0,
        }
    }
}

/// The ground truth of a synthetic movie.
#[derive(Debug, Clone)]
pub struct SyntheticMovie {
    /// The footprints, one column per neuron (`width·height x neurons`, peak 1).
    pub footprints: Array2<f32>,
    /// The calcium traces, one row per neuron (`neurons x frames`).
    pub traces: Array2<f32>,
    /// The background illumination (`width·height`, peak 1).
    pub background: Vec<f32>,
}

/// Write the movie `spec` describes to `path` as a multi-page 16-bit TIFF (BigTIFF when
/// `bigtiff`), a frame at a time; return its ground truth.
pub fn write_synthetic_movie(
    spec: &MovieSpec,
    path: impl AsRef<Path>,
    bigtiff: bool,
) -> Result<SyntheticMovie> {
    let (w, h, t, k) = (spec.width, spec.height, spec.frames, spec.neurons);
    let positive = |x: f32| x.is_finite() && x > 0.0;
    if w == 0 || h == 0 || t == 0 || k == 0 || !positive(spec.radius) || !positive(spec.tau) {
        return Err(NmfError::ShapeMismatch {
            what: "a synthetic movie",
            expected: "a positive size, frame count, neuron count, radius and decay".into(),
            found: format!(
                "{w}x{h}, {t} frames, {k} neurons, radius {}, tau {}",
                spec.radius, spec.tau
            ),
        });
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(spec.seed);
    // Footprints: centres at least 1.5 radii inside the frame.
    let margin = (1.5 * spec.radius).min(w.min(h) as f32 / 2.0);
    let mut footprints = Array2::<f32>::zeros((w * h, k));
    for n in 0..k {
        let cx = rng.random_range(margin..=(w as f32 - 1.0 - margin).max(margin));
        let cy = rng.random_range(margin..=(h as f32 - 1.0 - margin).max(margin));
        for y in 0..h {
            for x in 0..w {
                let d2 = (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2);
                footprints[[y * w + x, n]] = (-d2 / (2.0 * spec.radius * spec.radius)).exp();
            }
        }
    }
    // Traces: spikes convolved with the decay.
    let decay = (-1.0 / spec.tau).exp();
    let mut traces = Array2::<f32>::zeros((k, t));
    for n in 0..k {
        let mut c = 0.0f32;
        for j in 0..t {
            let spike = if rng.random::<f32>() < spec.spike_rate {
                rng.random_range(0.5..1.5)
            } else {
                0.0
            };
            c = decay * c + spike;
            traces[[n, j]] = c;
        }
    }
    // Background: a smooth gradient (0.5 to 1 across the frame), drifting slowly in time.
    let background: Vec<f32> = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f32 / w as f32, (i / w) as f32 / h as f32);
            0.5 + 0.25 * x + 0.25 * (1.0 - y)
        })
        .collect();
    let phase: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let mut writer = TiffWriter::create(path, w as u32, h as u32, bigtiff, TiffCompression::None)?;
    let mut frame = vec![0u16; w * h];
    let unit = Normal::new(0.0f32, 1.0).map_err(|e| NmfError::ShapeMismatch {
        what: "the noise of a synthetic movie",
        expected: "a unit normal".into(),
        found: e.to_string(),
    })?;
    for j in 0..t {
        let drift = 1.0 + 0.2 * (std::f32::consts::TAU * j as f32 / t as f32 + phase).sin();
        for (i, px) in frame.iter_mut().enumerate() {
            let mut mean = spec.background * background[i] * drift;
            for n in 0..k {
                let a = footprints[[i, n]];
                if a > 1e-4 {
                    mean += spec.gain * a * traces[[n, j]];
                }
            }
            let noisy = mean + mean.max(0.0).sqrt() * unit.sample(&mut rng);
            *px = noisy.round().clamp(0.0, 65535.0) as u16;
        }
        writer.push(TiffFrame::U16(&frame))?;
    }
    writer.finish()?;
    Ok(SyntheticMovie {
        footprints,
        traces,
        background,
    })
}

pub use crate::linalg::assign_max;

/// Pearson correlation of two equally long vectors (0 when either is constant).
pub fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    if n == 0 {
        return 0.0;
    }
    let mean = |x: &[f32]| x[..n].iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a[..n].iter().zip(&b[..n]) {
        let (dx, dy) = (f64::from(x) - ma, f64::from(y) - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa <= 0.0 || sbb <= 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// Found parts matched to true ones.
#[derive(Debug, Clone)]
pub struct PartMatch {
    /// `(true part, found part, correlation)`, one per true part (while found parts last),
    /// sorted by true part.
    pub pairs: Vec<(usize, usize, f64)>,
}

impl PartMatch {
    /// The mean correlation of the pairs (0 without pairs).
    pub fn mean(&self) -> f64 {
        if self.pairs.is_empty() {
            0.0
        } else {
            self.pairs.iter().map(|p| p.2).sum::<f64>() / self.pairs.len() as f64
        }
    }
    /// The found parts matched to no true part (extra components: the background, noise).
    pub fn unmatched(&self, found: usize) -> Vec<usize> {
        (0..found)
            .filter(|f| !self.pairs.iter().any(|p| p.1 == *f))
            .collect()
    }
}

/// Match the columns of `found` (features x parts, e.g. W) to the columns of `truth`
/// (features x parts, the same features) by the largest total Pearson correlation.
pub fn match_parts(truth: ArrayView2<'_, f32>, found: ArrayView2<'_, f32>) -> Result<PartMatch> {
    if truth.nrows() != found.nrows() {
        return Err(NmfError::ShapeMismatch {
            what: "the parts to match",
            expected: format!("{} features, as the true parts", truth.nrows()),
            found: format!("{} features", found.nrows()),
        });
    }
    let cols = |a: ArrayView2<'_, f32>| -> Vec<Vec<f32>> {
        a.columns().into_iter().map(|c| c.to_vec()).collect()
    };
    let (t, f) = (cols(truth), cols(found));
    let score = Array2::from_shape_fn((t.len(), f.len()), |(i, j)| correlation(&t[i], &f[j]));
    let pairs = assign_max(score.view())
        .into_iter()
        .map(|(i, j)| (i, j, score[[i, j]]))
        .collect();
    Ok(PartMatch { pairs })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every assignment of a small matrix, by brute force: the best total.
    fn brute(score: &Array2<f64>) -> f64 {
        fn go(score: &Array2<f64>, i: usize, used: &mut Vec<bool>) -> f64 {
            if i == score.nrows() {
                return 0.0;
            }
            let mut best = f64::MIN;
            for j in 0..score.ncols() {
                if !used[j] {
                    used[j] = true;
                    best = best.max(score[[i, j]] + go(score, i + 1, used));
                    used[j] = false;
                }
            }
            best
        }
        go(score, 0, &mut vec![false; score.ncols()])
    }

    #[test]
    fn the_assignment_is_optimal_on_random_matrices() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for (r, c) in [(1, 1), (3, 3), (4, 6), (6, 4), (5, 5), (2, 7)] {
            for _ in 0..20 {
                let s = Array2::from_shape_fn((r, c), |_| rng.random_range(-1.0..1.0));
                let pairs = assign_max(s.view());
                assert_eq!(pairs.len(), r.min(c));
                let mut rows: Vec<usize> = pairs.iter().map(|p| p.0).collect();
                let mut colsv: Vec<usize> = pairs.iter().map(|p| p.1).collect();
                rows.dedup();
                colsv.sort_unstable();
                colsv.dedup();
                assert_eq!((rows.len(), colsv.len()), (r.min(c), r.min(c)));
                let total: f64 = pairs.iter().map(|&(i, j)| s[[i, j]]).sum();
                let best = if r <= c {
                    brute(&s)
                } else {
                    brute(&s.t().to_owned())
                };
                assert!((total - best).abs() < 1e-12, "{r}x{c}: {total} vs {best}");
            }
        }
    }

    #[test]
    fn correlation_of_a_vector_with_itself_and_its_negative() {
        let a = [1.0f32, 2.0, 4.0, 3.0];
        let b: Vec<f32> = a.iter().map(|x| -2.0 * x + 1.0).collect();
        assert!((correlation(&a, &a) - 1.0).abs() < 1e-12);
        assert!((correlation(&a, &b) + 1.0).abs() < 1e-12);
        assert_eq!(correlation(&a, &[5.0; 4]), 0.0);
    }
}
