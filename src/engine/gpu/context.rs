//! The device context: adapter choice, the device and queue, tuning from the adapter's limits,
//! the pipeline cache, and the record of asynchronous device faults.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::pipelines::{Compiled, Kernel, PipelineCache, TileWg};
use super::tuner::{TuneOptions, Tuner};
use crate::error::{NmfError, Result};

/// Default ceiling of the KL ratio block `V ⊘ WH` formed at once: 64 MiB.
const DEFAULT_KL_BLOCK_BYTES: u64 = 64 << 20;

/// A GPU device ready to run factorizations, cheap to clone and reusable across fits
/// (compiled kernels are cached inside).
///
/// Any adapter wgpu can drive works: Vulkan, Metal or DX12. A machine without a GPU can still
/// run the GPU engine on lavapipe, Mesa's Vulkan driver on the CPU (slow, but exact enough for
/// tests): on Debian/Ubuntu, `apt-get install mesa-vulkan-drivers libvulkan1`. With
/// [`Backend::Auto`](crate::Backend::Auto) a fit uses the context opened once per process and
/// falls back to the CPU engine (with a logged warning) when no adapter is usable.
///
/// ```no_run
/// use nmf_gpu::{Backend, GpuContext, Nmf};
/// # let v = nmf_gpu::ndarray::Array2::<f32>::ones((100, 80));
/// let gpu = GpuContext::new()?;
/// println!("running on {}", gpu.adapter_info().name);
/// let fit = Nmf::params(8).backend(Backend::Gpu(gpu)).fit(v.view())?;
/// # Ok::<(), nmf_gpu::NmfError>(())
/// ```
#[derive(Clone)]
pub struct GpuContext {
    pub(crate) inner: Arc<ContextInner>,
    pub(crate) budget: Budget,
    /// What this context asks of the matmul tuner (effort, cache directory).
    pub(crate) tune: TuneOptions,
    /// The device's speed relative to the others of a multi-GPU fit, when known.
    pub(crate) speed: Option<f64>,
}

/// Size ceilings for the data a fit keeps on the device.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Largest column panel of V, in bytes (at most one storage binding).
    pub panel_bytes: u64,
    /// Largest block of the KL ratio `V ⊘ WH` formed at once, in bytes.
    pub kl_block_bytes: u64,
}

/// Workgroup shapes chosen from the adapter's limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    /// Matmul workgroup `(x, y)`; each invocation owns a 4 x 4 register block.
    pub tile_wg: (u32, u32),
    /// Workgroup size of the one-dimensional kernels.
    pub linear_wg: u32,
    /// Most workgroups in one dispatch dimension.
    pub max_groups: u32,
    /// Workgroup size limits: x, y, and invocations in all.
    pub max_wg: (u32, u32, u32),
}

impl Tuning {
    fn fits(&self, x: u32, y: u32) -> bool {
        x <= self.max_wg.0 && y <= self.max_wg.1 && x * y <= self.max_wg.2
    }

    /// The matmul workgroup for an output of `rows x cols`: outputs with few columns (e.g.
    /// `V Hᵀ` at a small rank) get tall tiles and outputs with few rows wide ones, so that few
    /// of the entries a workgroup computes fall outside the matrix.
    pub fn tile_for(&self, rows: usize, cols: usize) -> TileWg {
        let (x0, y0) = self.tile_wg;
        let invocations = x0 * y0;
        let side = |len: usize| if len <= 16 { 4 } else { 8 };
        let (x, y) = if cols <= 32 && cols < rows {
            let x = side(cols);
            (x, invocations / x)
        } else if rows <= 32 && rows < cols {
            let y = side(rows);
            (invocations / y, y)
        } else {
            (x0, y0)
        };
        if x * y == invocations && self.fits(x, y) {
            TileWg { x, y }
        } else {
            TileWg { x: x0, y: y0 }
        }
    }
}

/// Register block of each matmul invocation (the `TM`, `TN` constants of `matmul.wgsl`).
pub(crate) const REGISTER_BLOCK: u32 = 4;

