//! The recommendation of a rank sweep: which methods' assumptions hold, and how the held-out
//! error arbitrates when the methods disagree.
//!
//! **Cluster dominance.** Consensus and NMFk measure the stability of a clustering (of the
//! samples by `argmax_k H[k, j]`, of the basis vectors across runs). They are evidence for a
//! rank only when the factors are clustered: when each sample (column of `H`) has one dominant
//! component. With `H̃[k, j] = H[k, j] / Σ_j' H[k, j']` (each component scaled to unit mass over
//! the samples, which removes the scale ambiguity `W D⁻¹, D H` and a component's mere size),
//!
//! ```text
//!   D  = (1/n) Σ_j max_k H̃[k, j] / Σ_k H̃[k, j]      (in [1/r, 1])
//!   D̃ = (r D − 1) / (r − 1)                          (in [0, 1]: 0 uniform, 1 one component each)
//! ```
//!
//! averaged over every fit of the rank ([`dominance`]). Samples built from one part each give
//! `D̃` near 1; dense uniform factors about 0.1 at r = 10. The factors count as **clustered**
//! when `D̃ ≥` [`DOMINANCE_THRESHOLD`] (0.5) at the reference rank: the held-out error's choice
//! when cross-validation ran (it assumes no clusters), else the rank the cluster methods chose.
//!
//! **The one-standard-error rule** (Breiman et al. 1984; Hastie, Tibshirani & Friedman §7.10)
//! on the held-out error `e(r)`, the mean over the repeats, with `s(r)` its standard error
//! `sd / √repeats` (floored at [`CV_SE_FLOOR`] times `e(r)`, so that one repeat still leaves a
//! margin): with `r₀ = argmin e`, the choice is the smallest `r` with `e(r) ≤ e(r₀) + s(r₀)`.
//!
//! **The decision** (`decide`):
//! 1. Each method's choice is evidence, except consensus and NMFk when the factors are not
//!    clustered (set aside, with the dominance as the reason).
//! 2. When the evidence agrees, that rank.
//! 3. When it disagrees and the held-out error was measured, it arbitrates among the ranks
//!    chosen: the smallest candidate `c` with `e(c) ≤ min_c' e(c') + s` (`s` the standard error
//!    at the best candidate) for the held-out error of cross-validation or of
//!    bi-cross-validation, the one-standard-error rule restricted to the candidates; a rank
//!    that predicts held-out entries no better than a smaller one is not preferred.
//! 4. Without held-out error: the rank most of the evidence chose (ties: NMFk, consensus);
//!    when every method was set aside, the same among them, with a warning.
//!
//! The summary names the disagreement and the reason. It also says when the data do not settle
//! the rank (**ambiguous**): on a held-out curve, the error of the recommended rank `c` is not
//! clearly below that of `c − 1` (`e(c − 1) ≤ e(r₀) + `[`AMBIGUOUS_SE`]` · s(r₀)`), or it
//! still falls clearly past the choice (`e(c) − e(r₀) > `[`AMBIGUOUS_SHARE`]` · (e(c − 1) − e(c))`): a component near the
//! noise level; or the two held-out errors (cross-validation's and bi-cross-validation's)
//! choose neighbouring ranks. A warning also says when the held-out error still falls at the
//! largest rank compared.

use ndarray::ArrayView2;

use super::{Choice, CvScore, Method};

/// The factors are clustered when the normalised dominance `D̃` reaches this.
pub const DOMINANCE_THRESHOLD: f64 = 0.5;

/// The standard error of the held-out error is at least this share of it.
pub const CV_SE_FLOOR: f64 = 0.002;

/// The choice is ambiguous when the rank below it is within this many standard errors of the
/// lowest held-out error.
pub const AMBIGUOUS_SE: f64 = 3.0;

/// The choice is ambiguous when the held-out error still falls past it by more than this share
/// of the last step to it.
pub const AMBIGUOUS_SHARE: f64 = 0.2;

