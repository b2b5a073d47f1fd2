//! Every validation rule of `NmfParams::check` and of the data, one test each.

use crate::common::uniform;
use nmf_gpu::ndarray::Array2;
use nmf_gpu::{Factor, Init, Loss, Nmf, NmfError, Solver};

fn v() -> Array2<f32> {
    uniform(12, 9, 3)
}

#[test]
fn empty_input() {
    let e = Array2::<f32>::zeros((0, 5));
    let err = Nmf::params(2).fit(e.view()).unwrap_err();
    assert!(
        matches!(err, NmfError::EmptyInput { rows: 0, cols: 5 }),
        "{err}"
    );
    let e = Array2::<f32>::zeros((4, 0));
    assert!(matches!(
        Nmf::params(2).fit(e.view()).unwrap_err(),
        NmfError::EmptyInput { rows: 4, cols: 0 }
    ));
}

#[test]
fn negative_entry_located() {
    let mut v = v();
    v[[3, 7]] = -0.5;
    let err = Nmf::params(2).fit(v.view()).unwrap_err();
    match &err {
        NmfError::NegativeInput { row, col, value } => {
            assert_eq!((*row, *col, *value), (3, 7, -0.5));
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("negative") && msg.contains("row 3") && msg.contains("column 7"),
        "{msg}"
    );
}

#[test]
fn nan_and_inf_entries() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut v = v();
        v[[5, 1]] = bad;
        let err = Nmf::params(2).fit(v.view()).unwrap_err();
        assert!(
            matches!(err, NmfError::NonFiniteInput { row: 5, col: 1, .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn zero_rank() {
    assert!(matches!(
        Nmf::params(0).fit(v().view()).unwrap_err(),
        NmfError::ZeroRank
    ));
}

#[test]
fn rank_above_min_dim_with_nndsvd_family() {
    // Just above min(m, n) = 9, and above max(m, n) = 12 too: the limit named is min(m, n).
    for rank in [10, 30] {
        for init in [Init::Nndsvd, Init::Nndsvda, Init::Nndsvdar] {
            let err = Nmf::params(rank).init(init).fit(v().view()).unwrap_err();
            assert!(
                matches!(err, NmfError::RankTooLarge { rank: r, limit: 9, .. } if r == rank),
                "{err}"
            );
        }
    }
    // Random init accepts it.
    let fit = Nmf::params(10)
        .init(Init::Random)
        .max_iter(5)
        .fit(v().view())
        .unwrap();
    assert_eq!(fit.w().dim(), (12, 10));
}

#[test]
fn absurd_rank_is_refused_before_allocating() {
    let err = Nmf::params(usize::MAX / 8)
        .init(Init::Random)
        .fit(v().view())
        .unwrap_err();
    assert!(
        matches!(err, NmfError::RankTooLarge { limit: 12, .. }),
        "{err}"
    );
}

#[test]
fn custom_init_wrong_shape() {
    let init = Init::Custom {
        w: Array2::ones((12, 3)),
        h: Array2::ones((2, 9)),
    };
    let err = Nmf::params(2).init(init).fit(v().view()).unwrap_err();
    assert!(
        matches!(
            err,
            NmfError::InitShape {
                factor: Factor::W,
                expected_rows: 12,
                expected_cols: 2,
                found_rows: 12,
                found_cols: 3
            }
        ),
        "{err}"
    );
    let init = Init::Custom {
        w: Array2::ones((12, 2)),
        h: Array2::ones((2, 8)),
    };
    let err = Nmf::params(2).init(init).fit(v().view()).unwrap_err();
    assert!(
        matches!(
            err,
            NmfError::InitShape {
                factor: Factor::H,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn custom_init_negative_or_nan() {
    let mut h = Array2::ones((2, 9));
    h[[1, 4]] = -1.0;
    let init = Init::Custom {
        w: Array2::ones((12, 2)),
        h,
    };
    let err = Nmf::params(2).init(init).fit(v().view()).unwrap_err();
    assert!(
        matches!(
            err,
            NmfError::InitInvalidEntry {
                factor: Factor::H,
                row: 1,
                col: 4,
                ..
            }
        ),
        "{err}"
    );
    let mut w = Array2::ones((12, 2));
    w[[0, 0]] = f32::NAN;
    let init = Init::Custom {
        w,
        h: Array2::ones((2, 9)),
    };
    let err = Nmf::params(2).init(init).fit(v().view()).unwrap_err();
    assert!(
        matches!(
            err,
            NmfError::InitInvalidEntry {
                factor: Factor::W,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn custom_init_all_zero() {
    let init = Init::Custom {
        w: Array2::zeros((12, 2)),
        h: Array2::ones((2, 9)),
    };
    let err = Nmf::params(2).init(init).fit(v().view()).unwrap_err();
    assert!(
        matches!(err, NmfError::InitAllZero { factor: Factor::W }),
        "{err}"
    );
}

#[test]
fn negative_or_nan_tol() {
    for tol in [-1e-4, f32::NAN, f32::INFINITY] {
        let err = Nmf::params(2).tol(tol).fit(v().view()).unwrap_err();
        assert!(matches!(err, NmfError::InvalidTol(_)), "{err}");
    }
}

#[test]
fn zero_max_iter() {
    assert!(matches!(
        Nmf::params(2).max_iter(0).fit(v().view()).unwrap_err(),
        NmfError::ZeroMaxIter
    ));
}

#[test]
fn zero_check_every() {
    assert!(matches!(
        Nmf::params(2).check_every(0).fit(v().view()).unwrap_err(),
        NmfError::ZeroCheckEvery
    ));
}

#[test]
fn negative_regularization() {
    let err = Nmf::params(2).alpha_w(-1.0).fit(v().view()).unwrap_err();
    assert!(
        matches!(
            err,
            NmfError::InvalidRegularization {
                name: "alpha_w",
                ..
            }
        ),
        "{err}"
    );
    let err = Nmf::params(2)
        .alpha_h(f32::NAN)
        .fit(v().view())
        .unwrap_err();
    assert!(
        matches!(
            err,
            NmfError::InvalidRegularization {
                name: "alpha_h",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn l1_ratio_out_of_range() {
    for l1 in [-0.1, 1.1, f32::NAN] {
        let err = Nmf::params(2).l1_ratio(l1).fit(v().view()).unwrap_err();
        assert!(matches!(err, NmfError::InvalidL1Ratio(_)), "{err}");
    }
}

#[test]
fn bad_epsilon() {
    for eps in [0.0, -1.0, f32::NAN] {
        let err = Nmf::params(2).epsilon(eps).fit(v().view()).unwrap_err();
        assert!(matches!(err, NmfError::InvalidEpsilon(_)), "{err}");
    }
}

#[test]
fn hals_with_kl_is_rejected() {
    let err = Nmf::params(2)
        .solver(Solver::Hals)
        .loss(Loss::KullbackLeibler)
        .fit(v().view())
        .unwrap_err();
    assert!(matches!(err, NmfError::UnsupportedLoss { .. }), "{err}");
}

#[test]
fn transform_wrong_rows_and_bad_data() {
    let fit = Nmf::params(2).max_iter(5).fit(v().view()).unwrap();
    let wrong = uniform(11, 4, 1);
    assert!(matches!(
        fit.transform(wrong.view()).unwrap_err(),
        NmfError::ShapeMismatch { .. }
    ));
    let mut neg = uniform(12, 4, 1);
    neg[[0, 2]] = -3.0;
    assert!(matches!(
        fit.transform(neg.view()).unwrap_err(),
        NmfError::NegativeInput { row: 0, col: 2, .. }
    ));
    let h = Array2::<f32>::ones((3, 4));
    assert!(matches!(
        fit.inverse_transform(h.view()).unwrap_err(),
        NmfError::ShapeMismatch { .. }
    ));
}

#[test]
fn valid_configuration_passes_check() {
    // A valid configuration passes check() and keeps the scaled penalties.
    let p = Nmf::params(3).alpha_w(0.5).l1_ratio(0.25);
    let valid = p.check(10, 20).unwrap();
    assert_eq!(valid.rank(), 3);
}
