//! Fit control: a stop flag ends a fit cleanly, a resumed fit equals the uninterrupted one,
//! checkpoints see the current factors, and every model reports through one `FitReport`.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use nmf_gpu::ndarray::Array2;
use nmf_gpu::{
    Init, Loss, MaskedInit, MaskedNmf, Nmf, NmfError, Resume, Solver, SymMethod, SymNmf,
};

/// Largest entrywise difference allowed between a resumed fit and the uninterrupted one: the
/// same operations in the same order on the CPU engine, so they agree to rounding.
const RESUME_TOL: f32 = 1e-5;

fn max_abs_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    assert_eq!(a.dim(), b.dim());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn stop_flag_ends_the_fit_after_the_current_iteration() {
    let v = common::uniform(40, 60, 1);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let fit = Nmf::params(4)
        .max_iter(1000)
        .tol(0.0)
        .check_every(5)
        .stop_flag(stop.clone())
        .on_progress(move |p| {
            if p.iteration >= 20 {
                flag.store(true, Ordering::Relaxed);
            }
        })
        .fit(v.view())
        .unwrap();
    assert!(fit.interrupted(), "the report says the fit was interrupted");
    assert!(!fit.converged());
    // The flag is raised at the check after iteration 20 and seen right there.
    assert_eq!(fit.n_iter(), 20);
    assert_eq!(*fit.loss_iterations().last().unwrap(), 20);
    assert!(fit.w().iter().all(|x| x.is_finite() && *x >= 0.0));
    assert_eq!(fit.report().n_iter, fit.n_iter());
}

#[test]
fn a_raised_flag_between_checks_still_records_the_last_loss() {
    let v = common::uniform(30, 50, 2);
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicUsize::new(0));
    let (flag, count) = (stop.clone(), seen.clone());
    let fit = Nmf::params(3)
        .max_iter(500)
        .tol(0.0)
        .check_every(10)
        .stop_flag(stop.clone())
        .checkpoint(3, move |c| {
            count.store(c.iteration, Ordering::Relaxed);
            if c.iteration == 3 {
                flag.store(true, Ordering::Relaxed);
            }
            Ok(())
        })
        .fit(v.view())
        .unwrap();
    // Raised at the checkpoint after iteration 3; iteration 4 runs, then the loss is taken.
    assert!(fit.interrupted());
    assert_eq!(fit.n_iter(), 4);
    assert_eq!(*fit.loss_iterations().last().unwrap(), 4);
    assert_eq!(seen.load(Ordering::Relaxed), 3);
}

fn resume_equals_uninterrupted(solver: Solver, loss: Loss, tol: f32) {
    let (v, _, _) = common::planted(50, 70, 5, 3);
    let base = || {
        Nmf::params(5)
            .solver(solver)
            .loss(loss)
            .init(Init::Random)
            .seed(7)
            .tol(tol)
            .check_every(10)
    };
    let full = base().max_iter(200).fit(v.view()).unwrap();
    let first = base().max_iter(100).fit(v.view()).unwrap();
    let (w, h) = first.clone().into_parts();
    let resumed = base()
        .max_iter(200)
        .init(Init::Custom { w, h })
        .resume(Resume {
            iterations_done: first.n_iter(),
            initial_loss: first.report().initial_loss,
        })
        .fit(v.view())
        .unwrap();
    assert_eq!(
        resumed.n_iter(),
        full.n_iter(),
        "{solver:?} {loss:?} tol {tol}"
    );
    assert_eq!(resumed.converged(), full.converged());
    assert_eq!(resumed.report().initial_loss, full.report().initial_loss);
    let (fw, fh) = full.into_parts();
    let (rw, rh) = resumed.into_parts();
    let scale = fw.iter().fold(0.0f32, |m, &x| m.max(x));
    assert!(max_abs_diff(&fw, &rw) <= RESUME_TOL * scale, "{solver:?} W");
    let scale = fh.iter().fold(0.0f32, |m, &x| m.max(x));
    assert!(max_abs_diff(&fh, &rh) <= RESUME_TOL * scale, "{solver:?} H");
}

#[test]
fn resumed_mu_equals_uninterrupted_mu() {
    resume_equals_uninterrupted(Solver::MultiplicativeUpdate, Loss::Frobenius, 0.0);
    resume_equals_uninterrupted(Solver::MultiplicativeUpdate, Loss::KullbackLeibler, 0.0);
}

#[test]
fn resumed_hals_equals_uninterrupted_hals() {
    resume_equals_uninterrupted(Solver::Hals, Loss::Frobenius, 0.0);
}

#[test]
fn resumed_fit_keeps_the_stopping_rule_of_the_first_run() {
    // A tolerance that stops the planted fit between 100 and 200 iterations only if e₀ is the
    // first run's.
    let (v, _, _) = common::planted(50, 70, 5, 3);
    let full = Nmf::params(5)
        .init(Init::Random)
        .seed(7)
        .tol(1e-3)
        .max_iter(400)
        .fit(v.view())
        .unwrap();
    assert!(full.converged() && full.n_iter() > 20, "{}", full.n_iter());
    let cut = (full.n_iter() / 20) * 10;
    let first = Nmf::params(5)
        .init(Init::Random)
        .seed(7)
        .tol(1e-3)
        .max_iter(cut)
        .fit(v.view())
        .unwrap();
    assert!(!first.converged());
    let (w, h) = first.clone().into_parts();
    let resumed = Nmf::params(5)
        .init(Init::Custom { w, h })
        .tol(1e-3)
        .max_iter(400)
        .resume(Resume {
            iterations_done: first.n_iter(),
            initial_loss: first.report().initial_loss,
        })
        .fit(v.view())
        .unwrap();
    assert_eq!(resumed.n_iter(), full.n_iter());
    assert!(resumed.converged());
}

