//! Valid but extreme data (subnormal, huge) gives the right answer, and a fit that would not
//! fit in memory is refused before it allocates.

use crate::common;

use nmf_gpu::ndarray::Array2;
use nmf_gpu::{CsrMatrix, Init, Loss, Nmf, NmfError, Solver};

/// Relative errors of a fit of `c·V` and of `V` (same start, scaled) agree to this: the runs
/// differ only by the absolute `ε` floors and rounding.
const SCALE_TOL: f64 = 1e-3;

fn cases() -> Vec<(Solver, Loss)> {
    vec![
        (Solver::MultiplicativeUpdate, Loss::Frobenius),
        (Solver::MultiplicativeUpdate, Loss::KullbackLeibler),
        (Solver::Hals, Loss::Frobenius),
    ]
}

fn fit_rel(v: &Array2<f32>, solver: Solver, loss: Loss) -> (f64, f64) {
    let fit = Nmf::params(4)
        .solver(solver)
        .loss(loss)
        .init(Init::Nndsvda)
        .max_iter(200)
        .tol(0.0)
        .fit(v.view())
        .unwrap();
    assert!(fit.w().iter().chain(fit.h().iter()).all(|x| x.is_finite()));
    assert!(fit.final_loss().is_finite(), "{solver:?} {loss:?}");
    (fit.relative_error(v.view()).unwrap(), fit.final_loss())
}

#[test]
fn tiny_and_huge_data_fit_as_well_as_data_near_one() {
    let (v, _, _) = common::planted(40, 50, 4, 11);
    let v = v.mapv(|x| x + 0.05);
    for (solver, loss) in cases() {
        let (base, base_loss) = fit_rel(&v, solver, loss);
        assert!(base < 0.2, "{solver:?} {loss:?}: {base}");
        for c in [1e-40f32, 1e-30, 1e20, 1e30] {
            let vc = v.mapv(|x| x * c);
            let (rel, loss_c) = fit_rel(&vc, solver, loss);
            assert!(
                (rel - base).abs() <= SCALE_TOL,
                "{solver:?} {loss:?} x{c:e}: relative error {rel} vs {base}"
            );
            // The reported loss is the loss of the data given: c² (Frobenius) or c (KL) times
            // that of V.
            let factor = match loss {
                Loss::Frobenius => f64::from(c) * f64::from(c),
                Loss::KullbackLeibler => f64::from(c),
                other => f64::from(c).powf(f64::from(other.beta_value())),
            };
            let ratio = loss_c / (base_loss * factor);
            assert!(
                (ratio - 1.0).abs() < 1e-2,
                "{solver:?} {loss:?} x{c:e}: loss ratio {ratio}"
            );
        }
    }
}

#[test]
fn subnormal_data_is_not_reported_as_an_exact_fit() {
    let v = Array2::from_shape_fn((20, 30), |(i, j)| 1e-40 * (1.0 + ((i * 3 + j) % 7) as f32));
    let fit = Nmf::params(2).max_iter(100).fit(v.view()).unwrap();
    assert!(fit.w().iter().any(|&x| x > 0.0), "W is not all zero");
    let rel = fit.relative_error(v.view()).unwrap();
    assert!(rel > 0.0 && rel < 0.5, "{rel}");
    // The free function agrees on the same factors.
    let free = nmf_gpu::relative_error(v.view(), fit.w(), fit.h()).unwrap();
    assert!((free - rel).abs() < 1e-9);
    // A zero model of subnormal data has relative error 1, not 0.
    let zero = nmf_gpu::relative_error(
        v.view(),
        Array2::zeros((20, 2)).view(),
        Array2::zeros((2, 30)).view(),
    )
    .unwrap();
    assert!((zero - 1.0).abs() < 1e-6, "{zero}");
}

