//! Frame preprocessing (`nmf_gpu::frames`): the crop, the block-mean downsampling and the
//! per-pixel baseline against a direct dense computation, streamed batches equal to the whole
//! matrix processed at once, the bound of the percentile, typed errors for bad crops, factors
//! and shapes, the memory check before the baseline's pass, resident memory while a stream is
//! preprocessed, and the command line (summary.json records the steps; `nmf transform --model`
//! applies them again).
#![cfg(feature = "images")]

use std::path::Path;

use nmf_gpu::frames::{Baseline, Crop, FrameShape, FrameSource, FrameStep, FrameSteps};
use nmf_gpu::io::tiff::{TiffCompression, TiffFrame, TiffSource, TiffWriter};
use nmf_gpu::io::{read_matrix, write_npy_atomic, ReadOptions};
use nmf_gpu::ndarray::{concatenate, Array2, ArrayView2, Axis};
use nmf_gpu::online::{ArraySource, Source};
use nmf_gpu::{NmfError, Result};

/// Frames of the small movies: 9 rows x 11 columns of pixels, 60 frames.
const FH: usize = 9;
const FW: usize = 11;
const T: usize = 60;

/// A small 16-bit movie as V (pixels x frames): integer levels with a per-pixel offset, a
/// slow drift and a pseudo-random part, so that every pixel has its own minimum and
/// percentiles.
fn movie() -> Array2<f32> {
    Array2::from_shape_fn((FH * FW, T), |(p, t)| {
        let offset = 100 + (p * 37) % 200;
        let drift = (t * 3) % 17;
        let noise = (p * 7919 + t * 104_729) % 61;
        (offset + drift + noise) as f32
    })
}

/// `v` as a 16-bit TIFF of `FH x FW` frames.
fn write_tiff(path: &Path, v: &Array2<f32>) {
    let mut w =
        TiffWriter::create(path, FW as u32, FH as u32, false, TiffCompression::None).unwrap();
    for col in v.columns() {
        let f: Vec<u16> = col.iter().map(|&x| x as u16).collect();
        w.push(TiffFrame::U16(&f)).unwrap();
    }
    w.finish().unwrap();
}

/// The direct computation, in f64: crop, then `k x k` block means (remainders dropped).
fn crop_downsample(
    v: ArrayView2<'_, f32>,
    shape: (usize, usize),
    crop: Crop,
    k: usize,
) -> Array2<f64> {
    let (_, w) = shape;
    let (ho, wo) = (crop.height / k, crop.width / k);
    Array2::from_shape_fn((ho * wo, v.ncols()), |(p, t)| {
        let (yo, xo) = (p / wo, p % wo);
        let mut sum = 0.0;
        for dy in 0..k {
            for dx in 0..k {
                let (y, x) = (crop.y + k * yo + dy, crop.x + k * xo + dx);
                sum += f64::from(v[[y * w + x, t]]);
            }
        }
        sum / (k * k) as f64
    })
}

/// The nearest-rank `q`-th percentile of each row: the `⌈q·n/100⌉`-th smallest (at least the 1st).
fn percentile_rows(v: &Array2<f64>, q: f64) -> Vec<f64> {
    v.rows()
        .into_iter()
        .map(|r| {
            let mut x = r.to_vec();
            x.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let k = ((q / 100.0 * x.len() as f64).ceil() as usize).clamp(1, x.len());
            x[k - 1]
        })
        .collect()
}

fn min_rows(v: &Array2<f64>) -> Vec<f64> {
    v.rows()
        .into_iter()
        .map(|r| r.iter().copied().fold(f64::INFINITY, f64::min))
        .collect()
}

/// `max(v − b, 0)` row by row.
fn subtract(v: &Array2<f64>, b: &[f64]) -> Array2<f64> {
    let mut out = v.clone();
    for (mut row, &b) in out.rows_mut().into_iter().zip(b) {
        row.mapv_inplace(|x| (x - b).max(0.0));
    }
    out
}

