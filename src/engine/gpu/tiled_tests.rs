//! Every matmul configuration the tuner may choose (not only the winner) against a naive f64
//! reference: each tile of the tuner's table and the strided kernel, split over the inner
//! dimension or not, in every operand layout, with vec4 and scalar loads, at dimensions around
//! the tile edges (1, 3, 7, 17, 63, 64, 65, 129; inner dimensions 1 to 70 and long split ones),
//! for the plain product and every fused epilogue.

use ndarray::Array2;

use super::matmul_plan::Operand;
use super::pipelines::{Epilogue, TileWg};
use super::state::GpuEngine;
use super::tiled::Layout;
use super::tuner::{self, MatmulConfig, MatmulKernel, TuneEffort};
use super::GpuContext;
use crate::linalg::gemm::Accum;
use crate::linalg::xorshift::XorShift;

include!("../../../tests/suite/common/gpu_available.rs");

/// A product or an elementwise epilogue against the f64 reference:
/// `max |gpu − ref| ≤ PRODUCT_REL_TOL · max |ref|` (f32 sums of at most a few thousand terms).
const PRODUCT_REL_TOL: f64 = 2e-5;
/// A loss epilogue's total against the f64 reference, relative.
const LOSS_REL_TOL: f64 = 1e-4;
/// β of the β-divergence epilogues.
const BETA: f32 = 0.5;
/// ε of the KL loss epilogue.
const KL_EPS: f32 = 1e-10;

/// The dimensions around the tile edges the issue names.
const EDGES: [usize; 8] = [1, 3, 7, 17, 63, 64, 65, 129];

/// Values in [0.05, 1.05), a different stream per seed.
fn pseudo(len: usize, seed: u32) -> Vec<f32> {
    XorShift::seeded(seed, 12_345, 10_000).vec(len, 0.05)
}

