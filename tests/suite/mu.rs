//! Multiplicative updates: one step against a naive reference, monotone objectives,
//! nonnegative finite output, seed determinism, transform consistency.

use crate::common::{max_rel_diff, naive_matmul, planted, uniform};
use nmf_gpu::ndarray::Array2;
use nmf_gpu::{Init, Loss, Nmf, Solver};

/// One MU step computed by the engine vs the naive formulas: a few GEMMs deep, f32.
const ONE_STEP_REL_TOL: f64 = 1e-4;
/// Slack for "never increases" when the objective is measured in f64 from the f32 factors.
const MONOTONE_REL_SLACK: f64 = 1e-6;

/// W ← W ⊙ (V Hᵀ) ⊘ (W H Hᵀ), then H ← H ⊙ (Wᵀ V) ⊘ (Wᵀ W H), by triple loops.
fn naive_mu_frobenius(v: &Array2<f32>, w: &mut Array2<f32>, h: &mut Array2<f32>) {
    let eps = f32::EPSILON;
    let num = naive_matmul(v, &h.t().to_owned());
    let den = naive_matmul(w, &naive_matmul(h, &h.t().to_owned()));
    for ((x, &n), &d) in w.iter_mut().zip(num.iter()).zip(den.iter()) {
        *x *= n / if d == 0.0 { eps } else { d };
    }
    let num = naive_matmul(&w.t().to_owned(), v);
    let den = naive_matmul(&naive_matmul(&w.t().to_owned(), w), h);
    for ((x, &n), &d) in h.iter_mut().zip(num.iter()).zip(den.iter()) {
        *x *= n / if d == 0.0 { eps } else { d };
    }
}

/// KL: W ← W ⊙ ((V ⊘ WH) Hᵀ) ⊘ (1 (H1)ᵀ), then H ← H ⊙ (Wᵀ (V ⊘ WH)) ⊘ ((Wᵀ1) 1ᵀ).
fn naive_mu_kl(v: &Array2<f32>, w: &mut Array2<f32>, h: &mut Array2<f32>) {
    let eps = f32::EPSILON;
    let ratio = |w: &Array2<f32>, h: &Array2<f32>| {
        let wh = naive_matmul(w, h);
        Array2::from_shape_fn(v.dim(), |(i, j)| v[[i, j]] / wh[[i, j]].max(eps))
    };
    let z = ratio(w, h);
    let num = naive_matmul(&z, &h.t().to_owned());
    let hsum: Vec<f32> = h.rows().into_iter().map(|r| r.sum()).collect();
    for ((i, t), x) in w.indexed_iter_mut() {
        *x *= num[[i, t]] / hsum[t];
    }
    let z = ratio(w, h);
    let num = naive_matmul(&w.t().to_owned(), &z);
    let wsum: Vec<f32> = w.columns().into_iter().map(|c| c.sum()).collect();
    for ((t, j), x) in h.indexed_iter_mut() {
        *x *= num[[t, j]] / wsum[t];
    }
}

fn one_step(
    v: &Array2<f32>,
    w0: &Array2<f32>,
    h0: &Array2<f32>,
    loss: Loss,
) -> (Array2<f32>, Array2<f32>) {
    let fit = Nmf::params(w0.ncols())
        .loss(loss)
        .init(Init::Custom {
            w: w0.clone(),
            h: h0.clone(),
        })
        .max_iter(1)
        .tol(0.0)
        .fit(v.view())
        .unwrap();
    let (w, h) = fit.into_parts();
    (w, h)
}

