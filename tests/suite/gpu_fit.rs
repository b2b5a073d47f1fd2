//! Whole fits on the GPU engine against the CPU engine, from the same custom initialisation.

use std::time::Instant;

use crate::common::{gpu_or_skip, low_rank_plus_noise, pseudo};
use nmf_gpu::ndarray::Array2;
use nmf_gpu::{Backend, Factorization, GpuContext, Init, Loss, Nmf, Orthogonality, Solver};

/// Loss curves of a GPU and a CPU fit agree pointwise to this relative tolerance.
const CURVE_REL_TOL: f64 = 1e-3;
/// Final relative errors `‖V − WH‖/‖V‖` agree to this relative tolerance.
const FINAL_REL_TOL: f64 = 1e-3;
/// The panel path and the single-panel path differ only in summation order.
const PANEL_REL_TOL: f64 = 1e-4;
/// Bytes read back at one convergence check (the loss partial sums) stay below this.
const CHECK_BYTES: u64 = 16;

struct Problem {
    v: Array2<f32>,
    w0: Array2<f32>,
    h0: Array2<f32>,
}

fn problem(m: usize, n: usize, r: usize, seed: u32) -> Problem {
    let v = low_rank_plus_noise(m, n, r, 0.1, seed);
    let w0 = pseudo(m, r, seed + 10) + 0.1;
    let h0 = pseudo(r, n, seed + 11) + 0.1;
    Problem { v, w0, h0 }
}

fn fit(p: &Problem, solver: Solver, loss: Loss, iters: usize, backend: Backend) -> Factorization {
    Nmf::params(p.w0.ncols())
        .solver(solver)
        .loss(loss)
        .init(Init::Custom {
            w: p.w0.clone(),
            h: p.h0.clone(),
        })
        .max_iter(iters)
        .tol(0.0)
        .check_every(10)
        .backend(backend)
        .fit(p.v.view())
        .expect("fit")
}

fn assert_fits_agree(p: &Problem, gpu: &Factorization, cpu: &Factorization, what: &str) {
    assert!(
        gpu.engine().starts_with("gpu"),
        "{what}: ran on {}",
        gpu.engine()
    );
    assert_eq!(gpu.loss_iterations(), cpu.loss_iterations(), "{what}");
    for (i, (g, c)) in gpu.losses().iter().zip(cpu.losses()).enumerate() {
        assert!(
            (g - c).abs() <= CURVE_REL_TOL * c.abs(),
            "{what}: loss at check {i}: gpu {g} cpu {c}"
        );
    }
    let (eg, ec) = (
        gpu.relative_error(p.v.view()).unwrap(),
        cpu.relative_error(p.v.view()).unwrap(),
    );
    assert!(
        (eg - ec).abs() <= FINAL_REL_TOL * ec,
        "{what}: final relative error gpu {eg} cpu {ec}"
    );
    assert!(gpu
        .w()
        .iter()
        .chain(gpu.h().iter())
        .all(|&x| x >= 0.0 && x.is_finite()));
}

fn compare(solver: Solver, loss: Loss, ctx: GpuContext) {
    let p = problem(90, 70, 5, 1);
    let cpu = fit(&p, solver, loss, 60, Backend::Cpu);
    let gpu = fit(&p, solver, loss, 60, Backend::Gpu(ctx));
    assert_fits_agree(&p, &gpu, &cpu, &format!("{solver:?} {loss:?}"));
}

#[test]
fn mu_frobenius_gpu_matches_cpu() {
    let Some(ctx) = gpu_or_skip() else { return };
    compare(Solver::MultiplicativeUpdate, Loss::Frobenius, ctx);
}

#[test]
fn mu_kl_gpu_matches_cpu() {
    let Some(ctx) = gpu_or_skip() else { return };
    compare(Solver::MultiplicativeUpdate, Loss::KullbackLeibler, ctx);
}

#[test]
fn hals_gpu_matches_cpu() {
    let Some(ctx) = gpu_or_skip() else { return };
    compare(Solver::Hals, Loss::Frobenius, ctx);
}

