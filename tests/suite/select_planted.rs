//! The recommended rank on planted data of every kind (`nmf_gpu::select`): dense uniform
//! factors (clusters absent: consensus and NMFk are set aside, held-out error decides), sparse
//! clustered factors (every method counts), samples mixing a few dominant components, noise
//! from 0.5% to 20% of the signal, ranks 3, 6, 10 and 15; and a case ambiguous by
//! construction (one component below the noise), whose summary says so. Small matrices and few
//! runs, so that the whole matrix of cases runs in seconds.

use nmf_gpu::ndarray::Array2;
use nmf_gpu::select::{Method, RankSelect, RankSelection};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// How the samples use the components.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// W and H uniform on [0, 1): every sample mixes every component alike.
    Dense,
    /// Sparse W; each sample has one strong component (`H[j % r, j]`), the rest at most 0.1.
    Clustered,
    /// Uniform W; each sample mixes 2 or 3 components (weights U(0.5, 1.5)), the rest zero.
    FewDominant,
}

/// `V = max(0, W H + E)`, `m x n`, rank `r`, `E` Gaussian with standard deviation `noise`
/// times the root mean square of `W H`.
fn planted(kind: Kind, m: usize, n: usize, r: usize, noise: f64, seed: u64) -> Array2<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (w, h) = match kind {
        Kind::Dense => (
            Array2::from_shape_simple_fn((m, r), || rng.random::<f32>()),
            Array2::from_shape_simple_fn((r, n), || rng.random::<f32>()),
        ),
        Kind::Clustered => {
            let w = Array2::from_shape_simple_fn((m, r), || {
                if rng.random::<f32>() < 0.4 {
                    rng.random::<f32>() + 0.2
                } else {
                    0.0
                }
            });
            let h = Array2::from_shape_fn((r, n), |(k, j)| {
                if k == j % r {
                    1.0 + rng.random::<f32>()
                } else {
                    0.1 * rng.random::<f32>()
                }
            });
            (w, h)
        }
        Kind::FewDominant => {
            let w = Array2::from_shape_simple_fn((m, r), || rng.random::<f32>());
            let mut h = Array2::<f32>::zeros((r, n));
            for j in 0..n {
                let active = 2 + (j % 2);
                // Distinct components for sample j: j, j + 1, ... shifted by a random offset.
                let start = rng.random_range(0..r);
                for t in 0..active {
                    h[[(start + t * (1 + j % (r - 1).max(1))) % r, j]] = 0.5 + rng.random::<f32>();
                }
            }
            (w, h)
        }
    };
    let wh = w.dot(&h);
    let rms =
        (wh.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / wh.len() as f64).sqrt();
    let normal = Normal::new(0.0, noise * rms).expect("a standard deviation");
    wh.mapv(|x| (f64::from(x) + normal.sample(&mut rng)).max(0.0) as f32)
}

fn show(label: &str, sel: &RankSelection) {
    eprintln!("== {label}");
    for (k, &r) in sel.ranks.iter().enumerate() {
        let mut line = format!("r={r:2}");
        if let Some(c) = sel.consensus.get(k) {
            line += &format!(
                " coph={:.3} disp={:.3} evar={:.4}",
                c.cophenetic, c.dispersion, c.explained_variance
            );
        }
        if let Some(s) = sel.nmfk.get(k) {
            line += &format!(" minsil={:.3}", s.min_silhouette);
        }
        if let Some(c) = sel.cv.get(k) {
            line += &format!(" cv={:.5}±{:.5}", c.heldout_rmse, c.heldout_rmse_se);
        }
        if let Some(d) = sel.dominance.iter().find(|x| x.0 == r) {
            line += &format!(" dom={:.3}", d.1);
        }
        eprintln!("{line}");
    }
    for c in &sel.choices {
        eprintln!("{} -> {}", c.method.name(), c.rank);
    }
    eprintln!(
        "recommended {} ({})\n{:#?}",
        sel.recommended().rank,
        sel.recommended().rule,
        sel.decision
    );
}

