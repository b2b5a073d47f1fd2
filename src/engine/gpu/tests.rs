//! Each GPU kernel against the CPU engine, at shapes around the matmul tile edges.

use ndarray::Array2;

use super::buffers::GpuMat;
use super::{GpuContext, GpuEngine};
use crate::engine::cpu::CpuEngine;
use crate::engine::{Engine, FactorSums, MuDenominator, MuRule, Side};
use crate::linalg::xorshift::XorShift;
use crate::options::{Loss, Regularization};

include!("../../../tests/suite/common/gpu_available.rs");

/// One kernel against the CPU: `max |gpu − cpu| ≤ KERNEL_REL_TOL · max |cpu|`.
const KERNEL_REL_TOL: f32 = 1e-4;
/// A loss against the CPU's (both accumulate in f64; the products differ in rounding).
const LOSS_REL_TOL: f64 = 1e-4;

fn pseudo(rows: usize, cols: usize, seed: u32, offset: f32) -> Array2<f32> {
    XorShift::seeded(seed, 7, 10_000).matrix(rows, cols, offset)
}

/// One kernel's result against the CPU's, within [`KERNEL_REL_TOL`].
fn assert_close(what: &str, gpu: &Array2<f32>, cpu: &Array2<f32>) {
    assert_close_tol(what, gpu, cpu, KERNEL_REL_TOL);
}

/// The GPU engine's matrix `g` against the CPU's `cpu`, within [`KERNEL_REL_TOL`].
pub(super) fn assert_gpu_close(gpu: &mut GpuEngine, what: &str, g: &GpuMat, cpu: &Array2<f32>) {
    assert_close(what, &gpu.download(g).unwrap(), cpu);
}

/// `max |gpu − cpu| ≤ tol · max |cpu|`.
fn assert_close_tol(what: &str, gpu: &Array2<f32>, cpu: &Array2<f32>, tol: f32) {
    assert_eq!(gpu.dim(), cpu.dim(), "{what}: shape");
    let scale = cpu
        .iter()
        .fold(0.0f32, |m, x| m.max(x.abs()))
        .max(f32::MIN_POSITIVE);
    let err = gpu
        .iter()
        .zip(cpu.iter())
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        err <= tol * scale,
        "{what}: max abs error {err} vs scale {scale} (shape {:?})",
        cpu.dim()
    );
}

/// A loss against the CPU's, within [`LOSS_REL_TOL`].
fn assert_loss_close(what: &str, gpu: f64, cpu: f64) {
    assert!(
        (gpu - cpu).abs() <= LOSS_REL_TOL * cpu.abs(),
        "{what}: gpu {gpu} cpu {cpu}"
    );
}

/// Shapes `(m, n, r)` around the tile edges of `ctx`'s matmul (tile − 1, tile, tile + 1,
/// odd sizes, r = 1).
fn edge_shapes(ctx: &GpuContext) -> Vec<(usize, usize, usize)> {
    let (t, _) = ctx.matmul_tile();
    vec![
        (t - 1, t + 1, 1),
        (t, t, 7),
        (t + 1, t - 1, 3),
        (2 * t + 3, 37, 5),
        (1, 9, 1),
        (13, 1, 2),
        // Edges of the tall tiles of narrow outputs (V Hᵀ, Z Hᵀ) and the wide ones of flat
        // outputs (Wᵀ V).
        (255, 40, 17),
        (257, 33, 16),
        (31, 255, 9),
        // Long inner dimensions: products split into slices.
        (600, 20, 3),
        (20, 600, 2),
    ]
}

/// `w` and `h` uploaded to both engines: `((cpu W, cpu H), (gpu W, gpu H))`.
pub(super) fn upload_pair(
    cpu: &mut CpuEngine<'_>,
    gpu: &mut GpuEngine,
    w: &Array2<f32>,
    h: &Array2<f32>,
) -> ((Array2<f32>, Array2<f32>), (GpuMat, GpuMat)) {
    let (cw, gw) = upload_both(cpu, gpu, w);
    let (ch, gh) = upload_both(cpu, gpu, h);
    ((cw, ch), (gw, gh))
}

/// `a` uploaded to both engines: `(cpu, gpu)`.
fn upload_both(
    cpu: &mut CpuEngine<'_>,
    gpu: &mut GpuEngine,
    a: &Array2<f32>,
) -> (Array2<f32>, GpuMat) {
    (cpu.upload(a.view()).unwrap(), gpu.upload(a.view()).unwrap())
}

