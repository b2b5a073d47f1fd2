//! β-divergence multiplicative updates (Itakura–Saito, β ∉ {1, 2}) and fixed components:
//! one step against a naive f64 reference of scikit-learn's rules, objectives that never
//! increase, the loss against a direct evaluation, the rejections, fixed columns and rows that
//! do not move, `fix_w(..)` against `transform`, and the GPU engine against the CPU engine.

use crate::common::{gpu_or_skip, pseudo};
use nmf_gpu::ndarray::{Array2, ArrayView2};
use nmf_gpu::{Backend, CsrMatrix, Factorization, Init, Loss, Nmf, NmfError, NmfParams, Solver};

/// β values with their own rules (the named Frobenius and KL cases run theirs).
const GENERAL_BETAS: [f32; 4] = [0.0, 0.5, 1.5, 3.0];
/// Every β the monotonicity test covers.
const ALL_BETAS: [f32; 6] = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0];
/// One f32 step against the f64 reference: relative difference per entry.
const ONE_STEP_REL_TOL: f64 = 1e-4;
/// A loss may rise by this relative amount between checks (f32 rounding of the updates).
const MONOTONE_SLACK: f64 = 1e-5;
/// GPU and CPU loss curves from the same start.
const GPU_REL_TOL: f64 = 1e-3;

/// Data without zeros (Itakura–Saito needs them positive), a low-rank part plus noise.
fn data(m: usize, n: usize, r: usize, seed: u32) -> Array2<f32> {
    let w = pseudo(m, r, seed) + 0.05;
    let h = pseudo(r, n, seed + 1) + 0.05;
    w.dot(&h) + pseudo(m, n, seed + 2) * 0.2 + 0.01
}

fn start(m: usize, n: usize, r: usize, seed: u32) -> (Array2<f32>, Array2<f32>) {
    (pseudo(m, r, seed + 10) + 0.1, pseudo(r, n, seed + 11) + 0.1)
}

fn params(r: usize, loss: Loss, w0: &Array2<f32>, h0: &Array2<f32>, iters: usize) -> NmfParams {
    Nmf::params(r)
        .loss(loss)
        .init(Init::Custom {
            w: w0.clone(),
            h: h0.clone(),
        })
        .max_iter(iters)
        .tol(0.0)
        .check_every(1)
}

fn to64(a: &ArrayView2<'_, f32>) -> Array2<f64> {
    a.mapv(f64::from)
}

const EPS: f64 = f32::EPSILON as f64;

/// scikit-learn's update of W (`left`) or H for β ∉ {1, 2}, in f64.
fn naive_update(v: &Array2<f64>, w: &mut Array2<f64>, h: &mut Array2<f64>, beta: f64, left: bool) {
    let wh = w.dot(&*h);
    let a = Array2::from_shape_fn(wh.dim(), |(i, j)| {
        let y = if beta < 2.0 {
            wh[[i, j]].max(EPS)
        } else {
            wh[[i, j]]
        };
        v[[i, j]] * y.powf(beta - 2.0)
    });
    let b = wh.mapv(|y| {
        let y = if beta < 1.0 { y.max(EPS) } else { y };
        y.powf(beta - 1.0)
    });
    let gamma = if beta < 1.0 {
        1.0 / (2.0 - beta)
    } else if beta > 2.0 {
        1.0 / (beta - 1.0)
    } else {
        1.0
    };
    let (x, num, den) = if left {
        (w, a.dot(&h.t()), b.dot(&h.t()))
    } else {
        (h, w.t().dot(&a), w.t().dot(&b))
    };
    for ((x, n), d) in x.iter_mut().zip(&num).zip(&den) {
        let d = if *d == 0.0 { EPS } else { *d };
        *x *= (n / d).powf(gamma);
        if beta < 1.0 && *x < f64::EPSILON {
            *x = 0.0;
        }
    }
}

