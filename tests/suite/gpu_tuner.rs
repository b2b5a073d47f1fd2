//! The matmul tuner through the public API and the CLI (docs/gpu-tuner.md): a fit tuned at
//! full effort equals the untuned fit up to f32 summation order, untrusted cache files are
//! ignored and replaced, and `nmf info --tune` prints the candidate table.

use std::process::Command;

use nmf_gpu::{Backend, GpuContext, Init, Nmf, TuneEffort};

use crate::common::{gpu_or_skip, low_rank_plus_noise, pseudo};

/// Factors of a tuned and an untuned fit: `max |a − b| ≤ FACTOR_REL_TOL · max |b|` (the issue's
/// bound for GPU against CPU; here only the summation order differs).
const FACTOR_REL_TOL: f32 = 1e-3;
/// Final relative errors of a tuned and an untuned fit, relative.
const ERROR_REL_TOL: f64 = 1e-4;

fn fit(ctx: &GpuContext) -> (nmf_gpu::ndarray::Array2<f32>, f64) {
    let (m, n, r) = (129, 65, 7);
    let v = low_rank_plus_noise(m, n, r, 0.05, 3);
    let fit = Nmf::params(r)
        .init(Init::Custom {
            w: pseudo(m, r, 4),
            h: pseudo(r, n, 5),
        })
        .max_iter(30)
        .tol(0.0)
        .backend(Backend::Gpu(ctx.clone()))
        .fit(v.view())
        .expect("fit");
    let err = fit.relative_error(v.view()).expect("error");
    (fit.w().to_owned(), err)
}

fn max_rel(a: &nmf_gpu::ndarray::Array2<f32>, b: &nmf_gpu::ndarray::Array2<f32>) -> f32 {
    let scale = b.iter().fold(f32::MIN_POSITIVE, |m, x| m.max(x.abs()));
    a.iter()
        .zip(b.iter())
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn tuned_fit_matches_untuned_and_untrusted_caches_are_replaced() {
    let Some(shared) = gpu_or_skip() else { return };
    let dir = std::env::temp_dir().join(format!("nmf-gpu-suite-tune-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("cache dir");
    let untuned = shared.clone().with_tuning(TuneEffort::Off);
    assert_eq!(untuned.tuning_effort(), TuneEffort::Off);
    let (w_off, err_off) = fit(&untuned);
    // A fresh context (its own tuner) tunes at full effort and saves its choices.
    let tuned = GpuContext::new()
        .expect("a second context on the same adapter")
        .with_tuning(TuneEffort::Full)
        .with_tuning_cache(Some(dir.clone()));
    let (w_full, err_full) = fit(&tuned);
    assert!(
        (err_full - err_off).abs() <= ERROR_REL_TOL * err_off,
        "relative error tuned {err_full} vs untuned {err_off}"
    );
    let diff = max_rel(&w_full, &w_off);
    assert!(diff <= FACTOR_REL_TOL, "W tuned vs untuned: {diff}");
    let saved: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .expect("read the cache dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    assert_eq!(saved.len(), 1, "one cache file saved: {saved:?}");
    let path = &saved[0];
    let text = std::fs::read_to_string(path).expect("read the cache");
    assert!(text.contains(&format!("version {}", env!("CARGO_PKG_VERSION"))));
    let header: String = text
        .lines()
        .take_while(|l| !l.starts_with("class "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(text.lines().any(|l| l.starts_with("class ")), "{text}");
    // Hostile (a workgroup no device runs, under this adapter's own header), truncated, and
    // stale (another version): each time a new context ignores the file, tunes again with the
    // same result, and writes a file of its own over it.
    let hostile = format!("{header}class AB 8 7 3 full strided 1024x1024 split\n");
    let stale = text.replace(
        &format!("version {}", env!("CARGO_PKG_VERSION")),
        "version 0.0.0",
    );
    for bad in [hostile, text[..text.len() / 3].to_string(), stale] {
        std::fs::write(path, &bad).expect("spoil the cache");
        let again = GpuContext::new()
            .expect("another context")
            .with_tuning(TuneEffort::Quick)
            .with_tuning_cache(Some(dir.clone()));
        let (w_quick, _) = fit(&again);
        let diff = max_rel(&w_quick, &w_off);
        assert!(diff <= FACTOR_REL_TOL, "W quick-tuned vs untuned: {diff}");
        let rewritten = std::fs::read_to_string(path).expect("read the cache again");
        assert!(rewritten.starts_with(&header), "rewritten: {rewritten}");
        assert!(!rewritten.contains("1024x1024"), "rewritten: {rewritten}");
        assert!(rewritten.lines().any(|l| l.starts_with("class ")));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tune_table_times_every_candidate_and_marks_the_default() {
    let Some(ctx) = gpu_or_skip() else { return };
    let shapes = [("AB", (64, 48, 16)), ("AtB", (8, 8, 300))];
    let rows = ctx.tune_table(&shapes).expect("tune table");
    for (layout, shape) in shapes {
        let group: Vec<_> = rows
            .iter()
            .filter(|r| r.layout == layout && r.shape == shape)
            .collect();
        assert!(group.len() >= 4, "{layout} {shape:?}: {} rows", group.len());
        assert_eq!(group.iter().filter(|r| r.heuristic).count(), 1);
        assert!(group.iter().any(|r| r.config.starts_with("tiled")));
        assert!(group.iter().any(|r| r.config.starts_with("strided")));
        assert!(group.iter().all(|r| r.ms > 0.0 && r.gflops > 0.0));
    }
    assert!(ctx.tune_table(&[("BA", (4, 4, 4))]).is_err());
}

#[test]
fn nmf_info_tune_prints_the_table() {
    if gpu_or_skip().is_none() {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_nmf"))
        .args(["info", "--tune"])
        .env("NMF_GPU_TUNE_CACHE", "")
        .output()
        .expect("run nmf info --tune");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("matmul tuning table on"), "{text}");
    assert!(text.contains("GFLOP/s"));
    assert!(text.lines().any(|l| l.contains("tiled 16x16 4x4 k16")));
    assert!(text.lines().any(|l| l.contains("strided")));
    assert!(text.lines().filter(|l| l.contains("default")).count() >= 5);
}
