//! The public API exactly as documented compiles and behaves.

use crate::common;

use nmf_gpu::ndarray::Array2;
use nmf_gpu::{Backend, Factorization, Init, Loss, Nmf, NmfError, Solver};

#[test]
fn documented_api_compiles_and_runs() -> Result<(), NmfError> {
    let v = common::uniform(40, 30, 9);
    let v_new = common::uniform(40, 7, 10);
    let rank = 4;
    let w0 = Array2::<f32>::from_elem((40, rank), 0.5);
    let h0 = Array2::<f32>::from_elem((rank, 30), 0.5);
    for init in [
        Init::Nndsvda,
        Init::Random,
        Init::Nndsvd,
        Init::Nndsvdar,
        Init::Custom { w: w0, h: h0 },
    ] {
        let fit: Factorization = Nmf::params(rank)
            .solver(Solver::MultiplicativeUpdate)
            .loss(Loss::Frobenius)
            .init(init)
            .max_iter(500)
            .tol(1e-4)
            .seed(42)
            .alpha_w(0.0)
            .alpha_h(0.0)
            .l1_ratio(0.0)
            .backend(Backend::Cpu)
            .fit(v.view())?;
        assert_eq!(fit.w().dim(), (40, rank));
        assert_eq!(fit.h().dim(), (rank, 30));
        assert!(fit.n_iter() >= 1 && fit.n_iter() <= 500);
        assert_eq!(fit.losses().len(), fit.loss_iterations().len());
        assert_eq!(fit.loss_iterations()[0], 0);
        let _ = fit.converged();
        let h = fit.transform(v_new.view())?;
        assert_eq!(h.dim(), (rank, 7));
        let wh = fit.inverse_transform(h.view())?;
        assert_eq!(wh.dim(), (40, 7));
    }
    Ok(())
}

#[test]
fn auto_backend_runs() {
    let v = common::uniform(20, 15, 2);
    let fit = Nmf::params(3)
        .backend(Backend::Auto)
        .max_iter(20)
        .fit(v.view())
        .unwrap();
    assert!(!fit.engine().is_empty());
}

#[test]
fn progress_callback_sees_every_check() {
    use std::sync::{Arc, Mutex};
    let v = common::uniform(20, 15, 2);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = Arc::clone(&seen);
    let fit = Nmf::params(3)
        .max_iter(35)
        .tol(0.0)
        .check_every(10)
        .on_progress(move |p| s2.lock().unwrap().push((p.iteration, p.loss)))
        .fit(v.view())
        .unwrap();
    let seen = seen.lock().unwrap();
    let iters: Vec<usize> = seen.iter().map(|x| x.0).collect();
    assert_eq!(iters, vec![0, 10, 20, 30, 35]);
    assert_eq!(fit.loss_iterations(), &iters[..]);
    let losses: Vec<f64> = seen.iter().map(|x| x.1).collect();
    assert_eq!(fit.losses(), &losses[..]);
}

#[test]
fn initial_factors_are_the_fits_start() {
    let v = common::uniform(30, 25, 4);
    let csr = nmf_gpu::CsrMatrix::from_dense(v.view()).unwrap();
    for init in [Init::Nndsvda, Init::Random, Init::Nndsvdar] {
        let p = Nmf::params(3).init(init).seed(7).max_iter(20).tol(0.0);
        let (w0, h0) = p.initial_factors(v.view()).unwrap();
        let (ws, hs) = p.initial_factors_sparse(&csr).unwrap();
        assert_eq!((w0.dim(), h0.dim()), ((30, 3), (3, 25)));
        let close = |a: &Array2<f32>, b: &Array2<f32>| {
            a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= 1e-4 * (1.0 + x.abs()))
        };
        assert!(close(&w0, &ws) && close(&h0, &hs));
        let direct = p.fit(v.view()).unwrap();
        let custom = p
            .clone()
            .init(Init::Custom { w: w0, h: h0 })
            .fit(v.view())
            .unwrap();
        assert_eq!(direct.w(), custom.w());
        assert_eq!(direct.h(), custom.h());
    }
}