/// A `rows x cols` zero matrix on both engines: `(cpu, gpu)`.
pub(super) fn zeros_both(
    cpu: &mut CpuEngine<'_>,
    gpu: &mut GpuEngine,
    rows: usize,
    cols: usize,
) -> (Array2<f32>, GpuMat) {
    (
        cpu.zeros(rows, cols).unwrap(),
        gpu.zeros(rows, cols).unwrap(),
    )
}

/// The plain multiplicative update of W without penalties, `ε = f32::EPSILON`.
fn plain_mu_w<E: Engine>(e: &mut E, x: &mut E::Mat, num: &E::Mat, den: MuDenominator<'_, E::Mat>) {
    let none = Regularization::default();
    e.mu_step(x, num, den, Side::Left, none, f32::EPSILON, MuRule::Plain)
        .unwrap();
}

/// A context whose V panels hold 6 columns of an m-row V and whose KL blocks hold 9 rows of
/// 6 columns, checked on an m x n V.
fn small_panels(ctx: &GpuContext, m: usize, n: usize) -> GpuContext {
    let small = ctx
        .clone()
        .with_max_panel_bytes((m * 4 * 6) as u64)
        .with_kl_block_bytes(6 * 4 * 9);
    let v = pseudo(m, n, 5, 0.0);
    let e = GpuEngine::new(&small, v.view()).unwrap();
    assert_eq!(e.panel_count(), n.div_ceil(6));
    small
}