/// Every batch of `src` (batches of `b` frames), side by side.
fn drain(src: &mut dyn Source, b: usize) -> Result<Array2<f32>> {
    let mut parts = Vec::new();
    while let Some(batch) = src.next_batch(b)? {
        parts.push(batch);
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    Ok(concatenate(Axis(1), &views).unwrap())
}

fn max_abs_diff(a: ArrayView2<'_, f32>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.dim(), b.dim());
    a.iter()
        .zip(b.iter())
        .map(|(&x, &y)| (f64::from(x) - y).abs())
        .fold(0.0, f64::max)
}

const CROP: Crop = Crop {
    x: 2,
    y: 1,
    width: 8,
    height: 7,
};

#[test]
fn crop_downsample_and_minimum_match_a_direct_computation() {
    let v = movie();
    let steps = FrameSteps::new()
        .frame_shape(FrameShape::new(FH, FW))
        .crop(CROP)
        .downsample(2)
        .baseline(Baseline::Min);
    let mut src = FrameSource::new(ArraySource::new(v.view()), &steps).unwrap();
    // 7 x 8 cropped, then 3 x 4 blocks of 2 x 2 (the 7th row dropped).
    assert_eq!(src.dim(), (3 * 4, T));
    assert_eq!(src.frame_shape(), Some((3, 4)));
    assert_eq!(
        src.frames().steps(),
        vec![
            FrameStep::Crop(CROP),
            FrameStep::Downsample {
                factor: 2,
                dropped_rows: 1,
                dropped_cols: 0
            },
            FrameStep::Baseline {
                method: Baseline::Min,
                bins: None,
                error_bound: 0.0,
                passes: 1
            },
        ]
    );
    let got = drain(&mut src, 13).unwrap();
    let reduced = crop_downsample(v.view(), (FH, FW), CROP, 2);
    let base = min_rows(&reduced);
    for (&b, &want) in src.frames().baseline().unwrap().iter().zip(&base) {
        assert!((f64::from(b) - want).abs() < 1e-4, "{b} vs {want}");
    }
    let want = subtract(&reduced, &base);
    assert!(max_abs_diff(got.view(), &want) < 1e-3);
    // Every pixel reaches its minimum in some frame, so every row has a zero; none is negative.
    for row in got.rows() {
        assert!(row.iter().all(|&x| x >= 0.0));
        assert!(row.iter().any(|&x| x == 0.0));
    }
}

#[test]
fn a_percentile_of_integer_frames_is_exact_and_of_means_within_its_bound() {
    let v = movie();
    // Integer levels (a crop only), each pixel spanning fewer levels than the bins: exact.
    for q in [5.0f32, 10.0, 50.0] {
        let steps = FrameSteps::new()
            .frame_shape(FrameShape::new(FH, FW))
            .crop(CROP)
            .baseline(Baseline::Percentile(q));
        let frames = steps.plan(&mut ArraySource::new(v.view())).unwrap();
        let reduced = crop_downsample(v.view(), (FH, FW), CROP, 1);
        let want = percentile_rows(&reduced, f64::from(q));
        let got = frames.baseline().unwrap();
        for (p, (&g, &w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(f64::from(g), w, "pixel {p}, q {q}");
        }
        match &frames.steps()[1] {
            FrameStep::Baseline {
                error_bound,
                passes,
                bins,
                ..
            } => {
                assert_eq!(*error_bound, 0.0);
                assert_eq!(*passes, 2);
                assert_eq!(*bins, Some(256));
            }
            other => panic!("{other:?}"),
        }
    }
    // Block means (multiples of 1/4) with few bins: within the bound reported, which is half
    // a bin of the widest pixel's range.
    let bins = 8;
    let steps = FrameSteps::new()
        .frame_shape(FrameShape::new(FH, FW))
        .downsample(2)
        .baseline(Baseline::Percentile(10.0))
        .baseline_bins(bins);
    let frames = steps.plan(&mut ArraySource::new(v.view())).unwrap();
    let crop_all = Crop {
        x: 0,
        y: 0,
        width: FW,
        height: FH,
    };
    let reduced = crop_downsample(v.view(), (FH, FW), crop_all, 2);
    let want = percentile_rows(&reduced, 10.0);
    let widest = reduced
        .rows()
        .into_iter()
        .map(|r| {
            let (lo, hi) = r
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                });
            hi - lo
        })
        .fold(0.0, f64::max);
    let FrameStep::Baseline { error_bound, .. } = frames.steps()[1].clone() else {
        panic!("no baseline step");
    };
    let bound = f64::from(error_bound);
    assert!(bound > 0.0 && bound <= widest / (2.0 * bins as f64) + 1e-4);
    let mut worst: f64 = 0.0;
    for (&g, &w) in frames.baseline().unwrap().iter().zip(&want) {
        worst = worst.max((f64::from(g) - w).abs());
    }
    assert!(
        worst <= bound + 1e-4,
        "error {worst} above the bound {bound}"
    );
}