pub(crate) struct ContextInner {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub tuning: Tuning,
    pub pipelines: PipelineCache,
    pub faults: Arc<Faults>,
    /// The matmul configurations chosen on this adapter (autotune.rs).
    pub tuner: Tuner,
    /// Device buffers allocated through this context ([`super::buffers::buffer`]).
    pub buffers_created: AtomicU64,
}

/// Errors the device reports asynchronously (outside any error scope) and device loss.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    lost: Mutex<Option<String>>,
    error: Mutex<Option<Fault>>,
}

#[derive(Debug)]
enum Fault {
    OutOfMemory,
    Other(String),
}

impl Faults {
    fn record_error(&self, e: wgpu::Error) {
        let fault = match e {
            wgpu::Error::OutOfMemory { .. } => Fault::OutOfMemory,
            other => Fault::Other(other.to_string()),
        };
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert(fault);
        }
    }

    fn record_lost(&self, reason: wgpu::DeviceLostReason, message: String) {
        if reason == wgpu::DeviceLostReason::Destroyed {
            return;
        }
        if let Ok(mut slot) = self.lost.lock() {
            slot.get_or_insert(message);
        }
    }

    /// The first fault recorded since the last call, as an error.
    pub(crate) fn take(&self) -> Result<()> {
        if let Some(message) = self.lost.lock().ok().and_then(|s| s.clone()) {
            return Err(NmfError::GpuDeviceLost { message });
        }
        match self.error.lock().ok().and_then(|mut s| s.take()) {
            None => Ok(()),
            Some(Fault::OutOfMemory) => Err(NmfError::GpuOutOfMemory {
                what: "a GPU operation".into(),
                bytes: 0,
            }),
            Some(Fault::Other(message)) => Err(NmfError::GpuInternal { message }),
        }
    }
}

impl fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.inner.info.name)
            .field("backend", &self.inner.info.backend)
            .field("device_type", &self.inner.info.device_type)
            .field("max_panel_bytes", &self.budget.panel_bytes)
            .finish()
    }
}

