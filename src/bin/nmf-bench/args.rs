//! The command line of `nmf-bench`: options, their help text, and what they select.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use nmf_gpu::{Loss, Solver, SparseOrder};

use crate::cases::{Shape, SparseCase, DEFAULT_CASES, QUICK_CASES};

/// Iterations per fit without --iterations.
pub const DEFAULT_ITERATIONS: usize = 50;
/// Iterations per fit with --quick and without --iterations.
pub const QUICK_ITERATIONS: usize = 100;

const AFTER_HELP: &str = "\
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

PROFILE (--profile):
    ms         best of --repeats calls of one product after a warm-up
    GFLOP/s    2mnr (V Hᵀ, Wᵀ V), 2nr² (H Hᵀ), 2mr² (Wᵀ W) over ms
    % peak     GFLOP/s over the FMA peak measured first (all threads, registers only)
    % iter     ms over one MU Frobenius iteration, (fastest fit of N − fastest fit of 1) /
               (N − 1), without the set-up; `rest` is the iteration less the four products
               (elementwise passes, the products with r x r Grams, loss checks)

EXIT STATUS:
    0 all measurements ran (GPU rows may be unavailable), 1 a fit or output failed,
    2 invalid arguments";

/// Time NMF fits on uniform random data, CPU and GPU side by side: an aligned table and, with
/// --json FILE, one JSON object per measurement.
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(name = "nmf-bench", version, after_help = AFTER_HELP)]
pub struct Options {
    /// A case: V is M x N, rank R (repeatable; replaces the default cases).
    #[arg(long = "shape", value_name = "M,N,R", value_parser = parse_shape)]
    pub shapes: Vec<Shape>,

    /// A sparse case (repeatable): V is M x N with about D·M·N stored entries at random
    /// positions, values uniform in [0, 1), rank R; CPU only (fit_sparse). Given without
    /// --shape or --quick, no dense case runs.
    #[arg(long, value_name = "M,N,D,R", value_parser = parse_sparse)]
    pub sparse: Vec<SparseCase>,

    /// Where the sparse cases' entries fall: uniform (every position alike) or zipf (row i
    /// and column j drawn with weights 1/rank, ranks shuffled over the rows and columns: a
    /// few rows and columns dense, most nearly empty, as in a term-document matrix; repeats
    /// summed, so fewer than D·M·N entries are stored).
    #[arg(long, value_name = "LAW", value_enum, default_value_t = SparseLaw::Uniform)]
    pub sparse_law: SparseLaw,

    /// Comma-separated orders of a sparse V during the fit (NmfParams::sparse_order): stored,
    /// degree; with several, each round of timed fits runs one fit per order in turn.
    #[arg(
        long,
        value_name = "ORDER",
        value_delimiter = ',',
        value_parser = parse_sparse_order,
        default_value = "stored"
    )]
    pub sparse_order: Vec<SparseOrder>,

    /// Two small cases (361x2429 r49, 1024x1024 r32), about 10 s on 2 cores.
    #[arg(long)]
    pub quick: bool,

    /// Comma-separated: cpu, gpu [default: cpu,gpu].
    #[arg(
        long = "backend",
        value_name = "LIST",
        value_enum,
        value_delimiter = ',',
        ignore_case = true
    )]
    pub devices: Vec<Device>,

    /// Comma-separated: mu, hals (alias cd), ahals [default: mu,hals].
    #[arg(
        long = "solver",
        value_name = "LIST",
        value_enum,
        value_delimiter = ',',
        ignore_case = true
    )]
    pub solvers: Vec<Solver>,

    /// Comma-separated: frobenius (alias fro), kl, is [default: frobenius,kl].
    #[arg(
        long = "loss",
        value_name = "LIST",
        value_enum,
        value_delimiter = ',',
        ignore_case = true
    )]
    pub losses: Vec<Loss>,

    /// Iterations per fit (tol = 0) [default: 50; 100 with --quick].
    #[arg(long, value_name = "N", value_parser = positive)]
    pub iterations: Option<usize>,

    /// Timed fits per row, after one warm-up.
    #[arg(long, value_name = "K", default_value_t = 3, value_parser = positive)]
    pub repeats: usize,

    /// Also write one JSON object per measurement to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Instead of ms per iteration: the wall time until the relative error first reaches E,
    /// per case, device and solver (Frobenius only; --iterations is the budget).
    #[arg(long, value_name = "E", value_parser = positive_f64)]
    pub time_to_error: Option<f64>,

    /// CPU threads (sets RAYON_NUM_THREADS and the global rayon pool).
    #[arg(long, value_name = "T", value_parser = positive)]
    pub threads: Option<usize>,

    /// Instead of whole fits: the CPU products one by one (V Hᵀ, Wᵀ V, H Hᵀ, Wᵀ W) in GFLOP/s
    /// beside the FMA peak measured on this machine, and their share of one MU Frobenius
    /// iteration (best of --repeats; --iterations per timed fit).
    #[arg(long)]
    pub profile: bool,
}

/// A [`SparseOrder`] by name.
fn parse_sparse_order(s: &str) -> Result<SparseOrder, String> {
    SparseOrder::from_name(s.trim()).ok_or_else(|| {
        let names: Vec<&str> = SparseOrder::ALL.iter().map(|o| o.name()).collect();
        format!("expected one of {}, found {s:?}", names.join(", "))
    })
}

/// A finite value > 0.
fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("expected a number > 0, found {s:?}")),
    }
}

/// `--sparse-law`: how a sparse case's positions are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SparseLaw {
    /// Rows and columns uniform.
    Uniform,
    /// Rows and columns with power-law (Zipf, exponent 1) weights.
    Zipf,
}

