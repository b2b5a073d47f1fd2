//! The matmul autotuner's choices: the candidate configurations of a product, the fixed
//! heuristic, the shape classes a choice is kept for, and the cache of choices in memory and on
//! disk (one file per adapter, driver and crate version). The timing itself is in
//! `autotune.rs`.
//!
//! A product `C (rows x cols) = A (rows x k) · B (k x cols)` belongs to the class
//! `(layout, ⌈log₂ rows⌉, ⌈log₂ cols⌉, ⌈log₂ k⌉)`; the first product of a class on an adapter
//! (with tuning on) times the candidates of [`candidates`] and keeps the fastest for the class.
//! Every candidate computes the same product; they differ only in the order f32 terms are summed.
//!
//! The cache file is text: a header naming the format, the crate version and the adapter
//! (name, driver, driver details, backend, vendor and device ids), then one line per class.
//! A file that is unreadable, too long, malformed, written for another adapter, driver or
//! version, or that names a configuration outside the candidates this build would try, is
//! ignored as a whole (with a log line) and replaced at the next save.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::pipelines::TileWg;
use super::tiled::{Layout, TileShape};

/// How much effort the GPU engine spends choosing its matmul kernels on an adapter.
///
/// Chosen by [`GpuContext::with_tuning`](crate::GpuContext::with_tuning), else by the
/// environment variable `NMF_GPU_TUNE` (`off`, `quick`, `full`), else `Quick` on a hardware
/// adapter and `Off` on a software one (lavapipe, llvmpipe, WARP), so tests there are
/// deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TuneEffort {
    /// A fixed heuristic from the output's shape; nothing is timed, no cache is read.
    Off,
    /// Time a few candidates (a few ms each) per shape class, cache the fastest.
    Quick,
    /// Time every candidate per shape class, cache the fastest.
    Full,
}

impl TuneEffort {
    /// Its name (`off`, `quick`, `full`), as `NMF_GPU_TUNE` spells it.
    pub fn name(self) -> &'static str {
        match self {
            TuneEffort::Off => "off",
            TuneEffort::Quick => "quick",
            TuneEffort::Full => "full",
        }
    }

    /// The effort named `name` (case-insensitive).
    pub fn parse(name: &str) -> Option<TuneEffort> {
        match name.trim().to_ascii_lowercase().as_str() {
            "off" => Some(TuneEffort::Off),
            "quick" => Some(TuneEffort::Quick),
            "full" => Some(TuneEffort::Full),
            _ => None,
        }
    }

    /// The effort `NMF_GPU_TUNE` asks for, if set to a valid name (an invalid one is logged and
    /// ignored).
    pub(crate) fn from_env() -> Option<TuneEffort> {
        let value = std::env::var("NMF_GPU_TUNE").ok()?;
        let effort = TuneEffort::parse(&value);
        if effort.is_none() {
            log::warn!("NMF_GPU_TUNE={value:?} is not off, quick or full; ignored");
        }
        effort
    }
}

impl fmt::Display for TuneEffort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kernel of one matmul configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum MatmulKernel {
    /// `matmul.wgsl`: strided loads, a 4 x 4 block per invocation, workgroup `wg`.
    Strided(TileWg),
    /// `matmul_tiled.wgsl` with this tile.
    Tiled(TileShape),
}

/// One candidate configuration of a product: the kernel, and whether a product with too few
/// workgroups to fill the device is split over its inner dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct MatmulConfig {
    pub kernel: MatmulKernel,
    pub split: bool,
}

impl MatmulConfig {
    /// Rows and columns of C one workgroup covers.
    pub(crate) fn tile(self) -> (usize, usize) {
        match self.kernel {
            MatmulKernel::Strided(wg) => (
                (wg.y * STRIDED_BLOCK) as usize,
                (wg.x * STRIDED_BLOCK) as usize,
            ),
            MatmulKernel::Tiled(t) => (t.rows(), t.cols()),
        }
    }

