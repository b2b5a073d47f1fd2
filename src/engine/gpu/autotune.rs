//! The matmul autotuner at work: which configuration a product runs with, the timing of the
//! candidates on the device, and the public surface (`GpuContext::with_tuning`,
//! `GpuContext::tune_table`, the table `nmf info --tune` prints).
//!
//! With tuning on, the first product of a shape class (tuner.rs) on an adapter pauses the
//! engine's queue once: the candidates run on scratch operands of the product's shape (each
//! dimension capped at [`MAX_TUNE_DIM`], [`SOFTWARE_TUNE_DIM`] on a software adapter, keeping
//! its residue mod 4 so vec4 alignment is as in the real product), each for about
//! [`QUICK_MS`] (quick) or [`FULL_MS`] (full) milliseconds after one warm-up run that also
//! compiles its pipelines, on a scheduler of their own (so the engine's counters count only
//! its own work). The fastest is kept for the class, in memory and on disk. Loss epilogues
//! always take the heuristic's choice: their partial count must be known before the product is
//! encoded (`product_groups`), and they run only at loss checks.

use std::time::Instant;

use ndarray::Array2;

use super::buffers::storage_buffer;
use super::context::GpuContext;
use super::matmul_plan::Operand;
use super::pipelines::Epilogue;
use super::scheduler::Scheduler;
use super::state::GpuEngine;
use super::tiled::Layout;
use super::tuner::{
    candidates, heuristic, Choice, DeviceShape, MatmulConfig, ShapeClass, TuneEffort,
};
use crate::error::{NmfError, Result};
use crate::linalg::gemm::Accum;

/// Largest dimension of the scratch product a shape class is tuned on.
pub(crate) const MAX_TUNE_DIM: usize = 2048;
/// Largest dimension on a software adapter (where tuning is kept quick).
pub(crate) const SOFTWARE_TUNE_DIM: usize = 256;
/// Time spent on each candidate by a quick tuning, in milliseconds.
const QUICK_MS: f64 = 3.0;
/// Time spent on each candidate by a full tuning, in milliseconds.
const FULL_MS: f64 = 15.0;
/// Most timed repetitions of one candidate.
const MAX_REPS: usize = 64;

/// One timed candidate of one product shape.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneRow {
    /// `(rows, cols, k)` of the timed product `C = A B`.
    pub shape: (usize, usize, usize),
    /// The operands' layout: `AB`, `AtB` (Aᵀ stored), `ABt` (Bᵀ stored), `AtBt`.
    pub layout: String,
    /// The configuration, e.g. `tiled 16x16 4x4 k16 split` (workgroup, register block, depth
    /// of the staged tiles, split over the inner dimension or not) or `strided 16x16 split`.
    pub config: String,
    /// Milliseconds per product (the mean over the timed repetitions).
    pub ms: f64,
    /// `2·rows·cols·k / time`, in GFLOP/s.
    pub gflops: f64,
    /// Whether it is the fixed heuristic's choice (what runs with tuning off).
    pub heuristic: bool,
}

impl GpuContext {
    /// This context with the matmul kernels chosen at `effort` (overriding `NMF_GPU_TUNE`; see
    /// [`TuneEffort`]). The choices are shared by every clone of the context and cached on
    /// disk per adapter, driver and crate version.
    pub fn with_tuning(mut self, effort: TuneEffort) -> GpuContext {
        self.tune.effort = Some(effort);
        self
    }

    /// This context with the tuning cache in `dir` (`None`: no disk cache) instead of the
    /// platform cache directory or `NMF_GPU_TUNE_CACHE`.
    #[doc(hidden)]
    pub fn with_tuning_cache(mut self, dir: Option<std::path::PathBuf>) -> GpuContext {
        self.tune.cache = Some(dir);
        self
    }

    /// This context with every product on the strided kernel, untuned (as
    /// `NMF_GPU_MATMUL=strided`), or back to the heuristic and the tuner: for comparisons.
    #[doc(hidden)]
    pub fn with_strided_matmul(mut self, strided: bool) -> GpuContext {
        self.tune.strided_only = strided;
        self
    }

    /// The tuning effort in force: [`with_tuning`](Self::with_tuning)'s, else `NMF_GPU_TUNE`'s,
    /// else `Quick` on a hardware adapter and `Off` on a software one.
    pub fn tuning_effort(&self) -> TuneEffort {
        self.tune
            .effort
            .unwrap_or_else(|| self.inner.tuner.effort())
    }

