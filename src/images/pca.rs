//! Principal component analysis of image columns: the eigenfaces beside NMF's parts.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::error::{NmfError, Result};
use crate::linalg::{auto_power_iters, randomized_svd};

/// Extra sketch columns of the randomized SVD (scikit-learn's default).
const OVERSAMPLES: usize = 10;

/// The leading principal components of a set of images (columns of `V`).
#[derive(Debug, Clone)]
pub struct Pca {
    mean: Array1<f32>,
    components: Array2<f32>,
    singular_values: Array1<f32>,
    total_variance: f64,
    samples: usize,
}

impl Pca {
    /// The mean image `μ = V 1 / n` (pixels).
    pub fn mean(&self) -> ArrayView1<'_, f32> {
        self.mean.view()
    }

    /// The principal axes as orthonormal columns (pixels x k): the "eigenfaces", in order of
    /// decreasing variance. Their signs are arbitrary (fixed so that each column's entry of
    /// largest magnitude is positive).
    pub fn components(&self) -> ArrayView2<'_, f32> {
        self.components.view()
    }

    /// Singular values `σⱼ` of the centred data `X = V − μ1ᵀ`, decreasing.
    pub fn singular_values(&self) -> ArrayView1<'_, f32> {
        self.singular_values.view()
    }

    /// Variance along each axis, `σⱼ² / (n − 1)`.
    pub fn explained_variance(&self) -> Array1<f64> {
        let dof = self.samples.saturating_sub(1).max(1) as f64;
        self.singular_values
            .mapv(|s| f64::from(s) * f64::from(s) / dof)
    }

    /// Share of the total variance along each axis, `σⱼ² / ‖X‖²_F` (0 when `X = 0`).
    pub fn explained_variance_ratio(&self) -> Array1<f64> {
        let total = self.total_variance;
        self.singular_values.mapv(|s| {
            if total > 0.0 {
                f64::from(s) * f64::from(s) / total
            } else {
                0.0
            }
        })
    }
}

/// The first `k` principal components of the columns of `v` (pixels x images).
///
/// Each pixel is centred over the images, `X = V − μ1ᵀ` with `μ = V1/n`, and `X ≈ U diag(σ) Vᵀ`
/// is its rank-`k` truncated SVD (randomized, Halko–Martinsson–Tropp, with 10 extra sketch
/// columns and scikit-learn's automatic number of power iterations, seeded by `seed`); the
/// components are the columns of `U`. When `k` exceeds the rank of `X` (at most
/// `min(pixels, images − 1)`), the extra components are zero with `σ = 0`.
///
/// Errors: [`NmfError::ZeroRank`] for `k = 0`, [`NmfError::EmptyInput`] for an empty `v`.
pub fn pca(v: ArrayView2<'_, f32>, k: usize, seed: u64) -> Result<Pca> {
    let (m, n) = v.dim();
    if m == 0 || n == 0 {
        return Err(NmfError::EmptyInput { rows: m, cols: n });
    }
    if k == 0 {
        return Err(NmfError::ZeroRank);
    }
    let mean: Array1<f32> = v
        .axis_iter(Axis(0))
        .map(|row| (row.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64) as f32)
        .collect();
    let mut x = v.to_owned();
    x -= &mean.view().insert_axis(Axis(1));
    let total_variance = x.iter().map(|&e| f64::from(e) * f64::from(e)).sum();
    let mut rng = StdRng::seed_from_u64(seed);
    let svd = randomized_svd(
        x.view(),
        k,
        OVERSAMPLES,
        auto_power_iters(k, m, n),
        &mut rng,
    );
    Ok(Pca {
        mean,
        components: svd.u,
        singular_values: svd.s,
        total_variance,
        samples: n,
    })
}