impl GpuContext {
    /// Whether the adapter is a software rasteriser running on the CPU (lavapipe, llvmpipe,
    /// SwiftShader), which `Backend::Auto` never chooses.
    pub fn is_software(&self) -> bool {
        self.inner.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Open the high-performance GPU adapter (blocking).
    ///
    /// wgpu's environment variables are honoured: `WGPU_BACKEND` (e.g. `vulkan`, `metal`,
    /// `dx12`; default: the primary backends), `WGPU_ADAPTER_NAME` (a substring of the adapter
    /// name) and `WGPU_POWER_PREF` (`high`, `low`, `none`; default `high`).
    ///
    /// Fails with [`NmfError::GpuNoAdapter`] when no adapter with compute shaders exists and
    /// [`NmfError::GpuDevice`] when the device cannot be opened.
    pub fn new() -> Result<GpuContext> {
        pollster::block_on(open(None))
    }

    /// A context on the adapter of this index in [`GpuContext::adapters`] (the order `nmf info`
    /// lists them in), rather than the one chosen by power preference; an index past the list
    /// is a [`NmfError::GpuNoAdapter`] that names every adapter with its index.
    pub fn on_adapter(index: usize) -> Result<GpuContext> {
        pollster::block_on(open(Some(index)))
    }

    /// Every adapter this crate can open, in index order (the indices of
    /// [`GpuContext::on_adapter`], `--backend gpu:N` and `NMF_GPU_ADAPTER`).
    pub fn adapters() -> Vec<wgpu::AdapterInfo> {
        let instance = instance();
        pollster::block_on(instance.enumerate_adapters(backends()))
            .iter()
            .map(|a| a.get_info())
            .collect()
    }

    /// The compiled pipeline of `kernel` on this device (compiled and cached on first use).
    pub(crate) fn pipeline(&self, kernel: Kernel) -> Result<Arc<Compiled>> {
        self.inner
            .pipelines
            .get(self.device(), self.tuning().linear_wg, kernel)
    }

    /// The wgpu instance this crate searches adapters on, and the backends it searches (for
    /// listing adapters as the engine sees them); creating it prints nothing.
    #[doc(hidden)]
    pub fn instance() -> (wgpu::Instance, wgpu::Backends) {
        (instance(), backends())
    }

    /// Name, vendor, backend and driver of the adapter in use.
    pub fn adapter_info(&self) -> wgpu::AdapterInfo {
        self.inner.info.clone()
    }

    /// This context with V split into column panels of at most `bytes` bytes, so that the
    /// panel path can be exercised on small matrices.
    #[doc(hidden)]
    pub fn with_max_panel_bytes(mut self, bytes: u64) -> GpuContext {
        self.budget.panel_bytes = bytes.clamp(4, self.default_panel_bytes());
        self
    }

    /// This context with the KL ratio formed in blocks of at most `bytes` bytes.
    #[doc(hidden)]
    pub fn with_kl_block_bytes(mut self, bytes: u64) -> GpuContext {
        self.budget.kl_block_bytes = bytes.max(4);
        self
    }

    /// This context with a speed relative to the other devices of a multi-GPU fit
    /// ([`Backend::MultiGpu`](crate::Backend::MultiGpu)), e.g. its GFLOP/s in `nmf info
    /// --tune` or [`GpuContext::measure_speed`]: V's rows are split in proportion to the
    /// speeds when every device has one; otherwise in equal panels on devices of one kind, and
    /// by speeds measured when the fit opens on different devices. A value that is not a
    /// positive finite number means unknown.
    pub fn with_relative_speed(mut self, speed: f64) -> GpuContext {
        self.speed = (speed.is_finite() && speed > 0.0).then_some(speed);
        self
    }

    /// The speed given by [`GpuContext::with_relative_speed`], if any.
    pub fn relative_speed(&self) -> Option<f64> {
        self.speed
    }

    /// Rows and columns of C covered by one matmul workgroup on large square outputs.
    #[doc(hidden)]
    pub fn matmul_tile(&self) -> (usize, usize) {
        let (x, y) = self.inner.tuning.tile_wg;
        ((y * REGISTER_BLOCK) as usize, (x * REGISTER_BLOCK) as usize)
    }

    fn default_panel_bytes(&self) -> u64 {
        binding_ceiling(&self.inner.limits)
    }

    pub(crate) fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    pub(crate) fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    pub(crate) fn tuning(&self) -> Tuning {
        self.inner.tuning
    }

    /// Largest buffer that can be bound as one storage binding.
    pub(crate) fn max_binding_bytes(&self) -> u64 {
        binding_ceiling(&self.inner.limits)
    }

    /// Device buffers allocated on this context's device so far.
    pub(crate) fn buffers_created(&self) -> u64 {
        self.inner.buffers_created.load(Ordering::Relaxed)
    }

    /// Count one device buffer allocation.
    pub(crate) fn count_buffer(&self) {
        self.inner.buffers_created.fetch_add(1, Ordering::Relaxed);
    }

    /// Fail with the first asynchronous fault (device lost, uncaptured error), if any.
    pub(crate) fn check_faults(&self) -> Result<()> {
        self.inner.faults.take()
    }
}

fn binding_ceiling(limits: &wgpu::Limits) -> u64 {
    limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size)
}

fn backends() -> wgpu::Backends {
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY)
}