/// Run every engine operation on both engines from the same inputs and compare.
fn compare_all_ops(ctx: &GpuContext, m: usize, n: usize, r: usize) {
    let v = pseudo(m, n, 1 + (m * 31 + n) as u32, 0.0);
    let w0 = pseudo(m, r, 2, 0.05);
    let h0 = pseudo(r, n, 3, 0.05);
    let mut cpu = CpuEngine::new(v.view());
    let mut gpu = GpuEngine::new(ctx, v.view()).expect("gpu engine");
    let tag = format!("{m}x{n} r{r}");

    let ((cw, ch), (gw, gh)) = upload_pair(&mut cpu, &mut gpu, &w0, &h0);

    // Products with V.
    let (mut cp, mut gp) = zeros_both(&mut cpu, &mut gpu, m, r);
    cpu.v_ht(&ch, &mut cp).unwrap();
    gpu.v_ht(&gh, &mut gp).unwrap();
    assert_gpu_close(&mut gpu, &format!("v_ht {tag}"), &gp, &cp);
    let (mut cq, mut gq) = zeros_both(&mut cpu, &mut gpu, r, n);
    cpu.wt_v(&cw, &mut cq).unwrap();
    gpu.wt_v(&gw, &mut gq).unwrap();
    assert_gpu_close(&mut gpu, &format!("wt_v {tag}"), &gq, &cq);

    // Gram matrices.
    let (mut cg, mut gg) = zeros_both(&mut cpu, &mut gpu, r, r);
    let (mut ck, mut gk) = zeros_both(&mut cpu, &mut gpu, r, r);
    cpu.gram(&ch, Side::Right, &mut cg).unwrap();
    gpu.gram(&gh, Side::Right, &mut gg).unwrap();
    assert_gpu_close(&mut gpu, &format!("gram HHt {tag}"), &gg, &cg);
    cpu.gram(&cw, Side::Left, &mut ck).unwrap();
    gpu.gram(&gw, Side::Left, &mut gk).unwrap();
    assert_gpu_close(&mut gpu, &format!("gram WtW {tag}"), &gk, &ck);

    // KL numerators and sums.
    let (mut ckp, mut gkp) = zeros_both(&mut cpu, &mut gpu, m, r);
    cpu.kl_numerator(&cw, &ch, Side::Left, &mut ckp).unwrap();
    gpu.kl_numerator(&gw, &gh, Side::Left, &mut gkp).unwrap();
    assert_gpu_close(&mut gpu, &format!("kl num W {tag}"), &gkp, &ckp);
    let (mut ckq, mut gkq) = zeros_both(&mut cpu, &mut gpu, r, n);
    cpu.kl_numerator(&cw, &ch, Side::Right, &mut ckq).unwrap();
    gpu.kl_numerator(&gw, &gh, Side::Right, &mut gkq).unwrap();
    assert_gpu_close(&mut gpu, &format!("kl num H {tag}"), &gkq, &ckq);
    let (mut cs_l, mut gs_l) = zeros_both(&mut cpu, &mut gpu, r, 1);
    cpu.factor_sums(&ch, FactorSums::RowsOfH, &mut cs_l)
        .unwrap();
    gpu.factor_sums(&gh, FactorSums::RowsOfH, &mut gs_l)
        .unwrap();
    assert_gpu_close(&mut gpu, &format!("sums H {tag}"), &gs_l, &cs_l);
    let (mut cs_r, mut gs_r) = zeros_both(&mut cpu, &mut gpu, r, 1);
    cpu.factor_sums(&cw, FactorSums::ColumnsOfW, &mut cs_r)
        .unwrap();
    gpu.factor_sums(&gw, FactorSums::ColumnsOfW, &mut gs_r)
        .unwrap();
    assert_gpu_close(&mut gpu, &format!("sums W {tag}"), &gs_r, &cs_r);

    // Multiplicative updates (Gram and Sums denominators, with penalties).
    let reg = Regularization { l1: 0.01, l2: 0.02 };
    let eps = f32::EPSILON;
    let cases: [(&str, Side, bool); 4] = [
        ("mu W gram", Side::Left, true),
        ("mu H gram", Side::Right, true),
        ("mu W sums", Side::Left, false),
        ("mu H sums", Side::Right, false),
    ];
    for (name, side, gram) in cases {
        let x0 = match side {
            Side::Left => &w0,
            Side::Right => &h0,
        };
        let (mut cx, mut gx) = upload_both(&mut cpu, &mut gpu, x0);
        let pick = || match (side, gram) {
            (Side::Left, true) => (&cp, &gp, MuDenominator::Gram(&cg), MuDenominator::Gram(&gg)),
            (Side::Right, true) => (&cq, &gq, MuDenominator::Gram(&ck), MuDenominator::Gram(&gk)),
            (Side::Left, false) => (
                &ckp,
                &gkp,
                MuDenominator::Sums(&cs_l),
                MuDenominator::Sums(&gs_l),
            ),
            (Side::Right, false) => (
                &ckq,
                &gkq,
                MuDenominator::Sums(&cs_r),
                MuDenominator::Sums(&gs_r),
            ),
        };
        // Twice, so the swapped buffers are exercised too.
        for _ in 0..2 {
            let (cnum, gnum, cden, gden) = pick();
            cpu.mu_step(&mut cx, cnum, cden, side, reg, eps, MuRule::Plain)
                .unwrap();
            gpu.mu_step(&mut gx, gnum, gden, side, reg, eps, MuRule::Plain)
                .unwrap();
        }
        assert_gpu_close(&mut gpu, &format!("{name} {tag}"), &gx, &cx);
    }

    // HALS sweeps.
    for (name, side) in [("hals W", Side::Left), ("hals H", Side::Right)] {
        let (x0, cnum, gnum, cgram, ggram) = match side {
            Side::Left => (&w0, &cp, &gp, &cg, &gg),
            Side::Right => (&h0, &cq, &gq, &ck, &gk),
        };
        let (mut cx, mut gx) = upload_both(&mut cpu, &mut gpu, x0);
        cpu.hals_step(&mut cx, cnum, cgram, side, reg).unwrap();
        gpu.hals_step(&mut gx, gnum, ggram, side, reg).unwrap();
        assert_gpu_close(&mut gpu, &format!("{name} {tag}"), &gx, &cx);
    }

    // Exact divergences.
    for loss in [Loss::Frobenius, Loss::KullbackLeibler] {
        let c = cpu.loss(&cw, &ch, loss, eps).unwrap();
        let g = gpu.loss(&gw, &gh, loss, eps).unwrap();
        assert_loss_close(&format!("loss {loss:?} {tag}"), g, c);
    }
}

#[test]
fn every_kernel_matches_cpu_at_tile_edges() {
    let Some(ctx) = gpu_or_skip() else { return };
    for (m, n, r) in edge_shapes(&ctx) {
        compare_all_ops(&ctx, m, n, r);
    }
}

#[test]
fn every_kernel_matches_cpu_with_panels_and_kl_blocks() {
    let Some(ctx) = gpu_or_skip() else { return };
    // Panels of a few columns and KL blocks of a few rows.
    let (m, n, r) = (70, 53, 4);
    compare_all_ops(&small_panels(&ctx, m, n), m, n, r);
}

#[test]
fn kl_loss_handles_zeros_in_v_and_wh() {
    let Some(ctx) = gpu_or_skip() else { return };
    let (m, n, r) = (20, 30, 2);
    let mut v = pseudo(m, n, 9, 0.0);
    v.slice_mut(ndarray::s![..5, ..]).fill(0.0);
    let mut w = pseudo(m, r, 10, 0.0);
    w.slice_mut(ndarray::s![15.., ..]).fill(0.0);
    let h = pseudo(r, n, 11, 0.1);
    let mut cpu = CpuEngine::new(v.view());
    let mut gpu = GpuEngine::new(&ctx, v.view()).unwrap();
    let ((cw, ch), (gw, gh)) = upload_pair(&mut cpu, &mut gpu, &w, &h);
    let c = cpu.loss(&cw, &ch, Loss::KullbackLeibler, 1e-6).unwrap();
    let g = gpu.loss(&gw, &gh, Loss::KullbackLeibler, 1e-6).unwrap();
    assert_loss_close("kl loss", g, c);
}