/// The normalised cluster dominance `D̃` of `h` (r x n): 0 when every sample weighs its
/// components alike, 1 when each sample has one component (see the module docs). Components
/// with no mass and samples with no mass are skipped; `r = 1` gives 1, no samples 0.
pub fn dominance(h: ArrayView2<'_, f32>) -> f64 {
    let (r, n) = h.dim();
    if r <= 1 {
        return 1.0;
    }
    let mass: Vec<f64> = h
        .rows()
        .into_iter()
        .map(|row| row.iter().map(|&x| f64::from(x.max(0.0))).sum())
        .collect();
    let mut total = 0.0;
    let mut counted = 0usize;
    for j in 0..n {
        let mut sum = 0.0f64;
        let mut max = 0.0f64;
        for (k, &m) in mass.iter().enumerate() {
            if m > 0.0 {
                let x = f64::from(h[[k, j]].max(0.0)) / m;
                sum += x;
                max = max.max(x);
            }
        }
        if sum > 0.0 {
            total += max / sum;
            counted += 1;
        }
    }
    if counted == 0 {
        return 0.0;
    }
    let d = total / counted as f64;
    let r = r as f64;
    ((r * d - 1.0) / (r - 1.0)).clamp(0.0, 1.0)
}

/// The mean and the standard error of the mean of `xs` (`sd / √len`, sample sd; 0 for fewer
/// than two).
pub fn mean_and_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len();
    if n == 0 {
        return (f64::NAN, 0.0);
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
    (mean, (var / n as f64).sqrt())
}

/// The standard error the rules use: `se` floored at [`CV_SE_FLOOR`] times the error.
fn margin(s: &CvScore) -> f64 {
    s.heldout_rmse_se.max(CV_SE_FLOOR * s.heldout_rmse)
}

/// The lowest held-out error: its score.
fn lowest(scores: &[CvScore]) -> Option<&CvScore> {
    scores
        .iter()
        .filter(|s| s.heldout_rmse.is_finite())
        .min_by(|a, b| a.heldout_rmse.total_cmp(&b.heldout_rmse))
}

/// The one-standard-error rule on the held-out error of `method` (cross-validation or
/// bi-cross-validation; see the module docs).
pub(crate) fn choose_heldout(method: Method, scores: &[CvScore]) -> Choice {
    let name = method.name();
    let Some(best) = lowest(scores) else {
        return Choice {
            method,
            rank: 0,
            rule: format!("{name}: no held-out error was measured"),
        };
    };
    let bound = best.heldout_rmse + margin(best);
    let rank = scores
        .iter()
        .find(|s| s.heldout_rmse <= bound)
        .map_or(best.rank, |s| s.rank);
    Choice {
        method,
        rank,
        rule: format!(
            "{name}: the smallest r whose held-out RMSE is within one standard error of the lowest ({:.6} ± {:.6} at r = {})",
            best.heldout_rmse,
            margin(best),
            best.rank
        ),
    }
}

/// How the recommendation was reached: which methods counted, which were set aside and why,
/// the disagreement and the ambiguity, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Whether the factors are clustered (`D̃ ≥` [`DOMINANCE_THRESHOLD`] at
    /// [`dominance_rank`](Self::dominance_rank)); `None` when no fit measured it.
    pub clustered: Option<bool>,
    /// The rank whose dominance decided `clustered`.
    pub dominance_rank: usize,
    /// The normalised dominance `D̃` there.
    pub dominance: f64,
    /// The methods whose choice counted as evidence.
    pub evidence: Vec<Method>,
    /// The methods set aside, with the reason.
    pub set_aside: Vec<(Method, String)>,
    /// When the methods chose different ranks: which chose what.
    pub disagreement: Option<String>,
    /// Why the recommended rank is what it is.
    pub reason: String,
    /// When the data do not settle the rank: why.
    pub ambiguous: Option<String>,
    /// What the user should know: the disagreement, the ambiguity, a choice at the edge of the
    /// range, cluster methods applied to unclustered factors.
    pub warnings: Vec<String>,
}