/// Every configuration a product of `dims` may run with: the tuner's whole table (fitting the
/// device) and the strided kernel at two workgroups, split over the inner dimension; unsplit
/// too when the inner dimension is long enough for a split (otherwise both are one dispatch).
fn every_config(ctx: &GpuContext, (rows, cols, k): (usize, usize, usize)) -> Vec<MatmulConfig> {
    let limits = &ctx.inner.limits;
    let strided = ctx.tuning().tile_for(rows, cols);
    let mut kernels: Vec<MatmulKernel> = tuner::tiles()
        .filter(|t| t.fits(limits))
        .map(MatmulKernel::Tiled)
        .collect();
    kernels.push(MatmulKernel::Strided(strided));
    kernels.push(MatmulKernel::Strided(TileWg { x: 8, y: 8 }));
    let splits: &[bool] = if k >= 512 { &[true, false] } else { &[true] };
    let mut out = Vec::new();
    for kernel in kernels {
        for &split in splits {
            let c = MatmulConfig { kernel, split };
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// A case's operands on the device.
struct Buffers {
    a: wgpu::Buffer,
    b: wgpu::Buffer,
    d: wgpu::Buffer,
    mask: wgpu::Buffer,
    c: wgpu::Buffer,
    partials: wgpu::Buffer,
}

/// One product's inputs, stored for `layout` at entry `off` of their buffers (an odd offset
/// forces the scalar loads), with the reference `Y = A B` in f64.
struct Case {
    dims: (usize, usize, usize),
    layout: Layout,
    off: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    d: Vec<f32>,
    mask: Vec<f32>,
    c0: Vec<f32>,
    y: Vec<f64>,
}

impl Case {
    fn new((rows, cols, k): (usize, usize, usize), layout: Layout, off: usize, seed: u32) -> Case {
        let a_log = pseudo(rows * k, seed);
        let b_log = pseudo(k * cols, seed + 1);
        let mut y = vec![0.0f64; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                y[i * cols + j] = (0..k)
                    .map(|l| f64::from(a_log[i * k + l]) * f64::from(b_log[l * cols + j]))
                    .sum();
            }
        }
        // Stored layouts: A row-major (rows x k) or its transpose (k x rows), B likewise.
        let a = if layout.a_t() {
            transpose(&a_log, rows, k)
        } else {
            a_log
        };
        let b = if layout.b_t() {
            transpose(&b_log, k, cols)
        } else {
            b_log
        };
        let pad = |v: Vec<f32>| [vec![9.0; off], v].concat();
        let mask = pseudo(rows * cols, seed + 3)
            .into_iter()
            .map(|x| if x > 0.4 { 1.0 } else { 0.0 })
            .collect();
        Case {
            dims: (rows, cols, k),
            layout,
            off,
            a: pad(a),
            b: pad(b),
            d: pseudo(rows * cols, seed + 2)
                .iter()
                .map(|x| x * k as f32)
                .collect(),
            mask,
            c0: pseudo(rows * cols, seed + 4),
            y,
        }
    }

    /// Run `epilogue` in `config` and return the output C (elementwise epilogues) or the sum
    /// of the loss partials (loss epilogues).
    /// The case's operands on the device.
    fn upload(&self, engine: &mut GpuEngine) -> Buffers {
        let ctx = engine.ctx.clone();
        let mut put = |data: &[f32]| {
            let buf =
                super::buffers::storage_buffer(&ctx, data.len(), "test operand").expect("buffer");
            engine.sched.upload(&ctx, &buf, data);
            buf
        };
        let (rows, cols, _) = self.dims;
        Buffers {
            a: put(&self.a),
            b: put(&self.b),
            d: put(&self.d),
            mask: put(&self.mask),
            c: put(&self.c0),
            partials: put(&vec![0.0; rows * cols + 64]),
        }
    }

    /// Run `epilogue` in `config` and return the output C (elementwise epilogues, from the
    /// start `c0`) or the sum of the loss partials (loss epilogues).
    fn run(
        &self,
        engine: &mut GpuEngine,
        bufs: &Buffers,
        config: MatmulConfig,
        epilogue: Epilogue,
        accum: Accum,
    ) -> Vec<f64> {
        let ctx = engine.ctx.clone();
        let (rows, cols, k) = self.dims;
        let Buffers {
            a: a_buf,
            b: b_buf,
            d: d_buf,
            mask: m_buf,
            c: c_buf,
            partials,
        } = bufs;
        engine.sched.upload(&ctx, c_buf, &self.c0);
        let a = if self.layout.a_t() {
            Operand::transposed(a_buf, self.off, rows)
        } else {
            Operand::rows(a_buf, self.off, k)
        };
        let b = if self.layout.b_t() {
            Operand::transposed(b_buf, self.off, k)
        } else {
            Operand::rows(b_buf, self.off, cols)
        };
        let d = Operand::rows(d_buf, 0, cols);
        let reduces = super::autotune::reduces(epilogue);
        let c = if reduces {
            Operand::rows(partials, 0, 0)
        } else {
            Operand::rows(c_buf, 0, cols)
        };
        let mask = (epilogue == Epilogue::LossMasked).then(|| Operand::rows(m_buf, 0, cols));
        let scalar = match epilogue {
            Epilogue::LossKl => KL_EPS,
            _ => BETA,
        };
        let groups = engine
            .product_with(
                config,
                epilogue,
                (rows, cols, k),
                a,
                b,
                c,
                d,
                mask,
                accum,
                scalar,
            )
            .expect("encode the product");
        if reduces {
            let parts = engine
                .sched
                .read_back(&ctx, partials, groups)
                .expect("read back");
            vec![parts.iter().map(|&x| f64::from(x)).sum()]
        } else {
            let out = engine
                .sched
                .read_back(&ctx, c_buf, rows * cols)
                .expect("read back");
            out.iter().map(|&x| f64::from(x)).collect()
        }
    }

    /// The f64 reference of `epilogue`.
    fn reference(&self, epilogue: Epilogue, accum: Accum) -> Vec<f64> {
        let guard = f64::from(f32::EPSILON);
        let beta = f64::from(BETA);
        let d = |i: usize| f64::from(self.d[i]);
        let each = |f: &dyn Fn(usize, f64) -> f64| -> Vec<f64> {
            self.y.iter().enumerate().map(|(i, &y)| f(i, y)).collect()
        };
        let total = |f: &dyn Fn(usize, f64) -> f64| -> Vec<f64> { vec![each(f).iter().sum()] };
        match epilogue {
            Epilogue::Store => each(&|i, y| match accum {
                Accum::Add => y + f64::from(self.c0[i]),
                Accum::Replace => y,
            }),
            Epilogue::KlRatio => each(&|i, y| d(i) / y.max(guard)),
            Epilogue::Masked => each(&|i, y| d(i) * y),
            Epilogue::BetaNum => each(&|i, y| d(i) * y.max(guard).powf(beta - 2.0)),
            Epilogue::BetaDen => each(&|_, y| y.max(guard).powf(beta - 1.0)),
            Epilogue::LossFrobenius => total(&|i, y| (d(i) - y).powi(2)),
            Epilogue::LossKl => total(&|i, y| d(i) * (d(i) / y).ln() - d(i) + y),
            Epilogue::LossMasked => total(&|i, y| (f64::from(self.mask[i]) * (d(i) - y)).powi(2)),
            Epilogue::LossBeta => {
                total(&|i, y| crate::engine::divergence::beta_entry(self.d[i], y as f32, BETA))
            }
        }
    }
}

fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; x.len()];
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = x[i * cols + j];
        }
    }
    t
}