/// Throughput of the matmul kernel on `V Hᵀ` and `Wᵀ V` (run with `--ignored --nocapture`).
#[test]
#[ignore = "a measurement, not a check"]
fn matmul_throughput() {
    let Some(ctx) = gpu_or_skip() else { return };
    for (m, n, r) in [(361, 2429, 49), (1024, 1024, 64), (2048, 2048, 64)] {
        let v = pseudo(m, n, 1, 0.0);
        let mut gpu = GpuEngine::new(&ctx, v.view()).unwrap();
        let h = gpu.upload(pseudo(r, n, 2, 0.0).view()).unwrap();
        let w = gpu.upload(pseudo(m, r, 3, 0.0).view()).unwrap();
        let mut p = gpu.zeros(m, r).unwrap();
        let mut q = gpu.zeros(r, n).unwrap();
        gpu.v_ht(&h, &mut p).unwrap();
        gpu.download(&p).unwrap();
        let reps = 5;
        let t = std::time::Instant::now();
        for _ in 0..reps {
            gpu.v_ht(&h, &mut p).unwrap();
        }
        gpu.download(&p).unwrap();
        let a = t.elapsed().as_secs_f64() / reps as f64;
        let t = std::time::Instant::now();
        for _ in 0..reps {
            gpu.wt_v(&w, &mut q).unwrap();
        }
        gpu.download(&q).unwrap();
        let b = t.elapsed().as_secs_f64() / reps as f64;
        let flops = 2.0 * (m * n * r) as f64;
        eprintln!(
            "{}: {m}x{n} r{r}: V Hᵀ {:.1} ms ({:.2} GFLOP/s), Wᵀ V {:.1} ms ({:.2} GFLOP/s)",
            ctx.adapter_info().name,
            a * 1e3,
            flops / a / 1e9,
            b * 1e3,
            flops / b / 1e9
        );
    }
}

#[test]
fn small_outputs_with_long_inner_dimension_are_split() {
    let Some(ctx) = gpu_or_skip() else { return };
    let (m, n, r) = (1500, 8, 3);
    let v = pseudo(m, n, 12, 0.0);
    let w0 = pseudo(m, r, 13, 0.0);
    let mut gpu = GpuEngine::new(&ctx, v.view()).unwrap();
    let mut cpu = CpuEngine::new(v.view());
    let w = gpu.upload(w0.view()).unwrap();
    let cw = cpu.upload(w0.view()).unwrap();
    let mut k = gpu.zeros(r, r).unwrap();
    let mut ck = cpu.zeros(r, r).unwrap();
    let before = gpu.sched.stats.dispatches;
    gpu.gram(&w, Side::Left, &mut k).unwrap();
    assert_eq!(
        gpu.sched.stats.dispatches - before,
        2,
        "partial products, then their sum"
    );
    cpu.gram(&cw, Side::Left, &mut ck).unwrap();
    assert_gpu_close(&mut gpu, "split gram", &k, &ck);
}

#[test]
fn loss_folds_more_partials_than_one_chunk() {
    let Some(ctx) = gpu_or_skip() else { return };
    let (t, _) = ctx.matmul_tile();
    // More than 1024 matmul workgroups, so the device folds several chunks of partials.
    let (m, n, r) = (33 * t - 5, 33 * t - 7, 2);
    let v = pseudo(m, n, 14, 0.0);
    let (w0, h0) = (pseudo(m, r, 15, 0.1), pseudo(r, n, 16, 0.1));
    let mut cpu = CpuEngine::new(v.view());
    let mut gpu = GpuEngine::new(&ctx, v.view()).unwrap();
    let ((cw, ch), (gw, gh)) = upload_pair(&mut cpu, &mut gpu, &w0, &h0);
    for loss in [Loss::Frobenius, Loss::KullbackLeibler] {
        let c = cpu.loss(&cw, &ch, loss, f32::EPSILON).unwrap();
        let before = gpu.sched.stats.bytes_read_back;
        let g = gpu.loss(&gw, &gh, loss, f32::EPSILON).unwrap();
        assert_eq!(
            gpu.sched.stats.bytes_read_back - before,
            8,
            "two folded chunks"
        );
        assert_loss_close(&format!("{loss:?}"), g, c);
    }
}

