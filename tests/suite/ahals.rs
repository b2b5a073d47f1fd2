//! Accelerated HALS: monotone (plain and penalised), the fixed points of HALS, the same on the
//! GPU engine as on the CPU.

use crate::common;

use nmf_gpu::ndarray::Array2;
use nmf_gpu::{Backend, Factorization, Init, Loss, Nmf, NmfError, Solver};

/// Reported losses carry f32 rounding of about 1e-6 relative.
const MONOTONE_SLACK: f64 = 1e-5;

fn ahals(r: usize) -> nmf_gpu::NmfParams {
    Nmf::params(r).solver(Solver::AcceleratedHals)
}

/// The penalised objective `D + l1_W‖W‖₁ + ½l2_W‖W‖² + l1_H‖H‖₁ + ½l2_H‖H‖²` (scikit-learn's
/// scaling: W's weights by n, H's by m) of a fit of `v`, in f64.
fn penalised(v: &Array2<f32>, fit: &Factorization, alpha_w: f64, alpha_h: f64, rho: f64) -> f64 {
    let (m, n) = v.dim();
    let (w, h) = (fit.w(), fit.h());
    let wh = common::naive_matmul(&w.to_owned(), &h.to_owned());
    let d: f64 = v
        .iter()
        .zip(wh.iter())
        .map(|(&a, &b)| 0.5 * (f64::from(a) - f64::from(b)).powi(2))
        .sum();
    let l1 =
        |x: nmf_gpu::ndarray::ArrayView2<'_, f32>| x.iter().map(|&a| f64::from(a)).sum::<f64>();
    let l2 = |x: nmf_gpu::ndarray::ArrayView2<'_, f32>| {
        x.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>()
    };
    let (nw, mh) = (n as f64 * alpha_w, m as f64 * alpha_h);
    d + nw * (rho * l1(w) + 0.5 * (1.0 - rho) * l2(w))
        + mh * (rho * l1(h) + 0.5 * (1.0 - rho) * l2(h))
}

#[test]
fn objective_never_increases() {
    for &(m, n, r) in &[(30, 40, 1), (50, 20, 4), (64, 80, 12), (200, 30, 5)] {
        for seed in 0..3u64 {
            let v = common::uniform(m, n, seed + 170);
            let fit = ahals(r)
                .init(Init::Random)
                .seed(seed)
                .max_iter(30)
                .tol(0.0)
                .check_every(1)
                .fit(v.view())
                .unwrap();
            for pair in fit.losses().windows(2) {
                assert!(
                    pair[1] <= pair[0] * (1.0 + MONOTONE_SLACK),
                    "{m}x{n} r{r}: {pair:?}"
                );
            }
        }
    }
}

#[test]
fn penalised_objective_never_increases() {
    let v = common::uniform(60, 70, 31);
    for &(alpha, rho) in &[(0.01f32, 0.0f32), (0.01, 1.0), (0.005, 0.5)] {
        let mut prev = f64::INFINITY;
        for iters in 1..=12 {
            let fit = ahals(5)
                .init(Init::Random)
                .seed(3)
                .alpha_w(alpha)
                .alpha_h(alpha)
                .l1_ratio(rho)
                .max_iter(iters)
                .tol(0.0)
                .fit(v.view())
                .unwrap();
            let f = penalised(&v, &fit, f64::from(alpha), f64::from(alpha), f64::from(rho));
            assert!(
                f <= prev * (1.0 + MONOTONE_SLACK),
                "alpha {alpha} rho {rho} iteration {iters}: {f} > {prev}"
            );
            prev = f;
        }
    }
}

#[test]
fn reaches_the_fixed_points_of_hals_on_planted_data() {
    let (v, _, _) = common::planted(80, 100, 6, 41);
    let fit = ahals(6)
        .init(Init::Nndsvda)
        .max_iter(400)
        .tol(1e-9)
        .fit(v.view())
        .unwrap();
    let rel = fit.relative_error(v.view()).unwrap();
    assert!(rel < 1e-3, "relative error {rel}");
    // And it takes no more outer iterations than HALS to get there.
    let hals = Nmf::params(6)
        .solver(Solver::Hals)
        .init(Init::Nndsvda)
        .max_iter(400)
        .tol(1e-9)
        .fit(v.view())
        .unwrap();
    let hals_rel = hals.relative_error(v.view()).unwrap();
    assert!(
        rel <= hals_rel.max(1e-4) * 1.5,
        "ahals {rel} vs hals {hals_rel}"
    );
}

#[test]
fn a_hals_fixed_point_is_left_where_it_is() {
    // Start at a converged HALS solution: accelerated HALS must not move away from it.
    let (v, _, _) = common::planted(40, 50, 4, 42);
    let hals = Nmf::params(4)
        .solver(Solver::Hals)
        .max_iter(2000)
        .tol(0.0)
        .fit(v.view())
        .unwrap();
    let (w, h) = hals.clone().into_parts();
    let again = ahals(4)
        .init(Init::Custom { w, h })
        .max_iter(5)
        .tol(0.0)
        .fit(v.view())
        .unwrap();
    let (a, b) = (
        hals.relative_error(v.view()).unwrap(),
        again.relative_error(v.view()).unwrap(),
    );
    assert!(b <= a * 1.0001 + 1e-7, "{a} -> {b}");
}

#[test]
fn kl_is_refused_and_transform_works() {
    let v = common::uniform(20, 30, 43);
    let err = ahals(3)
        .loss(Loss::KullbackLeibler)
        .fit(v.view())
        .unwrap_err();
    assert!(
        matches!(
            err,
            NmfError::UnsupportedLoss {
                solver: "ahals",
                ..
            }
        ),
        "{err}"
    );
    let fit = ahals(3).max_iter(100).fit(v.view()).unwrap();
    let h = fit.transform(v.view()).unwrap();
    assert_eq!(h.dim(), (3, 30));
    let rel_fit = fit.relative_error(v.view()).unwrap();
    let rel_tr = nmf_gpu::relative_error(v.view(), fit.w(), h.view()).unwrap();
    assert!(rel_tr <= rel_fit * 1.01, "{rel_tr} vs {rel_fit}");
}

#[test]
fn gpu_equals_cpu_from_the_same_start() {
    let Some(ctx) = common::gpu_or_skip() else {
        return;
    };
    let v = common::uniform(70, 90, 44);
    let run = |backend: Backend| {
        ahals(5)
            .init(Init::Nndsvda)
            .max_iter(30)
            .tol(0.0)
            .backend(backend)
            .fit(v.view())
            .unwrap()
    };
    let (cpu, gpu) = (run(Backend::Cpu), run(Backend::Gpu(ctx)));
    let (a, b) = (
        cpu.relative_error(v.view()).unwrap(),
        gpu.relative_error(v.view()).unwrap(),
    );
    assert!((a - b).abs() <= 1e-4 * a.max(1e-3), "cpu {a} gpu {b}");
}
