//! `nmf-bench`: time NMF fits per case, backend, solver and loss; print an aligned table and,
//! with `--json FILE`, one JSON object per measurement.
//!
//! `cargo run --release --bin nmf-bench -- --help` lists the options.

use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use nmf_gpu::ndarray::{Array2, ArrayView2};
use nmf_gpu::sparse::CsrMatrix;
use nmf_gpu::{Backend, Init, Loss, Nmf, NmfError, Solver};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

const HELP: &str = "\
nmf-bench: time NMF fits on uniform random data, CPU and GPU side by side

USAGE:
    cargo run --release --bin nmf-bench -- [OPTIONS]

OPTIONS:
    --shape M,N,R       a case: V is M x N, rank R (repeatable; replaces the default cases)
    --sparse M,N,D,R    a sparse case (repeatable): V is M x N with about D·M·N stored entries
                        at random positions, values uniform in [0, 1), rank R; CPU only
                        (fit_sparse). Given without --shape or --quick, no dense case runs
    --quick             two small cases (361x2429 r49, 1024x1024 r32), about 10 s on 2 cores
    --backend LIST      comma-separated: cpu, gpu             [default: cpu,gpu]
    --solver LIST       comma-separated: mu, hals             [default: mu,hals]
    --loss LIST         comma-separated: frobenius, kl        [default: frobenius,kl]
    --iterations N      iterations per fit (tol = 0)          [default: 50; 100 with --quick]
    --repeats K         timed fits per row, after one warm-up [default: 3]
    --json FILE         also write one JSON object per measurement to FILE
    --threads T         CPU threads (sets RAYON_NUM_THREADS and the global rayon pool)
    -h, --help          print this help

Default cases: 361x2429 r49, 4096x4096 r64, 10000x5000 r128. HALS with the KL loss is not a
solver combination and is skipped. Every row starts from the same data and the same W0, H0:
V uniform in [0, 1) (StdRng seed 0), W0 and H0 = sqrt(mean(V)/r)·|N(0,1)| (StdRng seed 1).

COLUMNS:
    ms/iter    wall time of one whole `fit` call (validation and start-up included) divided by
               the iterations: median, min and max over the timed fits
    GFLOP/s    (4mnr + 4(m+n)r²) per iteration / median time; this is the Frobenius MU count
               and is used for every solver and loss, so it compares times, not kernels
    rel error  ‖V − WH‖_F / ‖V‖_F after the last timed fit
    gpu/cpu    GPU speed over CPU speed (CPU ms / GPU ms; above 1 the GPU is faster)
    gap        GPU rel error − CPU rel error
    peak MiB   host resident peak (VmHWM) during the row's fits, the case's data included;
               where the peak cannot be reset it is the process peak so far

SPARSE CASES:
    ms/iter    (fit of N iterations − fit of 1 iteration) / (N − 1): the time of one iteration,
               convergence checks included, without the set-up (transposed copy, panels,
               initial loss); median, min and max over the timed fits
    set-up ms  the fit of 1 iteration less one iteration

EXIT STATUS:
    0 all measurements ran (GPU rows may be unavailable), 1 a fit or output failed,
    2 invalid arguments
";

/// A benchmark case: V is m x n, the rank is r.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    m: usize,
    n: usize,
    r: usize,
}

impl Shape {
    const fn new(m: usize, n: usize, r: usize) -> Self {
        Shape { m, n, r }
    }

    fn name(&self) -> String {
        format!("{}x{}r{}", self.m, self.n, self.r)
    }

    /// Floating-point operations of one Frobenius MU iteration: 4mnr + 4(m+n)r².
    fn flops_per_iter(&self) -> f64 {
        let (m, n, r) = (self.m as f64, self.n as f64, self.r as f64);
        4.0 * m * n * r + 4.0 * (m + n) * r * r
    }
}

const DEFAULT_CASES: [Shape; 3] = [
    Shape::new(361, 2429, 49),
    Shape::new(4096, 4096, 64),
    Shape::new(10000, 5000, 128),
];
const QUICK_CASES: [Shape; 2] = [Shape::new(361, 2429, 49), Shape::new(1024, 1024, 32)];
const DEFAULT_ITERATIONS: usize = 50;
const QUICK_ITERATIONS: usize = 100;
const DEFAULT_REPEATS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Device {
    Cpu,
    Gpu,
}

impl Device {
    fn name(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Gpu => "gpu",
        }
    }
}

/// A sparse case: V is m x n with about `density·m·n` stored entries, the rank is r.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SparseCase {
    m: usize,
    n: usize,
    density: f64,
    r: usize,
}