/// Time of each engine operation at one size (run with `--ignored --nocapture`).
#[test]
#[ignore = "a measurement, not a check"]
fn operation_times() {
    let Some(ctx) = gpu_or_skip() else { return };
    let (m, n, r) = (1024, 1024, 32);
    let v = pseudo(m, n, 1, 0.0);
    let mut e = GpuEngine::new(&ctx, v.view()).unwrap();
    let w = e.upload(pseudo(m, r, 2, 0.1).view()).unwrap();
    let h = e.upload(pseudo(r, n, 3, 0.1).view()).unwrap();
    let mut p = e.zeros(m, r).unwrap();
    let mut q = e.zeros(r, n).unwrap();
    let mut g = e.zeros(r, r).unwrap();
    let mut x = e.upload(pseudo(m, r, 2, 0.1).view()).unwrap();
    let time = |name: &str, e: &mut GpuEngine, f: &mut dyn FnMut(&mut GpuEngine)| {
        f(e);
        e.download(&g).unwrap();
        let t = std::time::Instant::now();
        for _ in 0..5 {
            f(e);
        }
        e.download(&g).unwrap();
        eprintln!("{name}: {:.1} ms", t.elapsed().as_secs_f64() * 200.0);
    };
    time("v_ht", &mut e, &mut |e| e.v_ht(&h, &mut p).unwrap());
    time("wt_v", &mut e, &mut |e| e.wt_v(&w, &mut q).unwrap());
    let mut g2 = e.zeros(r, r).unwrap();
    time("gram W", &mut e, &mut |e| {
        e.gram(&w, Side::Left, &mut g2).unwrap()
    });
    time("gram H", &mut e, &mut |e| {
        e.gram(&h, Side::Right, &mut g2).unwrap()
    });
    time("mu W", &mut e, &mut |e| {
        e.mu_step(
            &mut x,
            &p,
            MuDenominator::Gram(&g2),
            Side::Left,
            Regularization::default(),
            1e-7,
            MuRule::Plain,
        )
        .unwrap()
    });
    time("loss", &mut e, &mut |e| {
        e.loss(&w, &h, Loss::Frobenius, 1e-7).unwrap();
    });
    let _ = &mut g;
}

#[test]
fn zero_gram_diagonals_and_zero_denominators_match_cpu() {
    let Some(ctx) = gpu_or_skip() else { return };
    let (m, n, r) = (40, 30, 3);
    let v = pseudo(m, n, 17, 0.0);
    let mut w0 = pseudo(m, r, 18, 0.1);
    w0.column_mut(1).fill(0.0);
    w0.row_mut(0).fill(0.0);
    let h0 = pseudo(r, n, 19, 0.1);
    let mut cpu = CpuEngine::new(v.view());
    let mut gpu = GpuEngine::new(&ctx, v.view()).unwrap();
    let none = Regularization::default();
    let ((cw, ch), (gw, gh)) = upload_pair(&mut cpu, &mut gpu, &w0, &h0);
    // K = Wᵀ W has a zero diagonal entry: HALS leaves row 1 of H alone.
    let (mut ck, mut gk) = zeros_both(&mut cpu, &mut gpu, r, r);
    cpu.gram(&cw, Side::Left, &mut ck).unwrap();
    gpu.gram(&gw, Side::Left, &mut gk).unwrap();
    let (mut cq, mut gq) = zeros_both(&mut cpu, &mut gpu, r, n);
    cpu.wt_v(&cw, &mut cq).unwrap();
    gpu.wt_v(&gw, &mut gq).unwrap();
    let (mut cx, mut gx) = upload_both(&mut cpu, &mut gpu, &h0);
    cpu.hals_step(&mut cx, &cq, &ck, Side::Right, none).unwrap();
    gpu.hals_step(&mut gx, &gq, &gk, Side::Right, none).unwrap();
    assert_gpu_close(&mut gpu, "hals H, zero diagonal", &gx, &cx);
    // Row 0 of W G is zero: the MU denominator becomes ε and the row stays zero.
    let (mut cg, mut gg) = zeros_both(&mut cpu, &mut gpu, r, r);
    cpu.gram(&ch, Side::Right, &mut cg).unwrap();
    gpu.gram(&gh, Side::Right, &mut gg).unwrap();
    let (mut cp, mut gp) = zeros_both(&mut cpu, &mut gpu, m, r);
    cpu.v_ht(&ch, &mut cp).unwrap();
    gpu.v_ht(&gh, &mut gp).unwrap();
    let (mut cx, mut gx) = upload_both(&mut cpu, &mut gpu, &w0);
    plain_mu_w(&mut cpu, &mut cx, &cp, MuDenominator::Gram(&cg));
    plain_mu_w(&mut gpu, &mut gx, &gp, MuDenominator::Gram(&gg));
    let gx = gpu.download(&gx).unwrap();
    assert_close("mu W, zero denominators", &gx, &cx);
    assert!(gx.iter().all(|x| x.is_finite()));
}