#[test]
fn streamed_frames_equal_the_whole_matrix_processed() {
    let dir = tempfile::tempdir().unwrap();
    let tif = dir.path().join("movie.tif");
    let v = movie();
    write_tiff(&tif, &v);
    for baseline in [Baseline::Min, Baseline::Percentile(20.0)] {
        // The TIFF knows its frame shape: none given.
        let steps = FrameSteps::new()
            .crop(CROP)
            .downsample(3)
            .baseline(baseline);
        let inner = TiffSource::open(&tif, &ReadOptions::new()).unwrap();
        let mut streamed = FrameSource::new(inner, &steps).unwrap();
        let a = drain(&mut streamed, 7).unwrap();
        // A second epoch gives the same frames.
        streamed.rewind().unwrap();
        assert_eq!(drain(&mut streamed, 25).unwrap(), a);
        let whole = read_matrix(&tif, &ReadOptions::new()).unwrap();
        let frames = steps
            .plan_matrix(whole.view(), Some(FrameShape::new(FH, FW)))
            .unwrap();
        let b = frames.apply_matrix(whole.view(), None).unwrap();
        assert_eq!(a, b, "{baseline:?}");
        assert_eq!(streamed.frames().baseline(), frames.baseline());
        assert_eq!(a.dim(), ((7 / 3) * (8 / 3), T));
    }
}

