//! Accelerated HALS (Gillis & Glineur, "Accelerated multiplicative updates and hierarchical
//! ALS algorithms for nonnegative matrix factorization", Neural Computation 24(4), 2012).
//!
//! The costly part of a HALS update of W is forming `P = V Hᵀ` and `G = H Hᵀ`
//! (`2mnr + 2nr²` flops); one sweep over W's columns given them costs only `2mr²`. So after
//! each product, several sweeps are run on the same `P, G` (each still the exact coordinate
//! minimiser, so the objective never increases), at most `⌊1 + α·ρ_W⌋` of them with
//!
//! ```text
//!   ρ_W = 1 + (mnr + nr²) / (mr² + mr)        (product cost over sweep cost)
//! ```
//!
//! and stopping early once a sweep changes W little: `‖W^(k+1) − W^(k)‖_F ≤ δ·‖W^(1) − W^(0)‖_F`.
//! H likewise with `Q = Wᵀ V`, `K = Wᵀ W` and `ρ_H = 1 + (mnr + mr²) / (nr² + nr)`. As the
//! authors, `α = 0.5`, `δ = 0.1`. The flop ratio assumes a sweep runs as fast per flop as the
//! products; with the sweeps on vector registers (a block of samples' gradients held in
//! registers, [`crate::engine`]'s CPU HALS kernels) that is near enough: on a 2-core AMD EPYC
//! (AVX2), time to the error HALS reaches in 100–200 iterations, `α = 0.5` took 0.45–0.55x
//! HALS's time at 361x2429 r49 and 0.20x at 4096² r64 (`α = 0.1`: 0.5–0.87x and 0.24x). The move
//! `‖Δ‖²` comes from [`Engine::hals_step_tracked`] (on the CPU engine summed block by block
//! as the sweep is written back, in vector partial sums; one Gram product of the move elsewhere).
//! On the GPU engine the rule runs on the device ([`Engine::hals_sweeps`]): each sweep kernel
//! writes its rows' moves, a one-workgroup kernel sums them and clears a flag once the rule is
//! met, and the sweeps after it read the flag and return at once. The whole budget of sweeps
//! is encoded without a read-back, and the sweeps run are those the host rule would run. (A
//! fixed budget learned from the first iterations would save the skipped launches too, but
//! would change the number of sweeps from one iteration to the next without seeing the moves.)
//! A fixed point of HALS is a fixed point here (the sweeps are HALS sweeps); only their
//! number per product changes.

use super::{State, Step, Update};
use crate::engine::{Engine, InnerStop, Side};
use crate::error::Result;
use crate::options::ValidParams;

/// Weight of the cost ratio in the inner sweep budget (`α`; see the module docs).
pub(super) const INNER_BUDGET_WEIGHT: f64 = 0.5;
/// Inner sweeps stop once a sweep moves the factor by less than this share of the first
/// sweep's move (`δ`).
pub(crate) const INNER_TOL: f64 = 0.1;

/// Work space of the inner loops: the previous factor (m x r and r x n) and an r x r square.
pub(crate) struct Work<M> {
    pub prev_w: M,
    pub prev_h: M,
    pub small: M,
}

pub(super) struct AcceleratedHals;

/// Inner sweep budgets `⌊1 + α ρ⌋` for W and H.
pub(crate) fn inner_budgets(m: usize, n: usize, r: usize) -> (usize, usize) {
    let (m, n, r) = (m as f64, n as f64, r as f64);
    let rho_w = 1.0 + (m * n * r + n * r * r) / (m * r * r + m * r);
    let rho_h = 1.0 + (m * n * r + m * r * r) / (n * r * r + n * r);
    let budget = |rho: f64| (1.0 + INNER_BUDGET_WEIGHT * rho).floor().max(1.0) as usize;
    (budget(rho_w), budget(rho_h))
}

/// The inner sweeps' rule: stop when a sweep moves `x` by less than [`INNER_TOL`] times the
/// first sweep's move (decided on the device by the GPU engine, so the sweeps never wait for a
/// read-back).
const STOP: InnerStop = InnerStop::FirstMove { tol: INNER_TOL };