fn check(what: &str, gpu: &[f64], reference: &[f64], tol: f64) {
    assert_eq!(gpu.len(), reference.len(), "{what}: length");
    let scale = reference
        .iter()
        .fold(f64::MIN_POSITIVE, |m, x| m.max(x.abs()));
    let err = gpu
        .iter()
        .zip(reference)
        .fold(0.0f64, |m, (g, r)| m.max((g - r).abs()));
    assert!(
        err <= tol * scale,
        "{what}: max error {err:e} vs scale {scale:e}"
    );
}

/// Shapes `(rows, cols, k)` that put every edge dimension in every position, inner dimensions
/// from 1 to 70 (the ranks), and long inner dimensions (products split over it).
fn shapes() -> Vec<(usize, usize, usize)> {
    let ranks = [1, 3, 7, 17, 49, 64, 70, 2];
    let mut out: Vec<(usize, usize, usize)> = (0..EDGES.len())
        .map(|i| (EDGES[i], EDGES[(i + 3) % 8], ranks[i]))
        .collect();
    out.extend([(65, 129, 63), (3, 5, 1100), (17, 2, 1030), (64, 64, 517)]);
    out
}

#[test]
fn every_configuration_matches_the_reference_in_every_layout() {
    let Some(ctx) = gpu_or_skip() else { return };
    let mut engine = GpuEngine::new(&ctx, Array2::<f32>::zeros((1, 1)).view()).expect("engine");
    for (s, &dims) in shapes().iter().enumerate() {
        for (l, &layout) in Layout::ALL.iter().enumerate() {
            // Offset 0 (vec4 loads where the leading dimension allows) or 3 (scalar loads).
            let off = if (s + l) % 2 == 0 { 0 } else { 3 };
            let case = Case::new(dims, layout, off, (s * 7 + l) as u32);
            let accum = if s % 3 == 0 {
                Accum::Add
            } else {
                Accum::Replace
            };
            let reference = case.reference(Epilogue::Store, accum);
            let bufs = case.upload(&mut engine);
            for config in every_config(&ctx, dims) {
                let gpu = case.run(&mut engine, &bufs, config, Epilogue::Store, accum);
                let what = format!(
                    "{} {dims:?} {} off {off} {accum:?}",
                    config.label(),
                    layout.name()
                );
                check(&what, &gpu, &reference, PRODUCT_REL_TOL);
            }
        }
    }
}