#[test]
fn checkpoints_see_the_current_factors() {
    let v = common::uniform(20, 30, 4);
    type Saved = Vec<(usize, Array2<f32>)>;
    let saved: Arc<Mutex<Saved>> = Arc::default();
    let sink = saved.clone();
    let fit = Nmf::params(3)
        .max_iter(25)
        .tol(0.0)
        .checkpoint(10, move |c| {
            assert!(c.initial_loss > 0.0);
            sink.lock().unwrap().push((c.iteration, c.w.to_owned()));
            Ok(())
        })
        .fit(v.view())
        .unwrap();
    let saved = saved.lock().unwrap();
    let iters: Vec<usize> = saved.iter().map(|(i, _)| *i).collect();
    assert_eq!(iters, vec![10, 20]);
    // The checkpoint at 20 is the state of a 20-iteration fit.
    let twenty = Nmf::params(3).max_iter(20).tol(0.0).fit(v.view()).unwrap();
    assert_eq!(saved[1].1, twenty.w().to_owned());
    assert_eq!(fit.n_iter(), 25);
}

#[test]
fn a_failing_checkpoint_ends_the_fit_with_its_error() {
    let v = common::uniform(20, 30, 5);
    let err = Nmf::params(3)
        .max_iter(50)
        .checkpoint(5, |_| {
            Err(NmfError::InvalidParameter {
                name: "disk",
                value: "full".into(),
                expected: "space".into(),
            })
        })
        .fit(v.view())
        .unwrap_err();
    assert!(matches!(
        err,
        NmfError::InvalidParameter { name: "disk", .. }
    ));
}

#[test]
fn resume_needs_the_saved_factors_and_checkpoints_a_positive_period() {
    let v = common::uniform(10, 12, 6);
    let resume = Resume {
        iterations_done: 10,
        initial_loss: 1.0,
    };
    let err = Nmf::params(2).resume(resume).fit(v.view()).unwrap_err();
    assert!(
        matches!(
            err,
            NmfError::UnsupportedOption {
                option: "resume",
                ..
            }
        ),
        "{err}"
    );
    let err = Nmf::params(2)
        .checkpoint(0, |_| Ok(()))
        .fit(v.view())
        .unwrap_err();
    assert!(matches!(
        err,
        NmfError::InvalidParameter {
            name: "checkpoint",
            ..
        }
    ));
    let bad = Resume {
        iterations_done: 10,
        initial_loss: f64::NAN,
    };
    let err = Nmf::params(2)
        .init(Init::Custom {
            w: Array2::ones((10, 2)),
            h: Array2::ones((2, 12)),
        })
        .resume(bad)
        .fit(v.view())
        .unwrap_err();
    assert!(matches!(err, NmfError::InvalidParameter { .. }), "{err}");
}

#[test]
fn masked_fit_resumes_and_stops() {
    let (v, _, _) = common::planted(30, 40, 3, 8);
    let observed = Array2::from_shape_fn(v.dim(), |(i, j)| (i * 7 + j * 3) % 5 != 0);
    let base = || {
        MaskedNmf::params(3)
            .init(MaskedInit::Random)
            .tol(0.0)
            .seed(1)
    };
    let full = base().max_iter(60).fit(v.view(), observed.view()).unwrap();
    let first = base().max_iter(30).fit(v.view(), observed.view()).unwrap();
    let (w, h) = first.clone().into_parts();
    let resumed = base()
        .max_iter(60)
        .init(MaskedInit::Custom { w, h })
        .resume(Resume {
            iterations_done: 30,
            initial_loss: first.report().initial_loss,
        })
        .fit(v.view(), observed.view())
        .unwrap();
    assert_eq!(resumed.n_iter(), 60);
    let scale = full.w().iter().fold(0.0f32, |m, &x| m.max(x));
    assert!(
        max_abs_diff(&full.w().to_owned(), &resumed.w().to_owned()) <= RESUME_TOL * scale,
        "masked W"
    );

    let stop = Arc::new(AtomicBool::new(true));
    let stopped = base()
        .max_iter(60)
        .stop_flag(stop)
        .fit(v.view(), observed.view())
        .unwrap();
    assert!(stopped.interrupted());
    assert_eq!(stopped.n_iter(), 1);
}

#[test]
fn symmetric_fit_stops_on_the_flag_and_refuses_resume() {
    let a = Array2::from_shape_fn((12, 12), |(i, j)| if i / 6 == j / 6 { 1.0 } else { 0.0 });
    let stop = Arc::new(AtomicBool::new(true));
    let fit = SymNmf::params(2)
        .method(SymMethod::Multiplicative)
        .n_init(3)
        .stop_flag(stop)
        .fit(a.view())
        .unwrap();
    assert!(fit.interrupted());
    assert_eq!(fit.n_iter(), 1);
    assert_eq!(fit.best_init(), 0, "restarts stop too");
    let err = SymNmf::params(2)
        .resume(Resume {
            iterations_done: 1,
            initial_loss: 1.0,
        })
        .fit(a.view())
        .unwrap_err();
    assert!(matches!(err, NmfError::UnsupportedOption { .. }), "{err}");
}