    /// Time every candidate configuration (a full tuning's set) of the products `shapes`
    /// (`(layout, (rows, cols, k))`, layout as in [`TuneRow::layout`]) on this adapter, a few
    /// milliseconds each; nothing is cached. The table `nmf info --tune` prints.
    pub fn tune_table(&self, shapes: &[(&str, (usize, usize, usize))]) -> Result<Vec<TuneRow>> {
        let mut engine = GpuEngine::new(self, Array2::<f32>::zeros((1, 1)).view())?;
        let mut rows = Vec::new();
        for &(name, dims) in shapes {
            let layout = Layout::parse(name).ok_or_else(|| NmfError::GpuInternal {
                message: format!("{name:?} is not a layout (AB, AtB, ABt, AtBt)"),
            })?;
            let dev = engine.device_shape(dims.0, dims.1);
            let fixed = heuristic(dev, Some(layout), (dims.0, dims.1));
            let configs = candidates(dev, Some(layout), (dims.0, dims.1), TuneEffort::Full);
            for (config, ms) in engine.time_configs(Some(layout), dims, &configs, FULL_MS)? {
                rows.push(TuneRow {
                    shape: dims,
                    layout: layout.name().to_string(),
                    config: config.label(),
                    ms,
                    gflops: gflops(dims, ms),
                    heuristic: config == fixed,
                });
            }
        }
        Ok(rows)
    }
}

/// The product a device's speed is measured on by [`GpuContext::measure_speed`]: a V Hᵀ-like
/// panel `(rows, r, k)` with V's rows stored (layout `ABt`), the shape class of a fit's largest
/// product at rank 64.
const SPEED_PROBE: (usize, usize, usize) = (2048, 64, 2048);
/// The probe on a software adapter, kept small.
const SPEED_PROBE_SOFTWARE: (usize, usize, usize) = (256, 16, 256);

impl GpuContext {
    /// This device's speed in GFLOP/s (`2·rows·cols·k / time`) on a V Hᵀ-like product with the
    /// configuration a fit would run it with (the fixed heuristic's), timed for about
    /// a few ms after a warm-up run: the weight of its row panel in a multi-GPU fit
    /// ([`Backend::MultiGpu`](crate::Backend::MultiGpu)) when the devices differ.
    pub fn measure_speed(&self) -> Result<f64> {
        let mut engine = GpuEngine::new(self, Array2::<f32>::zeros((1, 1)).view())?;
        let dims = if self.is_software() {
            SPEED_PROBE_SOFTWARE
        } else {
            SPEED_PROBE
        };
        let layout = Some(Layout::ABt);
        let config = engine.fixed_config(layout, dims.0, dims.1);
        let timed = engine.time_configs(layout, dims, &[config], QUICK_MS)?;
        let ms = timed.first().map_or(f64::NAN, |&(_, ms)| ms);
        Ok(gflops(dims, ms))
    }
}

fn gflops((rows, cols, k): (usize, usize, usize), ms: f64) -> f64 {
    2.0 * rows as f64 * cols as f64 * k as f64 / (ms.max(1e-9) * 1e6)
}

/// Whether the epilogue writes one loss partial per workgroup.
pub(crate) fn reduces(epilogue: Epilogue) -> bool {
    matches!(
        epilogue,
        Epilogue::LossFrobenius | Epilogue::LossKl | Epilogue::LossMasked | Epilogue::LossBeta
    )
}

/// `x` capped at `cap` with its residue mod 4 kept (so a capped operand is vec4-aligned
/// exactly when the real one is); `cap` a multiple of 4.
fn cap_dim(x: usize, cap: usize) -> usize {
    if x <= cap {
        x
    } else {
        cap - 4 + x % 4
    }
}

