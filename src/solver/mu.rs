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
//!
//! Other β-divergences (Itakura–Saito β = 0, any β ∉ {1, 2}; Févotte & Idier 2011, as
//! scikit-learn), with `Y = W H`:
//! `W ← W ⊙ ((((V ⊙ Y^(β−2)) Hᵀ) ⊘ (Y^(β−1) Hᵀ + l1_W + l2_W W))^γ`, then H likewise with
//! `Wᵀ (V ⊙ Y^(β−2))` over `Wᵀ Y^(β−1)`, where `γ = 1/(2 − β)` for β < 1, 1 for 1 ≤ β ≤ 2,
//! `1/(β − 1)` for β > 2 (the exponent that makes each update a majorisation–minimisation
//! step, so `D_β` never increases); `Y` is floored at ε (f32's machine epsilon) where a
//! negative power would meet zero, and for β < 1 entries below f64's machine epsilon become 0
//! after each update (scikit-learn's guards, see [`Engine::beta_products`]).
//!
//! Fixed components (columns of W, rows of H) are set back to their starting values after each
//! update of their factor: every rule above is elementwise given its products, so the free
//! entries move exactly as with the fixed ones held.

use super::{State, Step, Update};
use crate::engine::{Engine, FactorSums, MuDenominator, MuRule, Side, BETA_FLOOR};
use crate::error::Result;
use crate::options::{Loss, Orthogonality, Regularization, ValidParams};

pub(super) struct Mu;

impl<E: Engine> Step<E> for Mu {
    fn step(&self, e: &mut E, s: &mut State<E::Mat>, p: &ValidParams, u: Update) -> Result<()> {
        let eps = p.iter.epsilon;
        let ortho = p.orthogonality;
        let beta = p.loss.beta_value();
        let beta_rule = MuRule::Power {
            gamma: p.loss.mu_exponent(),
            floor: if beta < 1.0 { BETA_FLOOR } else { 0.0 },
        };
        if u.w() {
            let (den, rule) = match p.loss {
                Loss::Frobenius if ortho == Orthogonality::W => {
                    // W ← W ⊙ √(P ⊘ (W (Wᵀ P))), P = V Hᵀ; g holds the r x r Wᵀ P.
                    e.v_ht(&s.h, &mut s.p)?;
                    e.cross(&s.w, &s.p, Side::Left, &mut s.g)?;
                    (MuDenominator::Product(&s.g), MuRule::Sqrt)
                }
                Loss::Frobenius => {
                    e.v_ht_and_gram(&s.h, &mut s.p, &mut s.g)?;
                    (MuDenominator::Gram(&s.g), MuRule::Plain)
                }
                Loss::KullbackLeibler => {
                    e.kl_numerator(&s.w, &s.h, Side::Left, &mut s.p)?;
                    e.factor_sums(&s.h, FactorSums::RowsOfH, &mut s.g)?;
                    (MuDenominator::Sums(&s.g), MuRule::Plain)
                }
                Loss::ItakuraSaito | Loss::Beta(_) => {
                    let (dw, _) = beta_work(e, &mut s.beta_den, p.rank)?;
                    e.beta_products(&s.w, &s.h, Side::Left, beta, &mut s.p, dw)?;
                    (MuDenominator::Elementwise(&*dw), beta_rule)
                }
            };
            e.mu_step(&mut s.w, &s.p, den, Side::Left, p.reg_w, eps, rule)?;
            pin_w(e, s)?;
        }
        if p.loss == Loss::Frobenius {
            e.gram(&s.w, Side::Left, &mut s.k)?;
            e.wt_v(&s.w, &mut s.q)?;
        }
        if !u.h() {
            return Ok(());
        }
        let (den, rule) = match p.loss {
            Loss::Frobenius if ortho == Orthogonality::H && u == Update::Both => {
                // H ← H ⊙ √(Q ⊘ ((Q Hᵀ) H)), Q = Wᵀ V; g (free after the W update)
                // holds the r x r Q Hᵀ.
                e.cross(&s.q, &s.h, Side::Right, &mut s.g)?;
                (MuDenominator::Product(&s.g), MuRule::Sqrt)
            }
            Loss::Frobenius | Loss::KullbackLeibler => {
                if p.loss == Loss::KullbackLeibler {
                    e.factor_sums(&s.w, FactorSums::ColumnsOfW, &mut s.k)?;
                }
                let den = plain_denominator_h(e, &s.w, &s.h, &mut s.q, &s.k, p.loss)?;
                (den, MuRule::Plain)
            }
            Loss::ItakuraSaito | Loss::Beta(_) => {
                let (_, dh) = beta_work(e, &mut s.beta_den, p.rank)?;
                e.beta_products(&s.w, &s.h, Side::Right, beta, &mut s.q, dh)?;
                (MuDenominator::Elementwise(&*dh), beta_rule)
            }
        };
        e.mu_step(&mut s.h, &s.q, den, Side::Right, p.reg_h, eps, rule)?;
        if let Some(a) = &s.anchors.h {
            e.pin(&mut s.h, a)?;
        }
        Ok(())
    }
}