impl<E: Engine> Step<E> for AcceleratedHals {
    fn step(&self, e: &mut E, s: &mut State<E::Mat>, p: &ValidParams, u: Update) -> Result<()> {
        let (m, n) = e.dims();
        let (budget_w, budget_h) = inner_budgets(m, n, p.rank);
        let work = s
            .ahals
            .as_mut()
            .ok_or(crate::error::NmfError::UnsupportedOption {
                option: "accelerated HALS without its work space",
                requires: "a run started by solver::run",
            })?;
        if u.w() {
            e.v_ht_and_gram(&s.h, &mut s.p, &mut s.g)?;
            if let Some(a) = &s.anchors.gram_w {
                e.pin(&mut s.g, a)?;
            }
            e.hals_sweeps(
                &mut s.w,
                &s.p,
                &s.g,
                Side::Left,
                p.reg_w,
                budget_w,
                STOP,
                &mut work.prev_w,
                &mut work.small,
            )?;
        }
        e.gram(&s.w, Side::Left, &mut s.k)?;
        e.wt_v(&s.w, &mut s.q)?;
        if !u.h() {
            return Ok(());
        }
        // The loss reads K = Wᵀ W after the step: with fixed rows of H the sweeps get a
        // pinned copy.
        let k = match (&s.anchors.gram_h, &mut s.anchors.scratch) {
            (Some(a), Some(k)) => {
                e.axpby(1.0, &s.k, 0.0, k)?;
                e.pin(k, a)?;
                &*k
            }
            _ => &s.k,
        };
        e.hals_sweeps(
            &mut s.h,
            &s.q,
            k,
            Side::Right,
            p.reg_h,
            budget_h,
            STOP,
            &mut work.prev_h,
            &mut work.small,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cpu::CpuEngine;
    use crate::options::Regularization;
    use ndarray::Array2;

    /// The move is summed in f32 partial sums of a few dozen terms, then in f64.
    const MOVE_REL_TOL: f64 = 1e-6;

    #[test]
    fn the_cpu_engine_reports_the_move_of_a_sweep() {
        let f = |i: usize, j: usize, k: usize| ((i * 7 + j * 13 + k) % 11) as f32 / 11.0 + 0.05;
        let v = Array2::from_shape_fn((150, 90), |(i, j)| f(i, j, 1));
        let mut e = CpuEngine::new(v.view());
        for (side, rows, cols) in [(Side::Left, 150, 6), (Side::Right, 6, 90)] {
            let mut x = Array2::from_shape_fn((rows, cols), |(i, j)| f(i, j, 2));
            let num = Array2::from_shape_fn((rows, cols), |(i, j)| 3.0 * f(i, j, 3));
            let g = Array2::from_shape_fn((6, 6), |(i, j)| if i == j { 4.0 } else { f(i, j, 4) });
            let old = x.clone();
            let (mut prev, mut small) = (Array2::zeros((rows, cols)), Array2::zeros((6, 6)));
            let reg = Regularization::default();
            let moved = e
                .hals_step_tracked(&mut x, &num, &g, side, reg, &mut prev, &mut small)
                .unwrap();
            let expect: f64 = x
                .iter()
                .zip(old.iter())
                .map(|(&a, &b)| f64::from(a - b).powi(2))
                .sum();
            assert!(expect > 0.0);
            assert!(
                (moved - expect).abs() <= MOVE_REL_TOL * expect,
                "{side:?}: {moved} vs {expect}"
            );
        }
    }

    #[test]
    fn budgets_grow_with_the_cost_of_the_products() {
        // Square data, small rank: products cost about n/r sweeps.
        let (bw, bh) = inner_budgets(4096, 4096, 64);
        assert_eq!((bw, bh), (33, 33));
        // Tall data: the W sweeps are dearer, the H sweeps cheaper.
        let (bw, bh) = inner_budgets(10000, 100, 10);
        assert!(bw < bh, "{bw} {bh}");
        assert!(inner_budgets(10, 10, 10).0 >= 1);
    }
}