impl GpuEngine {
    /// What the heuristic and the candidates need of the device for a `rows x cols` output.
    pub(super) fn device_shape(&self, rows: usize, cols: usize) -> DeviceShape<'_> {
        DeviceShape {
            limits: &self.ctx.inner.limits,
            strided: self.ctx.tuning().tile_for(rows, cols),
        }
    }

    /// The fixed heuristic's configuration for a `rows x cols` output of `layout` (the strided
    /// kernel whatever the layout with `NMF_GPU_MATMUL=strided`).
    pub(super) fn fixed_config(
        &self,
        layout: Option<Layout>,
        rows: usize,
        cols: usize,
    ) -> MatmulConfig {
        let layout = if self.ctx.tune.strided_only {
            None
        } else {
            layout
        };
        heuristic(self.device_shape(rows, cols), layout, (rows, cols))
    }

    /// The configuration the product `A B` (`rows x cols`, inner `k`) with `epilogue` runs
    /// with: the heuristic's with tuning off, for loss epilogues and with
    /// `NMF_GPU_MATMUL=strided`, else the cached choice of its shape class, tuned now if there
    /// is none.
    pub(super) fn matmul_config(
        &mut self,
        epilogue: Epilogue,
        (rows, cols, k): (usize, usize, usize),
        a: &Operand<'_>,
        b: &Operand<'_>,
    ) -> Result<MatmulConfig> {
        let layout = Layout::of((a.rs, a.cs), (b.rs, b.cs), (rows, cols, k));
        let fixed = self.fixed_config(layout, rows, cols);
        let effort = self.ctx.tuning_effort();
        if effort == TuneEffort::Off || reduces(epilogue) || self.ctx.tune.strided_only {
            return Ok(fixed);
        }
        let class = ShapeClass::of(layout, (rows, cols, k));
        let dir = self.ctx.tune.cache_dir();
        let tuner = &self.ctx.inner.tuner;
        if let Some(config) = tuner.lookup(class, effort, &self.ctx.inner.limits, dir.as_deref()) {
            return Ok(config);
        }
        let cap = if self.ctx.inner.info.device_type == wgpu::DeviceType::Cpu {
            SOFTWARE_TUNE_DIM
        } else {
            MAX_TUNE_DIM
        };
        let dims = (cap_dim(rows, cap), cap_dim(cols, cap), cap_dim(k, cap));
        let configs = candidates(self.device_shape(rows, cols), layout, (rows, cols), effort);
        let target = if effort == TuneEffort::Full {
            FULL_MS
        } else {
            QUICK_MS
        };
        let timed = self.time_configs(layout, dims, &configs, target)?;
        let best = timed
            .iter()
            .min_by(|x, y| x.1.total_cmp(&y.1))
            .map_or(fixed, |&(c, _)| c);
        log::info!(
            "matmul tuning ({effort}): {} {rows}x{cols}x{k}: {} of {} candidates",
            layout.map_or("strided", Layout::name),
            best.label(),
            timed.len()
        );
        self.ctx.inner.tuner.record(
            class,
            Choice {
                config: best,
                effort,
            },
            dir.as_deref(),
        );
        Ok(best)
    }

    /// Milliseconds per product of each configuration on scratch operands of `layout` and
    /// shape `dims`, each timed for about `target_ms` after a warm-up run, on a scheduler of
    /// their own (the engine's pending work is not submitted, and its counters are untouched).
    pub(super) fn time_configs(
        &mut self,
        layout: Option<Layout>,
        (rows, cols, k): (usize, usize, usize),
        configs: &[MatmulConfig],
        target_ms: f64,
    ) -> Result<Vec<(MatmulConfig, f64)>> {
        self.on_own_scheduler(|engine| {
            let ctx = engine.ctx.clone();
            let pattern = |len: usize| -> Vec<f32> {
                (0..len)
                    .map(|i| ((i * 7919) % 101) as f32 / 101.0 + 0.01)
                    .collect()
            };
            let a_buf = storage_buffer(&ctx, rows * k, "a tuning operand")?;
            let b_buf = storage_buffer(&ctx, k * cols, "a tuning operand")?;
            let c_buf = storage_buffer(&ctx, rows * cols, "a tuning output")?;
            engine.sched.upload(&ctx, &a_buf, &pattern(rows * k));
            engine.sched.upload(&ctx, &b_buf, &pattern(k * cols));
            let layout_used = layout.unwrap_or(Layout::AB);
            let a = if layout_used.a_t() {
                Operand::transposed(&a_buf, 0, rows)
            } else {
                Operand::rows(&a_buf, 0, k)
            };
            let b = if layout_used.b_t() {
                Operand::transposed(&b_buf, 0, k)
            } else {
                Operand::rows(&b_buf, 0, cols)
            };
            let c = Operand::rows(&c_buf, 0, cols);
            let mut out = Vec::with_capacity(configs.len());
            for &config in configs {
                let run = |engine: &mut GpuEngine, reps: usize| -> Result<f64> {
                    let start = Instant::now();
                    for _ in 0..reps {
                        engine.product_with(
                            config,
                            Epilogue::Store,
                            (rows, cols, k),
                            a,
                            b,
                            c,
                            // D is not read by the store epilogue; any buffer but C.
                            a,
                            None,
                            Accum::Replace,
                            0.0,
                        )?;
                    }
                    engine.sched.submit(&ctx)?;
                    ctx.device()
                        .poll(wgpu::PollType::wait_indefinitely())
                        .map_err(|e| NmfError::GpuInternal {
                            message: format!("waiting for the device while tuning: {e}"),
                        })?;
                    ctx.check_faults()?;
                    Ok(start.elapsed().as_secs_f64() * 1e3)
                };
                // Warm-up (compiles the pipelines), a first timing, then enough repetitions.
                run(engine, 1)?;
                let once = run(engine, 1)?;
                let reps = ((target_ms / once.max(1e-3)) as usize).clamp(1, MAX_REPS);
                let ms = if reps > 1 {
                    run(engine, reps)? / reps as f64
                } else {
                    once
                };
                out.push((config, ms));
            }
            Ok(out)
        })
    }

    /// `f` on a scheduler of the engine's own making, the engine's scheduler (its pending work
    /// and its counters) set aside meanwhile and put back after.
    fn on_own_scheduler<T>(&mut self, f: impl FnOnce(&mut GpuEngine) -> Result<T>) -> Result<T> {
        let own = Scheduler::new(&self.ctx)?;
        let saved = std::mem::replace(&mut self.sched, own);
        let out = f(self);
        self.sched = saved;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::cap_dim;

    #[test]
    fn capped_dimensions_keep_their_alignment() {
        assert_eq!(cap_dim(100, 256), 100);
        assert_eq!(cap_dim(4096, 256), 252);
        assert_eq!(cap_dim(4097, 256), 253);
        assert_eq!(cap_dim(4099, 256), 255);
        for x in [257, 1001, 65_537] {
            assert_eq!(cap_dim(x, 256) % 4, x % 4);
            assert!(cap_dim(x, 256) <= 256);
        }
    }
}