    /// The configuration as the cache file and the tables write it, e.g. `tiled 16x16 4x4 k16`.
    pub(crate) fn label(self) -> String {
        let kernel = match self.kernel {
            MatmulKernel::Strided(wg) => format!("strided {}x{}", wg.x, wg.y),
            MatmulKernel::Tiled(t) => {
                format!("tiled {}x{} {}x{} k{}", t.wg_x, t.wg_y, t.tm, t.tn, t.bk)
            }
        };
        let split = if self.split { "split" } else { "whole" };
        format!("{kernel} {split}")
    }

    /// The inverse of [`label`](Self::label).
    pub(crate) fn parse(text: &str) -> Option<MatmulConfig> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let pair = |w: &str| -> Option<(u32, u32)> {
            let (x, y) = w.split_once('x')?;
            Some((x.parse().ok()?, y.parse().ok()?))
        };
        let split = match *words.last()? {
            "split" => true,
            "whole" => false,
            _ => return None,
        };
        let kernel = match words.as_slice() {
            ["strided", wg, _] => {
                let (x, y) = pair(wg)?;
                MatmulKernel::Strided(TileWg { x, y })
            }
            ["tiled", wg, block, depth, _] => {
                let (wg_x, wg_y) = pair(wg)?;
                let (tm, tn) = pair(block)?;
                let bk = depth.strip_prefix('k')?.parse().ok()?;
                MatmulKernel::Tiled(TileShape {
                    wg_x,
                    wg_y,
                    tm,
                    tn,
                    bk,
                })
            }
            _ => return None,
        };
        Some(MatmulConfig { kernel, split })
    }
}

/// Register block of the strided kernel (`TM`, `TN` of `matmul.wgsl`).
pub(crate) const STRIDED_BLOCK: u32 = 4;

/// The tiles the tuner tries, each with the outputs it suits: `(tile, quick)` where `quick`
/// marks the ones a quick tuning tries.
const TILES: &[(TileShape, bool)] = &[
    // 64 x 64, 256 invocations of 4 x 4: the default on large outputs.
    (tile(16, 16, 4, 4, 16), true),
    // 64 x 64, 64 invocations of 8 x 8: fewer tile reads per multiply-add.
    (tile(8, 8, 8, 8, 16), true),
    // 128 x 128, 256 invocations of 8 x 8, shallow tiles.
    (tile(16, 16, 8, 8, 8), false),
    // 64 x 128 and 128 x 64, 128 invocations of 4 x 8 / 8 x 4.
    (tile(16, 8, 8, 8, 8), false),
    (tile(16, 16, 4, 8, 16), false),
    (tile(16, 16, 8, 4, 16), false),
    // 32 x 32 for mid-sized outputs.
    (tile(8, 8, 4, 4, 16), false),
    // Tall (128 x 16) and wide (16 x 128) tiles for outputs with few columns (V Hᵀ) or
    // few rows (Wᵀ V).
    (tile(4, 32, 4, 4, 16), true),
    (tile(32, 4, 4, 4, 16), true),
];

/// Every tile of the tuner's table.
#[cfg(test)]
pub(crate) fn tiles() -> impl Iterator<Item = TileShape> {
    TILES.iter().map(|&(t, _)| t)
}

const fn tile(wg_x: u32, wg_y: u32, tm: u32, tn: u32, bk: u32) -> TileShape {
    TileShape {
        wg_x,
        wg_y,
        tm,
        tn,
        bk,
    }
}

/// What the heuristic and the candidates need to know of the device.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeviceShape<'a> {
    /// The limits of the device.
    pub limits: &'a wgpu::Limits,
    /// The strided kernel's workgroup for an output of this shape (`Tuning::tile_for`).
    pub strided: TileWg,
}