/// An elementwise result against the CPU: `max |gpu − cpu| ≤ ELEMENTWISE_REL_TOL · max |cpu|`.
const ELEMENTWISE_REL_TOL: f32 = 1e-5;

/// A 0/1 mask with about 30% zeros.
fn mask(rows: usize, cols: usize, seed: u32) -> Array2<f32> {
    pseudo(rows, cols, seed, 0.0).mapv(|x| if x < 0.3 { 0.0 } else { 1.0 })
}

/// Which denominator a multiplicative update test uses.
#[derive(Debug, Clone, Copy)]
enum Den {
    Gram,
    Sums,
    Product,
    Elementwise,
}

impl Den {
    fn of<M>(self, d: &M) -> MuDenominator<'_, M> {
        match self {
            Den::Gram => MuDenominator::Gram(d),
            Den::Sums => MuDenominator::Sums(d),
            Den::Product => MuDenominator::Product(d),
            Den::Elementwise => MuDenominator::Elementwise(d),
        }
    }
}

/// Every (rule × denominator × side) of `mu_step` on both engines from the same inputs, twice in
/// a row (so the swapped buffers are exercised), with penalties.
fn compare_mu_steps(ctx: &GpuContext, m: usize, n: usize, r: usize) {
    let v = pseudo(m, n, 21 + (m * 7 + n) as u32, 0.0);
    let mut cpu = CpuEngine::new(v.view());
    let mut gpu = GpuEngine::new(ctx, v.view()).expect("gpu engine");
    let tag = format!("{m}x{n} r{r}");
    let reg = Regularization { l1: 0.01, l2: 0.02 };
    let eps = f32::EPSILON;
    for side in [Side::Left, Side::Right] {
        let shape = match side {
            Side::Left => (m, r),
            Side::Right => (r, n),
        };
        let x0 = pseudo(shape.0, shape.1, 22, 0.05);
        let num = pseudo(shape.0, shape.1, 23, 0.0);
        // A symmetric Gram matrix, a general (non-symmetric) one, sums and a full denominator.
        let f = pseudo(r + 3, r, 24, 0.1);
        let gram = f.t().dot(&f);
        let product = pseudo(r, r, 25, 0.1);
        let sums = pseudo(r, 1, 26, 0.5);
        let full = pseudo(shape.0, shape.1, 27, 0.2);
        let (cnum, gnum) = upload_both(&mut cpu, &mut gpu, &num);
        for den in [Den::Gram, Den::Sums, Den::Product, Den::Elementwise] {
            let d = match den {
                Den::Gram => &gram,
                Den::Sums => &sums,
                Den::Product => &product,
                Den::Elementwise => &full,
            };
            let (cd, gd) = upload_both(&mut cpu, &mut gpu, d);
            let tol = match den {
                Den::Gram | Den::Product => KERNEL_REL_TOL,
                Den::Sums | Den::Elementwise => ELEMENTWISE_REL_TOL,
            };
            for rule in [MuRule::Plain, MuRule::Sqrt, MuRule::Damped] {
                let (mut cx, mut gx) = upload_both(&mut cpu, &mut gpu, &x0);
                for _ in 0..2 {
                    cpu.mu_step(&mut cx, &cnum, den.of(&cd), side, reg, eps, rule)
                        .unwrap();
                    gpu.mu_step(&mut gx, &gnum, den.of(&gd), side, reg, eps, rule)
                        .unwrap();
                }
                assert_close_tol(
                    &format!("mu {side:?} {den:?} {rule:?} {tag}"),
                    &gpu.download(&gx).unwrap(),
                    &cx,
                    tol,
                );
            }
        }
    }
}