#[test]
fn transform_of_extreme_data_matches_the_fit() {
    let (v, _, _) = common::planted(30, 40, 3, 12);
    let v = v.mapv(|x| (x + 0.01) * 1e30);
    let fit = Nmf::params(3)
        .solver(Solver::Hals)
        .max_iter(300)
        .tol(0.0)
        .fit(v.view())
        .unwrap();
    let h = fit.transform(v.view()).unwrap();
    let rel = nmf_gpu::relative_error(v.view(), fit.w(), h.view()).unwrap();
    assert!(rel < 0.05, "{rel}");
}

#[test]
fn sparse_extreme_data_matches_dense() {
    let (v, _, _) = common::planted(30, 40, 3, 13);
    let v = v.mapv(|x| x * 1e-38);
    let csr = CsrMatrix::from_dense(v.view()).unwrap();
    let dense = Nmf::params(3).max_iter(50).tol(0.0).fit(v.view()).unwrap();
    let sparse = Nmf::params(3)
        .max_iter(50)
        .tol(0.0)
        .fit_sparse(&csr)
        .unwrap();
    let (a, b) = (
        dense.relative_error(v.view()).unwrap(),
        sparse.relative_error(v.view()).unwrap(),
    );
    assert!((a - b).abs() < 1e-3 && a < 0.5, "{a} {b}");
}

#[test]
fn a_fit_beyond_the_memory_limit_is_refused_before_allocating() {
    let v = common::uniform(200, 300, 14);
    let err = Nmf::params(20)
        .memory_limit(1 << 20)
        .fit(v.view())
        .unwrap_err();
    match err {
        NmfError::FitTooLarge { need, limit, .. } => {
            assert_eq!(limit, 1 << 20);
            assert!(need > limit);
        }
        other => panic!("{other}"),
    }
    // The same fit under a generous limit runs.
    Nmf::params(20)
        .memory_limit(1 << 30)
        .max_iter(5)
        .fit(v.view())
        .unwrap();
}

#[test]
fn a_huge_declared_shape_is_refused_not_allocated() {
    // 5 x 700 000 000 with one stored entry: H alone would be 700 000 000 x r floats.
    let csr = CsrMatrix::from_triplets(5, 700_000_000, vec![(0, 3, 1.0)]).unwrap();
    let err = Nmf::params(3)
        .init(Init::Random)
        .fit_sparse(&csr)
        .unwrap_err();
    assert!(matches!(err, NmfError::FitTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("700000000"), "{err}");
}

#[test]
fn masked_fit_of_extreme_data_matches_data_near_one() {
    use nmf_gpu::MaskedNmf;
    let (v, _, _) = common::planted(30, 40, 3, 15);
    let v = v.mapv(|x| x + 0.1);
    let observed = Array2::from_shape_fn(v.dim(), |(i, j)| (i * 5 + j * 3) % 4 != 0);
    let fit = |v: &Array2<f32>| {
        // No penalty: an absolute penalty weight is not scale-free (on data around 1e-40 the
        // default ridge would rightly crush the factors to zero).
        MaskedNmf::params(3)
            .l2(0.0)
            .max_iter(200)
            .tol(0.0)
            .fit(v.view(), observed.view())
            .unwrap()
    };
    let base = fit(&v);
    for c in [1e-40f32, 1e30] {
        let scaled = fit(&v.mapv(|x| x * c));
        assert!(scaled.final_loss().is_finite());
        let loss_ratio = scaled.final_loss() / (base.final_loss() * f64::from(c) * f64::from(c));
        assert!(
            (loss_ratio - 1.0).abs() < 1e-2,
            "x{c:e}: loss ratio {loss_ratio}"
        );
        let (p, q) = (base.predict(2, 3).unwrap(), scaled.predict(2, 3).unwrap());
        let rel = (f64::from(q) / f64::from(c) - f64::from(p)).abs() / f64::from(p);
        assert!(rel < 1e-2, "x{c:e}: prediction {q} vs {p}");
    }
}