impl SparseCase {
    fn name(&self) -> String {
        format!("{}x{}r{} d{}", self.m, self.n, self.r, self.density)
    }
}

/// The command line, parsed.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    shapes: Vec<Shape>,
    sparse: Vec<SparseCase>,
    quick: bool,
    devices: Vec<Device>,
    solvers: Vec<Solver>,
    losses: Vec<Loss>,
    iterations: Option<usize>,
    repeats: usize,
    json: Option<PathBuf>,
    threads: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            shapes: Vec::new(),
            sparse: Vec::new(),
            quick: false,
            devices: Vec::new(),
            solvers: Vec::new(),
            losses: Vec::new(),
            iterations: None,
            repeats: DEFAULT_REPEATS,
            json: None,
            threads: None,
        }
    }
}

impl Options {
    fn cases(&self) -> Vec<Shape> {
        if !self.shapes.is_empty() {
            self.shapes.clone()
        } else if self.quick {
            QUICK_CASES.to_vec()
        } else if !self.sparse.is_empty() {
            Vec::new()
        } else {
            DEFAULT_CASES.to_vec()
        }
    }

    fn iterations(&self) -> usize {
        self.iterations.unwrap_or(if self.quick {
            QUICK_ITERATIONS
        } else {
            DEFAULT_ITERATIONS
        })
    }

    /// The devices in a fixed order (CPU first, so GPU rows can be compared with it).
    fn devices(&self) -> Vec<Device> {
        let all = [Device::Cpu, Device::Gpu];
        if self.devices.is_empty() {
            return all.to_vec();
        }
        all.into_iter()
            .filter(|d| self.devices.contains(d))
            .collect()
    }

    /// The valid (solver, loss) combinations, in a fixed order; HALS with KL is left out.
    fn combos(&self) -> Vec<(Solver, Loss)> {
        let solvers = if self.solvers.is_empty() {
            vec![Solver::MultiplicativeUpdate, Solver::Hals]
        } else {
            self.solvers.clone()
        };
        let losses = if self.losses.is_empty() {
            vec![Loss::Frobenius, Loss::KullbackLeibler]
        } else {
            self.losses.clone()
        };
        let mut out = Vec::new();
        for s in [Solver::MultiplicativeUpdate, Solver::Hals] {
            for l in [Loss::Frobenius, Loss::KullbackLeibler] {
                let valid = !(s == Solver::Hals && l == Loss::KullbackLeibler);
                if valid && solvers.contains(&s) && losses.contains(&l) {
                    out.push((s, l));
                }
            }
        }
        out
    }
}

enum Command {
    Run(Options),
    Help,
}

fn parse_count(flag: &str, value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err(format!("{flag} must be at least 1 (got 0)")),
        Ok(k) => Ok(k),
        Err(_) => Err(format!("{flag} expects a positive integer, got `{value}`")),
    }
}

fn parse_shape(value: &str) -> Result<Shape, String> {
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let bad = || {
        format!("--shape expects M,N,R (three positive integers, e.g. 361,2429,49), got `{value}`")
    };
    if parts.len() != 3 {
        return Err(bad());
    }
    let mut dims = [0usize; 3];
    for (d, p) in dims.iter_mut().zip(&parts) {
        *d = p.parse().map_err(|_| bad())?;
        if *d == 0 {
            return Err(bad());
        }
    }
    Ok(Shape::new(dims[0], dims[1], dims[2]))
}

/// Parse a comma-separated list with `item`, appending to `out` without duplicates.
fn parse_sparse(value: &str) -> Result<SparseCase, String> {
    let bad = || {
        format!(
            "--sparse expects M,N,D,R (positive integers M, N, R and a density 0 < D <= 1, e.g. 20000,50000,0.005,20), got `{value}`"
        )
    };
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let [m, n, d, r] = parts[..] else {
        return Err(bad());
    };
    let count = |s: &str| s.parse::<usize>().ok().filter(|&k| k > 0);
    let density = d.parse::<f64>().ok().filter(|d| *d > 0.0 && *d <= 1.0);
    match (count(m), count(n), density, count(r)) {
        (Some(m), Some(n), Some(density), Some(r)) => Ok(SparseCase { m, n, density, r }),
        _ => Err(bad()),
    }
}

