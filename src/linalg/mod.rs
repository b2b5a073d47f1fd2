//! Dense linear algebra used by the CPU engine, initialisation and diagnostics: GEMM, thin
//! Householder QR, symmetric Jacobi eigendecomposition, and randomized truncated SVD. It
//! imports nothing from the engines above it.
//!
//! - [`gemm::gemm_into`]: `C = A B` or `C += A B` for any strides (the `gemm` crate).
//! - [`orthonormalize`]: `A = Q R` (m×k, m ≥ k), returns `Q` with `QᵀQ = I`.
//! - [`symmetric_eigen`]: `A = V diag(λ) Vᵀ` for small symmetric `A` (f64).
//! - [`randomized_svd`]: `A ≈ U diag(S) Vᵀ`, the leading `k` singular triplets by a
//!   Gaussian sketch with power iterations (Halko, Martinsson & Tropp 2011).

mod assign;
mod eigen;
pub(crate) mod gemm;
mod qr;
mod svd;
#[cfg(test)]
pub(crate) mod xorshift;

pub use self::assign::assign_max;

// The module's interface; not every item is used by every build of the crate.
#[allow(unused_imports)]
pub(crate) use eigen::symmetric_eigen;
#[allow(unused_imports)]
pub(crate) use qr::orthonormalize;
#[allow(unused_imports)]
pub(crate) use svd::{auto_power_iters, randomized_svd, LinearOperator, Svd};

/// `Σ xᵢ yᵢ` in `f64`, term by term in order (the sum of one row by one column of a product).
pub(crate) fn dot_in_order<'a, 'b>(
    x: impl IntoIterator<Item = &'a f32>,
    y: impl IntoIterator<Item = &'b f32>,
) -> f64 {
    x.into_iter()
        .zip(y)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum()
}