#[test]
fn regularised_fits_gpu_match_cpu() {
    let Some(ctx) = gpu_or_skip() else { return };
    let p = problem(50, 80, 4, 2);
    for solver in [Solver::MultiplicativeUpdate, Solver::Hals] {
        let params = |backend| {
            Nmf::params(4)
                .solver(solver)
                .init(Init::Custom {
                    w: p.w0.clone(),
                    h: p.h0.clone(),
                })
                .max_iter(30)
                .tol(0.0)
                .alpha_w(0.01)
                .l1_ratio(0.5)
                .backend(backend)
        };
        let cpu = params(Backend::Cpu).fit(p.v.view()).unwrap();
        let gpu = params(Backend::Gpu(ctx.clone())).fit(p.v.view()).unwrap();
        assert_fits_agree(&p, &gpu, &cpu, &format!("{solver:?} regularised"));
    }
}

#[test]
fn orthogonal_fits_gpu_match_cpu() {
    let Some(ctx) = gpu_or_skip() else { return };
    let p = problem(60, 50, 4, 4);
    for ortho in [Orthogonality::H, Orthogonality::W] {
        let params = |backend| {
            Nmf::params(4)
                .orthogonal(ortho)
                .init(Init::Custom {
                    w: p.w0.clone(),
                    h: p.h0.clone(),
                })
                .max_iter(40)
                .tol(0.0)
                .backend(backend)
        };
        let cpu = params(Backend::Cpu).fit(p.v.view()).unwrap();
        let gpu = params(Backend::Gpu(ctx.clone())).fit(p.v.view()).unwrap();
        assert_fits_agree(&p, &gpu, &cpu, &format!("orthogonal {ortho:?}"));
        let (rg, rc) = (
            gpu.orthogonality_residual().unwrap(),
            cpu.orthogonality_residual().unwrap(),
        );
        assert!(
            (rg - rc).abs() <= 1e-3 * rc.max(1e-3),
            "orthogonal {ortho:?}: residual gpu {rg} cpu {rc}"
        );
    }
}

#[test]
fn panel_path_equals_single_panel_path() {
    let Some(ctx) = gpu_or_skip() else { return };
    let p = problem(60, 75, 3, 3);
    // Panels of 7 columns, KL blocks of 9 rows.
    let panels = ctx
        .clone()
        .with_max_panel_bytes(60 * 4 * 7)
        .with_kl_block_bytes(7 * 4 * 9);
    for (solver, loss) in [
        (Solver::MultiplicativeUpdate, Loss::Frobenius),
        (Solver::MultiplicativeUpdate, Loss::KullbackLeibler),
        (Solver::Hals, Loss::Frobenius),
    ] {
        let one = fit(&p, solver, loss, 20, Backend::Gpu(ctx.clone()));
        let many = fit(&p, solver, loss, 20, Backend::Gpu(panels.clone()));
        for (a, b) in one.losses().iter().zip(many.losses()) {
            assert!(
                (a - b).abs() <= PANEL_REL_TOL * a.abs(),
                "{solver:?} {loss:?}: one panel {a}, panels {b}"
            );
        }
        let scale = one.w().iter().fold(0.0f32, |m, &x| m.max(x));
        for (a, b) in one.w().iter().zip(many.w().iter()) {
            assert!(
                (a - b).abs() <= 1e-3 * scale,
                "{solver:?} {loss:?}: W {a} vs {b}"
            );
        }
        // Every panel is uploaded once, so the bytes uploaded are the same.
        assert_eq!(
            one.gpu_stats().unwrap().bytes_uploaded,
            many.gpu_stats().unwrap().bytes_uploaded
        );
    }
}