fn parse_list<T: PartialEq>(
    flag: &str,
    value: &str,
    out: &mut Vec<T>,
    item: impl Fn(&str) -> Option<T>,
    choices: &str,
) -> Result<(), String> {
    for word in value.split(',').map(str::trim) {
        let t = item(&word.to_ascii_lowercase())
            .ok_or_else(|| format!("{flag}: unknown value `{word}` (choose from {choices})"))?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(())
}

fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut opts = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let takes_value = matches!(
            flag.as_str(),
            "--shape"
                | "--sparse"
                | "--backend"
                | "--solver"
                | "--loss"
                | "--iterations"
                | "--repeats"
                | "--json"
                | "--threads"
        );
        let value = if takes_value {
            match inline {
                Some(v) => v,
                None => args.next().ok_or_else(|| format!("{flag} needs a value"))?,
            }
        } else {
            if inline.is_some() {
                return Err(format!("{flag} takes no value"));
            }
            String::new()
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--quick" => opts.quick = true,
            "--shape" => opts.shapes.push(parse_shape(&value)?),
            "--sparse" => opts.sparse.push(parse_sparse(&value)?),
            "--backend" => parse_list(
                "--backend",
                &value,
                &mut opts.devices,
                |w| match w {
                    "cpu" => Some(Device::Cpu),
                    "gpu" => Some(Device::Gpu),
                    _ => None,
                },
                "cpu, gpu",
            )?,
            "--solver" => parse_list(
                "--solver",
                &value,
                &mut opts.solvers,
                |w| match w {
                    "mu" => Some(Solver::MultiplicativeUpdate),
                    "hals" => Some(Solver::Hals),
                    _ => None,
                },
                "mu, hals",
            )?,
            "--loss" => parse_list(
                "--loss",
                &value,
                &mut opts.losses,
                |w| match w {
                    "frobenius" | "fro" => Some(Loss::Frobenius),
                    "kl" => Some(Loss::KullbackLeibler),
                    _ => None,
                },
                "frobenius, kl",
            )?,
            "--iterations" => opts.iterations = Some(parse_count("--iterations", &value)?),
            "--repeats" => opts.repeats = parse_count("--repeats", &value)?,
            "--threads" => opts.threads = Some(parse_count("--threads", &value)?),
            "--json" => {
                if value.is_empty() {
                    return Err("--json needs a file name".to_string());
                }
                opts.json = Some(PathBuf::from(value));
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if opts.combos().is_empty() {
        return Err(
            "no solver/loss combination to run: HALS supports only the frobenius loss".to_string(),
        );
    }
    Ok(Command::Run(opts))
}

/// The GPU backend and its adapter name, or the reason there is none (every GPU row goes
/// through this one function; the context is opened once and reused).
fn gpu_backend() -> Result<(Backend, String), String> {
    static CTX: std::sync::OnceLock<Result<nmf_gpu::GpuContext, String>> =
        std::sync::OnceLock::new();
    let ctx = CTX
        .get_or_init(|| nmf_gpu::GpuContext::new().map_err(|e| e.to_string()))
        .clone()?;
    let info = ctx.adapter_info();
    let adapter = format!("{} ({:?})", info.name, info.backend);
    Ok((Backend::Gpu(ctx), adapter))
}

/// The CPU model from /proc/cpuinfo.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| format!("unknown {} CPU", std::env::consts::ARCH))
}

/// The resident-memory high-water mark of this process (VmHWM), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Reset VmHWM to the current resident size; false where the kernel does not allow it.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// One case's data and starting point, shared by every row of the case.
struct CaseData {
    v: Array2<f32>,
    w0: Array2<f32>,
    h0: Array2<f32>,
}

fn case_data(shape: Shape) -> CaseData {
    let Shape { m, n, r } = shape;
    let mut rng = StdRng::seed_from_u64(0);
    let v = Array2::from_shape_simple_fn((m, n), || rng.random::<f32>());
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / (m * n) as f64;
    let scale = (mean / r as f64).sqrt() as f32;
    let mut rng = StdRng::seed_from_u64(1);
    let mut start = |rows, cols| {
        Array2::from_shape_simple_fn((rows, cols), || {
            scale * rng.sample::<f32, _>(StandardNormal).abs()
        })
    };
    let w0 = start(m, r);
    let h0 = start(r, n);
    CaseData { v, w0, h0 }
}

/// A sparse case's data: V with `density·m·n` entries drawn at random positions (repeats
/// summed), values uniform in [0, 1) (StdRng seed 0); W0, H0 as for the dense cases.
fn sparse_case_data(c: SparseCase) -> Result<(CsrMatrix, Array2<f32>, Array2<f32>), NmfError> {
    let SparseCase { m, n, density, r } = c;
    let mut rng = StdRng::seed_from_u64(0);
    let count = (density * m as f64 * n as f64).round() as usize;
    let triplets: Vec<(usize, usize, f32)> = (0..count)
        .map(|_| {
            (
                rng.random_range(0..m),
                rng.random_range(0..n),
                rng.random::<f32>(),
            )
        })
        .collect();
    let v = CsrMatrix::from_triplets(m, n, triplets)?;
    let mean = v.values().iter().map(|&x| x as f64).sum::<f64>() / (m as f64 * n as f64);
    let scale = (mean / r as f64).sqrt() as f32;
    let mut rng = StdRng::seed_from_u64(1);
    let mut start = |rows, cols| {
        Array2::from_shape_simple_fn((rows, cols), || {
            scale * rng.sample::<f32, _>(StandardNormal).abs()
        })
    };
    let w0 = start(m, r);
    let h0 = start(r, n);
    Ok((v, w0, h0))
}

/// A sparse case's timings: per iteration (median, min, max), set-up, final rel error.
struct SparseTiming {
    ms: [f64; 3],
    setup_ms: f64,
    rel_error: f64,
    engine: String,
}

/// One fit of 1 iteration (set-up + one iteration, best of two), then `repeats` fits of
/// `iterations`: per iteration = (T − T₁) / (iterations − 1).
fn measure_sparse(
    v: &CsrMatrix,
    w0: &Array2<f32>,
    h0: &Array2<f32>,
    solver: Solver,
    loss: Loss,
    iterations: usize,
    repeats: usize,
) -> Result<SparseTiming, NmfError> {
    let params = |iters: usize| {
        Nmf::params(w0.ncols())
            .solver(solver)
            .loss(loss)
            .init(Init::Custom {
                w: w0.clone(),
                h: h0.clone(),
            })
            .max_iter(iters)
            .tol(0.0)
    };
    let mut t1 = f64::INFINITY;
    for _ in 0..2 {
        let start = Instant::now();
        drop(params(1).fit_sparse(v)?);
        t1 = t1.min(start.elapsed().as_secs_f64() * 1e3);
    }
    let mut ms = Vec::with_capacity(repeats);
    let mut last = None;
    for _ in 0..repeats {
        drop(last.take());
        let start = Instant::now();
        let fit = params(iterations).fit_sparse(v)?;
        let total = start.elapsed().as_secs_f64() * 1e3;
        ms.push(if iterations > 1 {
            (total - t1) / (iterations - 1) as f64
        } else {
            total
        });
        last = Some(fit);
    }
    ms.sort_by(f64::total_cmp);
    let per_iter = median(&ms);
    let (rel_error, engine) = match &last {
        Some(fit) => (fit.relative_error_sparse(v)?, fit.engine().to_string()),
        None => (f64::NAN, String::new()),
    };
    Ok(SparseTiming {
        ms: [
            per_iter,
            ms.first().copied().unwrap_or(f64::NAN),
            ms.last().copied().unwrap_or(f64::NAN),
        ],
        setup_ms: t1 - if iterations > 1 { per_iter } else { 0.0 },
        rel_error,
        engine,
    })
}

/// Run and print the sparse cases; whether every fit ran.
fn run_sparse_cases(opts: &Options) -> bool {
    let iterations = opts.iterations();
    let mut ok = true;
    for &case in &opts.sparse {
        eprintln!("nmf-bench: generating sparse {}", case.name());
        let (v, w0, h0) = match sparse_case_data(case) {
            Ok(d) => d,
            Err(e) => {
                println!("sparse {}: cannot build: {e}", case.name());
                ok = false;
                continue;
            }
        };
        println!(
            "sparse {}x{} r{}: {} stored entries ({:.3}%), {iterations} iterations, {} timed fits",
            case.m,
            case.n,
            case.r,
            v.nnz(),
            100.0 * v.density(),
            opts.repeats
        );
        for &(solver, loss) in &opts.combos() {
            match measure_sparse(&v, &w0, &h0, solver, loss, iterations, opts.repeats) {
                Ok(t) => println!(
                    "  {:<4} {:<9} {}: {} ms/iter (min {}, max {}), set-up {} ms, rel error {:.6}",
                    solver.name(),
                    loss.name(),
                    t.engine,
                    fmt_ms(t.ms[0]),
                    fmt_ms(t.ms[1]),
                    fmt_ms(t.ms[2]),
                    fmt_ms(t.setup_ms),
                    t.rel_error
                ),
                Err(e) => {
                    ok = false;
                    println!("  {:<4} {:<9} failed: {e}", solver.name(), loss.name());
                }
            }
        }
    }
    ok
}

/// The timings of one row.
#[derive(Debug, Clone, PartialEq)]
struct Timing {
    ms_median: f64,
    ms_min: f64,
    ms_max: f64,
    gflops: f64,
    rel_error: f64,
    engine: String,
    peak_rss_mib: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Done(Timing),
    Unavailable(String),
    Failed(String),
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    shape: Shape,
    device: Device,
    solver: Solver,
    loss: Loss,
    iterations: usize,
    adapter: String,
    outcome: Outcome,
}

fn median(sorted: &[f64]) -> f64 {
    let k = sorted.len();
    if k == 0 {
        f64::NAN
    } else if k % 2 == 1 {
        sorted[k / 2]
    } else {
        0.5 * (sorted[k / 2 - 1] + sorted[k / 2])
    }
}

/// One warm-up fit, then `repeats` timed fits from the case's starting point.
fn measure(
    data: &CaseData,
    shape: Shape,
    backend: &Backend,
    solver: Solver,
    loss: Loss,
    iterations: usize,
    repeats: usize,
) -> Result<Timing, NmfError> {
    let v: ArrayView2<'_, f32> = data.v.view();
    let params = Nmf::params(shape.r)
        .solver(solver)
        .loss(loss)
        .init(Init::Custom {
            w: data.w0.clone(),
            h: data.h0.clone(),
        })
        .max_iter(iterations)
        .tol(0.0)
        .backend(backend.clone());
    drop(params.fit(v)?);
    let mut ms = Vec::with_capacity(repeats);
    let mut last = None;
    for _ in 0..repeats {
        drop(last.take());
        let start = Instant::now();
        let fit = params.fit(v)?;
        ms.push(start.elapsed().as_secs_f64() * 1e3 / iterations as f64);
        last = Some(fit);
    }
    let peak = peak_rss_mib();
    ms.sort_by(f64::total_cmp);
    let (rel_error, engine) = match &last {
        Some(fit) => (fit.relative_error(v)?, fit.engine().to_string()),
        None => (f64::NAN, String::new()),
    };
    let ms_median = median(&ms);
    Ok(Timing {
        ms_median,
        ms_min: ms.first().copied().unwrap_or(f64::NAN),
        ms_max: ms.last().copied().unwrap_or(f64::NAN),
        gflops: shape.flops_per_iter() / (ms_median * 1e-3) / 1e9,
        rel_error,
        engine,
        peak_rss_mib: peak,
    })
}

/// The CPU row a GPU row is compared with.
fn cpu_twin<'a>(rows: &'a [Row], gpu: &Row) -> Option<&'a Timing> {
    rows.iter()
        .find(|c| {
            c.device == Device::Cpu
                && c.shape == gpu.shape
                && c.solver == gpu.solver
                && c.loss == gpu.loss
        })
        .and_then(|c| match &c.outcome {
            Outcome::Done(t) => Some(t),
            _ => None,
        })
}

