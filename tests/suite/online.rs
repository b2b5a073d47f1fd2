//! Online (mini-batch) NMF: agreement with batch NMF where they must agree, convergence on
//! planted data, the sources, errors found mid-stream, and the GPU engine against the CPU.

use crate::common;

use crate::common::{gpu_or_skip, planted, uniform};
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

/// Online HALS over one batch holding every sample, remembering the past in full (forget
/// factor 1), is batch HALS: its statistics start at zero, so after the pass they hold exactly
/// `H₁H₁ᵀ` and `V H₁ᵀ` of this pass's encodings whatever the forget factor, and W's sweep
/// against them is the batch fit's W update (the same function). With the encodings kept from
/// `H₀` (one sweep, the batch fit's H update), the pass is one batch HALS iteration on `Vᵀ` from
/// `(H₀ᵀ, W₀ᵀ)` (its first update is the encodings', its second the dictionary's). One pass:
/// with forget factor 1 a second pass adds to the first pass's statistics, which a batch
/// iteration forgets (forget factor 0 makes every pass a batch iteration, as the
/// multiplicative tests below show).
#[test]
fn online_hals_pass_with_forget_factor_one_is_a_batch_hals_iteration() {
    online_passes_are_batch_iterations(Solver::Hals, Loss::Frobenius, 1.0, 1, [0.0; 3]);
}

/// `epochs` online passes of `rule` over one batch holding every sample, with the forget
/// factor `forget`, the penalties `[alpha_w, alpha_h, l1_ratio]` and the encodings kept
/// between passes (one step each), against `epochs` batch iterations on `Vᵀ` from
/// `(H₀ᵀ, W₀ᵀ)`: per pass one step of the encodings, then one of the dictionary, whose
/// penalties (on the dictionary scaled by the n samples, on the encodings by the m features)
/// are the batch fit's `alpha_h` and `alpha_w` on `Vᵀ`.
fn online_passes_are_batch_iterations(
    rule: Solver,
    loss: Loss,
    forget: f32,
    epochs: usize,
    [alpha_w, alpha_h, l1_ratio]: [f32; 3],
) {
    let (m, n, r) = (25, 60, 3);
    let (v, _, _) = planted(m, n, r, 11);
    let v = v.mapv(|x| x + 0.05);
    let w0 = uniform(m, r, 5).mapv(|x| x + 0.1);
    let h0 = uniform(r, n, 6).mapv(|x| x + 0.1);
    let online = OnlineNmf::params(r)
        .loss(loss)
        .solver(rule)
        .w_init(w0.clone())
        .fresh_restarts(false)
        .h_init(h0.clone())
        .batch_size(n)
        .forget_factor(forget)
        .alpha_w(alpha_w)
        .alpha_h(alpha_h)
        .l1_ratio(l1_ratio)
        .tol(0.0)
        .max_no_improvement(None)
        .max_epochs(epochs)
        .fit_array(v.view())
        .unwrap();
    let vt = v.t().to_owned();
    let batch = Nmf::params(r)
        .solver(rule)
        .loss(loss)
        .init(Init::Custom {
            w: h0.t().to_owned(),
            h: w0.t().to_owned(),
        })
        .alpha_w(alpha_h)
        .alpha_h(alpha_w)
        .l1_ratio(l1_ratio)
        .max_iter(epochs)
        .tol(0.0)
        .fit(vt.view())
        .unwrap();
    assert_eq!(online.report().steps, epochs);
    let d = max_rel_diff(&online.w().to_owned(), &batch.h().t().to_owned());
    assert!(d < SAME_STEP_REL_TOL, "{loss:?}: online W vs batch Hᵀ: {d}");
    let h = online.encodings().expect("kept encodings").to_owned();
    let d = max_rel_diff(&h, &batch.w().t().to_owned());
    assert!(
        d < SAME_STEP_REL_TOL,
        "{loss:?}: kept encodings vs batch Wᵀ: {d}"
    );
    // W moved: the comparison is not of two starts.
    assert!(max_rel_diff(&online.w().to_owned(), &w0) > 1e-2);
}

/// The multiplicative online rule forgetting the past (forget factor 0) is the batch
/// multiplicative fit of `Vᵀ`, pass after pass: its statistics are then the batch rule's
/// `W ⊙ N_b` and `D_b`, whose ratio is the batch update of W.
#[test]
fn online_mu_over_one_batch_is_the_batch_mu_fit() {
    let mu = Solver::MultiplicativeUpdate;
    online_passes_are_batch_iterations(mu, Loss::Frobenius, 0.0, 25, [0.0; 3]);
    online_passes_are_batch_iterations(mu, Loss::KullbackLeibler, 0.0, 25, [0.0; 3]);
}