/// `cross`, `mul_small`, `transpose`, `axpby`, `masked_product` and `masked_loss` on both
/// engines from the same inputs.
fn compare_new_ops(ctx: &GpuContext, m: usize, n: usize, r: usize) {
    let v = pseudo(m, n, 31 + (m * 13 + n) as u32, 0.0);
    let mut cpu = CpuEngine::new(v.view());
    let mut gpu = GpuEngine::new(ctx, v.view()).expect("gpu engine");
    let tag = format!("{m}x{n} r{r}");
    let (w0, w1) = (pseudo(m, r, 32, 0.05), pseudo(m, r, 33, 0.0));
    let (h0, h1) = (pseudo(r, n, 34, 0.05), pseudo(r, n, 35, 0.0));
    let s0 = pseudo(r, r, 36, 0.0);
    let mk = mask(m, n, 37);
    let (cw0, gw0) = upload_both(&mut cpu, &mut gpu, &w0);
    let (cw1, gw1) = upload_both(&mut cpu, &mut gpu, &w1);
    let (ch0, gh0) = upload_both(&mut cpu, &mut gpu, &h0);
    let (ch1, gh1) = upload_both(&mut cpu, &mut gpu, &h1);
    let (cs, gs) = upload_both(&mut cpu, &mut gpu, &s0);
    let (cm, gm) = upload_both(&mut cpu, &mut gpu, &mk);

    // Small products of two different factors.
    for (side, (cx, gx), (cy, gy)) in [
        (Side::Left, (&cw0, &gw0), (&cw1, &gw1)),
        (Side::Right, (&ch0, &gh0), (&ch1, &gh1)),
    ] {
        let (mut co, mut go) = zeros_both(&mut cpu, &mut gpu, r, r);
        cpu.cross(cx, cy, side, &mut co).unwrap();
        gpu.cross(gx, gy, side, &mut go).unwrap();
        assert_gpu_close(&mut gpu, &format!("cross {side:?} {tag}"), &go, &co);
    }

    // Products with a small (non-symmetric) matrix.
    for (side, (cx, gx)) in [(Side::Left, (&cw0, &gw0)), (Side::Right, (&ch0, &gh0))] {
        let (rows, cols) = (cx.nrows(), cx.ncols());
        let (mut co, mut go) = zeros_both(&mut cpu, &mut gpu, rows, cols);
        cpu.mul_small(cx, &cs, side, &mut co).unwrap();
        gpu.mul_small(gx, &gs, side, &mut go).unwrap();
        assert_gpu_close(&mut gpu, &format!("mul_small {side:?} {tag}"), &go, &co);
    }

    // Transposes of both factor shapes.
    for (cx, gx) in [(&cw0, &gw0), (&ch0, &gh0)] {
        let (rows, cols) = (cx.nrows(), cx.ncols());
        let (mut co, mut go) = zeros_both(&mut cpu, &mut gpu, cols, rows);
        cpu.transpose(cx, &mut co).unwrap();
        gpu.transpose(gx, &mut go).unwrap();
        assert_eq!(
            gpu.download(&go).unwrap(),
            co,
            "transpose {rows}x{cols} {tag}"
        );
    }

    // y ← a x + b y, twice (b = 0 included).
    let (mut cy, mut gy) = upload_both(&mut cpu, &mut gpu, &h1);
    for (a, b) in [(0.7, -1.3), (2.0, 0.0)] {
        cpu.axpby(a, &ch0, b, &mut cy).unwrap();
        gpu.axpby(a, &gh0, b, &mut gy).unwrap();
    }
    assert_close_tol(
        &format!("axpby {tag}"),
        &gpu.download(&gy).unwrap(),
        &cy,
        ELEMENTWISE_REL_TOL,
    );

    // Masked products and the masked loss.
    let (mut cp, mut gp) = zeros_both(&mut cpu, &mut gpu, m, r);
    cpu.masked_product(&cm, &cw0, &ch0, Side::Left, &mut cp)
        .unwrap();
    gpu.masked_product(&gm, &gw0, &gh0, Side::Left, &mut gp)
        .unwrap();
    assert_gpu_close(&mut gpu, &format!("masked product W {tag}"), &gp, &cp);
    let (mut cq, mut gq) = zeros_both(&mut cpu, &mut gpu, r, n);
    cpu.masked_product(&cm, &cw0, &ch0, Side::Right, &mut cq)
        .unwrap();
    gpu.masked_product(&gm, &gw0, &gh0, Side::Right, &mut gq)
        .unwrap();
    assert_gpu_close(&mut gpu, &format!("masked product H {tag}"), &gq, &cq);
    let c = cpu.masked_loss(&cm, &cw0, &ch0).unwrap();
    let g = gpu.masked_loss(&gm, &gw0, &gh0).unwrap();
    assert_loss_close(&format!("masked loss {tag}"), g, c);
}