/// The recommended rank and how it was reached, from each method's `choices`, the held-out
/// figures of cross-validation `cv` and of bi-cross-validation `bicv` (empty when not run) and
/// the dominance per rank (`(rank, D̃)`, empty when not measured). The held-out error that
/// arbitrates is bi-cross-validation's when it ran (every one of its fits is a complete NMF,
/// converged like the others), else cross-validation's.
pub(crate) fn decide(
    choices: &[Choice],
    cv: &[CvScore],
    bicv: &[CvScore],
    dominance: &[(usize, f64)],
) -> (Choice, Decision) {
    let held: Vec<(Method, &[CvScore])> = [
        (Method::BiCrossValidation, bicv),
        (Method::CrossValidation, cv),
    ]
    .into_iter()
    .filter(|h| !h.1.is_empty())
    .collect();
    let (arbiter, cv) = if bicv.is_empty() {
        (Method::CrossValidation, cv)
    } else {
        (Method::BiCrossValidation, bicv)
    };
    let cv_choice = choices.iter().find(|c| c.method == arbiter);
    let is_cluster = |m: Method| matches!(m, Method::Consensus | Method::Nmfk);
    let cluster: Vec<&Choice> = choices.iter().filter(|c| is_cluster(c.method)).collect();
    let d_at = |r: usize| dominance.iter().find(|x| x.0 == r).map(|x| x.1);

    // Are the factors clustered? At the held-out choice, else at the cluster methods' choice.
    let reference = cv_choice
        .map(|c| c.rank)
        .or_else(|| majority(&cluster).map(|c| c.rank))
        .unwrap_or(0);
    let measured = d_at(reference);
    let clustered = measured.map(|d| d >= DOMINANCE_THRESHOLD);
    let d = measured.unwrap_or(f64::NAN);

    let mut evidence: Vec<&Choice> = Vec::new();
    let mut set_aside = Vec::new();
    for c in choices {
        if is_cluster(c.method) && clustered == Some(false) {
            set_aside.push((
                c.method,
                format!(
                    "{} measures cluster stability, but the factors are not clustered (dominance {d:.2} < {DOMINANCE_THRESHOLD} at r = {reference})",
                    c.method.name()
                ),
            ));
        } else {
            evidence.push(c);
        }
    }
    let mut warnings = Vec::new();
    let disagreement = disagreement(choices);

    let (chosen, reason): (Option<&Choice>, String) = if evidence.is_empty() {
        // Only cluster methods, on unclustered factors.
        let c = majority(&cluster);
        warnings.push(format!(
            "the factors are not clustered (dominance {d:.2} < {DOMINANCE_THRESHOLD}), so consensus and NMFk may not apply; add cross-validation (--method all or cv)"
        ));
        (
            c,
            "only cluster-stability methods ran, and their assumption does not hold".into(),
        )
    } else if evidence.iter().all(|c| c.rank == evidence[0].rank) {
        let c = evidence[0];
        let reason = if evidence.len() == 1 {
            format!("{} alone counts", c.method.name())
        } else {
            format!(
                "{} agree on r = {}",
                names(evidence.iter().map(|c| c.method)),
                c.rank
            )
        };
        let reason = if set_aside.is_empty() {
            reason
        } else {
            format!(
                "{reason}; {} set aside: the factors are not clustered (dominance {d:.2} < {DOMINANCE_THRESHOLD} at r = {reference})",
                names(set_aside.iter().map(|s| s.0))
            )
        };
        (Some(c), reason)
    } else if !cv.is_empty() {
        arbitrate(&evidence, &held)
    } else {
        let c = majority(&evidence);
        (
            c,
            format!(
                "the methods disagree and no held-out error was measured: the rank most of {} chose",
                names(evidence.iter().map(|c| c.method))
            ),
        )
    };

    if let (Some(text), Some(c)) = (&disagreement, chosen) {
        warnings.insert(
            0,
            format!(
                "the methods disagree ({text}); recommended r = {}: {reason}",
                c.rank
            ),
        );
    }
    let neighbours = match (
        choices.iter().find(|c| c.method == Method::CrossValidation),
        choices.iter().find(|c| c.method == Method::BiCrossValidation),
    ) {
        (Some(a), Some(b)) if a.rank.abs_diff(b.rank) == 1 => Some(format!(
            "the two held-out errors choose neighbouring ranks (cv r = {}, bicv r = {}); a component is near the noise level",
            a.rank, b.rank
        )),
        _ => None,
    };
    // Read at the recommended rank, on each held-out curve.
    let ambiguous = chosen
        .and_then(|c| {
            held.iter().find_map(|&(m, scores)| {
                ambiguity(scores, c.rank).map(|t| format!("{}: {t}", m.name()))
            })
        })
        .or(neighbours);
    if let Some(text) = &ambiguous {
        warnings.push(format!("ambiguous: {text}"));
    }
    if let (Some(c), Some(last)) = (cv_choice, cv.last()) {
        if lowest(cv).is_some_and(|b| b.rank == last.rank) && c.rank == last.rank && cv.len() > 1 {
            warnings.push(format!(
                "the {} held-out error is lowest at the largest rank compared (r = {}); compare larger ranks",
                arbiter.name(),
                last.rank
            ));
        }
    }

    let chosen = chosen.cloned().unwrap_or(Choice {
        method: Method::CrossValidation,
        rank: 0,
        rule: "no method was run".into(),
    });
    let recommended = Choice {
        method: chosen.method,
        rank: chosen.rank,
        rule: format!("{} ({reason})", chosen.rule),
    };
    let decision = Decision {
        clustered,
        dominance_rank: reference,
        dominance: d,
        evidence: evidence.iter().map(|c| c.method).collect(),
        set_aside,
        disagreement,
        reason,
        ambiguous,
        warnings,
    };
    (recommended, decision)
}