#[test]
fn one_step_matches_naive_reference_at_odd_shapes() {
    for &(m, n, r) in &[
        (1, 1, 1),
        (7, 5, 1),
        (17, 33, 3),
        (65, 31, 9),
        (129, 70, 17),
    ] {
        let v = uniform(m, n, 1);
        let w0 = uniform(m, r, 2).mapv(|x| x + 0.1);
        let h0 = uniform(r, n, 3).mapv(|x| x + 0.1);
        for loss in [Loss::Frobenius, Loss::KullbackLeibler] {
            let (w, h) = one_step(&v, &w0, &h0, loss);
            let (mut wr, mut hr) = (w0.clone(), h0.clone());
            match loss {
                Loss::Frobenius => naive_mu_frobenius(&v, &mut wr, &mut hr),
                Loss::KullbackLeibler => naive_mu_kl(&v, &mut wr, &mut hr),
                _ => unreachable!("only the two losses above are listed"),
            }
            let (dw, dh) = (max_rel_diff(&w, &wr), max_rel_diff(&h, &hr));
            assert!(
                dw < ONE_STEP_REL_TOL && dh < ONE_STEP_REL_TOL,
                "{m}x{n} r{r} {loss:?}: {dw} {dh}"
            );
        }
    }
}

fn assert_monotone(losses: &[f64], slack: f64, what: &str) {
    for pair in losses.windows(2) {
        assert!(
            pair[1] <= pair[0] * (1.0 + slack),
            "{what}: loss increased {} -> {}",
            pair[0],
            pair[1]
        );
    }
}

/// ½‖V − WH‖² in f64 from the f32 factors.
fn frobenius_f64(v: &Array2<f32>, w: &Array2<f32>, h: &Array2<f32>) -> f64 {
    let mut acc = 0.0f64;
    for i in 0..v.nrows() {
        for j in 0..v.ncols() {
            let wh: f64 = (0..w.ncols())
                .map(|t| w[[i, t]] as f64 * h[[t, j]] as f64)
                .sum();
            let d = v[[i, j]] as f64 - wh;
            acc += d * d;
        }
    }
    0.5 * acc
}

/// Reported losses are computed in f32 arithmetic (exactly or from the iteration's products).
const LOSS_REPORT_REL_TOL: f64 = 1e-5;

#[test]
fn frobenius_mu_objective_never_increases() {
    // One iteration at a time from the previous factors, objective measured in f64.
    let shapes = [
        (30, 40, 1),
        (50, 20, 3),
        (25, 60, 8),
        (64, 64, 16),
        (9, 200, 5),
    ];
    for (k, &(m, n, r)) in shapes.iter().enumerate() {
        for seed in 0..4u64 {
            let v = uniform(m, n, 100 * k as u64 + seed);
            let first = Nmf::params(r)
                .init(Init::Random)
                .seed(seed)
                .max_iter(1)
                .fit(v.view())
                .unwrap();
            let (mut w, mut h) = first.into_parts();
            let mut prev = frobenius_f64(&v, &w, &h);
            for it in 0..40 {
                let fit = Nmf::params(r)
                    .init(Init::Custom {
                        w: w.clone(),
                        h: h.clone(),
                    })
                    .max_iter(1)
                    .tol(0.0)
                    .fit(v.view())
                    .unwrap();
                (w, h) = fit.into_parts();
                let cur = frobenius_f64(&v, &w, &h);
                assert!(
                    cur <= prev * (1.0 + MONOTONE_REL_SLACK),
                    "{m}x{n} r{r} seed {seed} iteration {it}: {prev} -> {cur}"
                );
                prev = cur;
            }
        }
    }
}

#[test]
fn reported_losses_follow_the_objective() {
    for &(m, n, r) in &[(30, 40, 1), (50, 20, 3), (64, 64, 16)] {
        for init in [Init::Random, Init::Nndsvda] {
            let v = uniform(m, n, 7);
            let fit = Nmf::params(r)
                .init(init.clone())
                .max_iter(60)
                .tol(0.0)
                .check_every(1)
                .fit(v.view())
                .unwrap();
            assert_eq!(fit.losses().len(), 61);
            assert_monotone(
                fit.losses(),
                LOSS_REPORT_REL_TOL,
                &format!("{m}x{n} r{r} {init:?}"),
            );
            let exact = frobenius_f64(&v, &fit.w().to_owned(), &fit.h().to_owned());
            let rel = (fit.final_loss() - exact).abs() / exact;
            assert!(
                rel < LOSS_REPORT_REL_TOL,
                "{m}x{n} r{r}: reported {} exact {exact}",
                fit.final_loss()
            );
        }
    }
}