/// Sweep ranks `r − 2 ..= r + 3` with every method.
fn sweep(v: &Array2<f32>, r: usize, seed: u64) -> RankSelection {
    RankSelect::params(r.saturating_sub(2).max(2)..=r + 3)
        .runs(6)
        .cv_repeats(3)
        .seed(seed)
        .run(v.view())
        .unwrap_or_else(|e| panic!("planted rank {r}: {e}"))
}

/// `planted`, with component `r − 1` scaled by `weak` (in H), so that at a small `weak` the
/// noise swamps it.
fn with_weak_component(
    m: usize,
    n: usize,
    r: usize,
    weak: f32,
    noise: f64,
    seed: u64,
) -> Array2<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let w = Array2::from_shape_simple_fn((m, r), || rng.random::<f32>());
    let h = Array2::from_shape_fn((r, n), |(k, _)| {
        rng.random::<f32>() * if k + 1 == r { weak } else { 1.0 }
    });
    let wh = w.dot(&h);
    let rms =
        (wh.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / wh.len() as f64).sqrt();
    let normal = Normal::new(0.0, noise * rms).expect("a standard deviation");
    wh.mapv(|x| (f64::from(x) + normal.sample(&mut rng)).max(0.0) as f32)
}

#[test]
fn the_planted_rank_is_recommended_for_every_kind_of_factor() {
    let mut failures = Vec::new();
    for (kind, m, n, r, noise, clustered) in [
        // The failing case, scaled down: consensus and NMFk must be set aside.
        (Kind::Dense, 120, 400, 10, 0.02, false),
        (Kind::Dense, 120, 400, 6, 0.005, false),
        (Kind::Dense, 120, 400, 3, 0.2, false),
        (Kind::Clustered, 60, 120, 6, 0.05, true),
        (Kind::Clustered, 120, 400, 10, 0.02, true),
        (Kind::Clustered, 60, 120, 3, 0.2, true),
        (Kind::FewDominant, 120, 400, 6, 0.05, false),
        (Kind::FewDominant, 120, 400, 3, 0.005, false),
        (Kind::Clustered, 120, 400, 15, 0.02, true),
        (Kind::Dense, 150, 500, 15, 0.01, false),
    ] {
        let v = planted(kind, m, n, r, noise, 7);
        let sel = sweep(&v, r, 1);
        let label = format!("{kind:?} {m}x{n} r = {r}, noise {noise}");
        let d = &sel.decision;
        if sel.recommended().rank != r || d.clustered != Some(clustered) {
            show(&label, &sel);
            failures.push(format!(
                "{label}: recommended {} (clustered {:?})",
                sel.recommended().rank,
                d.clustered
            ));
        }
        // Unclustered factors: the cluster methods are set aside, with the reason.
        if !clustered {
            let aside: Vec<Method> = d.set_aside.iter().map(|s| s.0).collect();
            assert!(
                aside.contains(&Method::Consensus) && aside.contains(&Method::Nmfk),
                "{label}: {d:#?}"
            );
            assert!(d.set_aside.iter().all(|s| s.1.contains("not clustered")));
        }
        // A disagreement is named, with the reason, among the warnings.
        if sel.choices.iter().any(|c| c.rank != sel.choices[0].rank) {
            assert!(d.disagreement.is_some(), "{label}");
            assert!(d.warnings.iter().any(|w| w.contains(&d.reason)), "{label}");
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_component_below_the_noise_is_called_ambiguous() {
    // Component 6 at 5% of the others' weight, under 5% noise: 5 or 6, the data cannot say.
    let v = with_weak_component(120, 400, 6, 0.05, 0.05, 3);
    let sel = sweep(&v, 6, 2);
    let d = &sel.decision;
    let r = sel.recommended().rank;
    if !(5..=6).contains(&r) || d.ambiguous.is_none() {
        show("weak component", &sel);
    }
    assert!((5..=6).contains(&r), "recommended {r}");
    let text = d.ambiguous.as_deref().unwrap_or_default();
    assert!(text.contains("noise level"), "{d:#?}");
    assert!(d.warnings.iter().any(|w| w.starts_with("ambiguous")));
}