/// The plain rule's update of H with W fixed, for the Frobenius and KL losses:
/// Frobenius `H ← H ⊙ Q ⊘ (K H + l1 + l2 H)` with `q = Q = Wᵀ V` and `k = K = Wᵀ W` given;
/// KL `H ← H ⊙ (Wᵀ (V ⊘ W H)) ⊘ (k 1ᵀ + l1 + l2 H)` with `k` the column sums of W given and
/// the numerator formed here into `q`. The batch fit's H update (through
/// [`plain_denominator_h`]) and the online fit's encodings (each inner step) are this update.
#[allow(clippy::too_many_arguments)]
pub(crate) fn update_h<E: Engine>(
    e: &mut E,
    w: &E::Mat,
    h: &mut E::Mat,
    q: &mut E::Mat,
    k: &E::Mat,
    loss: Loss,
    reg: Regularization,
    eps: f32,
) -> Result<()> {
    let den = plain_denominator_h(e, w, h, q, k, loss)?;
    e.mu_step(h, q, den, Side::Right, reg, eps, MuRule::Plain)
}

/// The denominator of [`update_h`]: `Gram(k)` for Frobenius; for KL `Sums(k)`, after forming
/// the numerator `Wᵀ (V ⊘ W H)` into `q`.
fn plain_denominator_h<'k, E: Engine>(
    e: &mut E,
    w: &E::Mat,
    h: &E::Mat,
    q: &mut E::Mat,
    k: &'k E::Mat,
    loss: Loss,
) -> Result<MuDenominator<'k, E::Mat>> {
    Ok(if loss == Loss::KullbackLeibler {
        e.kl_numerator(w, h, Side::Right, q)?;
        MuDenominator::Sums(k)
    } else {
        MuDenominator::Gram(k)
    })
}

/// The denominators of the β rules' W (m x r) and H (r x n) updates, allocated in `work` on
/// first use.
fn beta_work<'w, E: Engine>(
    e: &mut E,
    work: &'w mut Option<(E::Mat, E::Mat)>,
    r: usize,
) -> Result<&'w mut (E::Mat, E::Mat)> {
    let dens = match work.take() {
        Some(dens) => dens,
        None => {
            let (m, n) = e.dims();
            (e.zeros(m, r)?, e.zeros(r, n)?)
        }
    };
    Ok(work.insert(dens))
}

/// Set the fixed columns of W back to their starting values.
fn pin_w<E: Engine>(e: &mut E, s: &mut State<E::Mat>) -> Result<()> {
    match &s.anchors.w {
        Some(a) => e.pin(&mut s.w, a),
        None => Ok(()),
    }
}