#[test]
fn kl_mu_objective_never_increases() {
    for &(m, n, r) in &[(30, 40, 1), (50, 20, 4), (40, 70, 10)] {
        for seed in 0..4u64 {
            let v = uniform(m, n, seed + 50);
            let fit = Nmf::params(r)
                .loss(Loss::KullbackLeibler)
                .init(Init::Random)
                .seed(seed)
                .max_iter(60)
                .tol(0.0)
                .check_every(1)
                .fit(v.view())
                .unwrap();
            assert_monotone(
                fit.losses(),
                MONOTONE_REL_SLACK,
                &format!("KL {m}x{n} r{r} seed {seed}"),
            );
            assert!(fit.final_loss() < fit.losses()[0]);
        }
    }
}

#[test]
fn outputs_finite_and_nonnegative_even_with_zero_rows() {
    let mut v = uniform(40, 30, 4);
    v.row_mut(3).fill(0.0);
    v.column_mut(7).fill(0.0);
    for (solver, loss) in [
        (Solver::MultiplicativeUpdate, Loss::Frobenius),
        (Solver::MultiplicativeUpdate, Loss::KullbackLeibler),
        (Solver::Hals, Loss::Frobenius),
    ] {
        for init in [Init::Nndsvd, Init::Nndsvda, Init::Nndsvdar, Init::Random] {
            let fit = Nmf::params(5)
                .solver(solver)
                .loss(loss)
                .init(init.clone())
                .max_iter(50)
                .fit(v.view())
                .unwrap();
            for x in fit.w().iter().chain(fit.h().iter()) {
                assert!(
                    x.is_finite() && *x >= 0.0,
                    "{solver:?} {loss:?} {init:?}: {x}"
                );
            }
        }
    }
}

#[test]
fn same_seed_same_result_other_seed_differs() {
    let v = uniform(30, 25, 5);
    let run = |seed| {
        Nmf::params(4)
            .init(Init::Random)
            .seed(seed)
            .max_iter(30)
            .fit(v.view())
            .unwrap()
    };
    let (a, b, c) = (run(1), run(1), run(2));
    assert_eq!(a.w(), b.w());
    assert_eq!(a.h(), b.h());
    assert_ne!(a.w(), c.w());
}

#[test]
fn transform_reproduces_training_encodings() {
    let (v, _, _) = planted(60, 80, 5, 11);
    for solver in [Solver::Hals, Solver::MultiplicativeUpdate] {
        let fit = Nmf::params(5)
            .solver(solver)
            .max_iter(2000)
            .tol(1e-7)
            .fit(v.view())
            .unwrap();
        let h = fit.transform(v.view()).unwrap();
        let d = max_rel_diff(&h, &fit.h().to_owned());
        assert!(d < 2e-2, "{solver:?}: transform differs from H by {d}");
        let wh = fit.inverse_transform(fit.h()).unwrap();
        let direct = naive_matmul(&fit.w().to_owned(), &fit.h().to_owned());
        assert!(max_rel_diff(&wh, &direct) < 1e-5);
    }
}

#[test]
fn tol_zero_runs_exactly_max_iter_and_tol_stops_early() {
    let v = uniform(30, 40, 6);
    let fit = Nmf::params(3).max_iter(77).tol(0.0).fit(v.view()).unwrap();
    assert_eq!(fit.n_iter(), 77);
    assert!(!fit.converged());
    let fit = Nmf::params(3)
        .max_iter(5000)
        .tol(1e-3)
        .fit(v.view())
        .unwrap();
    assert!(fit.converged() && fit.n_iter() < 5000 && fit.n_iter().is_multiple_of(10));
}
