//! Frame preprocessing on the command line (`--crop`, `--downsample`, `--baseline`): the steps
//! recorded in summary.json under [`KEY`], in order and with their parameters, and read back
//! by `nmf transform --model`, which applies them to the new data.

use std::path::Path;

use nmf_gpu::frames::{Baseline, Crop, FrameShape, FrameStep, FrameSteps, Frames};
use nmf_gpu::io::{FileFormat, ReadOptions};
use serde_json::{json, Value};

use crate::error::{at, CliError};
use crate::summary::f32_json;

/// The key of summary.json that records the preprocessing (null when there was none).
pub const KEY: &str = "frame_preprocessing";

/// The record of a plan: the frame shapes and the steps in order.
pub fn summary_json(frames: &Frames) -> Value {
    let shape = |s: Option<FrameShape>| match s {
        Some(s) => json!([s.height, s.width]),
        None => Value::Null,
    };
    let steps: Vec<Value> = frames
        .steps()
        .into_iter()
        .map(|step| match step {
            FrameStep::Crop(c) => json!({
                "step": "crop", "x": c.x, "y": c.y, "width": c.width, "height": c.height,
            }),
            FrameStep::Downsample {
                factor,
                dropped_rows,
                dropped_cols,
            } => json!({
                "step": "downsample",
                "factor": factor,
                "mean_of": "factor x factor blocks",
                "dropped_rows": dropped_rows,
                "dropped_cols": dropped_cols,
            }),
            FrameStep::Baseline {
                method,
                bins,
                error_bound,
                passes,
            } => json!({
                "step": "baseline",
                "method": method.name(),
                "subtract": "per pixel over all frames, clamped at 0",
                "bins": bins,
                "error_bound": f32_json(error_bound),
                "passes": passes,
            }),
        })
        .collect();
    json!({
        "frame_shape": shape(frames.input_shape()),
        "output_frame_shape": shape(frames.output_shape()),
        "output_pixels": frames.output_pixels(),
        "steps": steps,
    })
}

/// The steps recorded in a summary (`None` when it records none), to apply to new data.
pub fn read_steps(summary: &Value, path: &Path) -> Result<Option<FrameSteps>, CliError> {
    let Some(record) = summary.get(KEY).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let bad = |what: &str| at(path, format!("malformed summary: '{KEY}' {what}"));
    let uint = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_u64)
            .and_then(|x| usize::try_from(x).ok())
            .ok_or_else(|| bad(&format!("has a step without a whole number '{key}'")))
    };
    let mut steps = FrameSteps::new();
    match record.get("frame_shape") {
        Some(Value::Array(hw)) => match (
            hw.first().and_then(Value::as_u64),
            hw.get(1).and_then(Value::as_u64),
        ) {
            (Some(h), Some(w)) => {
                steps = steps.frame_shape(FrameShape::new(h as usize, w as usize))
            }
            _ => return Err(bad("has a 'frame_shape' that is not [height, width]")),
        },
        Some(Value::Null) | None => {}
        Some(_) => return Err(bad("has a 'frame_shape' that is not [height, width]")),
    }
    let list = record
        .get("steps")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("has no list 'steps'"))?;
    for step in list {
        match step.get("step").and_then(Value::as_str) {
            Some("crop") => {
                steps = steps.crop(Crop {
                    x: uint(step, "x")?,
                    y: uint(step, "y")?,
                    width: uint(step, "width")?,
                    height: uint(step, "height")?,
                })
            }
            Some("downsample") => steps = steps.downsample(uint(step, "factor")?),
            Some("baseline") => {
                let method: Baseline = step
                    .get("method")
                    .and_then(Value::as_str)
                    .and_then(|m| m.parse().ok())
                    .ok_or_else(|| bad("has a baseline step without a method (min or pQ)"))?;
                steps = steps.baseline(method);
                if let Some(bins) = step.get("bins").and_then(Value::as_u64) {
                    steps = steps.baseline_bins(bins as usize);
                }
            }
            _ => return Err(bad("has a step other than crop, downsample or baseline")),
        }
    }
    Ok(Some(steps))
}

/// The frame shape the file records, for a whole-matrix read: a TIFF stack's page size, an
/// image directory's image size; `None` for other inputs.
pub fn file_frame_shape(path: &Path) -> Result<Option<FrameShape>, CliError> {
    Ok(match FileFormat::from_path(path)? {
        FileFormat::Tiff => {
            let stack = nmf_gpu::io::tiff::TiffStack::open(path, &ReadOptions::new())?;
            Some(FrameShape::new(stack.height(), stack.width()))
        }
        FileFormat::ImageDir => {
            let dir = nmf_gpu::images::ImageDirSource::open(
                path,
                nmf_gpu::images::SizePolicy::Exact,
                nmf_gpu::images::Preprocess::None,
            )?;
            Some(FrameShape::new(dir.height(), dir.width()))
        }
        _ => None,
    })
}

/// One line for the user: the steps and the frame sizes.
pub fn describe(frames: &Frames) -> String {
    let steps: Vec<String> = frames
        .steps()
        .iter()
        .map(|s| match s {
            FrameStep::Crop(c) => format!("crop {c}"),
            FrameStep::Downsample { factor, .. } => format!("downsample {factor}"),
            FrameStep::Baseline {
                method,
                error_bound,
                ..
            } => format!("baseline {} (within {error_bound})", method.name()),
        })
        .collect();
    let sizes = match (frames.input_shape(), frames.output_shape()) {
        (Some(i), Some(o)) => format!("frames {i} -> {o}"),
        _ => format!("{} pixels per frame", frames.output_pixels()),
    };
    format!("frame preprocessing: {} ({sizes})", steps.join(", "))
}