#[test]
fn counters_show_v_uploaded_once_and_little_read_back() {
    let Some(ctx) = gpu_or_skip() else { return };
    let (m, n, r) = (80, 64, 6);
    let p = problem(m, n, r, 4);
    for (solver, loss) in [
        (Solver::MultiplicativeUpdate, Loss::Frobenius),
        (Solver::MultiplicativeUpdate, Loss::KullbackLeibler),
        (Solver::Hals, Loss::Frobenius),
    ] {
        let f = fit(&p, solver, loss, 40, Backend::Gpu(ctx.clone()));
        let s = f.gpu_stats().expect("a GPU fit has counters");
        let checks = f.losses().len() as u64;
        assert_eq!(checks, 5, "checks at 0, 10, 20, 30, 40");
        let (v_bytes, w_bytes, h_bytes) =
            ((m * n * 4) as u64, (m * r * 4) as u64, (r * n * 4) as u64);
        assert_eq!(s.bytes_uploaded, v_bytes + w_bytes + h_bytes, "{s:?}");
        assert!(
            s.bytes_read_back <= checks * CHECK_BYTES + w_bytes + h_bytes,
            "{solver:?} {loss:?}: {s:?}"
        );
        // One submission per check and one per downloaded factor.
        assert_eq!(s.submissions, checks + 2, "{s:?}");
        assert!(s.dispatches >= 40 * 4, "{s:?}");
    }
    let cpu = fit(&p, Solver::Hals, Loss::Frobenius, 10, Backend::Cpu);
    assert!(cpu.gpu_stats().is_none());
}

#[test]
fn auto_backend_takes_a_hardware_gpu_for_large_data_only() {
    let gpu = gpu_or_skip();
    // Small data runs on the CPU engine whatever the adapter.
    let p = problem(40, 30, 3, 5);
    let f = fit(
        &p,
        Solver::MultiplicativeUpdate,
        Loss::Frobenius,
        10,
        Backend::Auto,
    );
    assert!(f.engine().starts_with("cpu"), "{}", f.engine());
    assert!(f.gpu_stats().is_none());
    // Data at the threshold runs on a hardware GPU; never on a software one (lavapipe).
    let side = (nmf_gpu::AUTO_GPU_MIN_DENSE_ENTRIES as f64).sqrt().ceil() as usize;
    let v = Array2::from_elem((side, side), 1.0f32);
    let f = Nmf::params(1)
        .init(Init::Custom {
            w: Array2::from_elem((side, 1), 1.0),
            h: Array2::from_elem((1, side), 1.0),
        })
        .max_iter(1)
        .backend(Backend::Auto)
        .fit(v.view())
        .expect("fit");
    let hardware = gpu.filter(|ctx| !ctx.is_software());
    match hardware {
        Some(_) => assert!(f.engine().starts_with("gpu"), "{}", f.engine()),
        None => assert!(f.engine().starts_with("cpu"), "{}", f.engine()),
    }
}

#[test]
fn transform_on_the_gpu_matches_the_cpu() {
    let Some(ctx) = gpu_or_skip() else { return };
    let p = problem(50, 60, 4, 6);
    let v_new = low_rank_plus_noise(50, 25, 4, 0.1, 7);
    for solver in [Solver::MultiplicativeUpdate, Solver::Hals] {
        let cpu = fit(&p, solver, Loss::Frobenius, 30, Backend::Cpu);
        let gpu = fit(&p, solver, Loss::Frobenius, 30, Backend::Gpu(ctx.clone()));
        let (hc, hg) = (
            cpu.transform(v_new.view()).unwrap(),
            gpu.transform(v_new.view()).unwrap(),
        );
        let scale = hc.iter().fold(0.0f32, |m, &x| m.max(x));
        for (a, b) in hc.iter().zip(hg.iter()) {
            assert!((a - b).abs() <= 1e-2 * scale, "{solver:?}: H {a} vs {b}");
        }
    }
}

#[test]
fn context_reports_its_adapter() {
    let Some(ctx) = gpu_or_skip() else { return };
    let info = ctx.adapter_info();
    assert!(!info.name.is_empty());
    assert!(format!("{ctx:?}").contains(&info.name));
}

