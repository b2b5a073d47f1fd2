//! The results: rows, the aligned table and the JSON records.

use nmf_gpu::{Loss, Solver};
use serde_json::{json, Value};

use crate::args::Device;
use crate::cases::Shape;
use crate::measure::Timing;

/// How a row ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done(Timing),
    Unavailable(String),
    Failed(String),
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub shape: Shape,
    pub device: Device,
    pub solver: Solver,
    pub loss: Loss,
    pub iterations: usize,
    pub adapter: String,
    pub outcome: Outcome,
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
pub fn comparison(rows: &[Row], row: &Row) -> Option<(f64, f64)> {
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
pub fn fmt_ms(x: f64) -> String {
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
pub fn render_table(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows.iter().map(|r| table_cells(rows, r)).collect();
    let mut widths: Vec<usize> = HEADERS.iter().map(|h| h.chars().count()).collect();
    for line in &cells {
        // A row that did not run sizes only the text columns; its reason runs free.
        let sized = if line.len() == HEADERS.len() {
            line.len()
        } else {
            TEXT_COLUMNS
        };
        for (w, c) in widths.iter_mut().zip(line.iter().take(sized)) {
            *w = (*w).max(c.chars().count());
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

/// One JSON object per measured row (rows that did not run are left out); non-finite numbers
/// are `null`.
pub fn render_json(rows: &[Row], threads: usize, repeats: usize, peak_scope: &str) -> String {
    let records: Vec<Value> = rows
        .iter()
        .filter_map(|row| {
            let Outcome::Done(t) = &row.outcome else {
                return None;
            };
            let mut record = json!({
                "case": row.shape.name(),
                "m": row.shape.m,
                "n": row.shape.n,
                "r": row.shape.r,
                "backend": row.device.name(),
                "solver": row.solver.name(),
                "loss": row.loss.name(),
                "iterations": row.iterations,
                "repeats": repeats,
                "ms_per_iter": t.ms_median,
                "ms_min": t.ms_min,
                "ms_max": t.ms_max,
                "gflops": t.gflops,
                "rel_error": t.rel_error,
                "adapter": row.adapter,
                "engine": t.engine,
                "threads": threads,
                "peak_rss_mib": t.peak_rss_mib,
                "peak_rss_scope": peak_scope,
            });
            if let (Some(g), Some(map)) = (t.gpu, record.as_object_mut()) {
                map.insert(
                    "gpu_per_iter".into(),
                    json!({
                        "dispatches": g.dispatches,
                        "submissions": g.submissions,
                        "read_backs": g.read_backs,
                        "bytes_read_back": g.bytes_read_back,
                    }),
                );
            }
            if let (Some((ratio, gap)), Some(map)) = (comparison(rows, row), record.as_object_mut())
            {
                map.insert("gpu_cpu_speed_ratio".into(), json!(ratio));
                map.insert("gpu_cpu_error_gap".into(), json!(gap));
            }
            Some(record)
        })
        .collect();
    let mut text =
        serde_json::to_string_pretty(&Value::Array(records)).unwrap_or_else(|_| "[]".to_string());
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

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
            gpu: None,
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
        let json: Value = serde_json::from_str(&render_json(&rows, 2, 3, "measurement")).unwrap();
        let records = json.as_array().unwrap();
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|r| r["case"] == "4x5r2"));
        assert_eq!(records[0]["adapter"], "a \"b\"");
        assert_eq!(records[1]["gpu_cpu_speed_ratio"], 4.0);
        assert!(records[0].get("gpu_cpu_speed_ratio").is_none());
        let mut nan = rows[0].clone();
        nan.outcome = Outcome::Done(timing(f64::NAN, 0.5));
        let json: Value = serde_json::from_str(&render_json(&[nan], 2, 3, "process")).unwrap();
        assert!(json[0]["ms_per_iter"].is_null());
    }
}