/// scikit-learn's `_beta_divergence` (β ∉ {1, 2}) in f64.
fn naive_divergence(v: &Array2<f64>, w: &Array2<f64>, h: &Array2<f64>, beta: f64) -> f64 {
    let wh = w.dot(h);
    let mut total = 0.0;
    for (&x, &y) in v.iter().zip(&wh) {
        if beta == 0.0 {
            total += if x > EPS {
                let d = x / y.max(EPS);
                d - d.ln() - 1.0
            } else {
                -1.0
            };
        } else if x > EPS {
            let q = y.max(EPS);
            total += (x.powf(beta) - beta * x * q.powf(beta - 1.0) + (beta - 1.0) * y.powf(beta))
                / (beta * (beta - 1.0));
        } else {
            total += y.powf(beta) / beta;
        }
    }
    total
}

fn max_rel(a: ArrayView2<'_, f32>, b: &Array2<f64>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - y).abs() / y.abs().max(1e-6))
        .fold(0.0, f64::max)
}

#[test]
fn one_step_matches_the_naive_reference() {
    for &(m, n, r) in &[(1, 1, 1), (9, 7, 2), (33, 21, 4), (70, 45, 6)] {
        let v = data(m, n, r, 1);
        let (w0, h0) = start(m, n, r, 1);
        for beta in GENERAL_BETAS {
            let fit = params(r, Loss::beta(beta), &w0, &h0, 1)
                .fit(v.view())
                .expect("fit");
            let (mut w, mut h) = (to64(&w0.view()), to64(&h0.view()));
            let v64 = to64(&v.view());
            naive_update(&v64, &mut w, &mut h, f64::from(beta), true);
            naive_update(&v64, &mut w, &mut h, f64::from(beta), false);
            let (dw, dh) = (max_rel(fit.w(), &w), max_rel(fit.h(), &h));
            assert!(
                dw < ONE_STEP_REL_TOL && dh < ONE_STEP_REL_TOL,
                "{m}x{n} r{r} β={beta}: W {dw}, H {dh}"
            );
            // The reported losses are scikit-learn's divergence.
            let d0 = naive_divergence(&v64, &to64(&w0.view()), &to64(&h0.view()), f64::from(beta));
            let d1 = naive_divergence(&v64, &to64(&fit.w()), &to64(&fit.h()), f64::from(beta));
            for (got, want) in fit.losses().iter().zip([d0, d1]) {
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{m}x{n} r{r} β={beta}: loss {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn objectives_never_increase() {
    let (m, n, r) = (40, 30, 4);
    let v = data(m, n, r, 2);
    let (w0, h0) = start(m, n, r, 2);
    for beta in ALL_BETAS {
        let fit = params(r, Loss::beta(beta), &w0, &h0, 80)
            .fit(v.view())
            .expect("fit");
        let losses = fit.losses();
        assert_eq!(losses.len(), 81);
        for pair in losses.windows(2) {
            assert!(
                pair[1] <= pair[0] + MONOTONE_SLACK * pair[0].abs(),
                "β={beta}: loss rose {} -> {}",
                pair[0],
                pair[1]
            );
        }
        assert!(
            losses[80] < 0.5 * losses[0],
            "β={beta}: barely moved, {} -> {}",
            losses[0],
            losses[80]
        );
    }
}

#[test]
fn penalised_beta_fit_and_extreme_scales_run() {
    let (m, n, r) = (20, 16, 3);
    let v = data(m, n, r, 3);
    let (w0, h0) = start(m, n, r, 3);
    for beta in [0.5f32, 3.0] {
        let base = params(r, Loss::beta(beta), &w0, &h0, 30)
            .alpha_w(0.001)
            .l1_ratio(0.5)
            .fit(v.view())
            .expect("penalised fit");
        assert!(base
            .w()
            .iter()
            .chain(base.h())
            .all(|x| x.is_finite() && *x >= 0.0));
        // Data far outside the safe range is fitted scaled; the loss scales by s^β.
        let c = 1e-20f32;
        let scaled = params(
            r,
            Loss::beta(beta),
            &(&w0 * c.sqrt()),
            &(&h0 * c.sqrt()),
            30,
        )
        .fit((&v * c).view())
        .expect("scaled fit");
        let plain = params(r, Loss::beta(beta), &w0, &h0, 30)
            .fit(v.view())
            .expect("fit");
        let ratio = scaled.final_loss() / (plain.final_loss() * f64::from(c).powf(f64::from(beta)));
        assert!((ratio - 1.0).abs() < 1e-2, "β={beta}: loss ratio {ratio}");
    }
}

#[test]
fn invalid_beta_settings_are_refused() {
    let v = data(10, 8, 2, 4);
    let (w0, h0) = start(10, 8, 2, 4);
    let p = params(2, Loss::beta(0.5), &w0, &h0, 5);
    assert!(matches!(
        p.clone().solver(Solver::Hals).fit(v.view()),
        Err(NmfError::UnsupportedLoss { .. })
    ));
    assert!(matches!(
        p.clone().loss(Loss::Beta(f32::NAN)).fit(v.view()),
        Err(NmfError::InvalidParameter { name: "loss", .. })
    ));
    let mut zeros = v.clone();
    zeros[[3, 4]] = 0.0;
    assert!(matches!(
        p.clone().loss(Loss::ItakuraSaito).fit(zeros.view()),
        Err(NmfError::InvalidParameter { name: "loss", .. })
    ));
    assert!(p.clone().loss(Loss::beta(0.5)).fit(zeros.view()).is_ok());
    let csr = CsrMatrix::from_dense(v.view()).expect("csr");
    assert!(matches!(
        p.fit_sparse(&csr),
        Err(NmfError::UnsupportedOption { .. })
    ));
}

fn assert_columns_fixed(fit: &Factorization, w0: &Array2<f32>, cols: &[usize], what: &str) {
    for t in 0..w0.ncols() {
        let same = fit.w().column(t) == w0.column(t);
        assert_eq!(same, cols.contains(&t), "{what}: column {t} of W");
    }
}

fn assert_rows_fixed(fit: &Factorization, h0: &Array2<f32>, rows: &[usize], what: &str) {
    for t in 0..h0.nrows() {
        let same = fit.h().row(t) == h0.row(t);
        assert_eq!(same, rows.contains(&t), "{what}: row {t} of H");
    }
}

#[test]
fn fixed_components_do_not_move() {
    let (m, n, r) = (30, 24, 4);
    let v = data(m, n, r, 5);
    let (w0, h0) = start(m, n, r, 5);
    let cases = [
        (Solver::MultiplicativeUpdate, Loss::Frobenius),
        (Solver::MultiplicativeUpdate, Loss::KullbackLeibler),
        (Solver::MultiplicativeUpdate, Loss::ItakuraSaito),
        (Solver::MultiplicativeUpdate, Loss::beta(1.5)),
        (Solver::Hals, Loss::Frobenius),
        (Solver::AcceleratedHals, Loss::Frobenius),
    ];
    for (solver, loss) in cases {
        let what = format!("{solver:?} {loss}");
        let base = params(r, loss, &w0, &h0, 40).solver(solver);
        let fit = base.clone().fix_w([0, 2]).fit(v.view()).expect("fix_w");
        assert_columns_fixed(&fit, &w0, &[0, 2], &what);
        assert!(fit.h() != h0, "{what}: H moved");
        let fit = base.clone().fix_h([1]).fit(v.view()).expect("fix_h");
        assert_rows_fixed(&fit, &h0, &[1], &what);
        assert_columns_fixed(&fit, &w0, &[], &what);
        let fit = base
            .clone()
            .alpha_w(0.01)
            .fix_w([3])
            .fix_h(..)
            .fit(v.view())
            .expect("fix_w and all of H");
        assert_columns_fixed(&fit, &w0, &[3], &what);
        assert_rows_fixed(&fit, &h0, &[0, 1, 2, 3], &what);
        // The free components still never increase the objective.
        let fit = base.fix_w([1]).fit(v.view()).expect("fix_w");
        for pair in fit.losses().windows(2) {
            assert!(
                pair[1] <= pair[0] + MONOTONE_SLACK * pair[0].abs(),
                "{what}: loss rose {} -> {}",
                pair[0],
                pair[1]
            );
        }
    }
}

#[test]
fn fixed_components_are_checked() {
    let v = data(10, 8, 3, 6);
    let (w0, h0) = start(10, 8, 3, 6);
    let p = params(3, Loss::Frobenius, &w0, &h0, 5);
    assert!(matches!(
        p.clone().fix_w([3]).fit(v.view()),
        Err(NmfError::InvalidParameter { name: "fix_w", .. })
    ));
    assert!(matches!(
        p.clone().fix_w(..).fix_h(..).fit(v.view()),
        Err(NmfError::InvalidParameter { name: "fix_h", .. })
    ));
    assert!(matches!(
        Nmf::params(3).fix_w([0]).fit(v.view()),
        Err(NmfError::UnsupportedOption { .. })
    ));
    assert!(matches!(
        p.solver(Solver::MultiplicativeUpdate)
            .orthogonal(nmf_gpu::Orthogonality::H)
            .fix_h([0])
            .fit(v.view()),
        Err(NmfError::UnsupportedOption { .. })
    ));
}

#[test]
fn fixing_all_of_w_is_transform() {
    let (m, n, r) = (25, 20, 3);
    let v = data(m, n, r, 7);
    let v_new = data(m, 11, r, 8);
    for loss in [Loss::Frobenius, Loss::KullbackLeibler, Loss::beta(0.5)] {
        let model = Nmf::params(r)
            .loss(loss)
            .max_iter(60)
            .tol(0.0)
            .fit(v.view())
            .expect("fit");
        let h = model.transform(v_new.view()).expect("transform");
        // transform's start: sqrt(mean(V') / r) everywhere.
        let mean = v_new.iter().map(|&x| f64::from(x)).sum::<f64>() / v_new.len() as f64;
        let h0 = Array2::from_elem((r, 11), (mean / r as f64).sqrt() as f32);
        let fixed = Nmf::params(r)
            .loss(loss)
            .max_iter(60)
            .tol(0.0)
            .init(Init::Custom {
                w: model.w().to_owned(),
                h: h0,
            })
            .fix_w(..)
            .fit(v_new.view())
            .expect("fit with W fixed");
        assert_eq!(fixed.w(), model.w(), "{loss}: W moved");
        let rel = (&fixed.h() - &h)
            .mapv(|x| f64::from(x).powi(2))
            .sum()
            .sqrt()
            / h.mapv(|x| f64::from(x).powi(2)).sum().sqrt();
        assert!(rel < 1e-5, "{loss}: fix_w(..) vs transform {rel}");
    }
}

#[test]
fn gpu_matches_cpu_for_beta_and_fixed_components() {
    let Some(ctx) = gpu_or_skip() else {
        return;
    };
    let (m, n, r) = (70, 50, 5);
    let v = data(m, n, r, 9);
    let (w0, h0) = start(m, n, r, 9);
    for beta in GENERAL_BETAS {
        let p = params(r, Loss::beta(beta), &w0, &h0, 30).check_every(5);
        let cpu = p.clone().fit(v.view()).expect("cpu");
        let gpu = p
            .backend(Backend::Gpu(ctx.clone()))
            .fit(v.view())
            .expect("gpu");
        assert!(gpu.engine().starts_with("gpu"), "ran on {}", gpu.engine());
        assert_eq!(gpu.loss_iterations(), cpu.loss_iterations());
        for (g, c) in gpu.losses().iter().zip(cpu.losses()) {
            assert!(
                (g - c).abs() <= GPU_REL_TOL * c.abs(),
                "β={beta}: gpu {g} cpu {c}"
            );
        }
    }
    for solver in [
        Solver::MultiplicativeUpdate,
        Solver::Hals,
        Solver::AcceleratedHals,
    ] {
        let p = params(r, Loss::Frobenius, &w0, &h0, 20)
            .solver(solver)
            .fix_w([1, 3])
            .fix_h([0]);
        let cpu = p.clone().fit(v.view()).expect("cpu");
        let gpu = p
            .backend(Backend::Gpu(ctx.clone()))
            .fit(v.view())
            .expect("gpu");
        for fit in [&cpu, &gpu] {
            assert_columns_fixed(fit, &w0, &[1, 3], &format!("{solver:?} {}", fit.engine()));
            assert_rows_fixed(fit, &h0, &[0], &format!("{solver:?} {}", fit.engine()));
        }
        let (g, c) = (gpu.final_loss(), cpu.final_loss());
        assert!(
            (g - c).abs() <= GPU_REL_TOL * c,
            "{solver:?}: gpu {g} cpu {c}"
        );
    }
}