#[test]
fn every_configuration_matches_the_reference_for_every_epilogue() {
    let Some(ctx) = gpu_or_skip() else { return };
    let mut engine = GpuEngine::new(&ctx, Array2::<f32>::zeros((1, 1)).view()).expect("engine");
    // The fused epilogues run on W H (row-major operands) blocks in the solvers; one layout
    // per shape is enough for them, the products above cover the rest.
    let cases = [
        ((65, 63, 17), Layout::AB, 0),
        ((7, 129, 3), Layout::AB, 1),
        ((64, 64, 70), Layout::ABt, 0),
    ];
    for (n, &(dims, layout, off)) in cases.iter().enumerate() {
        let case = Case::new(dims, layout, off, 100 + n as u32);
        let bufs = case.upload(&mut engine);
        for epilogue in Epilogue::ALL {
            let reference = case.reference(epilogue, Accum::Replace);
            let tol = if super::autotune::reduces(epilogue) {
                LOSS_REL_TOL
            } else {
                PRODUCT_REL_TOL
            };
            for config in every_config(&ctx, dims) {
                let gpu = case.run(&mut engine, &bufs, config, epilogue, Accum::Replace);
                let what = format!("{epilogue:?} {} {dims:?} {}", config.label(), layout.name());
                check(&what, &gpu, &reference, tol);
            }
        }
    }
}

/// Tuning picks among candidates that all compute the same product: a quick and a full tuning
/// give the fixed heuristic's result up to f32 summation order, and the choice is cached.
#[test]
fn tuning_changes_results_only_by_summation_order() {
    let Some(shared) = gpu_or_skip() else { return };
    let dims = (129, 65, 70);
    let case = Case::new(dims, Layout::ABt, 0, 7);
    let reference = case.reference(Epilogue::Store, Accum::Replace);
    let dir = std::env::temp_dir().join(format!("nmf-gpu-tune-test-{}", std::process::id()));
    let mut results = Vec::new();
    for effort in [TuneEffort::Off, TuneEffort::Quick, TuneEffort::Full] {
        let ctx = shared
            .clone()
            .with_tuning(effort)
            .with_tuning_cache(Some(dir.clone()));
        assert_eq!(ctx.tuning_effort(), effort);
        let mut engine = GpuEngine::new(&ctx, Array2::<f32>::zeros((1, 1)).view()).expect("engine");
        let (rows, cols, k) = dims;
        let a_buf = super::buffers::storage_buffer(&ctx, case.a.len(), "a").expect("buffer");
        let b_buf = super::buffers::storage_buffer(&ctx, case.b.len(), "b").expect("buffer");
        let c_buf = super::buffers::storage_buffer(&ctx, rows * cols, "c").expect("buffer");
        engine.sched.upload(&ctx, &a_buf, &case.a);
        engine.sched.upload(&ctx, &b_buf, &case.b);
        let c = Operand::rows(&c_buf, 0, cols);
        engine
            .product(
                Epilogue::Store,
                dims,
                Operand::rows(&a_buf, 0, k),
                Operand::transposed(&b_buf, 0, k),
                c,
                Operand::rows(&a_buf, 0, k),
                None,
                Accum::Replace,
                0.0,
            )
            .expect("product");
        let out = engine
            .sched
            .read_back(&ctx, &c_buf, rows * cols)
            .expect("read back");
        let out: Vec<f64> = out.iter().map(|&x| f64::from(x)).collect();
        check(
            &format!("tuning {effort}"),
            &out,
            &reference,
            PRODUCT_REL_TOL,
        );
        results.push(out);
    }
    for other in &results[1..] {
        check("tuned against untuned", other, &results[0], PRODUCT_REL_TOL);
    }
    // The choices were saved: one cache file for this adapter.
    let files = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(files, 1, "one tuning cache file in {}", dir.display());
}