/// The candidates tried for a `rows x cols` output of `layout` (`None`: no unit strides, so
/// the strided kernel only) at `effort`, every one within the device's limits, the heuristic's
/// choice first. Tall and wide tiles are tried only for outputs with few columns or rows.
pub(crate) fn candidates(
    dev: DeviceShape<'_>,
    layout: Option<Layout>,
    (rows, cols): (usize, usize),
    effort: TuneEffort,
) -> Vec<MatmulConfig> {
    let mut out = vec![heuristic(dev, layout, (rows, cols))];
    if effort == TuneEffort::Off {
        return out;
    }
    let mut more = vec![MatmulConfig {
        kernel: MatmulKernel::Strided(dev.strided),
        split: true,
    }];
    if layout.is_some() {
        for &(t, quick) in TILES {
            let tall = t.rows() > 2 * t.cols();
            let wide = t.cols() > 2 * t.rows();
            let suits = (!tall || cols <= 32) && (!wide || rows <= 32);
            if t.fits(dev.limits) && suits && (quick || effort == TuneEffort::Full) {
                more.push(MatmulConfig {
                    kernel: MatmulKernel::Tiled(t),
                    split: true,
                });
            }
        }
    }
    for c in more {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    if effort == TuneEffort::Full {
        let whole: Vec<MatmulConfig> = out
            .iter()
            .map(|c| MatmulConfig { split: false, ..*c })
            .collect();
        for c in whole {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// Every configuration any product may run with on this device (the cache accepts no other):
/// the strided kernel at any workgroup the device admits, every tile of the table, split or
/// not.
pub(crate) fn admissible(limits: &wgpu::Limits, config: MatmulConfig) -> bool {
    match config.kernel {
        MatmulKernel::Strided(wg) => {
            wg.x.is_power_of_two()
                && wg.y.is_power_of_two()
                && wg.x <= limits.max_compute_workgroup_size_x
                && wg.y <= limits.max_compute_workgroup_size_y
                && wg.x * wg.y <= limits.max_compute_invocations_per_workgroup.min(256)
        }
        MatmulKernel::Tiled(t) => TILES.iter().any(|&(s, _)| s == t) && t.fits(limits),
    }
}

/// The fixed choice (tuning off) when both operands have a unit stride: the tiled kernel's
/// 64 x 64 tile for outputs of at least 32 x 32, the tall (128 x 16) or wide (16 x 128) tile
/// for skinny outputs longer than 128, the 32 x 32 tile otherwise; the strided kernel (with
/// its shape-adapted workgroup) for operands without unit strides. Split over the inner
/// dimension when the output is small.
pub(crate) fn heuristic(
    dev: DeviceShape<'_>,
    layout: Option<Layout>,
    (rows, cols): (usize, usize),
) -> MatmulConfig {
    let strided = MatmulConfig {
        kernel: MatmulKernel::Strided(dev.strided),
        split: true,
    };
    if layout.is_none() {
        return strided;
    }
    let pick = if rows >= 32 && cols >= 32 {
        tile(16, 16, 4, 4, 16)
    } else if cols < 32 && rows >= 128 {
        tile(4, 32, 4, 4, 16)
    } else if rows < 32 && cols >= 128 {
        tile(32, 4, 4, 4, 16)
    } else {
        // Small outputs (the r x r Grams, thin blocks): 32 x 32 tiles, split over k.
        tile(8, 8, 4, 4, 16)
    };
    if pick.fits(dev.limits) {
        MatmulConfig {
            kernel: MatmulKernel::Tiled(pick),
            split: true,
        }
    } else {
        strided
    }
}

/// The class a product's choice is kept for: its layout (`None`: strided only) and the
/// binary orders of magnitude of its dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ShapeClass {
    pub layout: Option<Layout>,
    pub rows: u8,
    pub cols: u8,
    pub k: u8,
}

/// `⌈log₂ x⌉` (0 for x ≤ 1), at most 40.
fn order(x: usize) -> u8 {
    let bits = usize::BITS - x.saturating_sub(1).leading_zeros();
    bits.min(40) as u8
}

impl ShapeClass {
    pub(crate) fn of(layout: Option<Layout>, (rows, cols, k): (usize, usize, usize)) -> Self {
        ShapeClass {
            layout,
            rows: order(rows),
            cols: order(cols),
            k: order(k),
        }
    }

    fn layout_name(self) -> &'static str {
        self.layout.map_or("strided", Layout::name)
    }
}

/// Who the cached choices are valid for: the crate version and the adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub version: String,
    pub adapter: String,
    pub driver: String,
    pub driver_info: String,
    pub backend: String,
    pub ids: String,
}

impl Identity {
    pub(crate) fn of(info: &wgpu::AdapterInfo) -> Identity {
        let one_line = |s: &str| s.replace(['\n', '\r'], " ");
        Identity {
            version: env!("CARGO_PKG_VERSION").to_string(),
            adapter: one_line(&info.name),
            driver: one_line(&info.driver),
            driver_info: one_line(&info.driver_info),
            backend: format!("{:?}", info.backend),
            ids: format!("{:04x}:{:04x}", info.vendor, info.device),
        }
    }

    fn header(&self) -> String {
        format!(
            "{FORMAT}\nversion {}\nadapter {}\ndriver {}\ndriver-info {}\nbackend {}\nids {}\n",
            self.version, self.adapter, self.driver, self.driver_info, self.backend, self.ids
        )
    }

    /// The cache file's name: a hash of the identity, so adapters never share a file.
    fn file_name(&self) -> String {
        // FNV-1a, 64 bits: stable across builds and platforms.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.header().bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("matmul-{h:016x}.txt")
    }
}

/// The first line of a cache file.
const FORMAT: &str = "nmf-gpu matmul tuning cache, format 1";
/// Longest cache file read (a valid one holds a few hundred lines).
const MAX_CACHE_BYTES: u64 = 1 << 20;

/// One cached choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Choice {
    pub config: MatmulConfig,
    /// The effort it was chosen with: a request for more effort tunes again.
    pub effort: TuneEffort,
}

