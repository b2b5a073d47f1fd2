//! Online (mini-batch) NMF: agreement with batch NMF where they must agree, convergence on
//! planted data, the sources, errors found mid-stream, and the GPU engine against the CPU.

mod common;

use common::{gpu_or_skip, planted, uniform};
use nmf_gpu::ndarray::{s, Array2};
use nmf_gpu::online::{ArraySource, CsrSource, OnlineNmf, OnlineStop, Source};
use nmf_gpu::{
    relative_error, Backend, CsrMatrix, Factorization, GpuContext, Init, Loss, Nmf, NmfError,
    Solver,
};

/// W after one online epoch over a single batch (forget factor 0) equals W after one batch
/// HALS iteration from the same W₀ and the exact encodings, to this relative tolerance
/// (the two sum in different orders).
const SAME_STEP_REL_TOL: f64 = 1e-4;
/// Planted exact low-rank data must be recovered to this relative error.
const PLANTED_REL_ERR: f64 = 1e-3;
/// GPU and CPU online fits from the same start agree to this relative tolerance.
const GPU_REL_TOL: f64 = 2e-3;

fn max_rel_diff(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    let scale = b.iter().fold(0.0f32, |m, &x| m.max(x.abs())).max(1e-30) as f64;
    a.iter()
        .zip(b)
        .map(|(&x, &y)| ((x - y).abs() as f64) / scale)
        .fold(0.0, f64::max)
}

#[test]
fn one_batch_with_exact_encodings_is_one_batch_hals_iteration() {
    let (v, _, _) = planted(30, 80, 4, 7);
    let w0 = uniform(30, 4, 3).mapv(|x| x + 0.1);
    // Online: one batch holding every column, no memory of the past, encodings solved exactly.
    let online = OnlineNmf::params(4)
        .w_init(w0.clone())
        .batch_size(80)
        .forget_factor(0.0)
        .inner_max_iter(5000)
        .tol(1e-9)
        .max_epochs(1)
        .fit_array(v.view())
        .unwrap();
    // Batch: the exact encodings of W₀ (batch HALS's transform), then one HALS iteration
    // (W first).
    let exact = Factorization::from_w(
        w0.clone(),
        &Nmf::params(4).solver(Solver::Hals).max_iter(5000).tol(1e-9),
    )
    .unwrap();
    let h_star = exact.transform(v.view()).unwrap();
    let batch = Nmf::params(4)
        .solver(Solver::Hals)
        .init(Init::Custom {
            w: w0.clone(),
            h: h_star,
        })
        .max_iter(1)
        .tol(0.0)
        .fit(v.view())
        .unwrap();
    let d = max_rel_diff(&online.w().to_owned(), &batch.w().to_owned());
    assert!(d < SAME_STEP_REL_TOL, "online W vs batch W: {d}");
    assert_eq!(online.report().steps, 1);
    assert_eq!(online.report().stop, OnlineStop::MaxEpochs);
}

#[test]
fn converged_single_batch_reaches_the_batch_fit() {
    let (v, _, _) = planted(40, 120, 3, 11);
    let online = OnlineNmf::params(3)
        .batch_size(120)
        .forget_factor(0.0)
        .inner_max_iter(200)
        .tol(0.0)
        .max_no_improvement(None)
        .max_epochs(400)
        .fit_array(v.view())
        .unwrap();
    let batch = Nmf::params(3)
        .solver(Solver::Hals)
        .max_iter(400)
        .tol(0.0)
        .fit(v.view())
        .unwrap();
    let e_online = online.relative_error(v.view()).unwrap();
    let e_batch = batch.relative_error(v.view()).unwrap();
    assert!(e_online < 1e-3 && e_batch < 1e-3, "{e_online} {e_batch}");
}

#[test]
fn planted_low_rank_is_recovered_from_small_batches() {
    let (v, _, _) = planted(64, 2000, 5, 21);
    let model = OnlineNmf::params(5)
        .batch_size(100)
        .max_epochs(60)
        .tol(0.0)
        .max_no_improvement(None)
        .fit_array(v.view())
        .unwrap();
    let err = model.relative_error(v.view()).unwrap();
    assert!(err < PLANTED_REL_ERR, "relative error {err}");
    assert_eq!(model.report().epochs, 60);
    assert_eq!(model.report().samples, 60 * 2000);
}

#[test]
fn kl_online_decreases_the_divergence() {
    let (v, _, _) = planted(32, 600, 4, 5);
    let v = v.mapv(|x| x + 0.01);
    let short = OnlineNmf::params(4)
        .loss(Loss::KullbackLeibler)
        .batch_size(100)
        .max_epochs(1)
        .fit_array(v.view())
        .unwrap();
    let long = OnlineNmf::params(4)
        .loss(Loss::KullbackLeibler)
        .batch_size(100)
        .max_epochs(30)
        .tol(0.0)
        .max_no_improvement(None)
        .fit_array(v.view())
        .unwrap();
    let (e1, e2) = (
        short.relative_error(v.view()).unwrap(),
        long.relative_error(v.view()).unwrap(),
    );
    assert!(e2 < e1 && e2 < 0.05, "{e1} -> {e2}");
}

#[test]
fn stopping_rules_end_the_fit_early() {
    let (v, _, _) = planted(30, 1000, 3, 2);
    let model = OnlineNmf::params(3)
        .batch_size(50)
        .max_epochs(500)
        .fit_array(v.view())
        .unwrap();
    assert!(
        matches!(
            model.report().stop,
            OnlineStop::Converged | OnlineStop::NoImprovement
        ),
        "{:?}",
        model.report()
    );
    assert!(model.report().epochs < 500);
}