/// Keep window-system probes off the adapter search, once per process, before the first
/// instance is created.
///
/// The primary backends (no GL, so no EGL) need no display, but Mesa's Vulkan device-selection
/// layer, an implicit layer the Vulkan loader inserts, connects to the Wayland compositor to
/// find the display's GPU whenever the instance enables `VK_KHR_wayland_surface` (wgpu always
/// does). Without a compositor libwayland then prints `error: XDG_RUNTIME_DIR is invalid or not
/// set in the environment.` on stderr, twice per search, which a user reads as a failure. A
/// compute library has no display to match, and the adapter is chosen here by power preference
/// or `WGPU_ADAPTER_NAME`, not by the layer's ordering: so when no Wayland display is
/// configured (`WAYLAND_DISPLAY` and `WAYLAND_SOCKET` unset) the layer is switched off through
/// its own switch, `NODEVICE_SELECT=1`, unless the user has set that variable. With a Wayland
/// display, or with `NODEVICE_SELECT` set either way, nothing changes.
fn quiet_window_system_probes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let set = |name: &str| std::env::var_os(name).is_some();
        if !set("WAYLAND_DISPLAY") && !set("WAYLAND_SOCKET") && !set("NODEVICE_SELECT") {
            // Set once, before this crate creates any instance (the loader reads it then).
            std::env::set_var("NODEVICE_SELECT", "1");
        }
    });
}

/// The wgpu instance adapters are searched on: the backends of `WGPU_BACKEND` (default: the
/// primary ones), no display handle, wgpu's other environment variables honoured, and no
/// window-system probing (see [`quiet_window_system_probes`]).
fn instance() -> wgpu::Instance {
    quiet_window_system_probes();
    let desc = wgpu::InstanceDescriptor {
        backends: backends(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    }
    .with_env();
    wgpu::Instance::new(desc)
}

/// `names` joined by commas, or `none`.
fn listing(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// The adapter at `index` of the enumeration, or an error listing every adapter with its index.
async fn adapter_at(instance: &wgpu::Instance, index: usize) -> Result<wgpu::Adapter> {
    let mut adapters = instance.enumerate_adapters(backends()).await;
    if index < adapters.len() {
        return Ok(adapters.swap_remove(index));
    }
    let listed: Vec<String> = adapters
        .iter()
        .enumerate()
        .map(|(k, a)| {
            let info = a.get_info();
            format!(
                "{k}: {} ({:?}, {:?})",
                info.name, info.backend, info.device_type
            )
        })
        .collect();
    Err(NmfError::GpuNoAdapter {
        reason: format!(
            "there is no adapter {index}; the adapters are {} (`nmf info` lists them)",
            listing(&listed)
        ),
    })
}

/// The adapter a context opens: `index` when given, else `NMF_GPU_ADAPTER` (an index) when
/// set, else `WGPU_ADAPTER_NAME` (a name substring) when set, else the high-performance one.
async fn choose_adapter(instance: &wgpu::Instance, index: Option<usize>) -> Result<wgpu::Adapter> {
    let from_env = match std::env::var("NMF_GPU_ADAPTER") {
        Ok(text) => Some(text.trim().parse::<usize>().map_err(|_| NmfError::GpuNoAdapter {
            reason: format!(
                "NMF_GPU_ADAPTER={text:?} is not an adapter index (0, 1, ...; `nmf info` lists them)"
            ),
        })?),
        Err(_) => None,
    };
    if let Some(index) = index.or(from_env) {
        return adapter_at(instance, index).await;
    }
    if let Ok(wanted) = std::env::var("WGPU_ADAPTER_NAME") {
        let wanted = wanted.to_lowercase();
        let adapters = instance.enumerate_adapters(backends()).await;
        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        return adapters
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&wanted))
            .ok_or_else(|| NmfError::GpuNoAdapter {
                reason: format!(
                    "WGPU_ADAPTER_NAME={wanted:?} matches none of the adapters found ({})",
                    listing(&names)
                ),
            });
    }
    let options = wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::from_env()
            .unwrap_or(wgpu::PowerPreference::HighPerformance),
        force_fallback_adapter: false,
        compatible_surface: None,
        apply_limit_buckets: false,
    };
    instance
        .request_adapter(&options)
        .await
        .map_err(|e| NmfError::GpuNoAdapter {
            reason: e.to_string(),
        })
}