/// The directory of the tuning cache: `NMF_GPU_TUNE_CACHE` if set (empty: no disk cache),
/// else the platform cache directory (`$XDG_CACHE_HOME` or `~/.cache` on Linux,
/// `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows) with `nmf-gpu` appended.
pub(crate) fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("NMF_GPU_TUNE_CACHE") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    let env_dir = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = if cfg!(target_os = "windows") {
        env_dir("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        env_dir("HOME").map(|h| h.join("Library").join("Caches"))
    } else {
        env_dir("XDG_CACHE_HOME").or_else(|| env_dir("HOME").map(|h| h.join(".cache")))
    };
    base.map(|b| b.join("nmf-gpu"))
}

/// What a context asks of the tuner (per clone of a `GpuContext`).
#[derive(Debug, Clone, Default)]
pub(crate) struct TuneOptions {
    /// The effort set through the library (`None`: `NMF_GPU_TUNE`, then the adapter's default).
    pub effort: Option<TuneEffort>,
    /// The cache directory (`None`: [`cache_dir`]; `Some(None)`: no disk cache).
    pub cache: Option<Option<PathBuf>>,
    /// Every product on the strided kernel, untuned (`NMF_GPU_MATMUL=strided`): the kernel
    /// before the tiled one, kept for comparisons.
    pub strided_only: bool,
}

impl TuneOptions {
    /// The options of a new context: `NMF_GPU_MATMUL=strided` puts every product on the strided
    /// kernel (any other value, or none, lets the heuristic or the tuner choose).
    pub(crate) fn from_env() -> TuneOptions {
        TuneOptions {
            strided_only: std::env::var("NMF_GPU_MATMUL").is_ok_and(|v| v.trim() == "strided"),
            ..TuneOptions::default()
        }
    }

    /// The cache directory in force.
    pub(crate) fn cache_dir(&self) -> Option<PathBuf> {
        match &self.cache {
            Some(dir) => dir.clone(),
            None => cache_dir(),
        }
    }
}

/// The choices of one adapter: in memory, loaded from and saved to its file in a cache
/// directory.
pub(crate) struct Tuner {
    identity: Identity,
    /// The effort when neither the library nor the environment chooses one.
    default_effort: TuneEffort,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Whether the disk cache was read (once, at the first lookup with tuning on).
    loaded: bool,
    choices: HashMap<ShapeClass, Choice>,
}

impl Tuner {
    /// The tuner of the adapter `info`: tuning off by default on a software adapter.
    pub(crate) fn new(info: &wgpu::AdapterInfo) -> Tuner {
        let software = info.device_type == wgpu::DeviceType::Cpu;
        Tuner {
            identity: Identity::of(info),
            default_effort: if software {
                TuneEffort::Off
            } else {
                TuneEffort::Quick
            },
            state: Mutex::new(State::default()),
        }
    }