#[test]
fn online_mu_with_penalties_over_one_batch_is_the_penalised_batch_mu_fit() {
    let mu = Solver::MultiplicativeUpdate;
    online_passes_are_batch_iterations(mu, Loss::Frobenius, 0.0, 25, [0.002, 0.01, 0.3]);
    online_passes_are_batch_iterations(mu, Loss::KullbackLeibler, 0.0, 25, [0.003, 0.001, 0.7]);
}

#[test]
fn penalties_shrink_the_online_factors() {
    // L1 on the encodings makes them sparser; L2 on the dictionary makes it smaller.
    let (v, _, _) = planted(30, 200, 4, 2);
    let base = OnlineNmf::params(4).batch_size(50).max_epochs(20).seed(3);
    let plain = base.clone().fit_array(v.view()).unwrap();
    let h_plain = plain.transform(v.view()).unwrap();
    let sparse = base.clone().alpha_w(0.0).alpha_h(0.05).l1_ratio(1.0);
    let sparse = sparse.fit_array(v.view()).unwrap();
    let h_sparse = sparse.transform(v.view()).unwrap();
    let zeros = |h: &Array2<f32>| h.iter().filter(|&&x| x == 0.0).count();
    assert!(
        zeros(&h_sparse) > zeros(&h_plain),
        "{} vs {}",
        zeros(&h_sparse),
        zeros(&h_plain)
    );
    let small = base.alpha_w(0.5).alpha_h(0.0).fit_array(v.view()).unwrap();
    let norm = |w: nmf_gpu::ndarray::ArrayView2<'_, f32>| w.iter().map(|x| x * x).sum::<f32>();
    assert!(norm(small.w()) < norm(plain.w()));
}

#[test]
fn kept_encodings_are_refined_pass_after_pass() {
    // fresh_restarts(false): the encodings of every sample come back, and they fit V about
    // as well as a fresh transform does.
    let (v, _, _) = planted(20, 120, 3, 4);
    for solver in [Solver::Hals, Solver::MultiplicativeUpdate] {
        let fit = OnlineNmf::params(3)
            .solver(solver)
            .batch_size(40)
            .fresh_restarts(false)
            .max_epochs(60)
            .seed(1)
            .fit_array(v.view())
            .unwrap();
        let h = fit.encodings().expect("kept encodings").to_owned();
        assert_eq!(h.dim(), (3, 120));
        let kept = relative_error(v.view(), fit.w(), h.view()).unwrap();
        let fresh = fit.relative_error(v.view()).unwrap();
        assert!(
            kept < 2.0 * fresh + 1e-3,
            "{solver:?}: kept {kept} vs fresh {fresh}"
        );
        assert!(kept < 0.1, "{solver:?}: {kept}");
    }
}

