//! `nmf rank`: compare ranks by consensus, NMFk and cross-validation (`nmf_gpu::select`), and
//! write summary.json with the recommended rank, the curves (rank.png) and the consensus
//! matrix of the recommended rank (consensus.png), as a unit. SIGINT / SIGTERM stop the sweep:
//! the fits running stop, and the ranks whose fits all finished are written (their summary rows
//! and plots, `"interrupted": true`), exiting with 130 / 143.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use nmf_gpu::io::{StagedDir, Storage};
use nmf_gpu::select::{Method, RankSelect, RankSelection, SweepProgress};
use nmf_gpu::{NmfError, Solver};
use serde_json::{json, Map, Value};

use crate::args::{MethodArg, RankArgs};
use crate::backend::backend;
use crate::error::CliError;
use crate::signals::Stop;
use crate::storage::{Holding, Input};
use crate::summary::{f32_json, shape_json, SUMMARY_FILE};
use crate::{print_stdout, Orientation};

/// The curves of every measure.
const PLOT_FILE: &str = "rank.png";
/// The consensus matrix of the recommended rank.
const CONSENSUS_FILE: &str = "consensus.png";
/// The held-out error with its standard-error bars.
const HELDOUT_FILE: &str = "heldout.png";
/// Every file `nmf rank` writes; a directory holding anything else is not replaced.
const RANK_FILES: [&str; 4] = [SUMMARY_FILE, PLOT_FILE, CONSENSUS_FILE, HELDOUT_FILE];

/// Check that `dir` can receive the results: missing, empty, or holding only the files of an
/// earlier `nmf rank` (replaced); its parent is created.
fn prepare(dir: &Path) -> Result<(), CliError> {
    crate::output::prepare_dir_for(dir, &RANK_FILES, "a rank selection")
}

/// The progress of the sweep: one bar on a terminal, a line a second otherwise.
fn progress_callback(
    quiet: bool,
    total: usize,
) -> (
    Option<ProgressBar>,
    Option<impl Fn(SweepProgress) + Send + Sync + 'static>,
) {
    if quiet {
        return (None, None);
    }
    let bar = std::io::stderr().is_terminal().then(|| {
        crate::progress::stderr_bar(
            total as u64,
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} fits  ETA {eta}",
        )
    });
    let shown = bar.clone();
    let last: Mutex<Option<Instant>> = Mutex::new(None);
    let callback = move |p: SweepProgress| {
        if let Some(bar) = &shown {
            bar.set_position(p.done as u64);
            return;
        }
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        let due = match *last {
            None => true,
            Some(t) => t.elapsed() >= Duration::from_secs(1) || p.done == p.total,
        };
        if due {
            *last = Some(Instant::now());
            eprintln!("fits {}/{}", p.done, p.total);
        }
    };
    (bar, Some(callback))
}

