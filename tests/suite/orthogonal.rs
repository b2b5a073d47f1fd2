//! Orthogonal NMF (ONMF-H, ONMF-W) and the sparse (L1/L2-penalised) objectives under MU.

use crate::common;

use nmf_gpu::ndarray::{Array2, Axis};
use nmf_gpu::{Init, Loss, Nmf, NmfError, Orthogonality, Solver};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `k` clusters of `per` samples each: sample j is its cluster's nonnegative prototype
/// (m features) times a random scale, plus small uniform noise. Returns (V, labels).
fn clustered(m: usize, k: usize, per: usize, seed: u64) -> (Array2<f32>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let protos = Array2::from_shape_simple_fn((m, k), || {
        if rng.random::<f32>() < 0.4 {
            rng.random::<f32>()
        } else {
            0.0
        }
    });
    let n = k * per;
    let mut v = Array2::<f32>::zeros((m, n));
    let mut labels = Vec::with_capacity(n);
    for j in 0..n {
        let c = j % k;
        labels.push(c);
        let scale = 0.5 + rng.random::<f32>();
        for i in 0..m {
            v[[i, j]] = protos[[i, c]] * scale + 0.02 * rng.random::<f32>();
        }
    }
    (v, labels)
}

/// Fraction of samples whose argmax component is the majority component of their true cluster.
fn purity(h: &Array2<f32>, labels: &[usize], k: usize) -> f64 {
    let pred: Vec<usize> = h
        .axis_iter(Axis(1))
        .map(|c| {
            c.iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b })
                .0
        })
        .collect();
    let mut counts = vec![vec![0usize; h.nrows()]; k];
    for (&p, &t) in pred.iter().zip(labels) {
        counts[t][p] += 1;
    }
    let hits: usize = counts
        .iter()
        .map(|c| c.iter().max().copied().unwrap_or(0))
        .sum();
    hits as f64 / labels.len() as f64
}

#[test]
fn onmf_h_residual_falls_and_clusters() {
    let (v, labels) = clustered(60, 4, 30, 1);
    let fit = |iters: usize| {
        Nmf::params(4)
            .orthogonal(Orthogonality::H)
            .init(Init::Random)
            .seed(3)
            .max_iter(iters)
            .tol(0.0)
            .fit(v.view())
            .unwrap()
    };
    let early = fit(2);
    let late = fit(300);
    let (r0, r1) = (
        early.orthogonality_residual().unwrap(),
        late.orthogonality_residual().unwrap(),
    );
    println!("ONMF-H residual after 2 iterations {r0:.4}, after 300 {r1:.4}");
    assert!(r1 < 0.5 * r0, "residual did not fall: {r0} -> {r1}");
    assert!(r1 < 0.1, "H Hᵀ is far from I after 300 iterations: {r1}");
    let rel = late.relative_error(v.view()).unwrap();
    assert!(rel < 0.2, "relative error {rel}");
    let p = purity(&late.h().to_owned(), &labels, 4);
    assert!(p >= 0.95, "ONMF-H cluster purity {p}");
}

#[test]
fn onmf_w_residual_falls() {
    // Orthogonal W clusters the features: transpose the clustered data so its rows come in groups.
    let v = clustered(60, 4, 30, 2).0.t().to_owned();
    let fit = |iters: usize| {
        Nmf::params(4)
            .orthogonal(Orthogonality::W)
            .init(Init::Random)
            .seed(5)
            .max_iter(iters)
            .tol(0.0)
            .fit(v.view())
            .unwrap()
    };
    let (r0, r1) = (
        fit(2).orthogonality_residual().unwrap(),
        fit(300).orthogonality_residual().unwrap(),
    );
    println!("ONMF-W residual after 2 iterations {r0:.4}, after 300 {r1:.4}");
    assert!(r1 < 0.5 * r0, "residual did not fall: {r0} -> {r1}");
    assert!(r1 < 0.1, "Wᵀ W is far from I after 300 iterations: {r1}");
}