#[test]
fn partial_fit_learns_from_batches_that_arrive_over_time() {
    let (v, _, _) = planted(40, 1200, 4, 9);
    let mut model = OnlineNmf::params(4)
        .partial_fit(v.slice(s![.., 0..100]))
        .unwrap();
    let e0 = model.relative_error(v.view()).unwrap();
    for pass in 0..20 {
        for k in 0..12 {
            let _ = pass;
            model
                .partial_fit(v.slice(s![.., k * 100..(k + 1) * 100]))
                .unwrap();
        }
    }
    let e1 = model.relative_error(v.view()).unwrap();
    assert!(e1 < e0 && e1 < 0.02, "{e0} -> {e1}");
    assert_eq!(model.report().steps, 241);
}

fn drain(source: &mut dyn Source, b: usize) -> Vec<Array2<f32>> {
    let mut out = Vec::new();
    while let Some(x) = source.next_batch(b).unwrap() {
        out.push(x);
    }
    out
}

/// Every in-library source gives the in-memory array's batches, again after a rewind.
#[test]
fn sources_yield_the_arrays_batches_and_restart() {
    let v = common::sparse_uniform(17, 53, 0.7, 4);
    let csr = CsrMatrix::from_dense(v.view()).unwrap();
    let mut reference = ArraySource::new(v.view());
    let expected = drain(&mut reference, 10);
    assert_eq!(expected.len(), 6);
    assert_eq!(expected[5].ncols(), 3);
    let mut sources: Vec<Box<dyn Source>> = vec![
        Box::new(ArraySource::new(v.view())),
        Box::new(CsrSource::new(&csr)),
    ];
    for src in sources.iter_mut() {
        assert_eq!(src.dim(), (17, 53));
        for _ in 0..2 {
            let got = drain(src.as_mut(), 10);
            assert_eq!(got, expected);
            src.rewind().unwrap();
        }
    }
}

#[test]
fn bad_sample_mid_stream_names_the_column_and_returns_no_model() {
    let mut v = uniform(10, 500, 1);
    v[[3, 377]] = f32::NAN;
    let err = OnlineNmf::params(2)
        .batch_size(50)
        .max_epochs(3)
        .fit_array(v.view())
        .unwrap_err();
    match &err {
        NmfError::InStream { origin, source } => {
            assert!(origin.contains("377"), "{origin}");
            assert!(
                matches!(
                    **source,
                    NmfError::NonFiniteInput {
                        row: 3,
                        col: 377,
                        ..
                    }
                ),
                "{source:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    v[[3, 377]] = -1.0;
    let err = OnlineNmf::params(2)
        .batch_size(64)
        .fit_array(v.view())
        .unwrap_err();
    assert!(err.to_string().contains("377"), "{err}");
}

#[test]
fn invalid_options_are_refused() {
    let v = uniform(10, 20, 1);
    let cases = [
        OnlineNmf::params(0),
        OnlineNmf::params(11),
        OnlineNmf::params(2).batch_size(0),
        OnlineNmf::params(2).forget_factor(1.5),
        OnlineNmf::params(2).forget_factor(f32::NAN),
        OnlineNmf::params(2).inner_max_iter(0),
        OnlineNmf::params(2).max_no_improvement(Some(0)),
        OnlineNmf::params(2).max_epochs(0),
        OnlineNmf::params(2).w_init(Array2::zeros((10, 3))),
        OnlineNmf::params(2).memory_limit(1000),
    ];
    for p in cases {
        assert!(p.fit_array(v.view()).is_err(), "{p:?}");
    }
}

fn gpu_params(ctx: &GpuContext, loss: Loss, w0: &Array2<f32>) -> [nmf_gpu::OnlineParams; 2] {
    let base = OnlineNmf::params(w0.ncols())
        .loss(loss)
        .w_init(w0.clone())
        .batch_size(96)
        .inner_max_iter(10)
        .tol(0.0)
        .max_no_improvement(None)
        .max_epochs(2);
    [
        base.clone().backend(Backend::Cpu),
        base.backend(Backend::Gpu(ctx.clone())),
    ]
}

/// The GPU engine (W and the statistics on the device, batches through two alternating
/// panel sets, a smaller last batch) follows the CPU engine from the same start.
#[test]
fn gpu_online_equals_cpu_online() {
    let Some(ctx) = gpu_or_skip() else { return };
    let (v, _, _) = planted(48, 500, 4, 13);
    let v = v.mapv(|x| x + 0.01);
    let w0 = uniform(48, 4, 8).mapv(|x| x + 0.1);
    for loss in [Loss::Frobenius, Loss::KullbackLeibler] {
        let [cpu, gpu] = gpu_params(&ctx, loss, &w0);
        let a = cpu.fit_array(v.view()).unwrap();
        let b = gpu.fit_array(v.view()).unwrap();
        let d = max_rel_diff(&b.w().to_owned(), &a.w().to_owned());
        assert!(d < GPU_REL_TOL, "{loss:?}: W differs by {d}");
        assert!(
            b.report().engine.starts_with("gpu"),
            "{}",
            b.report().engine
        );
        let (ha, hb) = (
            a.transform(v.view()).unwrap(),
            b.transform(v.view()).unwrap(),
        );
        let (ea, eb) = (
            relative_error(v.view(), a.w(), ha.view()).unwrap(),
            relative_error(v.view(), b.w(), hb.view()).unwrap(),
        );
        assert!((ea - eb).abs() < GPU_REL_TOL * ea.max(1e-3), "{ea} vs {eb}");
    }
}
