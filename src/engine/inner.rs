//! Inner HALS sweeps on fixed products, with a stopping rule ([`InnerStop`]): the loop of
//! accelerated HALS (several sweeps per product) and of online NMF's encodings (sweeps until the
//! encodings settle). [`Engine::hals_sweeps`]'s default is the loop every engine gets: it reads each
//! sweep's move back and decides on the host, which costs nothing on the CPU engine. The GPU
//! engine overrides it and decides on the device (a flag the next sweeps
//! read), so the sweeps never wait for a read-back.

use super::{Engine, Side};
use crate::error::Result;

/// When inner sweeps stop. `Δ_j = ‖x^(j+1) − x^(j)‖²_F` is the squared move of sweep `j`
/// (from 0); after the sweep that meets the rule no further sweep runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum InnerStop {
    /// Accelerated HALS (Gillis & Glineur): stop after sweep `j ≥ 1` when `Δ_j ≤ tol² Δ_0`.
    /// With a budget of one sweep, no move is formed.
    FirstMove { tol: f64 },
    /// Online encodings: stop after sweep `j` when `Δ_j ≤ tol² ‖x^(j+1)‖²_F`; with `tol ≤ 0`
    /// every sweep of the budget runs and no move is formed.
    Relative { tol: f64 },
}

impl InnerStop {
    /// Whether the rule needs the sweeps' moves at all for a budget of `budget` sweeps.
    pub(crate) fn tracks(self, budget: usize) -> bool {
        match self {
            InnerStop::FirstMove { .. } => budget > 1,
            InnerStop::Relative { tol } => tol > 0.0,
        }
    }
}

/// After one inner step of `x` (H, r x n) by another update (online KL encodings), `prev`
/// holding `x` as it was before the step: whether the relative rule
/// `‖x − prev‖² ≤ tol² ‖x‖²` stops the loop. On the host: the move is formed in `prev` and
/// both norms are read back.
pub(crate) fn host_relative_check<E: Engine + ?Sized>(
    e: &mut E,
    x: &E::Mat,
    prev: &mut E::Mat,
    side: Side,
    tol: f64,
    small: &mut E::Mat,
) -> Result<bool> {
    e.axpby(1.0, x, -1.0, prev)?;
    let moved = trace_of_gram(e, prev, side, small)?;
    let x_sq = trace_of_gram(e, x, side, small)?;
    Ok(moved <= tol * tol * x_sq)
}

/// `‖x‖²_F` as the trace of its Gram matrix (formed in `small`, r x r, and read back).
pub(super) fn trace_of_gram<E: Engine + ?Sized>(
    e: &mut E,
    x: &E::Mat,
    side: Side,
    small: &mut E::Mat,
) -> Result<f64> {
    e.gram(x, side, small)?;
    let s = e.download(small)?;
    Ok((0..s.nrows().min(s.ncols()))
        .map(|t| f64::from(s[[t, t]]))
        .sum())
}