fn tuning_for(limits: &wgpu::Limits) -> Tuning {
    let invocations = limits.max_compute_invocations_per_workgroup;
    let fits = |x: u32, y: u32| {
        x * y <= invocations
            && x <= limits.max_compute_workgroup_size_x
            && y <= limits.max_compute_workgroup_size_y
    };
    let tile_wg = [(16, 16), (16, 8), (8, 8), (4, 4), (1, 1)]
        .into_iter()
        .find(|&(x, y)| fits(x, y))
        .unwrap_or((1, 1));
    let linear_wg = [256, 128, 64, 32, 1]
        .into_iter()
        .find(|&w| w <= invocations && w <= limits.max_compute_workgroup_size_x)
        .unwrap_or(1);
    Tuning {
        tile_wg,
        linear_wg,
        max_groups: limits.max_compute_workgroups_per_dimension.max(1),
        max_wg: (
            limits.max_compute_workgroup_size_x,
            limits.max_compute_workgroup_size_y,
            invocations,
        ),
    }
}

async fn open(index: Option<usize>) -> Result<GpuContext> {
    let instance = instance();
    let adapter = choose_adapter(&instance, index).await?;
    let info = adapter.get_info();
    let caps = adapter.get_downlevel_capabilities();
    if !caps.flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS) {
        return Err(NmfError::GpuNoAdapter {
            reason: format!(
                "adapter {} ({:?}) has no compute shaders",
                info.name, info.backend
            ),
        });
    }
    let limits = adapter.limits();
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("nmf-gpu"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            memory_hints: wgpu::MemoryHints::Performance,
            ..Default::default()
        })
        .await
        .map_err(|e| NmfError::GpuDevice {
            adapter: info.name.clone(),
            reason: e.to_string(),
        })?;
    let limits = device.limits();
    let faults = Arc::new(Faults::default());
    let sink = Arc::clone(&faults);
    device.on_uncaptured_error(Arc::new(move |e| sink.record_error(e)));
    let sink = Arc::clone(&faults);
    device.set_device_lost_callback(move |reason, message| sink.record_lost(reason, message));
    let tuning = tuning_for(&limits);
    log::info!(
        "GPU adapter {} ({:?}, {:?}); matmul workgroup {:?}",
        info.name,
        info.backend,
        info.device_type,
        tuning.tile_wg
    );
    let budget = Budget {
        panel_bytes: binding_ceiling(&limits),
        kl_block_bytes: DEFAULT_KL_BLOCK_BYTES.min(binding_ceiling(&limits)),
    };
    Ok(GpuContext {
        inner: Arc::new(ContextInner {
            tuner: Tuner::new(&info),
            device,
            queue,
            info,
            limits,
            tuning,
            pipelines: PipelineCache::default(),
            faults,
            buffers_created: AtomicU64::new(0),
        }),
        budget,
        tune: TuneOptions::from_env(),
        speed: None,
    })
}

/// The context `Backend::Auto` uses for data large enough (`engine::auto`): opened once per
/// process; `None` (the CPU engine) when no adapter works or the one opened is a software
/// rasteriser (lavapipe, llvmpipe, SwiftShader: slower than the CPU engine at every size;
/// `Backend::Gpu` runs on one when asked).
pub(crate) fn auto_context() -> Option<GpuContext> {
    static AUTO: OnceLock<std::result::Result<GpuContext, String>> = OnceLock::new();
    let chosen = AUTO.get_or_init(|| GpuContext::new().map_err(|e| e.to_string()));
    match chosen {
        Ok(ctx) if ctx.is_software() => {
            log::info!(
                "backend auto: the GPU adapter is a software one ({}); using the CPU engine (Backend::Gpu uses it anyway)",
                ctx.inner.info.name
            );
            None
        }
        Ok(ctx) => {
            log::info!("backend auto: using the GPU ({})", ctx.inner.info.name);
            Some(ctx.clone())
        }
        Err(reason) => {
            log::warn!("backend auto: no usable GPU ({reason}); using the CPU");
            None
        }
    }
}
