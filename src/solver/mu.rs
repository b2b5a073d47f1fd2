//! Lee–Seung multiplicative updates.
//!
//! Frobenius (`D = ½‖V − WH‖²`), with penalties `l1`, `l2` on each factor:
//! `W ← W ⊙ (V Hᵀ) ⊘ (W H Hᵀ + l1_W + l2_W W)`, then `H ← H ⊙ (Wᵀ V) ⊘ (Wᵀ W H + l1_H + l2_H H)`.
//! Kullback–Leibler (`D = Σ V log(V/WH) − V + WH`), with `Z = V ⊘ WH`:
//! `W ← W ⊙ (Z Hᵀ) ⊘ (1 (H 1)ᵀ + …)`, then `H ← H ⊙ (Wᵀ Z) ⊘ ((Wᵀ 1) 1ᵀ + …)`.
//! Zero denominators become ε. Without penalties each update never increases `D`
//! (Lee & Seung 2001), which the tests check.
//!
//! Orthogonal NMF (Ding, Li, Peng & Park 2006) replaces the constrained factor's rule by
//! `H ← H ⊙ √((Wᵀ V) ⊘ ((Wᵀ V Hᵀ) H))` (`H Hᵀ = I`) or `W ← W ⊙ √((V Hᵀ) ⊘ (W (Wᵀ V Hᵀ)))`
//! (`Wᵀ W = I`); `transform` (H only, W fixed) uses the plain rule.

use super::{State, Step, Update};
use crate::engine::{Engine, FactorSums, MuDenominator, MuRule, Side};
use crate::error::Result;
use crate::options::{Loss, Orthogonality, ValidParams};

pub(super) struct Mu;

impl<E: Engine> Step<E> for Mu {
    fn step(
        &self,
        e: &mut E,
        s: &mut State<E::Mat>,
        p: &ValidParams,
        update: Update,
    ) -> Result<()> {
        let eps = p.iter.epsilon;
        match p.loss {
            Loss::Frobenius => {
                let ortho = p.orthogonality;
                if update == Update::Both {
                    if ortho == Orthogonality::W {
                        // W ← W ⊙ √(P ⊘ (W (Wᵀ P))), P = V Hᵀ; g holds the r x r Wᵀ P.
                        e.v_ht(&s.h, &mut s.p)?;
                        e.cross(&s.w, &s.p, Side::Left, &mut s.g)?;
                        e.mu_step(
                            &mut s.w,
                            &s.p,
                            MuDenominator::Product(&s.g),
                            Side::Left,
                            p.reg_w,
                            eps,
                            MuRule::Sqrt,
                        )?;
                    } else {
                        e.v_ht_and_gram(&s.h, &mut s.p, &mut s.g)?;
                        e.mu_step(
                            &mut s.w,
                            &s.p,
                            MuDenominator::Gram(&s.g),
                            Side::Left,
                            p.reg_w,
                            eps,
                            MuRule::Plain,
                        )?;
                    }
                }
                e.gram(&s.w, Side::Left, &mut s.k)?;
                e.wt_v(&s.w, &mut s.q)?;
                if ortho == Orthogonality::H && update == Update::Both {
                    // H ← H ⊙ √(Q ⊘ ((Q Hᵀ) H)), Q = Wᵀ V; g (free after the W update)
                    // holds the r x r Q Hᵀ.
                    e.cross(&s.q, &s.h, Side::Right, &mut s.g)?;
                    e.mu_step(
                        &mut s.h,
                        &s.q,
                        MuDenominator::Product(&s.g),
                        Side::Right,
                        p.reg_h,
                        eps,
                        MuRule::Sqrt,
                    )?;
                } else {
                    e.mu_step(
                        &mut s.h,
                        &s.q,
                        MuDenominator::Gram(&s.k),
                        Side::Right,
                        p.reg_h,
                        eps,
                        MuRule::Plain,
                    )?;
                }
            }
            Loss::KullbackLeibler => {
                if update == Update::Both {
                    e.kl_numerator(&s.w, &s.h, Side::Left, &mut s.p)?;
                    e.factor_sums(&s.h, FactorSums::RowsOfH, &mut s.g)?;
                    e.mu_step(
                        &mut s.w,
                        &s.p,
                        MuDenominator::Sums(&s.g),
                        Side::Left,
                        p.reg_w,
                        eps,
                        MuRule::Plain,
                    )?;
                }
                e.factor_sums(&s.w, FactorSums::ColumnsOfW, &mut s.k)?;
                e.kl_numerator(&s.w, &s.h, Side::Right, &mut s.q)?;
                e.mu_step(
                    &mut s.h,
                    &s.q,
                    MuDenominator::Sums(&s.k),
                    Side::Right,
                    p.reg_h,
                    eps,
                    MuRule::Plain,
                )?;
            }
        }
        Ok(())
    }
}
