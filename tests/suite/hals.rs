//! HALS (coordinate descent): planted recovery, monotone objective, regularisation effects.

use crate::common::planted;
use nmf_gpu::{Init, Nmf, Solver};

#[test]
fn planted_rank10_recovered_to_1e_3() {
    let (v, _, _) = planted(200, 300, 10, 1);
    for init in [Init::Nndsvda, Init::Random] {
        let fit = Nmf::params(10)
            .solver(Solver::Hals)
            .init(init.clone())
            .max_iter(300)
            .tol(0.0)
            .fit(v.view())
            .unwrap();
        let err = fit.relative_error(v.view()).unwrap();
        println!(
            "{init:?}: relative error {err:.3e} after {} iterations",
            fit.n_iter()
        );
        assert!(err < 1e-3, "{init:?}: relative error {err}");
    }
}

use crate::common::{max_rel_diff, naive_matmul, uniform};
use nmf_gpu::ndarray::Array2;

/// One HALS iteration by plain loops (scikit-learn's coordinate descent order).
fn naive_hals(
    v: &Array2<f32>,
    w: &mut Array2<f32>,
    h: &mut Array2<f32>,
    l1: (f32, f32),
    l2: (f32, f32),
) {
    let r = w.ncols();
    // W sweep
    let p = naive_matmul(v, &h.t().to_owned());
    let g = naive_matmul(h, &h.t().to_owned());
    for t in 0..r {
        let hess = g[[t, t]] + l2.0;
        if hess == 0.0 {
            continue;
        }
        for i in 0..w.nrows() {
            let mut grad = l1.0 - p[[i, t]] + l2.0 * w[[i, t]];
            for k in 0..r {
                grad += g[[t, k]] * w[[i, k]];
            }
            w[[i, t]] = (w[[i, t]] - grad / hess).max(0.0);
        }
    }
    // H sweep
    let q = naive_matmul(&w.t().to_owned(), v);
    let k = naive_matmul(&w.t().to_owned(), w);
    for t in 0..r {
        let hess = k[[t, t]] + l2.1;
        if hess == 0.0 {
            continue;
        }
        for j in 0..h.ncols() {
            let mut grad = l1.1 - q[[t, j]] + l2.1 * h[[t, j]];
            for s in 0..r {
                grad += k[[t, s]] * h[[s, j]];
            }
            h[[t, j]] = (h[[t, j]] - grad / hess).max(0.0);
        }
    }
}

/// One HALS iteration vs the loops: a few GEMMs deep in f32.
const ONE_STEP_REL_TOL: f64 = 1e-4;

#[test]
fn one_iteration_matches_naive_reference_with_and_without_penalties() {
    for &(m, n, r) in &[
        (1, 1, 1),
        (9, 7, 1),
        (33, 65, 3),
        (100, 70, 12),
        (70, 129, 17),
    ] {
        let v = uniform(m, n, 11);
        let w0 = uniform(m, r, 12).mapv(|x| x + 0.05);
        let h0 = uniform(r, n, 13).mapv(|x| x + 0.05);
        for (alpha, l1_ratio) in [(0.0f32, 0.0f32), (0.01, 0.0), (0.01, 1.0), (0.02, 0.3)] {
            let fit = Nmf::params(r)
                .solver(Solver::Hals)
                .init(Init::Custom {
                    w: w0.clone(),
                    h: h0.clone(),
                })
                .alpha_w(alpha)
                .l1_ratio(l1_ratio)
                .max_iter(1)
                .tol(0.0)
                .fit(v.view())
                .unwrap();
            // scikit-learn scaling: W's penalty by n, H's by m.
            let (mf, nf) = (m as f32, n as f32);
            let l1 = (nf * alpha * l1_ratio, mf * alpha * l1_ratio);
            let l2 = (nf * alpha * (1.0 - l1_ratio), mf * alpha * (1.0 - l1_ratio));
            let (mut w, mut h) = (w0.clone(), h0.clone());
            naive_hals(&v, &mut w, &mut h, l1, l2);
            let (dw, dh) = (
                max_rel_diff(&fit.w().to_owned(), &w),
                max_rel_diff(&fit.h().to_owned(), &h),
            );
            assert!(
                dw < ONE_STEP_REL_TOL && dh < ONE_STEP_REL_TOL,
                "{m}x{n} r{r} alpha {alpha} l1 {l1_ratio}: {dw} {dh}"
            );
        }
    }
}

#[test]
fn objective_never_increases() {
    for &(m, n, r) in &[(30, 40, 1), (50, 20, 4), (64, 80, 12)] {
        for seed in 0..4u64 {
            let v = uniform(m, n, seed + 70);
            let fit = Nmf::params(r)
                .solver(Solver::Hals)
                .init(Init::Random)
                .seed(seed)
                .max_iter(40)
                .tol(0.0)
                .check_every(1)
                .fit(v.view())
                .unwrap();
            // Reported losses carry f32 rounding of about 1e-6 relative.
            for pair in fit.losses().windows(2) {
                assert!(pair[1] <= pair[0] * (1.0 + 1e-5), "{m}x{n} r{r}: {pair:?}");
            }
        }
    }
}

#[test]
fn l1_penalty_on_h_makes_it_sparser() {
    let v = uniform(60, 80, 21);
    let zeros = |alpha: f32| {
        let fit = Nmf::params(8)
            .solver(Solver::Hals)
            .alpha_w(0.0)
            .alpha_h(alpha)
            .l1_ratio(1.0)
            .max_iter(200)
            .fit(v.view())
            .unwrap();
        fit.h().iter().filter(|&&x| x == 0.0).count()
    };
    let (plain, sparse) = (zeros(0.0), zeros(0.01));
    assert!(
        sparse > plain + 50,
        "zeros in H: {plain} without, {sparse} with L1"
    );
}