    /// The effort when the library sets none: `NMF_GPU_TUNE`, else the adapter's default.
    pub(crate) fn effort(&self) -> TuneEffort {
        TuneEffort::from_env().unwrap_or(self.default_effort)
    }

    /// The cached choice for `class` made with at least `effort` (the disk cache in `dir` read
    /// on the first call), with `limits` to reject what the device could not run.
    pub(crate) fn lookup(
        &self,
        class: ShapeClass,
        effort: TuneEffort,
        limits: &wgpu::Limits,
        dir: Option<&Path>,
    ) -> Option<MatmulConfig> {
        let mut state = self.state.lock().ok()?;
        if !state.loaded {
            state.loaded = true;
            if let Some(dir) = dir {
                let path = dir.join(self.identity.file_name());
                if let Some(choices) = read_cache(&path, &self.identity, limits) {
                    log::debug!(
                        "matmul tuning: {} choice(s) from {}",
                        choices.len(),
                        path.display()
                    );
                    state.choices = choices;
                }
            }
        }
        state
            .choices
            .get(&class)
            .filter(|c| c.effort >= effort)
            .map(|c| c.config)
    }

    /// Keep `choice` for `class`, in memory and in the cache file in `dir` (a failure to
    /// write is logged, never an error).
    pub(crate) fn record(&self, class: ShapeClass, choice: Choice, dir: Option<&Path>) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.choices.insert(class, choice);
        if let Some(dir) = dir {
            let path = dir.join(self.identity.file_name());
            if let Err(e) = write_cache(dir, &path, &self.identity, &state.choices) {
                log::warn!(
                    "matmul tuning: could not save the choices to {}: {e}",
                    path.display()
                );
            }
        }
    }
}

/// The text of a cache file.
pub(crate) fn render_cache(identity: &Identity, choices: &HashMap<ShapeClass, Choice>) -> String {
    let mut lines: Vec<String> = choices
        .iter()
        .map(|(class, choice)| {
            format!(
                "class {} {} {} {} {} {}",
                class.layout_name(),
                class.rows,
                class.cols,
                class.k,
                choice.effort,
                choice.config.label()
            )
        })
        .collect();
    lines.sort();
    format!("{}{}\n", identity.header(), lines.join("\n"))
}

/// The choices of a cache file's text, or why it is not trusted.
pub(crate) fn parse_cache(
    text: &str,
    identity: &Identity,
    limits: &wgpu::Limits,
) -> std::result::Result<HashMap<ShapeClass, Choice>, String> {
    let header = identity.header();
    let Some(body) = text.strip_prefix(header.as_str()) else {
        let first = text.lines().next().unwrap_or("");
        return Err(if first == FORMAT {
            "written for another adapter, driver or version".to_string()
        } else {
            "not a tuning cache of this format".to_string()
        });
    };
    let mut choices = HashMap::new();
    for (i, line) in body.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let bad = || format!("line {} is malformed: {line:?}", i + 8);
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() < 7 || words[0] != "class" {
            return Err(bad());
        }
        let layout = match words[1] {
            "strided" => None,
            name => Some(Layout::parse(name).ok_or_else(bad)?),
        };
        let dim = |w: &str| w.parse::<u8>().ok().filter(|&d| d <= 40);
        let class = ShapeClass {
            layout,
            rows: dim(words[2]).ok_or_else(bad)?,
            cols: dim(words[3]).ok_or_else(bad)?,
            k: dim(words[4]).ok_or_else(bad)?,
        };
        let effort = TuneEffort::parse(words[5]).ok_or_else(bad)?;
        let config = MatmulConfig::parse(&words[6..].join(" ")).ok_or_else(bad)?;
        let runnable = match config.kernel {
            MatmulKernel::Tiled(_) => layout.is_some(),
            MatmulKernel::Strided(_) => true,
        };
        if !runnable || !admissible(limits, config) {
            return Err(format!(
                "line {} names a configuration this device does not run: {line:?}",
                i + 8
            ));
        }
        choices.insert(class, Choice { config, effort });
    }
    Ok(choices)
}

