//! One fit over several GPUs in one process (`Backend::MultiGpu`): on a machine with one
//! adapter, two contexts opened on it stand in for two devices; the fits equal the one-device
//! fits up to the order of f32 sums.

use crate::common::{gpu_or_skip, low_rank_plus_noise, max_rel_diff, pseudo};
use nmf_gpu::ndarray::Array2;
use nmf_gpu::{Backend, BackendChoice, GpuContext, Init, Loss, Nmf, NmfError, Solver};

/// W and H of the two-device fit against the one-device fit: the products of the row panels
/// are summed on the host, in another order than one device sums them.
const SPLIT_REL_TOL: f64 = 1e-4;

/// Two contexts on the test adapter (two devices of one adapter), or `None` without a GPU.
fn two_devices() -> Option<(GpuContext, Vec<GpuContext>)> {
    let one = gpu_or_skip()?;
    let other = GpuContext::new().expect("a second context on the adapter");
    Some((one.clone(), vec![one, other]))
}

#[test]
fn two_devices_fit_as_one() {
    let Some((one, two)) = two_devices() else {
        return;
    };
    // 37 rows: uneven panels (19 + 18, or 28 + 9 with the speeds 3 : 1).
    let v = low_rank_plus_noise(37, 29, 4, 0.1, 5);
    let (w0, h0) = (pseudo(37, 4, 6) + 0.1, pseudo(4, 29, 7) + 0.1);
    let weighted = vec![
        two[0].clone().with_relative_speed(3.0),
        two[1].clone().with_relative_speed(1.0),
    ];
    for (solver, loss, devices) in [
        (Solver::MultiplicativeUpdate, Loss::Frobenius, &two),
        (Solver::Hals, Loss::Frobenius, &two),
        (Solver::AcceleratedHals, Loss::Frobenius, &weighted),
        (
            Solver::MultiplicativeUpdate,
            Loss::KullbackLeibler,
            &weighted,
        ),
        (Solver::MultiplicativeUpdate, Loss::ItakuraSaito, &two),
    ] {
        let fit = |backend| {
            Nmf::params(4)
                .solver(solver)
                .loss(loss)
                .init(Init::Custom {
                    w: w0.clone(),
                    h: h0.clone(),
                })
                .max_iter(20)
                .tol(0.0)
                .check_every(10)
                .backend(backend)
                .fit(v.view())
                .expect("fit")
        };
        let single = fit(Backend::Gpu(one.clone()));
        let split = fit(Backend::MultiGpu(devices.clone()));
        assert!(
            split.engine().starts_with("gpu x2"),
            "ran on {}",
            split.engine()
        );
        let (dw, dh) = (
            max_rel_diff(&split.w().to_owned(), &single.w().to_owned()),
            max_rel_diff(&split.h().to_owned(), &single.h().to_owned()),
        );
        assert!(
            dw < SPLIT_REL_TOL && dh < SPLIT_REL_TOL,
            "{solver:?} {loss:?}: W differs by {dw:.2e}, H by {dh:.2e}"
        );
        let stats = split.gpu_stats().expect("the devices' counters, summed");
        assert!(
            stats.dispatches > 0 && stats.bytes_read_back > 0,
            "{stats:?}"
        );
    }
}

#[test]
fn a_masked_fit_on_two_devices_fits_as_on_one() {
    let Some((one, two)) = two_devices() else {
        return;
    };
    let v = low_rank_plus_noise(23, 31, 3, 0.1, 8);
    let mask = Array2::from_shape_fn(v.dim(), |(i, j)| (i * 7 + j * 3) % 5 != 0);
    let fit = |backend| {
        nmf_gpu::masked::MaskedNmf::params(3)
            .max_iter(30)
            .tol(0.0)
            .backend(backend)
            .fit(v.view(), mask.view())
            .expect("masked fit")
    };
    let (single, split) = (fit(Backend::Gpu(one)), fit(Backend::MultiGpu(two)));
    let dw = max_rel_diff(&split.w().to_owned(), &single.w().to_owned());
    let dh = max_rel_diff(&split.h().to_owned(), &single.h().to_owned());
    assert!(
        dw < SPLIT_REL_TOL && dh < SPLIT_REL_TOL,
        "W {dw:.2e}, H {dh:.2e}"
    );
}

#[test]
fn adapter_lists_open_every_device_or_name_the_adapters() {
    // An index past the adapters: a typed error that lists them, GPU or not.
    let e = "gpu:0,99"
        .parse::<BackendChoice>()
        .expect("a list of indices parses")
        .open()
        .err();
    match e {
        Some(NmfError::GpuNoAdapter { reason }) => {
            assert!(
                reason.contains("no adapter 99") && reason.contains("nmf info"),
                "{reason}"
            )
        }
        other => panic!("expected GpuNoAdapter, got {other:?}"),
    }
    if gpu_or_skip().is_none() {
        return;
    }
    // The one adapter twice: two devices, each of which can measure its speed (the weight of
    // its panel beside a device of another kind).
    match "gpu:0,0".parse::<BackendChoice>().and_then(|c| c.open()) {
        Ok(Backend::MultiGpu(devices)) => {
            assert_eq!(devices.len(), 2);
            let speed = devices[0].measure_speed().expect("a timed probe product");
            assert!(speed.is_finite() && speed > 0.0, "{speed} GFLOP/s");
        }
        other => panic!("gpu:0,0 opened {other:?}"),
    }
    // Sparse V stays on one device.
    let sparse =
        nmf_gpu::CsrMatrix::from_dense(low_rank_plus_noise(9, 7, 2, 0.1, 3).view()).expect("CSR");
    let e = Nmf::params(2)
        .backend(
            "gpu:0,0"
                .parse::<BackendChoice>()
                .and_then(|c| c.open())
                .expect("open"),
        )
        .fit_sparse(&sparse)
        .err();
    assert!(
        matches!(e, Some(NmfError::UnsupportedOption { .. })),
        "{e:?}"
    );
}

/// Per iteration of a Frobenius fit, the devices exchange only the host sums: each reads back
/// its `W_dᵀ V_d` (r x n) and `W_dᵀ W_d` (r x r), and each is written the sums,
/// `D·4·r·(n + r)` bytes each way; V, W and H stay where they are.
#[test]
fn the_devices_exchange_only_the_small_sums() {
    if gpu_or_skip().is_none() {
        return;
    }
    // Contexts of this test alone: buffers are counted per context, and other tests allocate
    // on the shared one meanwhile.
    let two: Vec<GpuContext> = (0..2)
        .map(|_| GpuContext::new().expect("a context on the adapter"))
        .collect();
    let (m, n, r, d) = (21, 13, 3, two.len() as u64);
    let v = low_rank_plus_noise(m, n, r, 0.1, 9);
    for solver in [Solver::MultiplicativeUpdate, Solver::Hals] {
        let stats = |iters| {
            Nmf::params(r)
                .solver(solver)
                .max_iter(iters)
                .tol(0.0)
                .check_every(1000)
                .backend(Backend::MultiGpu(two.clone()))
                .fit(v.view())
                .expect("fit")
                .gpu_stats()
                .expect("counters")
        };
        let ten = stats(20).since(&stats(10));
        let bytes = 10 * d * 4 * (r * (n + r)) as u64;
        assert_eq!(
            (ten.bytes_uploaded, ten.bytes_read_back, ten.read_backs),
            (bytes, bytes, 10 * 2 * d),
            "{solver:?}: 10 iterations moved {ten:?}"
        );
        assert_eq!(ten.buffers_created, 0, "{solver:?}: {ten:?}");
    }
}
