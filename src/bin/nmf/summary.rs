//! summary.json: what a fit did (written by `fit`) and the settings `transform` needs (read back).

use std::path::{Path, PathBuf};

use nmf_gpu::frames::FrameSteps;
use nmf_gpu::{Loss, Solver};
use serde_json::{json, Value};

use crate::error::{at, CliError};
use crate::Orientation;

/// Name of the summary file in an output directory.
pub const SUMMARY_FILE: &str = "summary.json";
/// Name of the W file in an output directory.
pub const W_FILE: &str = "W.npy";
/// Name of the H file in an output directory.
pub const H_FILE: &str = "H.npy";

/// An f32 as the JSON number it prints as (`1e-4`, not `9.999999747378752e-5`).
pub fn f32_json(x: f32) -> Value {
    x.to_string()
        .parse::<f64>()
        .ok()
        .map(Value::from)
        .unwrap_or(Value::Null)
}

/// The settings of a fitted model that `transform` reuses.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    pub rank: usize,
    pub solver: Solver,
    pub loss: Loss,
    pub max_iter: usize,
    pub tol: f32,
    pub alpha_h: f32,
    pub l1_ratio: f32,
    pub orientation: Orientation,
    /// The frame preprocessing of the fit, to apply to new data.
    pub frames: Option<FrameSteps>,
}

/// The summary.json of a model directory, read back.
pub struct SavedSummary {
    pub path: PathBuf,
    pub value: Value,
}

impl SavedSummary {
    /// Read and parse `dir/summary.json`; its errors start with `context` (the command's
    /// failure, or nothing) and a missing file's ends with `hint` (what the directory must be).
    pub fn read(dir: &Path, context: &str, hint: &str) -> Result<SavedSummary, CliError> {
        let path = dir.join(SUMMARY_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            at(
                &path,
                format!("{context}could not read the model's summary: {e} ({hint})"),
            )
        })?;
        let value = serde_json::from_str(&text)
            .map_err(|e| at(&path, format!("{context}not valid JSON: {e}")))?;
        Ok(SavedSummary { path, value })
    }

    /// The error `message` about this file.
    pub fn error(&self, message: String) -> CliError {
        at(&self.path, message)
    }

    /// The string at `key`, if it is one.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.value.get(key).and_then(Value::as_str)
    }

    /// The nonnegative integer at `key`, if it is one.
    pub fn u64(&self, key: &str) -> Option<u64> {
        self.value.get(key).and_then(Value::as_u64)
    }

    /// The number at `key`, if it is one.
    pub fn f64(&self, key: &str) -> Option<f64> {
        self.value.get(key).and_then(Value::as_f64)
    }

    /// The boolean at `key`, if it is one.
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.value.get(key).and_then(Value::as_bool)
    }
}

/// Read the settings from `dir/summary.json`.
pub fn read_settings(dir: &Path) -> Result<ModelSettings, CliError> {
    let saved = SavedSummary::read(
        dir,
        "",
        "is the --model directory one written by `nmf fit`?",
    )?;
    let bad = |key: &str, what: &str| {
        saved.error(format!(
            "malformed summary: '{key}' is missing or not {what}"
        ))
    };
    let str_of = |key: &str| saved.str(key).ok_or_else(|| bad(key, "a string"));
    let num_of = |key: &str| saved.f64(key).ok_or_else(|| bad(key, "a number"));
    let uint_of = |key: &str| {
        let n = saved.u64(key).and_then(|v| usize::try_from(v).ok());
        n.ok_or_else(|| bad(key, "a nonnegative integer"))
    };
    let solver = Solver::from_name(str_of("solver")?)
        .ok_or_else(|| bad("solver", "\"mu\", \"hals\" or \"ahals\""))?;
    let loss = Loss::from_name(str_of("loss")?)
        .ok_or_else(|| bad("loss", "\"frobenius\", \"kl\", \"is\" or \"beta=<β>\""))?;
    let orientation = match saved.bool("samples_as_rows") {
        Some(true) => Orientation::SamplesAsRows,
        Some(false) => Orientation::SamplesAsColumns,
        None => return Err(bad("samples_as_rows", "true or false")),
    };
    Ok(ModelSettings {
        rank: uint_of("rank")?,
        solver,
        loss,
        max_iter: uint_of("max_iter")?,
        tol: num_of("tol")? as f32,
        alpha_h: num_of("alpha_h")? as f32,
        l1_ratio: num_of("l1_ratio")? as f32,
        orientation,
        frames: crate::frames::read_steps(&saved.value, &saved.path)?,
    })
}

/// `[rows, cols]`.
pub fn shape_json((rows, cols): (usize, usize)) -> Value {
    json!([rows, cols])
}