/// Run `nmf rank`; the exit code.
pub fn run(args: &RankArgs) -> Result<u8, CliError> {
    if args.input.storage == Storage::Sparse {
        return Err(CliError::usage(
            "nmf rank holds the data densely (it perturbs and masks it); drop --storage sparse",
        ));
    }
    if !(-1.0..=1.0).contains(&args.threshold) {
        return Err(CliError::usage(
            "--threshold is a silhouette, between -1 and 1 (0.7 is usual)",
        ));
    }
    if !(args.holdout > 0.0 && args.holdout <= 0.5) {
        return Err(CliError::usage(
            "--holdout is the share of entries held out, above 0 and at most 0.5 (0.1 is usual)",
        ));
    }
    if args.noise >= 1.0 {
        return Err(CliError::usage(
            "--noise must be below 1 (each entry is multiplied by 1 + U(-noise, noise); 0.03 is usual)",
        ));
    }
    if args.runs < 2 {
        return Err(CliError::usage(
            "--runs must be at least 2 (consensus and NMFk compare runs; 30 is usual)",
        ));
    }
    let orientation = Orientation::from_flag(args.samples_as_rows);
    let stop = Stop::install()?;
    let backend = backend(args.backend)?;
    let chatty = args.print.chatty();
    let input = Input::read(&args.input, Holding::Dense, orientation)?;
    let input = match args.frames.steps_within(args.input.memory_limit) {
        Some(steps) => input.preprocess(&steps.stop_flag(stop.flag()), orientation)?,
        None => input,
    };
    let v = match (&input, orientation) {
        (Input::Dense(loaded), Orientation::SamplesAsColumns) => loaded.data.view(),
        (Input::Dense(loaded), Orientation::SamplesAsRows) => loaded.data.view().reversed_axes(),
        (Input::Frames(f), _) => f.v.view(),
        (Input::Sparse(_), _) => {
            return Err(CliError::new("nmf rank needs the data held densely"));
        }
    };
    if let (Some(frames), true) = (input.frames(), chatty) {
        eprintln!("{}", crate::frames::describe(frames));
    }
    let (m, n) = v.dim();
    prepare(&args.output_dir)?;

    let methods: Vec<Method> = match args.method {
        MethodArg::Consensus => vec![Method::Consensus],
        MethodArg::Nmfk => vec![Method::Nmfk],
        MethodArg::Cv => vec![Method::CrossValidation],
        MethodArg::Bicv => vec![Method::BiCrossValidation],
        MethodArg::All => Method::ALL.to_vec(),
    };
    let solver = args.solver;
    let (from, to) = args.ranks;
    let mut params = RankSelect::params(from..=to)
        .runs(args.runs)
        .methods(&methods)
        .solver(solver)
        .max_iter(args.max_iter)
        .tol(args.tol)
        .seed(args.seed)
        .noise(args.noise)
        .silhouette_threshold(args.threshold)
        .holdout(args.holdout as f64)
        .cv_repeats(args.cv_repeats)
        .backend(backend)
        .stop_flag(stop.flag());
    if let Some(bytes) = args.input.memory_limit {
        params = params.memory_limit(bytes);
    }
    let total = params.total_fits();
    let (bar, callback) = progress_callback(!chatty, total);
    if let Some(cb) = callback {
        params = params.on_progress(cb);
    }
    if chatty {
        eprintln!(
            "comparing ranks {from}..{to} of {} ({m} x {n}): {total} fits ({})",
            input.path().display(),
            methods
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    // SIGINT / SIGTERM: the fits running stop, and the ranks finished are written.
    let result = params.run_until_stopped(v);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let sel = match result {
        Ok(sel) => sel,
        Err(NmfError::Interrupted { .. }) => {
            return Err(CliError::with_code(
                format!(
                    "interrupted ({}) before any rank finished; nothing written",
                    stop.name()
                ),
                stop.exit_code(),
            ))
        }
        Err(e @ NmfError::InvalidRankRange { .. }) => {
            return Err(CliError::usage(format!("--ranks: {e}")))
        }
        Err(e) => return Err(input.error(e, orientation)),
    };

    let staged = StagedDir::new(&args.output_dir)?;
    let mut files = vec![SUMMARY_FILE];
    let chosen = sel.recommended().rank;
    #[cfg(feature = "plots")]
    {
        nmf_gpu::select::plot::curves(&sel, &staged.path().join(PLOT_FILE))?;
        files.push(PLOT_FILE);
        if let Some(c) = sel.consensus_of(chosen) {
            nmf_gpu::select::plot::consensus_heatmap(
                &c?,
                chosen,
                &staged.path().join(CONSENSUS_FILE),
            )?;
            files.push(CONSENSUS_FILE);
        }
        if !sel.cv.is_empty() || !sel.bicv.is_empty() {
            nmf_gpu::select::plot::heldout(&sel, &staged.path().join(HELDOUT_FILE))?;
            files.push(HELDOUT_FILE);
        }
    }
    let mut summary = summary_json(args, &sel, (m, n), input.path(), &files, solver);
    if let (Some(frames), Value::Object(map)) = (input.frames(), &mut summary) {
        map.insert(
            crate::frames::KEY.into(),
            crate::frames::summary_json(frames),
        );
    }
    let mut text = serde_json::to_string_pretty(&summary).unwrap_or_else(|_| summary.to_string());
    text.push('\n');
    staged.bytes(SUMMARY_FILE, text.as_bytes())?;
    staged.commit()?;

    // The disagreement, the ambiguity and the methods set aside, as warnings.
    if !args.print.quiet {
        for w in &sel.decision.warnings {
            eprintln!("warning: {w}");
        }
    }
    if args.print.json {
        print_stdout(&text);
    } else if !args.print.quiet {
        print_stdout(&table(&sel));
        print_stdout(&format!(
            "recommended rank: {chosen} ({})\nwrote {} ({}) in {:.1} s\n",
            sel.recommended().rule,
            args.output_dir.display(),
            files.join(", "),
            sel.elapsed.as_secs_f64()
        ));
    }
    if sel.interrupted {
        if !args.print.quiet {
            eprintln!(
                "interrupted by {}: wrote the {} rank(s) finished ({}) of {from}..{to} to {}",
                stop.name(),
                sel.ranks.len(),
                sel.ranks
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                args.output_dir.display()
            );
        }
        return Ok(stop.exit_code());
    }
    Ok(0)
}

/// A finite number as JSON, or null.
fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

/// summary.json: the recommended rank and its rule first, then the settings and every figure.
fn summary_json(
    args: &RankArgs,
    sel: &RankSelection,
    shape: (usize, usize),
    input: &Path,
    files: &[&str],
    solver: Solver,
) -> Value {
    let mut map = Map::new();
    map.insert("recommended_rank".into(), json!(sel.recommended().rank));
    map.insert("rule".into(), json!(sel.recommended().rule));
    let mut choices = Map::new();
    for c in &sel.choices {
        choices.insert(
            c.method.name().into(),
            json!({ "rank": c.rank, "rule": c.rule }),
        );
    }
    map.insert("choices".into(), Value::Object(choices));
    map.insert("decision".into(), decision_json(sel));
    let per_rank: Vec<Value> = sel
        .ranks
        .iter()
        .enumerate()
        .map(|(k, &r)| {
            let mut row = Map::new();
            row.insert("rank".into(), json!(r));
            if let Some(c) = sel.consensus.get(k) {
                row.insert("cophenetic".into(), num(c.cophenetic));
                row.insert("dispersion".into(), num(c.dispersion));
                row.insert("rss".into(), num(c.rss));
                row.insert("explained_variance".into(), num(c.explained_variance));
            }
            if let Some(s) = sel.nmfk.get(k) {
                row.insert("min_silhouette".into(), num(s.min_silhouette));
                row.insert("mean_silhouette".into(), num(s.mean_silhouette));
                row.insert(
                    "cluster_silhouettes".into(),
                    Value::Array(s.cluster_silhouettes.iter().map(|&x| num(x)).collect()),
                );
                row.insert("nmfk_relative_error".into(), num(s.mean_relative_error));
            }
            if let Some(&(_, d)) = sel.dominance.iter().find(|x| x.0 == r) {
                row.insert("dominance".into(), num(d));
            }
            if let Some(c) = sel.cv.get(k) {
                row.insert("heldout_rmse".into(), num(c.heldout_rmse));
                row.insert("heldout_rmse_se".into(), num(c.heldout_rmse_se));
            }
            if let Some(c) = sel.bicv.get(k) {
                row.insert("bicv_rmse".into(), num(c.heldout_rmse));
                row.insert("bicv_rmse_se".into(), num(c.heldout_rmse_se));
                row.insert("bicv_relative_error".into(), num(c.heldout_relative_error));
                row.insert(
                    "heldout_relative_error".into(),
                    num(c.heldout_relative_error),
                );
            }
            Value::Object(row)
        })
        .collect();
    map.insert("per_rank".into(), Value::Array(per_rank));
    for (key, value) in [
        ("nmf_version", json!(env!("CARGO_PKG_VERSION"))),
        ("input", json!(input.display().to_string())),
        ("dataset", json!(args.input.dataset)),
        ("shape", shape_json(shape)),
        ("samples_as_rows", json!(args.samples_as_rows)),
        ("ranks", json!(sel.ranks)),
        (
            "methods",
            json!(sel
                .choices
                .iter()
                .map(|c| c.method.name())
                .collect::<Vec<_>>()),
        ),
        ("runs", json!(args.runs)),
        ("solver", json!(solver.name())),
        ("max_iter", json!(args.max_iter)),
        ("tol", f32_json(args.tol)),
        ("seed", json!(args.seed)),
        ("noise", f32_json(args.noise)),
        ("silhouette_threshold", json!(args.threshold)),
        ("holdout", f32_json(args.holdout)),
        ("cv_repeats", json!(args.cv_repeats)),
        ("backend", json!(args.backend.name())),
        ("fits", json!(sel.fits)),
        ("interrupted", json!(sel.interrupted)),
        ("ranks_asked", json!([args.ranks.0, args.ranks.1])),
        ("seconds", json!(sel.elapsed.as_secs_f64())),
        ("files", json!(files)),
    ] {
        map.insert(key.into(), value);
    }
    Value::Object(map)
}

/// How the recommendation was reached: whether the factors are clustered (the dominance and
/// the rank it was read at), the methods that counted and those set aside with the reason, the
/// disagreement, the reason for the choice, the ambiguity, the warnings.
fn decision_json(sel: &RankSelection) -> Value {
    let d = &sel.decision;
    let set_aside: Map<String, Value> = d
        .set_aside
        .iter()
        .map(|(m, why)| (m.name().to_string(), json!(why)))
        .collect();
    json!({
        "clustered": d.clustered,
        "dominance": num(d.dominance),
        "dominance_rank": d.dominance_rank,
        "dominance_threshold": nmf_gpu::select::decide::DOMINANCE_THRESHOLD,
        "evidence": d.evidence.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "set_aside": set_aside,
        "disagreement": d.disagreement,
        "reason": d.reason,
        "ambiguous": d.ambiguous,
        "warnings": d.warnings,
    })
}

/// The figures per rank as a table.
fn table(sel: &RankSelection) -> String {
    let mut out = String::from("  r");
    let (c, s, v) = (
        !sel.consensus.is_empty(),
        !sel.nmfk.is_empty(),
        !sel.cv.is_empty(),
    );
    if c {
        out.push_str("  cophenetic  dispersion  expl.var");
    }
    if s {
        out.push_str("  min.sil  mean.sil");
    }
    if v {
        out.push_str("  held-out RMSE (se)");
    }
    if !sel.bicv.is_empty() {
        out.push_str("  bi-cv RMSE (se)");
    }
    let dom = !sel.dominance.is_empty();
    if dom {
        out.push_str("  dominance");
    }
    out.push('\n');
    for (k, r) in sel.ranks.iter().enumerate() {
        let mark = if *r == sel.recommended().rank {
            '*'
        } else {
            ' '
        };
        out.push_str(&format!("{mark}{r:2}"));
        if let Some(x) = sel.consensus.get(k).filter(|_| c) {
            out.push_str(&format!(
                "  {:10.4}  {:10.4}  {:8.4}",
                x.cophenetic, x.dispersion, x.explained_variance
            ));
        }
        if let Some(x) = sel.nmfk.get(k).filter(|_| s) {
            out.push_str(&format!(
                "  {:7.3}  {:8.3}",
                x.min_silhouette, x.mean_silhouette
            ));
        }
        if let Some(x) = sel.cv.get(k).filter(|_| v) {
            out.push_str(&format!(
                "  {:9.5} ({:.5})",
                x.heldout_rmse, x.heldout_rmse_se
            ));
        }
        if let Some(x) = sel.bicv.get(k) {
            out.push_str(&format!(
                "  {:9.5} ({:.5})",
                x.heldout_rmse, x.heldout_rmse_se
            ));
        }
        if let Some(&(_, d)) = sel.dominance.iter().find(|x| x.0 == *r) {
            out.push_str(&format!("  {d:9.3}"));
        }
        out.push('\n');
    }
    for choice in &sel.choices {
        out.push_str(&format!(
            "{}: r = {} ({})\n",
            choice.method.name(),
            choice.rank,
            choice.rule
        ));
    }
    out
}