#[test]
fn transform_whole_solves_every_sample_at_once() {
    let (v, _, _) = planted(20, 90, 3, 8);
    let fit = OnlineNmf::params(3)
        .batch_size(30)
        .max_epochs(30)
        .fit_array(v.view())
        .unwrap();
    let whole = fit.transform_whole(v.view(), 200).unwrap();
    assert_eq!(whole.dim(), (3, 90));
    let err = relative_error(v.view(), fit.w(), whole.view()).unwrap();
    assert!(err < 0.05, "{err}");
    assert!(fit.transform_whole(v.view(), 0).is_err());
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
        OnlineNmf::params(21),
        OnlineNmf::params(2).batch_size(0),
        OnlineNmf::params(2).forget_factor(1.5),
        OnlineNmf::params(2).forget_factor(f32::NAN),
        OnlineNmf::params(2).inner_max_iter(0),
        OnlineNmf::params(2).max_no_improvement(Some(0)),
        OnlineNmf::params(2).max_epochs(0),
        OnlineNmf::params(2).w_init(Array2::zeros((10, 3))),
        OnlineNmf::params(2).memory_limit(1000),
        OnlineNmf::params(2).alpha_w(-1.0),
        OnlineNmf::params(2).alpha_h(f32::NAN),
        OnlineNmf::params(2).l1_ratio(1.5),
        OnlineNmf::params(2).solver(Solver::AcceleratedHals),
        OnlineNmf::params(2)
            .loss(Loss::KullbackLeibler)
            .solver(Solver::Hals),
        // h_init without fresh_restarts(false), and of the wrong shape.
        OnlineNmf::params(2).h_init(Array2::ones((2, 20))),
        OnlineNmf::params(2)
            .fresh_restarts(false)
            .h_init(Array2::ones((2, 19))),
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

/// scikit-learn's multiplicative rule with penalties and kept encodings runs on the GPU
/// engine as on the CPU engine.
#[test]
fn gpu_online_mu_with_penalties_equals_cpu() {
    let Some(ctx) = gpu_or_skip() else { return };
    let (v, _, _) = planted(40, 300, 3, 17);
    let v = v.mapv(|x| x + 0.01);
    let w0 = uniform(40, 3, 9).mapv(|x| x + 0.1);
    for loss in [Loss::Frobenius, Loss::KullbackLeibler] {
        for fresh in [true, false] {
            let [cpu, gpu] = gpu_params(&ctx, loss, &w0).map(|p| {
                p.solver(Solver::MultiplicativeUpdate)
                    .alpha_w(0.01)
                    .alpha_h(0.005)
                    .l1_ratio(0.5)
                    .fresh_restarts(fresh)
            });
            let a = cpu.fit_array(v.view()).unwrap();
            let b = gpu.fit_array(v.view()).unwrap();
            let d = max_rel_diff(&b.w().to_owned(), &a.w().to_owned());
            assert!(d < GPU_REL_TOL, "{loss:?}, fresh {fresh}: W differs by {d}");
            if let (Some(ha), Some(hb)) = (a.encodings(), b.encodings()) {
                let d = max_rel_diff(&hb.to_owned(), &ha.to_owned());
                assert!(d < GPU_REL_TOL, "{loss:?}: kept encodings differ by {d}");
            }
        }
    }
}

/// A `.npy` of float32 with the given shape and order (`data` in that order).
fn write_npy(path: &std::path::Path, data: &[f32], shape: (usize, usize), fortran: bool) {
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': {}, 'shape': ({}, {}), }}",
        if fortran { "True" } else { "False" },
        shape.0,
        shape.1
    );
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(&header);
    for x in data {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// The four ways a features x samples matrix can lie in a `.npy` give the same batches.
#[test]
fn npy_source_yields_the_arrays_batches_in_every_layout() {
    let v = uniform(13, 41, 6);
    let dir = tempfile::tempdir().unwrap();
    let expected = drain(&mut ArraySource::new(v.view()), 8);
    let vt = v.t().to_owned();
    let c_order = |a: &Array2<f32>| a.iter().copied().collect::<Vec<_>>();
    let f_order = |a: &Array2<f32>| a.t().iter().copied().collect::<Vec<_>>();
    let cases = [
        ("c.npy", c_order(&v), (13, 41), false, false),
        ("f.npy", f_order(&v), (13, 41), true, false),
        ("rows_c.npy", c_order(&vt), (41, 13), false, true),
        ("rows_f.npy", f_order(&vt), (41, 13), true, true),
    ];
    for (name, data, shape, fortran, samples_as_rows) in cases {
        let path = dir.path().join(name);
        write_npy(&path, &data, shape, fortran);
        let mut src = nmf_gpu::io::NpySource::open(&path, samples_as_rows).unwrap();
        assert_eq!(src.dim(), (13, 41), "{name}");
        for _ in 0..2 {
            assert_eq!(drain(&mut src, 8), expected, "{name}");
            src.rewind().unwrap();
        }
    }
    // A NaN in the file: the error names the file and the sample.
    let mut bad = v.clone();
    bad[[2, 30]] = f32::NAN;
    let path = dir.path().join("bad.npy");
    write_npy(&path, &c_order(&bad), (13, 41), false);
    let err = OnlineNmf::params(2)
        .batch_size(8)
        .fit(&mut nmf_gpu::io::NpySource::open(&path, false).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.npy") && err.contains("sample 30"),
        "{err}"
    );
}

/// Binary PGM bytes of a `w x h` image.
fn pgm(w: usize, h: usize, seed: usize) -> Vec<u8> {
    let mut b = format!("P5\n{w} {h}\n255\n").into_bytes();
    b.extend((0..w * h).map(|k| ((k * 31 + seed * 17) % 256) as u8));
    b
}

#[test]
fn image_dir_source_yields_load_dir_columns_and_names_a_bad_file() {
    use nmf_gpu::images::{load_dir, ImageDirSource, Preprocess, SizePolicy};
    let dir = tempfile::tempdir().unwrap();
    for k in 0..23 {
        std::fs::write(dir.path().join(format!("img{k}.pgm")), pgm(6, 5, k)).unwrap();
    }
    for pre in [Preprocess::Unit, Preprocess::LeeSeung] {
        let mut set = load_dir(dir.path(), SizePolicy::Exact).unwrap();
        pre.apply(set.matrix_mut());
        let expected = drain(&mut ArraySource::new(set.matrix()), 5);
        let mut src = ImageDirSource::open(dir.path(), SizePolicy::Exact, pre).unwrap();
        assert_eq!(src.dim(), (30, 23));
        assert_eq!(src.names(), set.names());
        for _ in 0..2 {
            assert_eq!(drain(&mut src, 5), expected);
            src.rewind().unwrap();
        }
    }
    // Image 17 in file order loses its pixels: the fit stops naming it.
    let mut src = ImageDirSource::open(dir.path(), SizePolicy::Exact, Preprocess::Unit).unwrap();
    let victim = dir.path().join(&src.names()[17]);
    std::fs::write(&victim, b"P5\n6 5\n255\n\x01\x02").unwrap();
    let err = OnlineNmf::params(2)
        .batch_size(4)
        .fit(&mut src)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&victim.display().to_string()) && err.contains("sample 17"),
        "{err}"
    );
}