/// The 361 x 2429, r = 49 problem (the size of the CBCL faces) for the three solvers: a few
/// iterations each (every kernel at this size's tile edges and panels; lavapipe takes about a
/// second per iteration).
#[test]
fn faces_sized_problem_agrees_for_all_solvers() {
    let Some(ctx) = gpu_or_skip() else { return };
    let p = problem(361, 2429, 49, 8);
    for (solver, loss, iters) in [
        (Solver::MultiplicativeUpdate, Loss::Frobenius, 4),
        (Solver::MultiplicativeUpdate, Loss::KullbackLeibler, 2),
        (Solver::Hals, Loss::Frobenius, 4),
    ] {
        let t = Instant::now();
        let gpu = fit(&p, solver, loss, iters, Backend::Gpu(ctx.clone()));
        let gpu_time = t.elapsed();
        let t = Instant::now();
        let cpu = fit(&p, solver, loss, iters, Backend::Cpu);
        eprintln!(
            "361x2429 r49 {solver:?} {loss:?}, {iters} iterations: gpu {:?}, cpu {:?}",
            gpu_time,
            t.elapsed()
        );
        assert_fits_agree(&p, &gpu, &cpu, &format!("faces-sized {solver:?} {loss:?}"));
    }
}

/// Dispatches the scheduler's parameter arena holds before it submits (ARENA_SLOTS).
const ARENA_DISPATCHES: u64 = 512;

/// Iterations between the two fits whose counters are subtracted to count one iteration's work.
const COUNTED_ITERS: usize = 20;

fn fit_checked_every(
    p: &Problem,
    solver: Solver,
    iters: usize,
    every: usize,
    ctx: &GpuContext,
) -> Factorization {
    let loss = match solver {
        Solver::MultiplicativeUpdate => Loss::KullbackLeibler,
        _ => Loss::Frobenius,
    };
    Nmf::params(p.w0.ncols())
        .solver(solver)
        .loss(loss)
        .init(Init::Custom {
            w: p.w0.clone(),
            h: p.h0.clone(),
        })
        .max_iter(iters)
        .tol(0.0)
        .check_every(every)
        .backend(Backend::Gpu(ctx.clone()))
        .fit(p.v.view())
        .expect("fit")
}

/// Between two loss checks nothing is read back, for every solver (accelerated HALS decides its
/// inner sweeps on the device): a fit reads back once per loss check and once per factor at the
/// end. Every iteration encodes the same number of dispatches (fits of 20, 40 and 60 iterations
/// with checks only at the start and the end differ by the same count), all in one compute pass
/// per submission; the counts are those docs/gpu-engine.md states.
#[test]
fn no_read_back_between_loss_checks_and_a_fixed_dispatch_count_per_iteration() {
    let Some(ctx) = gpu_or_skip() else { return };
    let p = problem(80, 64, 6, 4);
    let mut per_solver = Vec::new();
    for solver in [
        Solver::MultiplicativeUpdate,
        Solver::Hals,
        Solver::AcceleratedHals,
    ] {
        let mut dispatches = Vec::new();
        for k in 1..=3 {
            let iters = k * COUNTED_ITERS;
            let f = fit_checked_every(&p, solver, iters, iters, &ctx);
            let s = f.gpu_stats().expect("a GPU fit has counters");
            let checks = f.losses().len() as u64;
            assert_eq!(checks, 2, "{solver:?}: checks at 0 and {iters}");
            assert_eq!(s.read_backs, checks + 2, "{solver:?} {iters}: {s:?}");
            // A submission per read-back, and one more each time the parameter arena fills.
            let forced = s.dispatches / ARENA_DISPATCHES;
            assert!(
                s.submissions >= checks + 2 && s.submissions <= checks + 2 + forced,
                "{solver:?} {iters}: {s:?}"
            );
            // One pass per submission that dispatches (the downloads of W and H only copy).
            assert_eq!(s.compute_passes, s.submissions - 2, "{solver:?}: {s:?}");
            dispatches.push(s.dispatches);
        }
        let per_iter = (dispatches[1] - dispatches[0]) as usize;
        assert_eq!(
            dispatches[2] - dispatches[1],
            dispatches[1] - dispatches[0],
            "{solver:?}: {dispatches:?}"
        );
        assert_eq!(per_iter % COUNTED_ITERS, 0, "{solver:?}: {dispatches:?}");
        let per_iter = per_iter / COUNTED_ITERS;
        eprintln!("{solver:?}: {per_iter} dispatches per iteration at 80 x 64, r = 6");
        per_solver.push(per_iter);
    }
    let [mu, hals, ahals] = per_solver[..] else {
        unreachable!("three solvers")
    };
    assert!(mu <= PRODUCT_DISPATCHES, "MU KL: {mu}");
    assert!(hals <= PRODUCT_DISPATCHES, "HALS: {hals}");
    // Accelerated HALS: HALS's products, then a sweep and its stopping kernel per inner sweep
    // of the budgets ⌊1 + ½ρ⌋ (6 for W, 7 for H at this shape), all encoded.
    assert_eq!(
        ahals,
        hals - 2 + 2 * (6 + 7),
        "accelerated HALS vs HALS {hals}"
    );
}

