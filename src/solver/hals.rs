//! Hierarchical alternating least squares (Cichocki & Phan 2009; scikit-learn's `cd` solver).
//!
//! With `P = V Hᵀ`, `G = H Hᵀ`, each column of W in turn is set to its exact nonnegative
//! minimiser with the others fixed:
//! `W[:,t] ← max(0, W[:,t] − ((W G)[:,t] − P[:,t] + l1_W + l2_W W[:,t]) / (G[t,t] + l2_W))`;
//! then the rows of H likewise with `Q = Wᵀ V`, `K = Wᵀ W`. Each sweep never increases the
//! penalised objective.
//!
//! Fixed components are skipped inside the sweeps (their Gram diagonal is pinned to `−l2`,
//! which the sweep reads as "leave unchanged"), so the free ones see them at their values.

use super::{State, Step, Update};
use crate::engine::{Engine, Side};
use crate::error::Result;
use crate::options::{Regularization, ValidParams};

pub(super) struct Hals;

impl<E: Engine> Step<E> for Hals {
    fn step(&self, e: &mut E, s: &mut State<E::Mat>, p: &ValidParams, u: Update) -> Result<()> {
        if u.w() {
            e.v_ht_and_gram(&s.h, &mut s.p, &mut s.g)?;
            if let Some(a) = &s.anchors.gram_w {
                e.pin(&mut s.g, a)?;
            }
            update_w(e, &mut s.w, &s.p, &s.g, p.reg_w, None)?;
        }
        e.gram(&s.w, Side::Left, &mut s.k)?;
        e.wt_v(&s.w, &mut s.q)?;
        if !u.h() {
            return Ok(());
        }
        match (&s.anchors.gram_h, &mut s.anchors.scratch) {
            // The loss reads K = Wᵀ W after the step: the sweep gets a pinned copy.
            (Some(a), Some(k)) => {
                e.axpby(1.0, &s.k, 0.0, k)?;
                e.pin(k, a)?;
                e.hals_step(&mut s.h, &s.q, k, Side::Right, p.reg_h)?;
            }
            _ => e.hals_step(&mut s.h, &s.q, &s.k, Side::Right, p.reg_h)?,
        }
        Ok(())
    }
}

/// W's HALS sweep against `p` (`V Hᵀ`, or the online fit's statistic `Σ ρ V_b H_bᵀ`) and `g`
/// (`H Hᵀ`, or `Σ ρ H_b H_bᵀ`): the batch fit's W update and the online fit's dictionary
/// update. With work space `moved` (m x r, r x r) it returns how far W moved, `‖ΔW‖²_F`
/// ([`Engine::hals_step_tracked`]); without, 0.
pub(crate) fn update_w<E: Engine>(
    e: &mut E,
    w: &mut E::Mat,
    p: &E::Mat,
    g: &E::Mat,
    reg: Regularization,
    moved: Option<(&mut E::Mat, &mut E::Mat)>,
) -> Result<f64> {
    match moved {
        Some((prev, small)) => e.hals_step_tracked(w, p, g, Side::Left, reg, prev, small),
        None => e.hals_step(w, p, g, Side::Left, reg).map(|()| 0.0),
    }
}