/// Peak resident memory (VmHWM) of a child that streams a `.npy` far larger than its batches
/// through one online epoch stays under this bound.
const STREAM_PEAK_BYTES: u64 = 64 << 20;
/// The streamed file: 300 000 samples of 256 features (about 300 MB of float32).
const STREAM_SAMPLES: usize = 300_000;
const STREAM_FEATURES: usize = 256;

fn vm_hwm_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// The child half of `streaming_a_large_npy_keeps_memory_bounded` (does nothing unless the
/// parent set the file to stream).
#[test]
fn stream_child() {
    let Some(path) = std::env::var_os("NMF_ONLINE_STREAM_FILE") else {
        return;
    };
    let mut src = nmf_gpu::io::NpySource::open(&path, true).unwrap();
    assert_eq!(src.dim(), (STREAM_FEATURES, STREAM_SAMPLES));
    let model = OnlineNmf::params(8)
        .batch_size(512)
        .max_epochs(1)
        .inner_max_iter(3)
        .fit(&mut src)
        .unwrap();
    assert_eq!(model.report().samples, STREAM_SAMPLES as u64);
    println!("\nVMHWM={}", vm_hwm_bytes());
}

#[test]
fn streaming_a_large_npy_keeps_memory_bounded() {
    #[cfg(not(target_os = "linux"))]
    return;
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.npy");
    // Samples as rows (C order), written a block of samples at a time.
    {
        let dict = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': ({STREAM_SAMPLES}, {STREAM_FEATURES}), }}"
        );
        let mut header = dict.into_bytes();
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(b' ');
        }
        header.push(b'\n');
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        f.write_all(b"\x93NUMPY\x01\x00").unwrap();
        f.write_all(&(header.len() as u16).to_le_bytes()).unwrap();
        f.write_all(&header).unwrap();
        let mut row = vec![0u8; STREAM_FEATURES * 4];
        for j in 0..STREAM_SAMPLES {
            for (i, chunk) in row.chunks_exact_mut(4).enumerate() {
                // A rank-2 pattern plus a little variation.
                let x = ((i % 7) as f32) * ((j % 5) as f32)
                    + ((i % 3) as f32) * ((j % 11) as f32)
                    + ((i * j) % 13) as f32 * 0.01;
                chunk.copy_from_slice(&x.to_le_bytes());
            }
            f.write_all(&row).unwrap();
        }
        f.flush().unwrap();
    }
    let file_bytes = std::fs::metadata(&path).unwrap().len();
    assert!(file_bytes > 3 * STREAM_PEAK_BYTES);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "online::stream_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NMF_ONLINE_STREAM_FILE", &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peak: u64 = stdout
        .lines()
        .find_map(|l| l.split_once("VMHWM=").map(|(_, x)| x))
        .unwrap_or_else(|| panic!("no peak reported: {stdout}"))
        .trim()
        .parse()
        .unwrap();
    eprintln!(
        "streamed {} MB; peak resident {} MB (bound {} MB)",
        file_bytes >> 20,
        peak >> 20,
        STREAM_PEAK_BYTES >> 20
    );
    assert!(peak < STREAM_PEAK_BYTES, "peak {peak} bytes");
}

