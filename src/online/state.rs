//! The state of an online model, out of it and back ([`OnlineState`]).

use ndarray::Array2;

/// Everything an online model learns from: W, the statistics and the stopping rules' state.
/// [`OnlineFactorization::state`](super::OnlineFactorization::state) takes it out (to save
/// it, or to keep it in another language's objects) and
/// [`OnlineParams::from_state`](super::OnlineParams::from_state) builds the model again, so
/// that [`partial_fit`](super::OnlineFactorization::partial_fit) continues exactly where it
/// was, and [`OnlineParams::resume_state`](super::OnlineParams::resume_state) continues a fit.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineState {
    /// The dictionary W (m x r).
    pub w: Array2<f32>,
    /// The statistics' first matrix: for HALS `Σ ρ H_b H_bᵀ` (r x r), for the multiplicative
    /// rule the numerator `Σ ρ W ⊙ N_b` (m x r).
    pub num: Array2<f32>,
    /// The second: for HALS `Σ ρ V_b H_bᵀ` (m x r), for the multiplicative rule the
    /// denominator `Σ ρ D_b` (m x r).
    pub den: Array2<f32>,
    /// Batches learnt from.
    pub steps: usize,
    /// Samples learnt from.
    pub samples: u64,
    /// Passes begun.
    pub epochs: usize,
    /// The smoothed batch cost, its minimum, and the batches since that minimum.
    pub smoothed_cost: Option<f64>,
    /// The minimum of the smoothed batch cost.
    pub smoothed_min: Option<f64>,
    /// Batches since the smoothed cost's last minimum.
    pub no_improvement: usize,
    /// The last batch's cost.
    pub last_cost: f64,
}