/// (GPU speed / CPU speed, GPU rel error − CPU rel error) for a measured GPU row.
fn comparison(rows: &[Row], row: &Row) -> Option<(f64, f64)> {
    if row.device != Device::Gpu {
        return None;
    }
    let Outcome::Done(g) = &row.outcome else {
        return None;
    };
    let c = cpu_twin(rows, row)?;
    Some((c.ms_median / g.ms_median, g.rel_error - c.rel_error))
}

/// Milliseconds with about four significant digits.
fn fmt_ms(x: f64) -> String {
    if x >= 1000.0 {
        format!("{x:.0}")
    } else if x >= 100.0 {
        format!("{x:.1}")
    } else if x >= 10.0 {
        format!("{x:.2}")
    } else if x >= 1.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.4}")
    }
}

const HEADERS: [&str; 13] = [
    "case",
    "backend",
    "solver",
    "loss",
    "iters",
    "ms/iter",
    "min",
    "max",
    "GFLOP/s",
    "rel error",
    "gpu/cpu",
    "gap",
    "peak MiB",
];
/// Columns 0..4 are text (left-aligned); the rest are numbers (right-aligned).
const TEXT_COLUMNS: usize = 4;

fn table_cells(rows: &[Row], row: &Row) -> Vec<String> {
    let mut cells = vec![
        row.shape.name(),
        row.device.name().to_string(),
        row.solver.name().to_string(),
        row.loss.name().to_string(),
    ];
    match &row.outcome {
        Outcome::Done(t) => {
            let (ratio, gap) = match comparison(rows, row) {
                Some((ratio, gap)) => (format!("{ratio:.2}x"), format!("{gap:+.1e}")),
                None => (String::new(), String::new()),
            };
            cells.extend([
                row.iterations.to_string(),
                fmt_ms(t.ms_median),
                fmt_ms(t.ms_min),
                fmt_ms(t.ms_max),
                format!("{:.1}", t.gflops),
                format!("{:.6}", t.rel_error),
                ratio,
                gap,
                t.peak_rss_mib
                    .map(|p| format!("{p:.0}"))
                    .unwrap_or_else(|| "-".to_string()),
            ]);
        }
        Outcome::Unavailable(why) => {
            cells.push(format!("{}: unavailable: {why}", row.device.name()))
        }
        Outcome::Failed(why) => cells.push(format!("{}: failed: {why}", row.device.name())),
    }
    cells
}