/// The choices in the cache file at `path`, or `None` (with a log line unless the file does not
/// exist) when it cannot be trusted.
fn read_cache(
    path: &Path,
    identity: &Identity,
    limits: &wgpu::Limits,
) -> Option<HashMap<ShapeClass, Choice>> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            log::warn!("matmul tuning: ignoring {}: {e}", path.display());
            return None;
        }
    };
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_CACHE_BYTES + 1).read_to_end(&mut bytes) {
        log::warn!("matmul tuning: ignoring {}: {e}", path.display());
        return None;
    }
    if bytes.len() as u64 > MAX_CACHE_BYTES {
        log::warn!(
            "matmul tuning: ignoring {}: longer than {MAX_CACHE_BYTES} bytes",
            path.display()
        );
        return None;
    }
    let Ok(text) = String::from_utf8(bytes) else {
        log::warn!("matmul tuning: ignoring {}: not UTF-8 text", path.display());
        return None;
    };
    match parse_cache(&text, identity, limits) {
        Ok(choices) => Some(choices),
        Err(why) => {
            log::warn!("matmul tuning: ignoring {}: {why}", path.display());
            None
        }
    }
}

/// Write the cache file atomically (a temporary file in `dir`, then a rename).
fn write_cache(
    dir: &Path,
    path: &Path,
    identity: &Identity,
    choices: &HashMap<ShapeClass, Choice>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        identity.file_name(),
        std::process::id()
    ));
    std::fs::write(&tmp, render_cache(identity, choices))?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            version: "0.1.0".into(),
            adapter: "Test GPU".into(),
            driver: "test".into(),
            driver_info: "1.0".into(),
            backend: "Vulkan".into(),
            ids: "10de:2330".into(),
        }
    }

    fn sample() -> HashMap<ShapeClass, Choice> {
        let mut choices = HashMap::new();
        choices.insert(
            ShapeClass::of(Some(Layout::ABt), (4096, 64, 4096)),
            Choice {
                config: MatmulConfig {
                    kernel: MatmulKernel::Tiled(tile(4, 32, 4, 4, 16)),
                    split: true,
                },
                effort: TuneEffort::Quick,
            },
        );
        choices.insert(
            ShapeClass::of(None, (100, 100, 10)),
            Choice {
                config: MatmulConfig {
                    kernel: MatmulKernel::Strided(TileWg { x: 16, y: 16 }),
                    split: false,
                },
                effort: TuneEffort::Full,
            },
        );
        choices
    }

    #[test]
    fn labels_parse_back() {
        let limits = wgpu::Limits::default();
        let dev = DeviceShape {
            limits: &limits,
            strided: TileWg { x: 16, y: 16 },
        };
        for layout in [None, Some(Layout::AB), Some(Layout::AtB)] {
            for shape in [(1, 1), (4096, 16), (16, 4096), (4096, 4096)] {
                for c in candidates(dev, layout, shape, TuneEffort::Full) {
                    assert_eq!(MatmulConfig::parse(&c.label()), Some(c), "{}", c.label());
                    assert!(admissible(&limits, c), "{}", c.label());
                }
            }
        }
        assert_eq!(MatmulConfig::parse("tiled 16x16 4x4 16 split"), None);
        assert_eq!(MatmulConfig::parse("strided 16x16"), None);
    }

    #[test]
    fn cache_round_trips() {
        let limits = wgpu::Limits::default();
        let text = render_cache(&identity(), &sample());
        assert_eq!(parse_cache(&text, &identity(), &limits), Ok(sample()));
    }

    #[test]
    fn foreign_stale_truncated_and_hostile_caches_are_refused() {
        let limits = wgpu::Limits::default();
        let text = render_cache(&identity(), &sample());
        // Another adapter, and another crate version (stale).
        let mut other = identity();
        other.adapter = "Other GPU".into();
        let err = parse_cache(&text, &other, &limits).unwrap_err();
        assert!(err.contains("another adapter"), "{err}");
        let mut stale = identity();
        stale.version = "0.0.9".into();
        assert!(parse_cache(&text, &stale, &limits).is_err());
        // Truncated inside the header, and inside an entry.
        assert!(parse_cache(&text[..20], &identity(), &limits).is_err());
        let cut = text.trim_end().len() - 3;
        assert!(parse_cache(&text[..cut], &identity(), &limits).is_err());
        // A configuration the device cannot run (1024 x 1024 invocations), and one outside
        // the candidate table.
        let hostile = format!(
            "{}class AB 10 10 10 quick strided 1024x1024 split\n",
            identity().header()
        );
        let err = parse_cache(&hostile, &identity(), &limits).unwrap_err();
        assert!(err.contains("does not run"), "{err}");
        let odd = format!(
            "{}class AB 10 10 10 quick tiled 16x16 12x12 k4 split\n",
            identity().header()
        );
        assert!(parse_cache(&odd, &identity(), &limits).is_err());
        // A tiled choice for a product without unit strides.
        let strided = format!(
            "{}class strided 10 10 10 quick tiled 16x16 4x4 k16 split\n",
            identity().header()
        );
        assert!(parse_cache(&strided, &identity(), &limits).is_err());
        // Binary garbage and an empty file.
        assert!(parse_cache("\u{0}\u{1}garbage", &identity(), &limits).is_err());
        assert!(parse_cache("", &identity(), &limits).is_err());
    }

    #[test]
    fn files_on_disk_are_ignored_unless_trusted() {
        let limits = wgpu::Limits::default();
        let dir = std::env::temp_dir().join(format!("nmf-gpu-tuner-{}", std::process::id()));
        let path = dir.join(identity().file_name());
        write_cache(&dir, &path, &identity(), &sample()).expect("write the cache");
        assert_eq!(read_cache(&path, &identity(), &limits), Some(sample()));
        // Truncated on disk, then too long, then not text: each ignored.
        let text = std::fs::read_to_string(&path).expect("read back");
        std::fs::write(&path, &text[..text.len() / 2]).expect("truncate");
        assert_eq!(read_cache(&path, &identity(), &limits), None);
        std::fs::write(&path, vec![b'x'; MAX_CACHE_BYTES as usize + 1]).expect("grow");
        assert_eq!(read_cache(&path, &identity(), &limits), None);
        std::fs::write(&path, [0xff, 0xfe, 0x00]).expect("garble");
        assert_eq!(read_cache(&path, &identity(), &limits), None);
        assert_eq!(read_cache(&dir.join("absent"), &identity(), &limits), None);
        let _ = std::fs::remove_dir_all(&dir);
        // Different identities never share a file.
        let mut other = identity();
        other.driver = "test 2".into();
        assert_ne!(identity().file_name(), other.file_name());
    }

    #[test]
    fn shape_classes_and_efforts() {
        assert_eq!(order(0), 0);
        assert_eq!(order(1), 0);
        assert_eq!(order(2), 1);
        assert_eq!(order(64), 6);
        assert_eq!(order(65), 7);
        assert_eq!(TuneEffort::parse(" Quick "), Some(TuneEffort::Quick));
        assert_eq!(TuneEffort::parse("fast"), None);
        assert!(TuneEffort::Full > TuneEffort::Quick && TuneEffort::Quick > TuneEffort::Off);
        let limits = wgpu::Limits::default();
        let dev = DeviceShape {
            limits: &limits,
            strided: TileWg { x: 16, y: 16 },
        };
        // Off tries only the heuristic; quick a subset of full; full has the unsplit variants.
        let off = candidates(dev, Some(Layout::AB), (512, 512), TuneEffort::Off);
        let quick = candidates(dev, Some(Layout::AB), (512, 512), TuneEffort::Quick);
        let full = candidates(dev, Some(Layout::AB), (512, 512), TuneEffort::Full);
        assert_eq!(off, vec![heuristic(dev, Some(Layout::AB), (512, 512))]);
        assert!(quick.len() > 1 && quick.iter().all(|c| full.contains(c)));
        assert!(full.iter().any(|c| !c.split));
        // Without unit strides only the strided kernel runs.
        assert!(candidates(dev, None, (512, 512), TuneEffort::Full)
            .iter()
            .all(|c| matches!(c.kernel, MatmulKernel::Strided(_))));
    }
}