#[test]
fn plain_nmf_has_no_residual() {
    let (v, _) = clustered(20, 2, 10, 3);
    let f = Nmf::params(2).fit(v.view()).unwrap();
    assert_eq!(f.orthogonality_residual(), None);
}

#[test]
fn orthogonal_needs_frobenius_mu() {
    let (v, _) = clustered(20, 2, 10, 4);
    for (solver, loss, requires) in [
        (Solver::Hals, Loss::Frobenius, "the solver mu"),
        (
            Solver::MultiplicativeUpdate,
            Loss::KullbackLeibler,
            "the frobenius loss",
        ),
    ] {
        let err = Nmf::params(2)
            .orthogonal(Orthogonality::H)
            .solver(solver)
            .loss(loss)
            .fit(v.view())
            .unwrap_err();
        assert!(
            matches!(err, NmfError::UnsupportedOption { requires: r, .. } if r.starts_with(requires)),
            "{err}"
        );
    }
}

/// `½‖V − WH‖² + l1_W‖W‖₁ + ½ l2_W‖W‖² + l1_H‖H‖₁ + ½ l2_H‖H‖²` with scikit-learn's scaling.
fn penalised(
    v: &Array2<f32>,
    w: &Array2<f32>,
    h: &Array2<f32>,
    alpha: (f32, f32),
    rho: f32,
) -> f64 {
    let (m, n) = v.dim();
    let wh = common::naive_matmul(w, h);
    let d: f64 = v
        .iter()
        .zip(&wh)
        .map(|(&a, &b)| ((a - b) as f64).powi(2))
        .sum::<f64>()
        * 0.5;
    let l1 = |x: &Array2<f32>| x.iter().map(|&a| a as f64).sum::<f64>();
    let l2 = |x: &Array2<f32>| x.iter().map(|&a| (a as f64).powi(2)).sum::<f64>();
    let (aw, ah) = (alpha.0 as f64, alpha.1 as f64);
    let rho = rho as f64;
    d + n as f64 * aw * (rho * l1(w) + 0.5 * (1.0 - rho) * l2(w))
        + m as f64 * ah * (rho * l1(h) + 0.5 * (1.0 - rho) * l2(h))
}

#[test]
fn sparse_objectives_never_increase_under_mu() {
    let (v, _, _) = common::planted(40, 30, 4, 11);
    // The three sparse objectives: L1 on H's columns, ‖W‖²_F (= Σ‖w_i‖²), L1 on W.
    for (alpha, rho) in [((0.0, 0.02), 1.0), ((0.05, 0.0), 0.0), ((0.02, 0.0), 1.0)] {
        let mut prev = f64::INFINITY;
        for iters in 1..=25 {
            let f = Nmf::params(4)
                .init(Init::Random)
                .seed(2)
                .alpha_w(alpha.0)
                .alpha_h(alpha.1)
                .l1_ratio(rho)
                .max_iter(iters)
                .tol(0.0)
                .fit(v.view())
                .unwrap();
            let obj = penalised(&v, &f.w().to_owned(), &f.h().to_owned(), alpha, rho);
            assert!(
                obj <= prev * (1.0 + 1e-5),
                "alpha {alpha:?} l1_ratio {rho}: objective rose at iteration {iters}: {prev} -> {obj}"
            );
            prev = obj;
        }
    }
}

#[test]
fn l1_on_h_makes_encodings_sparser() {
    let (v, _, _) = common::planted(40, 30, 4, 12);
    let zeros = |alpha: f32| {
        let f = Nmf::params(4)
            .alpha_w(0.0)
            .alpha_h(alpha)
            .l1_ratio(1.0)
            .max_iter(400)
            .fit(v.view())
            .unwrap();
        f.h().iter().filter(|&&x| x < 1e-6).count()
    };
    let (z0, z1) = (zeros(0.0), zeros(0.01));
    assert!(z1 > z0, "L1 on H did not add zeros: {z0} -> {z1}");
}