/// Dispatches per iteration at 80 x 64 (one panel, one KL block), r = 6, at most: MU KL (two
/// KL-ratio blocks, two products, two sums, two updates: 8 with the strided products) and
/// HALS (four products, two sweeps: 6); split products add their slice sums.
const PRODUCT_DISPATCHES: usize = 12;

/// Online NMF reads back the same per batch whatever the inner sweep budget: the encodings'
/// stopping rule (HALS sweeps for Frobenius, multiplicative updates for KL) runs on the device.
#[test]
fn online_encodings_read_nothing_back_per_inner_sweep() {
    use nmf_gpu::online::OnlineNmf;
    let Some(ctx) = gpu_or_skip() else { return };
    let p = problem(48, 400, 4, 6);
    for loss in [Loss::Frobenius, Loss::KullbackLeibler] {
        let run = |inner: usize| {
            let f = OnlineNmf::params(4)
                .loss(loss)
                .w_init(p.w0.clone())
                .batch_size(100)
                .inner_max_iter(inner)
                .tol(1e-6)
                .max_no_improvement(None)
                .max_epochs(2)
                .backend(Backend::Gpu(ctx.clone()))
                .fit_array(p.v.view())
                .expect("online fit");
            f.report().gpu_stats.expect("a GPU fit has counters")
        };
        let (one, many) = (run(1), run(30));
        assert_eq!(
            one.read_backs, many.read_backs,
            "{loss:?}: {one:?} vs {many:?}"
        );
        assert!(
            many.dispatches > one.dispatches,
            "{loss:?}: {one:?} vs {many:?}"
        );
        // The sweeps the device rule runs are those the host rule runs: the same W.
        let w = |backend: Backend| {
            OnlineNmf::params(4)
                .loss(loss)
                .w_init(p.w0.clone())
                .batch_size(100)
                .inner_max_iter(30)
                .tol(ONLINE_INNER_TOL)
                .max_no_improvement(None)
                .max_epochs(2)
                .backend(backend)
                .fit_array(p.v.view())
                .expect("online fit")
                .w()
                .to_owned()
        };
        let (gpu, cpu) = (w(Backend::Gpu(ctx.clone())), w(Backend::Cpu));
        let scale = cpu.iter().fold(0.0f32, |a, &x| a.max(x.abs()));
        let diff = gpu
            .iter()
            .zip(cpu.iter())
            .fold(0.0f32, |a, (&g, &c)| a.max((g - c).abs()));
        assert!(
            f64::from(diff) <= ONLINE_W_REL_TOL * f64::from(scale),
            "{loss:?}: W differs by {diff} (scale {scale})"
        );
    }
}

/// An inner tolerance the encodings meet within the budget, so the stopping rule decides.
const ONLINE_INNER_TOL: f32 = 1e-2;
/// Online W on the GPU and the CPU with the inner rule deciding: max |ΔW| over max |W|.
const ONLINE_W_REL_TOL: f64 = 1e-3;