/// Odd sizes (tile edges) and sizes around the matmul tile.
fn new_op_shapes(ctx: &GpuContext) -> Vec<(usize, usize, usize)> {
    let (t, _) = ctx.matmul_tile();
    vec![
        (37, 53, 5),
        (t + 1, t - 1, 3),
        (1, 9, 1),
        (13, 1, 2),
        // Long inner dimensions: the small products split into slices.
        (600, 20, 3),
        (20, 600, 2),
    ]
}

#[test]
fn mu_rules_and_denominators_match_cpu() {
    let Some(ctx) = gpu_or_skip() else { return };
    for (m, n, r) in [(37, 53, 5), (13, 1, 2), (1, 9, 1)] {
        compare_mu_steps(&ctx, m, n, r);
    }
}

#[test]
fn small_products_and_masked_ops_match_cpu() {
    let Some(ctx) = gpu_or_skip() else { return };
    for (m, n, r) in new_op_shapes(&ctx) {
        compare_new_ops(&ctx, m, n, r);
    }
}

#[test]
fn masked_ops_match_cpu_with_panels_and_blocks() {
    let Some(ctx) = gpu_or_skip() else { return };
    let (m, n, r) = (37, 53, 5);
    compare_new_ops(&small_panels(&ctx, m, n), m, n, r);
}

#[test]
fn mu_step_flushes_subnormal_results() {
    let Some(ctx) = gpu_or_skip() else { return };
    let (m, n, r) = (4, 6, 3);
    let v = pseudo(m, n, 41, 0.0);
    let mut cpu = CpuEngine::new(v.view());
    let mut gpu = GpuEngine::new(&ctx, v.view()).unwrap();
    // Row 0 of X would become 1e-37 · 1e-3 = 1e-40, a subnormal: it must become 0.
    let mut x0 = Array2::<f32>::ones((m, r));
    x0.row_mut(0).fill(1e-37);
    let num = Array2::<f32>::from_elem((m, r), 1e-3);
    let den = Array2::<f32>::ones((m, r));
    let (mut cx, mut gx) = upload_both(&mut cpu, &mut gpu, &x0);
    let (cn, gn) = upload_both(&mut cpu, &mut gpu, &num);
    let (cd, gd) = upload_both(&mut cpu, &mut gpu, &den);
    plain_mu_w(&mut cpu, &mut cx, &cn, MuDenominator::Elementwise(&cd));
    plain_mu_w(&mut gpu, &mut gx, &gn, MuDenominator::Elementwise(&gd));
    let gx = gpu.download(&gx).unwrap();
    assert!(gx.row(0).iter().all(|&x| x == 0.0), "{gx:?}");
    assert!(cx.row(0).iter().all(|&x| x == 0.0));
    assert_close("mu flush", &gx, &cx);
}

#[test]
fn new_ops_reject_mismatched_shapes() {
    let Some(ctx) = gpu_or_skip() else { return };
    let (m, n, r) = (8, 6, 2);
    let v = pseudo(m, n, 42, 0.0);
    let mut gpu = GpuEngine::new(&ctx, v.view()).unwrap();
    let w = gpu.zeros(m, r).unwrap();
    let h = gpu.zeros(r, n).unwrap();
    let mut rr = gpu.zeros(r, r).unwrap();
    let mut wrong = gpu.zeros(r + 1, r).unwrap();
    let mut x = gpu.zeros(m, r).unwrap();
    let shape_err = |res: crate::error::Result<()>| {
        assert!(
            matches!(res, Err(crate::error::NmfError::ShapeMismatch { .. })),
            "{res:?}"
        );
    };
    shape_err(gpu.cross(&w, &h, Side::Left, &mut rr));
    shape_err(gpu.cross(&w, &w, Side::Left, &mut wrong));
    shape_err(gpu.mul_small(&w, &wrong, Side::Left, &mut x));
    shape_err(gpu.transpose(&w, &mut x));
    shape_err(gpu.axpby(1.0, &h, 1.0, &mut x));
    shape_err(gpu.masked_product(&w, &w, &h, Side::Left, &mut x));
    shape_err(gpu.masked_loss(&w, &w, &h).map(|_| ()));
    shape_err(gpu.mu_step(
        &mut x,
        &w,
        MuDenominator::Product(&wrong),
        Side::Left,
        Regularization::default(),
        f32::EPSILON,
        MuRule::Sqrt,
    ));
    shape_err(gpu.mu_step(
        &mut x,
        &w,
        MuDenominator::Elementwise(&h),
        Side::Left,
        Regularization::default(),
        f32::EPSILON,
        MuRule::Plain,
    ));
    // The right shapes pass.
    gpu.cross(&w, &w, Side::Left, &mut rr).unwrap();
    gpu.download(&rr).unwrap();
}