/// The held-out errors arbitrate among the ranks the evidence chose: the smallest candidate
/// that one of them (cross-validation's, bi-cross-validation's) cannot tell from the best
/// candidate, the one-standard-error rule restricted to the candidates.
fn arbitrate<'a>(
    evidence: &[&'a Choice],
    held: &[(Method, &[CvScore])],
) -> (Option<&'a Choice>, String) {
    let mut candidates: Vec<&Choice> = evidence.to_vec();
    candidates.sort_by_key(|c| c.rank);
    let mut chosen: Option<(&Choice, Method)> = None;
    let mut listed = Vec::new();
    for &(method, scores) in held {
        let score = |r: usize| scores.iter().find(|s| s.rank == r);
        let Some(best) = candidates
            .iter()
            .filter_map(|c| score(c.rank))
            .min_by(|a, b| a.heldout_rmse.total_cmp(&b.heldout_rmse))
        else {
            continue;
        };
        let bound = best.heldout_rmse + margin(best);
        let mut seen = Vec::new();
        for c in &candidates {
            if let Some(s) = score(c.rank) {
                if !seen.contains(&c.rank) {
                    seen.push(c.rank);
                    listed.push(format!(
                        "{} {:.5} at r = {}",
                        method.name(),
                        s.heldout_rmse,
                        c.rank
                    ));
                }
            }
        }
        if let Some(c) = candidates
            .iter()
            .find(|c| score(c.rank).is_some_and(|s| s.heldout_rmse <= bound))
        {
            if chosen.is_none_or(|(x, _)| c.rank < x.rank) {
                chosen = Some((c, method));
            }
        }
    }
    match chosen {
        Some((c, by)) => (
            Some(c),
            format!(
                "the held-out error arbitrates between the ranks chosen ({}): r = {} is the smallest that {}'s held-out error puts within one standard error of the best of them, so {} is followed",
                listed.join(", "),
                c.rank,
                by.name(),
                c.method.name()
            ),
        ),
        None => (
            majority(evidence),
            "no held-out error at the ranks chosen: the rank most methods chose".into(),
        ),
    }
}

/// Why the held-out error does not settle the rank at `choice`, if it does not.
fn ambiguity(cv: &[CvScore], choice: usize) -> Option<String> {
    let best = lowest(cv)?;
    let at = |r: usize| cv.iter().find(|s| s.rank == r);
    let c = at(choice)?;
    let s = margin(best);
    let below = choice.checked_sub(1).and_then(at);
    if let Some(b) = below {
        if b.heldout_rmse <= best.heldout_rmse + AMBIGUOUS_SE * s {
            return Some(format!(
                "r = {} predicts held-out entries about as well as r = {choice} ({:.5} against {:.5}, within {AMBIGUOUS_SE} standard errors of {:.5}); a component is near the noise level",
                b.rank, b.heldout_rmse, c.heldout_rmse, s
            ));
        }
        let step = b.heldout_rmse - c.heldout_rmse;
        let further = c.heldout_rmse - best.heldout_rmse;
        if step > 0.0 && further > AMBIGUOUS_SHARE * step {
            return Some(format!(
                "the held-out error still falls past r = {choice} (to {:.5} at r = {}, {:.0}% of the step from r = {} to r = {choice}); a component is near the noise level",
                best.heldout_rmse,
                best.rank,
                100.0 * further / step,
                b.rank
            ));
        }
    }
    None
}