#[test]
fn cli_fit_online_streams_a_npy_and_writes_w_and_h() {
    let (v, _, _) = planted(24, 900, 3, 17);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("v.npy");
    nmf_gpu::io::write_npy_atomic(&input, &v).unwrap();
    let out = dir.path().join("model");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_nmf"))
        .args([
            "fit",
            "--online",
            "--batch-size",
            "128",
            "--epochs",
            "40",
            "-r",
            "3",
        ])
        .args(["--backend", "cpu", "--tol", "0", "-q", "-i"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let opts = nmf_gpu::io::ReadOptions::new();
    let w = nmf_gpu::io::read_matrix(out.join("W.npy"), &opts).unwrap();
    let h = nmf_gpu::io::read_matrix(out.join("H.npy"), &opts).unwrap();
    assert_eq!((w.dim(), h.dim()), ((24, 3), (3, 900)));
    let err = relative_error(v.view(), w.view(), h.view()).unwrap();
    assert!(err < 0.05, "relative error {err}");
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(summary.contains("\"online\": true"), "{summary}");
    // --no-h writes W only; --online options without --online and --online with --resume are
    // usage errors.
    let out2 = dir.path().join("w_only");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_nmf"))
        .args([
            "fit",
            "--online",
            "--no-h",
            "-r",
            "3",
            "-q",
            "--backend",
            "cpu",
            "-i",
        ])
        .arg(&input)
        .arg("-o")
        .arg(&out2)
        .output()
        .unwrap();
    assert!(run.status.success());
    assert!(out2.join("W.npy").exists() && !out2.join("H.npy").exists());
    for bad in [
        vec!["--batch-size", "10"],
        vec!["--online", "--resume", "x"],
        vec!["--online", "--solver", "hals"],
    ] {
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_nmf"))
            .args(["fit", "-r", "3", "-i"])
            .arg(&input)
            .arg("-o")
            .arg(dir.path().join("bad"))
            .args(&bad)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{bad:?}");
    }
}

#[test]
fn a_saved_state_continues_exactly() {
    let (v, _, _) = planted(20, 90, 3, 9);
    for solver in [Solver::Hals, Solver::MultiplicativeUpdate] {
        let params = OnlineNmf::params(3).solver(solver).seed(2);
        let (a, b) = (v.slice(s![.., ..45]), v.slice(s![.., 45..]));
        let mut straight = params.partial_fit(a).unwrap();
        let state = straight.state();
        straight.partial_fit(b).unwrap();
        let mut resumed = params.from_state(state).unwrap();
        resumed.partial_fit(b).unwrap();
        assert_eq!(resumed.state(), straight.state(), "{solver:?}");
        // A state of the other rule's shapes, or of another rank, is refused.
        let other = match solver {
            Solver::Hals => Solver::MultiplicativeUpdate,
            _ => Solver::Hals,
        };
        assert!(OnlineNmf::params(3)
            .solver(other)
            .from_state(straight.state())
            .is_err());
        assert!(OnlineNmf::params(2)
            .solver(solver)
            .from_state(straight.state())
            .is_err());
        // A model from W alone encodes with it.
        let from_w = params.from_w(straight.w().to_owned()).unwrap();
        assert_eq!(
            from_w.transform(v.view()).unwrap(),
            straight.transform(v.view()).unwrap()
        );
    }
}

#[test]
fn a_fit_resumed_from_a_checkpoint_ends_as_the_uninterrupted_fit() {
    use std::sync::{Arc, Mutex};
    let (v, _, _) = planted(20, 100, 3, 21);
    for fresh in [true, false] {
        let base = OnlineNmf::params(3)
            .solver(Solver::MultiplicativeUpdate)
            .batch_size(30)
            .fresh_restarts(fresh)
            .tol(0.0)
            .max_no_improvement(None)
            .max_epochs(6)
            .seed(4);
        let saved = Arc::new(Mutex::new(Vec::new()));
        let sink = saved.clone();
        let whole = base
            .clone()
            .checkpoint_state(5, move |state, h| {
                sink.lock()
                    .unwrap()
                    .push((state.clone(), h.map(|h| h.to_owned())));
                Ok(())
            })
            .fit_array(v.view())
            .unwrap();
        let saved = saved.lock().unwrap();
        assert_eq!(saved.len(), 24 / 5, "fresh {fresh}");
        // Resume from the checkpoint after 10 batches (in the third pass, mid-pass) and from
        // the one after 5 (in the second).
        for (state, h) in saved.iter().take(2) {
            let mut p = base.clone().resume_state(state.clone());
            if let Some(h) = h {
                p = p.h_init(h.clone());
            }
            let resumed = p.fit_array(v.view()).unwrap();
            assert_eq!(
                resumed.state(),
                whole.state(),
                "fresh {fresh}, from {}",
                state.steps
            );
            assert_eq!(resumed.encodings(), whole.encodings());
        }
    }
    // Kept encodings cannot resume without them.
    let state = OnlineNmf::params(3).partial_fit(v.view()).unwrap().state();
    let p = OnlineNmf::params(3)
        .fresh_restarts(false)
        .resume_state(state);
    assert!(p.fit_array(v.view()).is_err());
}