#[test]
fn bad_crops_factors_and_shapes_are_typed_errors() {
    let v = movie();
    let plan = |steps: FrameSteps| steps.plan(&mut ArraySource::new(v.view()));
    let shaped = || FrameSteps::new().frame_shape(FrameShape::new(FH, FW));
    let name_of = |r: Result<nmf_gpu::frames::Frames>| match r {
        Err(NmfError::InvalidParameter { name, .. }) => name,
        other => panic!("expected InvalidParameter, got {other:?}"),
    };
    // A crop past the right edge, past the bottom, of size 0.
    for crop in [
        Crop {
            x: 5,
            y: 0,
            width: 7,
            height: 2,
        },
        Crop {
            x: 0,
            y: 8,
            width: 2,
            height: 2,
        },
        Crop {
            x: 0,
            y: 0,
            width: 0,
            height: 2,
        },
        Crop {
            x: usize::MAX,
            y: 0,
            width: 2,
            height: 2,
        },
    ] {
        assert_eq!(name_of(plan(shaped().crop(crop))), "crop");
    }
    // A factor of 0, or larger than the (cropped) frame's smaller side.
    assert_eq!(name_of(plan(shaped().downsample(0))), "downsample");
    assert_eq!(name_of(plan(FrameSteps::new().downsample(0))), "downsample");
    assert_eq!(name_of(plan(shaped().downsample(10))), "downsample");
    assert_eq!(
        name_of(plan(
            shaped()
                .crop(Crop {
                    x: 0,
                    y: 0,
                    width: 3,
                    height: 9
                })
                .downsample(4)
        )),
        "downsample"
    );
    // A frame shape that is not the source's pixels, or not the source's own shape.
    assert_eq!(
        name_of(plan(
            FrameSteps::new()
                .frame_shape(FrameShape::new(10, 10))
                .downsample(2)
        )),
        "frame_shape"
    );
    let dir = tempfile::tempdir().unwrap();
    let tif = dir.path().join("m.tif");
    write_tiff(&tif, &v);
    let mut src = TiffSource::open(&tif, &ReadOptions::new()).unwrap();
    let wrong = FrameSteps::new()
        .frame_shape(FrameShape::new(FW, FH))
        .downsample(2);
    assert!(matches!(
        wrong.plan(&mut src),
        Err(NmfError::InvalidParameter {
            name: "frame_shape",
            ..
        })
    ));
    // No shape known or given: a crop or downsampling cannot be placed; a baseline can.
    assert!(matches!(
        plan(FrameSteps::new().downsample(2)),
        Err(NmfError::UnknownFrameShape { pixels }) if pixels == FH * FW
    ));
    assert!(plan(FrameSteps::new().baseline(Baseline::Min)).is_ok());
    // A percentile outside (0, 100).
    for q in [0.0, 100.0, f32::NAN] {
        assert_eq!(
            name_of(plan(FrameSteps::new().baseline(Baseline::Percentile(q)))),
            "baseline"
        );
    }
    // Too few bins.
    assert_eq!(
        name_of(plan(
            FrameSteps::new()
                .baseline(Baseline::Percentile(5.0))
                .baseline_bins(1)
        )),
        "baseline_bins"
    );
    // The text forms.
    assert_eq!("4x5".parse::<FrameShape>().unwrap(), FrameShape::new(4, 5));
    assert_eq!(
        "1,2,3,4".parse::<Crop>().unwrap(),
        Crop {
            x: 1,
            y: 2,
            width: 3,
            height: 4
        }
    );
    assert_eq!(
        "p12.5".parse::<Baseline>().unwrap(),
        Baseline::Percentile(12.5)
    );
    assert_eq!("min".parse::<Baseline>().unwrap(), Baseline::Min);
    for bad in ["0x5", "5", "ax5"] {
        assert!(bad.parse::<FrameShape>().is_err(), "{bad}");
    }
    for bad in ["1,2,3", "1,2,0,4", "-1,2,3,4"] {
        assert!(bad.parse::<Crop>().is_err(), "{bad}");
    }
    for bad in ["p100", "p-1", "median", "p"] {
        assert!(bad.parse::<Baseline>().is_err(), "{bad}");
    }
}

/// A source that counts the batches it gives.
struct Counting<'a> {
    inner: ArraySource<'a>,
    batches: usize,
}

impl Source for Counting<'_> {
    fn dim(&self) -> (usize, usize) {
        self.inner.dim()
    }
    fn rewind(&mut self) -> Result<()> {
        self.inner.rewind()
    }
    fn next_batch(&mut self, max_cols: usize) -> Result<Option<Array2<f32>>> {
        self.batches += 1;
        self.inner.next_batch(max_cols)
    }
}

#[test]
fn the_baseline_state_is_checked_against_the_memory_limit_before_any_frame_is_read() {
    let v = movie();
    let (pixels, frames) = ((FH * FW) as u64, T as u64);
    // A pass holds one batch (here every frame) twice: read and processed.
    let batch = 2 * pixels * frames * 4;
    // Room for a histogram of 64 bins per pixel (and its range), not for 256.
    let limit = pixels * (64 * 4 + 12) + batch;
    let mut src = Counting {
        inner: ArraySource::new(v.view()),
        batches: 0,
    };
    let steps = FrameSteps::new()
        .baseline(Baseline::Percentile(10.0))
        .memory_limit(limit);
    match steps.plan(&mut src) {
        Err(NmfError::FitTooLarge { need, limit: l, .. }) => {
            assert_eq!(l, limit);
            assert_eq!(need, pixels * (256 * 4 + 12) + batch);
        }
        other => panic!("expected FitTooLarge, got {other:?}"),
    }
    assert_eq!(src.batches, 0, "frames were read before the refusal");
    // Fewer bins fit the same limit; the minimum needs one value per pixel.
    assert!(steps.clone().baseline_bins(64).plan(&mut src).is_ok());
    assert!(src.batches > 0);
    let min = FrameSteps::new()
        .baseline(Baseline::Min)
        .memory_limit(pixels * 4 + batch);
    assert!(min.plan(&mut src).is_ok());
    let too_little = FrameSteps::new()
        .baseline(Baseline::Min)
        .memory_limit(pixels * 4 + batch - 1);
    assert!(matches!(
        too_little.plan(&mut src),
        Err(NmfError::FitTooLarge { .. })
    ));
}