/// Which method chose which rank, when they differ.
fn disagreement(choices: &[Choice]) -> Option<String> {
    let first = choices.first()?;
    if choices.iter().all(|c| c.rank == first.rank) {
        return None;
    }
    Some(
        choices
            .iter()
            .map(|c| format!("{} chose r = {}", c.method.name(), c.rank))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// The rank most of `choices` chose (ties: the first in [`Method::ALL`] order among them).
fn majority<'a>(choices: &[&'a Choice]) -> Option<&'a Choice> {
    let votes = |r: usize| choices.iter().filter(|c| c.rank == r).count();
    let mut best: Option<&Choice> = None;
    for c in choices {
        if best.is_none_or(|b| votes(c.rank) > votes(b.rank)) {
            best = Some(c);
        }
    }
    best
}

fn names(methods: impl Iterator<Item = Method>) -> String {
    methods.map(|m| m.name()).collect::<Vec<_>>().join(" and ")
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    fn cv(errs: &[(usize, f64, f64)]) -> Vec<CvScore> {
        errs.iter()
            .map(|&(rank, e, se)| CvScore {
                rank,
                heldout_rmse: e,
                heldout_rmse_se: se,
                heldout_relative_error: e,
            })
            .collect()
    }

    fn choice(method: Method, rank: usize) -> Choice {
        Choice {
            method,
            rank,
            rule: method.name().into(),
        }
    }

    #[test]
    fn dominance_is_one_for_one_component_per_sample_and_zero_for_equal_weights() {
        let one = Array2::from_shape_fn((4, 12), |(k, j)| if j % 4 == k { 3.0 } else { 0.0 });
        assert!((dominance(one.view()) - 1.0).abs() < 1e-12);
        let flat = Array2::from_elem((4, 12), 2.0f32);
        assert!(dominance(flat.view()).abs() < 1e-12);
        // A component's size does not make it dominant: row scaling leaves D̃ unchanged.
        let mut scaled = one.clone();
        scaled.row_mut(0).mapv_inplace(|x| x * 100.0);
        assert!((dominance(scaled.view()) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn one_standard_error_rule_takes_the_smallest_rank_within_one_se() {
        let scores = cv(&[
            (2, 1.0, 0.01),
            (3, 0.50, 0.01),
            (4, 0.305, 0.01),
            (5, 0.30, 0.01),
        ]);
        assert_eq!(choose_heldout(Method::CrossValidation, &scores).rank, 4);
        let scores = cv(&[
            (2, 1.0, 0.01),
            (3, 0.50, 0.01),
            (4, 0.35, 0.01),
            (5, 0.30, 0.01),
        ]);
        assert_eq!(choose_heldout(Method::CrossValidation, &scores).rank, 5);
    }

    #[test]
    fn unclustered_factors_set_the_cluster_methods_aside() {
        let scores = cv(&[
            (2, 1.0, 0.01),
            (3, 0.5, 0.01),
            (4, 0.1, 0.01),
            (5, 0.1, 0.01),
        ]);
        let choices = [
            choice(Method::Nmfk, 2),
            choice(Method::Consensus, 5),
            choose_heldout(Method::CrossValidation, &scores),
        ];
        let dom = [(2, 0.3), (3, 0.2), (4, 0.1), (5, 0.2)];
        let (rec, d) = decide(&choices, &scores, &[], &dom);
        assert_eq!(rec.rank, 4);
        assert_eq!(d.clustered, Some(false));
        assert_eq!(d.set_aside.len(), 2);
        assert!(d.disagreement.is_some());
        assert!(d.warnings.iter().any(|w| w.contains("disagree")));
    }

    #[test]
    fn on_clustered_factors_the_held_out_error_arbitrates() {
        // CV's one-standard-error choice merges two clusters (r = 4); consensus finds 5 and
        // predicts clearly better, NMFk's 7 predicts no better than 5.
        let scores = cv(&[
            (3, 0.9, 0.01),
            (4, 0.205, 0.02),
            (5, 0.10, 0.02),
            (6, 0.10, 0.02),
            (7, 0.099, 0.02),
        ]);
        let choices = [
            choice(Method::Nmfk, 7),
            choice(Method::Consensus, 5),
            choice(Method::CrossValidation, 4),
        ];
        let dom = [(3, 0.9), (4, 0.9), (5, 0.9), (6, 0.8), (7, 0.7)];
        let (rec, d) = decide(&choices, &scores, &[], &dom);
        assert_eq!(d.clustered, Some(true));
        assert_eq!(rec.rank, 5);
        assert_eq!(rec.method, Method::Consensus);
        assert!(d.set_aside.is_empty());
    }
}