/// The rows as an aligned table; a row whose fit did not run carries its reason after `loss`.
fn render_table(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows.iter().map(|r| table_cells(rows, r)).collect();
    let mut widths: Vec<usize> = HEADERS.iter().map(|h| h.chars().count()).collect();
    for line in &cells {
        if line.len() == HEADERS.len() {
            for (w, c) in widths.iter_mut().zip(line) {
                *w = (*w).max(c.chars().count());
            }
        } else {
            for (w, c) in widths.iter_mut().zip(line.iter().take(TEXT_COLUMNS)) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let format_line = |line: &[String]| -> String {
        let mut out = Vec::with_capacity(line.len());
        for (i, c) in line.iter().enumerate() {
            let pad = widths[i.min(widths.len() - 1)].saturating_sub(c.chars().count());
            let last_free = line.len() < HEADERS.len() && i == line.len() - 1;
            if last_free {
                out.push(c.clone());
            } else if i < TEXT_COLUMNS {
                out.push(format!("{c}{}", " ".repeat(pad)));
            } else {
                out.push(format!("{}{c}", " ".repeat(pad)));
            }
        }
        out.join("  ").trim_end().to_string()
    };
    let header: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    let mut text = format_line(&header);
    text.push('\n');
    let rule_len = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
    text.push_str(&"-".repeat(rule_len));
    text.push('\n');
    for line in &cells {
        text.push_str(&format_line(line));
        text.push('\n');
    }
    text
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_number(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".to_string()
    }
}

/// One JSON object per measured row (rows that did not run are left out).
fn render_json(rows: &[Row], threads: usize, repeats: usize, peak_scope: &str) -> String {
    let mut objects = Vec::new();
    for row in rows {
        let Outcome::Done(t) = &row.outcome else {
            continue;
        };
        let mut fields = vec![
            ("case", json_string(&row.shape.name())),
            ("m", row.shape.m.to_string()),
            ("n", row.shape.n.to_string()),
            ("r", row.shape.r.to_string()),
            ("backend", json_string(row.device.name())),
            ("solver", json_string(row.solver.name())),
            ("loss", json_string(row.loss.name())),
            ("iterations", row.iterations.to_string()),
            ("repeats", repeats.to_string()),
            ("ms_per_iter", json_number(t.ms_median)),
            ("ms_min", json_number(t.ms_min)),
            ("ms_max", json_number(t.ms_max)),
            ("gflops", json_number(t.gflops)),
            ("rel_error", json_number(t.rel_error)),
            ("adapter", json_string(&row.adapter)),
            ("engine", json_string(&t.engine)),
            ("threads", threads.to_string()),
            (
                "peak_rss_mib",
                t.peak_rss_mib
                    .map(json_number)
                    .unwrap_or_else(|| "null".to_string()),
            ),
            ("peak_rss_scope", json_string(peak_scope)),
        ];
        if let Some((ratio, gap)) = comparison(rows, row) {
            fields.push(("gpu_cpu_speed_ratio", json_number(ratio)));
            fields.push(("gpu_cpu_error_gap", json_number(gap)));
        }
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("    {}: {v}", json_string(k)))
            .collect();
        objects.push(format!("  {{\n{}\n  }}", body.join(",\n")));
    }
    if objects.is_empty() {
        "[]\n".to_string()
    } else {
        format!("[\n{}\n]\n", objects.join(",\n"))
    }
}

fn run(opts: &Options) -> ExitCode {
    if let Some(t) = opts.threads {
        std::env::set_var("RAYON_NUM_THREADS", t.to_string());
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
        {
            eprintln!("nmf-bench: cannot set up {t} threads: {e}");
            return ExitCode::from(1);
        }
    }
    let mut json_file = match &opts.json {
        Some(path) => match File::create(path) {
            Ok(f) => Some((path, f)),
            Err(e) => {
                eprintln!("nmf-bench: cannot write {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => None,
    };

    let threads = rayon::current_num_threads();
    let cpu = cpu_model();
    let cases = opts.cases();
    let devices = opts.devices();
    let combos = opts.combos();
    let iterations = opts.iterations();
    let repeats = opts.repeats;
    let gpu = devices.contains(&Device::Gpu).then(gpu_backend);
    let peak_scope = if reset_peak_rss() {
        "measurement"
    } else {
        "process"
    };

    println!("nmf-bench: {threads} threads; CPU: {cpu}");
    match &gpu {
        Some(Ok((_, adapter))) => println!("GPU: {adapter}"),
        Some(Err(why)) => println!("GPU: unavailable: {why}"),
        None => {}
    }
    println!(
        "{iterations} iterations per fit (tol 0), 1 warm-up + {repeats} timed fits per row; \
         ms/iter = fit wall time / iterations (median, min, max)"
    );
    println!(
        "GFLOP/s counts 4mnr + 4(m+n)r² per iteration (the Frobenius MU count) for every row; \
         gpu/cpu = CPU ms / GPU ms; gap = GPU − CPU rel error"
    );
    println!(
        "peak MiB = host VmHWM {}",
        if peak_scope == "measurement" {
            "during the row's fits (case data included)"
        } else {
            "of the process so far"
        }
    );
    println!();

    let total = cases.len() * combos.len() * devices.len();
    let mut rows = Vec::with_capacity(total);
    let mut failed = false;
    let mut done = 0;
    for &shape in &cases {
        eprintln!("nmf-bench: generating {}", shape.name());
        let data = case_data(shape);
        for &(solver, loss) in &combos {
            for &device in &devices {
                done += 1;
                let (backend, adapter) = match device {
                    Device::Cpu => (Ok(Backend::Cpu), cpu.clone()),
                    Device::Gpu => match &gpu {
                        Some(Ok((b, name))) => (Ok(b.clone()), name.clone()),
                        Some(Err(why)) => (Err(why.clone()), String::new()),
                        None => continue,
                    },
                };
                let outcome = match backend {
                    Err(why) => Outcome::Unavailable(why),
                    Ok(backend) => {
                        if peak_scope == "measurement" {
                            reset_peak_rss();
                        }
                        match measure(&data, shape, &backend, solver, loss, iterations, repeats) {
                            Ok(t) => Outcome::Done(t),
                            Err(e) => {
                                failed = true;
                                Outcome::Failed(e.to_string())
                            }
                        }
                    }
                };
                let what = format!(
                    "[{done}/{total}] {} {} {} {}",
                    shape.name(),
                    device.name(),
                    solver.name(),
                    loss.name()
                );
                match &outcome {
                    Outcome::Done(t) => eprintln!(
                        "{what}: {} ms/iter, rel error {:.6}",
                        fmt_ms(t.ms_median),
                        t.rel_error
                    ),
                    Outcome::Unavailable(why) => eprintln!("{what}: unavailable: {why}"),
                    Outcome::Failed(why) => eprintln!("{what}: failed: {why}"),
                }
                rows.push(Row {
                    shape,
                    device,
                    solver,
                    loss,
                    iterations,
                    adapter,
                    outcome,
                });
            }
        }
    }

    if !rows.is_empty() {
        print!("{}", render_table(&rows));
    }
    if !opts.sparse.is_empty() && !run_sparse_cases(opts) {
        failed = true;
    }
    if let Some((path, file)) = json_file.as_mut() {
        let text = render_json(&rows, threads, repeats, peak_scope);
        if let Err(e) = file.write_all(text.as_bytes()).and_then(|()| file.flush()) {
            eprintln!("nmf-bench: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
        eprintln!("nmf-bench: wrote {}", path.display());
    }
    if failed {
        eprintln!("nmf-bench: some fits failed (see the table)");
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Ok(Command::Run(opts)) => run(&opts),
        Err(msg) => {
            eprintln!("nmf-bench: {msg}\nRun `nmf-bench --help` for the options.");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        match parse_args(args.iter().map(|s| s.to_string()))? {
            Command::Run(o) => Ok(o),
            Command::Help => Err("help".to_string()),
        }
    }

    #[test]
    fn defaults() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.cases(), DEFAULT_CASES.to_vec());
        assert_eq!(o.devices(), vec![Device::Cpu, Device::Gpu]);
        assert_eq!(o.iterations(), DEFAULT_ITERATIONS);
        assert_eq!(
            o.combos(),
            vec![
                (Solver::MultiplicativeUpdate, Loss::Frobenius),
                (Solver::MultiplicativeUpdate, Loss::KullbackLeibler),
                (Solver::Hals, Loss::Frobenius),
            ]
        );
    }

    #[test]
    fn options() {
        let o = parse(&[
            "--quick",
            "--shape",
            "10,20,3",
            "--shape=5, 6, 2",
            "--backend",
            "gpu,cpu,gpu",
            "--solver=hals",
            "--iterations",
            "7",
            "--repeats=2",
            "--json",
            "/tmp/x.json",
            "--threads",
            "1",
        ])
        .unwrap();
        assert_eq!(o.cases(), vec![Shape::new(10, 20, 3), Shape::new(5, 6, 2)]);
        assert_eq!(o.devices(), vec![Device::Cpu, Device::Gpu]);
        assert_eq!(o.combos(), vec![(Solver::Hals, Loss::Frobenius)]);
        assert_eq!((o.iterations(), o.repeats, o.threads), (7, 2, Some(1)));
        assert_eq!(o.json, Some(PathBuf::from("/tmp/x.json")));
        assert_eq!(parse(&["--quick"]).unwrap().cases(), QUICK_CASES.to_vec());
        assert_eq!(parse(&["--quick"]).unwrap().iterations(), QUICK_ITERATIONS);
        assert_eq!(parse(&["--help"]), Err("help".to_string()));
        let o = parse(&["--sparse", "200,300,0.01,5", "--sparse=10, 20, 1, 2"]).unwrap();
        assert_eq!(o.cases(), Vec::new());
        assert_eq!(
            o.sparse,
            vec![
                SparseCase {
                    m: 200,
                    n: 300,
                    density: 0.01,
                    r: 5
                },
                SparseCase {
                    m: 10,
                    n: 20,
                    density: 1.0,
                    r: 2
                }
            ]
        );
        for bad in ["1,2,3", "0,2,0.1,1", "5,5,0,1", "5,5,1.5,1", "5,5,x,1"] {
            assert!(parse(&["--sparse", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_arguments() {
        for args in [
            &["--shape", "1,2"][..],
            &["--shape", "0,2,1"],
            &["--shape", "a,b,c"],
            &["--backend", "tpu"],
            &["--solver", "als"],
            &["--loss", "l1"],
            &["--iterations", "0"],
            &["--repeats", "-1"],
            &["--threads"],
            &["--quick=1"],
            &["--frobnicate"],
            &["--solver", "hals", "--loss", "kl"],
        ] {
            assert!(parse(args).is_err(), "{args:?} was accepted");
        }
    }

    #[test]
    fn flops_and_median() {
        assert_eq!(Shape::new(2, 3, 1).flops_per_iter(), 4.0 * 6.0 + 4.0 * 5.0);
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
    }

    #[test]
    fn table_and_json() {
        let timing = |ms: f64, err: f64| Timing {
            ms_median: ms,
            ms_min: ms,
            ms_max: ms,
            gflops: 1.0,
            rel_error: err,
            engine: "e".to_string(),
            peak_rss_mib: Some(10.0),
        };
        let row = |device, outcome| Row {
            shape: Shape::new(4, 5, 2),
            device,
            solver: Solver::MultiplicativeUpdate,
            loss: Loss::Frobenius,
            iterations: 3,
            adapter: "a \"b\"".to_string(),
            outcome,
        };
        let rows = vec![
            row(Device::Cpu, Outcome::Done(timing(4.0, 0.5))),
            row(Device::Gpu, Outcome::Done(timing(1.0, 0.5001))),
            row(Device::Gpu, Outcome::Unavailable("none".to_string())),
        ];
        let (ratio, gap) = comparison(&rows, &rows[1]).unwrap();
        assert_eq!(ratio, 4.0);
        assert!((gap - 1e-4).abs() < 1e-9);
        let table = render_table(&rows);
        assert!(table.contains("4.00x"));
        assert!(table.contains("gpu: unavailable: none"));
        let json = render_json(&rows, 2, 3, "measurement");
        assert_eq!(json.matches("\"case\": \"4x5r2\"").count(), 2);
        assert!(json.contains("\"adapter\": \"a \\\"b\\\"\""));
        assert!(json.contains("\"gpu_cpu_speed_ratio\": 4"));
    }
}