/// `nmf` with `args`; (exit code, stdout, stderr).
fn nmf(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nmf"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn nmf_fit_records_the_steps_and_transform_applies_them() {
    let dir = tempfile::tempdir().unwrap();
    let tif = dir.path().join("movie.tif");
    let v = movie();
    write_tiff(&tif, &v);
    let flags = [
        "--crop",
        "2,1,8,7",
        "--downsample",
        "2",
        "--baseline",
        "p10",
    ];
    for online in [false, true] {
        let out = dir.path().join(format!("fit-{online}"));
        let mut args = vec![
            os("fit"),
            os("--rank"),
            os("2"),
            os("--quiet"),
            os("--input"),
        ];
        args.push(tif.as_os_str());
        args.extend([os("--output-dir"), out.as_os_str()]);
        args.extend(flags.iter().map(|s| os(s)));
        if online {
            args.extend([
                os("--online"),
                os("--batch-size"),
                os("16"),
                os("--epochs"),
                os("3"),
            ]);
        }
        let (code, _, err) = nmf(&args);
        assert_eq!(code, 0, "{err}");
        let s = summary(&out);
        let record = &s["frame_preprocessing"];
        assert_eq!(record["frame_shape"], serde_json::json!([FH, FW]));
        assert_eq!(record["output_frame_shape"], serde_json::json!([3, 4]));
        let steps = record["steps"].as_array().unwrap();
        let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
        assert_eq!(names, ["crop", "downsample", "baseline"]);
        assert_eq!(steps[0]["x"], 2);
        assert_eq!(steps[0]["height"], 7);
        assert_eq!(steps[1]["factor"], 2);
        assert_eq!(steps[1]["dropped_rows"], 1);
        assert_eq!(steps[2]["method"], "p10");
        assert_eq!(steps[2]["bins"], 256);
        assert!(steps[2]["error_bound"].as_f64().unwrap() >= 0.0);
        assert_eq!(s["shape"], serde_json::json!([12, T]));
        // W has one row per processed pixel.
        let w = read_matrix(out.join("W.npy"), &ReadOptions::new()).unwrap();
        assert_eq!(w.dim(), (12, 2));
        // transform applies the recorded steps to new frames (here the same movie).
        let h_path = dir.path().join(format!("H-{online}.npy"));
        let (code, _, err) = nmf(&[
            os("transform"),
            os("--quiet"),
            os("--model"),
            out.as_os_str(),
            os("--input"),
            tif.as_os_str(),
            os("--output"),
            h_path.as_os_str(),
        ]);
        assert_eq!(code, 0, "{err}");
        let h = read_matrix(&h_path, &ReadOptions::new()).unwrap();
        assert_eq!(h.dim(), (2, T));
    }
    // The same frames as a .npy of frames x pixels: the shape must be given.
    let npy = dir.path().join("movie.npy");
    write_npy_atomic(&npy, &v.t().to_owned()).unwrap();
    let out = dir.path().join("fit-npy");
    let base = [
        os("fit"),
        os("--rank"),
        os("2"),
        os("--quiet"),
        os("--samples-as-rows"),
        os("--input"),
        npy.as_os_str(),
        os("--output-dir"),
        out.as_os_str(),
        os("--downsample"),
        os("2"),
    ];
    let (code, _, err) = nmf(&base);
    assert_eq!(code, 1);
    assert!(err.contains("--frame-shape"), "{err}");
    let mut with_shape = base.to_vec();
    with_shape.extend([os("--frame-shape"), os("9x11")]);
    let (code, _, err) = nmf(&with_shape);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary(&out)["shape"], serde_json::json!([4 * 5, T]));
    // A crop outside the frame names the crop; a malformed one is a usage error.
    let mut outside = with_shape.clone();
    outside.extend([os("--crop"), os("5,5,10,10")]);
    let (code, _, err) = nmf(&outside);
    assert_eq!(code, 1);
    assert!(err.contains("crop"), "{err}");
    let mut malformed = with_shape.clone();
    malformed.extend([os("--crop"), os("5,5")]);
    assert_eq!(nmf(&malformed).0, 2);
}

