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
use crate::options::ValidParams;

pub(super) struct Hals;

impl<E: Engine> Step<E> for Hals {
    fn step(
        &self,
        e: &mut E,
        s: &mut State<E::Mat>,
        p: &ValidParams,
        update: Update,
    ) -> Result<()> {
        if update.w() {
            e.v_ht_and_gram(&s.h, &mut s.p, &mut s.g)?;
            if let Some(a) = &s.anchors.gram_w {
                e.pin(&mut s.g, a)?;
            }
            e.hals_step(&mut s.w, &s.p, &s.g, Side::Left, p.reg_w)?;
        }
        e.gram(&s.w, Side::Left, &mut s.k)?;
        e.wt_v(&s.w, &mut s.q)?;
        if !update.h() {
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