/// `--backend`: where a row runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Device {
    /// The CPU engine.
    Cpu,
    /// The GPU engine.
    Gpu,
}

impl Device {
    /// The name in the table and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Gpu => "gpu",
        }
    }
}

/// A whole number >= 1.
fn positive(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(k) => Ok(k),
        Err(_) => Err("expects a positive integer".to_string()),
    }
}

/// `M,N,R`: three positive integers.
fn parse_shape(value: &str) -> Result<Shape, String> {
    let bad = || "expects M,N,R (three positive integers, e.g. 361,2429,49)".to_string();
    let dims: Vec<usize> = value
        .split(',')
        .map(|p| p.trim().parse::<usize>().ok().filter(|&d| d > 0))
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    match dims[..] {
        [m, n, r] => Ok(Shape::new(m, n, r)),
        _ => Err(bad()),
    }
}

/// `M,N,D,R`: positive integers M, N, R and a density 0 < D <= 1.
fn parse_sparse(value: &str) -> Result<SparseCase, String> {
    let bad = || {
        "expects M,N,D,R (positive integers M, N, R and a density 0 < D <= 1, e.g. 20000,50000,0.005,20)"
            .to_string()
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

impl Options {
    /// Parse the process arguments; exits with code 2 (after printing why) on a usage error.
    pub fn from_command_line() -> Options {
        let opts = Options::parse();
        if opts.combos().is_empty() {
            let mut cmd = <Options as clap::CommandFactory>::command();
            cmd.error(
                clap::error::ErrorKind::ArgumentConflict,
                "no solver/loss combination to run: HALS supports only the frobenius loss",
            )
            .exit();
        }
        opts
    }

    /// The dense cases: --shape, else the quick ones, else none when only sparse cases were
    /// asked for, else the defaults.
    pub fn cases(&self) -> Vec<Shape> {
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

    /// Iterations per fit.
    pub fn iterations(&self) -> usize {
        self.iterations.unwrap_or(if self.quick {
            QUICK_ITERATIONS
        } else {
            DEFAULT_ITERATIONS
        })
    }

    /// The devices in a fixed order (CPU first, so GPU rows can be compared with it).
    pub fn devices(&self) -> Vec<Device> {
        [Device::Cpu, Device::Gpu]
            .into_iter()
            .filter(|d| self.devices.is_empty() || self.devices.contains(d))
            .collect()
    }

    /// The valid (solver, loss) combinations ([`Solver::admits`]), in a fixed order; accelerated
    /// HALS runs only when asked for, Itakura–Saito likewise.
    pub fn combos(&self) -> Vec<(Solver, Loss)> {
        let mut out = Vec::new();
        for s in Solver::ALL {
            for l in Loss::ALL {
                let asked = if self.solvers.is_empty() {
                    s != Solver::AcceleratedHals
                } else {
                    self.solvers.contains(&s)
                } && if self.losses.is_empty() {
                    l != Loss::ItakuraSaito
                } else {
                    self.losses.contains(&l)
                };
                if asked && s.admits(l).is_ok() {
                    out.push((s, l));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("nmf-bench").chain(args.iter().copied()))
    }

    /// `--solver` and `--loss` take exactly the library's names and aliases.
    #[test]
    fn solvers_and_losses_are_the_library_names() {
        for s in Solver::ALL {
            for name in std::iter::once(s.name()).chain(s.aliases().iter().copied()) {
                assert_eq!(
                    parse(&["--solver", name]).unwrap().solvers,
                    vec![s],
                    "{name}"
                );
            }
        }
        for l in Loss::ALL {
            for name in std::iter::once(l.name()).chain(l.aliases().iter().copied()) {
                assert_eq!(parse(&["--loss", name]).unwrap().losses, vec![l], "{name}");
            }
        }
        assert!(parse(&["--solver", "sgd"]).is_err());
        assert!(parse(&["--loss", "beta"]).is_err());
        let o = parse(&["--solver", "mu,cd", "--loss", "fro,kl"]).unwrap();
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
    fn defaults() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.cases(), DEFAULT_CASES.to_vec());
        assert_eq!(o.devices(), vec![Device::Cpu, Device::Gpu]);
        assert_eq!(o.iterations(), DEFAULT_ITERATIONS);
        assert_eq!(o.repeats, 3);
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
            "gpu,CPU,gpu",
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
        assert_eq!(
            parse(&["--loss", "fro"]).unwrap().combos(),
            vec![
                (Solver::MultiplicativeUpdate, Loss::Frobenius),
                (Solver::Hals, Loss::Frobenius)
            ]
        );
        assert_eq!(
            parse(&["--help"]).unwrap_err().kind(),
            clap::error::ErrorKind::DisplayHelp
        );
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
        assert_eq!(
            (o.sparse_law, o.sparse_order.clone()),
            (SparseLaw::Uniform, vec![SparseOrder::Stored])
        );
        let o = parse(&["--sparse-law", "zipf", "--sparse-order", "degree,stored"]).unwrap();
        assert_eq!(
            (o.sparse_law, o.sparse_order),
            (
                SparseLaw::Zipf,
                vec![SparseOrder::Degree, SparseOrder::Stored]
            )
        );
        assert!(parse(&["--sparse-order", "rcm"]).is_err());
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
        ] {
            assert!(parse(args).is_err(), "{args:?} was accepted");
        }
        let o = parse(&["--solver", "hals", "--loss", "kl"]).unwrap();
        assert!(o.combos().is_empty());
    }
}