// ---- streaming memory --------------------------------------------------------------------

/// The generated movie of the memory test: 128x128 frames, 4000 of them (250 MiB as float32).
const BIG_SIDE: usize = 128;
const BIG_FRAMES: usize = 4000;
/// Frames per batch of the stream.
const BIG_BATCH: usize = 256;

/// Frames made on the fly (nothing on disk, nothing held): pixel `p` of frame `t` is a level
/// that moves with both.
struct Generated {
    next: usize,
}

impl Source for Generated {
    fn dim(&self) -> (usize, usize) {
        (BIG_SIDE * BIG_SIDE, BIG_FRAMES)
    }
    fn rewind(&mut self) -> Result<()> {
        self.next = 0;
        Ok(())
    }
    fn next_batch(&mut self, max_cols: usize) -> Result<Option<Array2<f32>>> {
        if self.next >= BIG_FRAMES {
            return Ok(None);
        }
        let (j0, b) = (self.next, max_cols.min(BIG_FRAMES - self.next));
        self.next += b;
        Ok(Some(Array2::from_shape_fn(
            (BIG_SIDE * BIG_SIDE, b),
            |(p, c)| ((p * 7 + (j0 + c) * 13) % 1000) as f32,
        )))
    }
    fn frame_shape(&self) -> Option<(usize, usize)> {
        Some((BIG_SIDE, BIG_SIDE))
    }
}

fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// The child half of `preprocessing_a_stream_keeps_memory_bounded` (does nothing unless the
/// parent asked for it).
#[test]
fn frames_stream_child() {
    if std::env::var_os("NMF_FRAMES_STREAM_CHILD").is_none() {
        return;
    }
    println!("\nBASE={}", status_bytes("VmRSS:"));
    let steps = FrameSteps::new()
        .downsample(2)
        .baseline(Baseline::Percentile(20.0));
    let mut src = FrameSource::new(Generated { next: 0 }, &steps).unwrap();
    let mut frames = 0;
    while let Some(b) = src.next_batch(BIG_BATCH).unwrap() {
        assert_eq!(b.nrows(), (BIG_SIDE / 2) * (BIG_SIDE / 2));
        frames += b.ncols();
    }
    assert_eq!(frames, BIG_FRAMES);
    println!("\nVMHWM={}", status_bytes("VmHWM:"));
}

/// Preprocessing a stream (a percentile baseline's two passes, then one pass downsampled) holds
/// the baseline's state, one pass batch (at most 32 MiB with its processed copy) and one
/// stream batch with its copy, never the movie: resident memory grows by less than those and
/// 8 MiB of slack (thread stacks, allocator), far below the 250 MiB the movie takes as float32.
#[test]
fn preprocessing_a_stream_keeps_memory_bounded() {
    #[cfg(not(target_os = "linux"))]
    return;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "frames::frames_stream_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NMF_FRAMES_STREAM_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .expect("the child ran")
            .parse()
            .unwrap()
    };
    let (base, peak) = (field("BASE="), field("VMHWM="));
    let pixels = (BIG_SIDE * BIG_SIDE) as u64;
    let out_pixels = pixels / 4;
    let movie = pixels * BIG_FRAMES as u64 * 4;
    let histogram = out_pixels * (256 * 4 + 12);
    let stream_batch = (pixels + out_pixels) * BIG_BATCH as u64 * 4;
    let bound = histogram + (32 << 20) + stream_batch + (8 << 20);
    assert!(bound < movie / 3);
    eprintln!(
        "preprocessing: {} MiB at the start, peak {} MiB (bound on growth {} MiB)",
        base >> 20,
        peak >> 20,
        bound >> 20
    );
    assert!(
        peak.saturating_sub(base) < bound,
        "resident memory grew by {} MiB (bound {} MiB) preprocessing a {} MiB movie",
        (peak - base) >> 20,
        bound >> 20,
        movie >> 20
    );
}
