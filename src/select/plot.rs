//! Pictures of a rank sweep (feature `plots`): the curves of every measure against the rank,
//! one panel per measure with the rank its method chose (dashed, grey when the method was set
//! aside) and the recommended rank (red) marked, the cluster dominance with its threshold
//! ([`curves`]); the held-out error with its standard-error bars and the one-standard-error
//! bound ([`heldout`]); and the consensus matrix of one rank as a heat map with the samples in
//! the order of its clustering ([`consensus_heatmap`]).
//!
//! Drawn by `plotters` into an RGB buffer, written as PNG by `image`; the text uses DejaVu Sans compiled into the binary, so
//! nothing is read from the system's fonts.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use super::consensus::Consensus;
use super::decide::DOMINANCE_THRESHOLD;
use super::{ConsensusScore, Method, RankSelection};
use crate::error::{NmfError, Result};

/// Width and height of one panel of [`curves`], in pixels.
const PANEL: (u32, u32) = (420, 300);

/// The largest side of the heat map, in pixels (larger matrices are sampled).
const HEATMAP_SIDE: usize = 600;

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

fn draw_error(path: &Path) -> impl Fn(String) -> NmfError + '_ {
    move |e| NmfError::Io {
        path: path.to_path_buf(),
        action: "draw the picture",
        source: std::io::Error::other(e),
    }
}

/// The legend's mark of a series drawn in `style`: a short horizontal stroke.
fn swatch(style: impl Into<ShapeStyle>) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    let style = style.into();
    move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style)
}

/// Draw the legend of `chart` at `position`, on a translucent white box.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> std::result::Result<(), String> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .position(position)
        .draw()
        .map_err(|e| e.to_string())
}

/// The y range of a panel: the values' `[lo, hi]` (`lo` infinite: no finite value, taken as
/// `[0, 1]`) widened on each side by `pad = max(0.08·(hi − lo), 10⁻³·max(|hi|, 10⁻⁹))`.
fn padded((lo, hi): (f64, f64)) -> (f64, f64) {
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.08).max(1e-3 * hi.abs().max(1e-9));
    (lo - pad, hi + pad)
}

/// A figure of the consensus scores of a rank.
type ConsensusFigure = fn(&ConsensusScore) -> f64;

/// The consensus panels of [`curves`]: title, curve label and the figure drawn.
const CONSENSUS_PANELS: [(&str, &str, ConsensusFigure); 3] = [
    ("cophenetic correlation", "cophenetic", |s| s.cophenetic),
    ("dispersion", "dispersion", |s| s.dispersion),
    ("explained variance (best run)", "explained variance", |s| {
        s.explained_variance
    }),
];

/// A series of a panel: `(label, points, colour)`.
type Series = (&'static str, Vec<(f64, f64)>, RGBColor);

/// One panel: a title and its series.
struct Panel {
    title: &'static str,
    series: Vec<Series>,
    /// A horizontal reference line (NMFk's threshold, the dominance threshold).
    reference: Option<f64>,
    /// The method whose choice is marked on the panel.
    method: Option<Method>,
}

impl Panel {
    /// A panel of one curve, `label` through `points`, marked with the choice of `method`.
    fn curve(
        title: &'static str,
        label: &'static str,
        points: Vec<(f64, f64)>,
        method: Method,
    ) -> Panel {
        Panel {
            title,
            series: vec![(label, points, C1)],
            reference: None,
            method: Some(method),
        }
    }
}

const C1: RGBColor = RGBColor(31, 119, 180);
const C2: RGBColor = RGBColor(255, 127, 14);
const MARK: RGBColor = RGBColor(214, 39, 40);
const CHOICE: RGBColor = RGBColor(44, 160, 44);
const ASIDE: RGBColor = RGBColor(150, 150, 150);

/// Draw the curves of `sel` into the PNG file `path`: one panel per measure (cophenetic
/// correlation, dispersion, explained variance, silhouettes, held-out error, as run), with a
/// vertical line at the recommended rank.
pub fn curves(sel: &RankSelection, path: &Path) -> Result<()> {
    fonts();
    let err = draw_error(path);
    let mut panels = Vec::new();
    let pts = |f: &dyn Fn(usize) -> Option<(f64, f64)>| -> Vec<(f64, f64)> {
        (0..sel.ranks.len()).filter_map(f).collect()
    };
    if !sel.consensus.is_empty() {
        let c = &sel.consensus;
        for (title, label, value) in CONSENSUS_PANELS {
            let points = pts(&|k| c.get(k).map(|s| (s.rank as f64, value(s))));
            panels.push(Panel::curve(title, label, points, Method::Consensus));
        }
    }
    if !sel.nmfk.is_empty() {
        let s = &sel.nmfk;
        panels.push(Panel {
            title: "NMFk silhouette (min, mean)",
            series: vec![
                (
                    "min",
                    pts(&|k| s.get(k).map(|x| (x.rank as f64, x.min_silhouette))),
                    C1,
                ),
                (
                    "mean",
                    pts(&|k| s.get(k).map(|x| (x.rank as f64, x.mean_silhouette))),
                    C2,
                ),
            ],
            reference: Some(sel.silhouette_threshold),
            method: Some(Method::Nmfk),
        });
    }
    let held_out = [
        (
            &sel.cv,
            "held-out RMSE (cross-validation)",
            "held-out RMSE",
            Method::CrossValidation,
        ),
        (
            &sel.bicv,
            "held-out block RMSE (bi-cross-validation)",
            "held-out block RMSE",
            Method::BiCrossValidation,
        ),
    ];
    for (c, title, label, method) in held_out {
        if !c.is_empty() {
            let points = pts(&|k| c.get(k).map(|s| (s.rank as f64, s.heldout_rmse)));
            panels.push(Panel::curve(title, label, points, method));
        }
    }
    if !sel.dominance.is_empty() {
        panels.push(Panel {
            title: "cluster dominance of H",
            series: vec![(
                "dominance",
                sel.dominance.iter().map(|&(r, d)| (r as f64, d)).collect(),
                C1,
            )],
            reference: Some(DOMINANCE_THRESHOLD),
            method: None,
        });
    }
    let count = panels.len().max(1);
    let cols = count.min(3);
    let rows = count.div_ceil(cols);
    let size = (PANEL.0 * cols as u32, PANEL.1 * rows as u32 + 30);
    let mut buf = vec![255u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let d = &sel.decision;
        let title = format!(
            "rank r = {}..{}: recommended r = {} ({}){}",
            sel.ranks.first().copied().unwrap_or(0),
            sel.ranks.last().copied().unwrap_or(0),
            sel.recommended().rank,
            sel.recommended().method.name(),
            match (&d.disagreement, &d.ambiguous) {
                (_, Some(_)) => "; ambiguous",
                (Some(_), None) => "; the methods disagree",
                (None, None) => "",
            }
        );
        let root = root
            .titled(&title, ("sans-serif", 20))
            .map_err(|e| err(e.to_string()))?;
        let areas = root.split_evenly((rows, cols));
        let (lo, hi) = (
            sel.ranks.first().copied().unwrap_or(0) as f64 - 0.5,
            sel.ranks.last().copied().unwrap_or(0) as f64 + 0.5,
        );
        let chosen = sel.recommended().rank as f64;
        for (area, panel) in areas.iter().zip(&panels) {
            let values = panel
                .series
                .iter()
                .flat_map(|s| s.1.iter().map(|p| p.1))
                .chain(panel.reference)
                .filter(|y| y.is_finite());
            let (ymin, ymax) = padded(
                values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
                    (a.min(y), b.max(y))
                }),
            );
            let mut chart = ChartBuilder::on(area)
                .caption(panel.title, ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(60)
                .build_cartesian_2d(lo..hi, ymin..ymax)
                .map_err(|e| err(e.to_string()))?;
            chart
                .configure_mesh()
                .x_desc("rank r")
                .x_labels(sel.ranks.len().min(12))
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_labels(6)
                .y_label_formatter(&|y| format!("{y:.3}"))
                .light_line_style(WHITE)
                .draw()
                .map_err(|e| err(e.to_string()))?;
            // The method's own choice (dashed; grey when set aside), then the recommendation.
            if let Some(c) = panel
                .method
                .and_then(|m| sel.choices.iter().find(|c| c.method == m))
            {
                let aside = sel.decision.set_aside.iter().any(|s| s.0 == c.method);
                let colour = if aside { ASIDE } else { CHOICE };
                let x = c.rank as f64;
                let dashes = 12;
                chart
                    .draw_series((0..dashes).step_by(2).map(|i| {
                        let y = |t: usize| ymin + (ymax - ymin) * t as f64 / dashes as f64;
                        PathElement::new(vec![(x, y(i)), (x, y(i + 1))], colour.stroke_width(2))
                    }))
                    .map_err(|e| err(e.to_string()))?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!(
                            "{} r = {}{}",
                            c.method.name(),
                            c.rank,
                            if aside { " (set aside)" } else { "" }
                        ),
                        (x, ymax),
                        // Right of the line in the left half of the panel, left of it in
                        // the right half, so that the label stays inside.
                        ("sans-serif", 12).into_font().color(&colour).pos(Pos::new(
                            if x > (lo + hi) / 2.0 {
                                HPos::Right
                            } else {
                                HPos::Left
                            },
                            VPos::Top,
                        )),
                    )))
                    .map_err(|e| err(e.to_string()))?;
            }
            chart
                .draw_series(LineSeries::new(
                    vec![(chosen, ymin), (chosen, ymax)],
                    MARK.stroke_width(2),
                ))
                .map_err(|e| err(e.to_string()))?;
            if let Some(y) = panel.reference {
                chart
                    .draw_series(LineSeries::new(vec![(lo, y), (hi, y)], BLACK.mix(0.4)))
                    .map_err(|e| err(e.to_string()))?;
            }
            for (label, points, colour) in &panel.series {
                let colour = *colour;
                chart
                    .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                    .map_err(|e| err(e.to_string()))?
                    .label(*label)
                    .legend(swatch(colour.stroke_width(2)));
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                    .map_err(|e| err(e.to_string()))?;
            }
            if panel.series.len() > 1 {
                legend(&mut chart, SeriesLabelPosition::LowerLeft).map_err(&err)?;
            }
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    save_png(path, &buf, size)
}

/// Draw the held-out error into the PNG file `path` (bi-cross-validation's when it ran, else
/// cross-validation's: the one that arbitrates): the mean RMSE per rank with bars of one
/// standard error over the repeats, the one-standard-error bound (lowest mean plus its
/// standard error, dashed), the rank the method chose (green) and the recommended rank (red).
/// Nothing to draw (neither method run) is an error.
pub fn heldout(sel: &RankSelection, path: &Path) -> Result<()> {
    fonts();
    let err = draw_error(path);
    let (method, cv) = if sel.bicv.is_empty() {
        (Method::CrossValidation, &sel.cv)
    } else {
        (Method::BiCrossValidation, &sel.bicv)
    };
    if cv.is_empty() {
        return Err(err(
            "no held-out error was measured (neither cv nor bicv was run)".into(),
        ));
    }
    let size = (640u32, 420u32);
    let mut buf = vec![255u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let lo = cv.first().map_or(0.0, |s| s.rank as f64) - 0.5;
        let hi = cv.last().map_or(0.0, |s| s.rank as f64) + 0.5;
        let (ymin, ymax) = padded(cv.iter().filter(|s| s.heldout_rmse.is_finite()).fold(
            (f64::INFINITY, f64::NEG_INFINITY),
            |(a, b), s| {
                (
                    a.min(s.heldout_rmse - s.heldout_rmse_se),
                    b.max(s.heldout_rmse + s.heldout_rmse_se),
                )
            },
        ));
        let best = cv
            .iter()
            .filter(|s| s.heldout_rmse.is_finite())
            .min_by(|a, b| a.heldout_rmse.total_cmp(&b.heldout_rmse));
        let cv_rank = sel
            .choices
            .iter()
            .find(|c| c.method == method)
            .map(|c| c.rank);
        let title = format!(
            "{} held-out RMSE ± one standard error: {} r = {}, recommended r = {}",
            method.name(),
            method.name(),
            cv_rank.map_or("-".to_string(), |r| r.to_string()),
            sel.recommended().rank
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(lo..hi, ymin..ymax)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("rank r")
            .y_desc("held-out RMSE")
            .x_labels(cv.len().min(16))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_labels(8)
            .y_label_formatter(&|y| format!("{y:.4}"))
            .light_line_style(WHITE)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        if let Some(b) = best {
            let bound = b.heldout_rmse
                + b.heldout_rmse_se
                    .max(super::decide::CV_SE_FLOOR * b.heldout_rmse);
            let dashes = 40;
            chart
                .draw_series((0..dashes).step_by(2).map(|i| {
                    let x = |t: usize| lo + (hi - lo) * t as f64 / dashes as f64;
                    PathElement::new(vec![(x(i), bound), (x(i + 1), bound)], BLACK.mix(0.5))
                }))
                .map_err(|e| err(e.to_string()))?
                .label("lowest + one standard error")
                .legend(swatch(BLACK.mix(0.5)));
        }
        if let Some(r) = cv_rank {
            let x = r as f64;
            chart
                .draw_series(LineSeries::new(
                    vec![(x, ymin), (x, ymax)],
                    CHOICE.stroke_width(2),
                ))
                .map_err(|e| err(e.to_string()))?
                .label(format!("{}'s choice", method.name()))
                .legend(swatch(CHOICE.stroke_width(2)));
        }
        let chosen = sel.recommended().rank as f64;
        chart
            .draw_series(LineSeries::new(
                vec![(chosen, ymin), (chosen, ymax)],
                MARK.stroke_width(2),
            ))
            .map_err(|e| err(e.to_string()))?
            .label("recommended")
            .legend(swatch(MARK.stroke_width(2)));
        // Each bar: the vertical stroke from mean − se to mean + se, its two caps, the mean.
        let cap = 0.15;
        chart
            .draw_series(cv.iter().flat_map(|s| {
                let (x, lo, hi) = (
                    s.rank as f64,
                    s.heldout_rmse - s.heldout_rmse_se,
                    s.heldout_rmse + s.heldout_rmse_se,
                );
                [
                    vec![(x, lo), (x, hi)],
                    vec![(x - cap, lo), (x + cap, lo)],
                    vec![(x - cap, hi), (x + cap, hi)],
                ]
                .map(|p| PathElement::new(p, C1.stroke_width(2)))
            }))
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(
                cv.iter()
                    .map(|s| Circle::new((s.rank as f64, s.heldout_rmse), 3, C1.filled())),
            )
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(LineSeries::new(
                cv.iter().map(|s| (s.rank as f64, s.heldout_rmse)),
                C1.stroke_width(1),
            ))
            .map_err(|e| err(e.to_string()))?
            .label("mean over the repeats")
            .legend(swatch(C1.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::UpperRight).map_err(&err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    save_png(path, &buf, size)
}

/// Blue (0) through white (½) to red (1).
fn heat(x: f32) -> RGBColor {
    let x = x.clamp(0.0, 1.0);
    let lerp = |a: u8, b: u8, t: f32| (a as f32 + (b as f32 - a as f32) * t).round() as u8;
    let (lo, mid, hi) = ((33, 102, 172), (247, 247, 247), (178, 24, 43));
    let (from, to, t): ((u8, u8, u8), (u8, u8, u8), f32) = if x < 0.5 {
        (lo, mid, x * 2.0)
    } else {
        (mid, hi, (x - 0.5) * 2.0)
    };
    RGBColor(
        lerp(from.0, to.0, t),
        lerp(from.1, to.1, t),
        lerp(from.2, to.2, t),
    )
}

/// Draw the consensus matrix of rank `rank` into the PNG file `path` as a heat map (blue 0,
/// red 1), rows and columns in the order of its average-linkage clustering, so that stable
/// clusters show as red blocks on the diagonal. Matrices of more than 600 samples are
/// sampled to 600 x 600 pixels.
pub fn consensus_heatmap(c: &Consensus, rank: usize, path: &Path) -> Result<()> {
    fonts();
    let err = draw_error(path);
    let n = c.matrix.nrows();
    let order = c.order();
    let (side, cell) = if n == 0 {
        (1, 1)
    } else if n >= HEATMAP_SIDE {
        (HEATMAP_SIDE, 1)
    } else {
        let cell = (HEATMAP_SIDE / n).max(1);
        (cell * n, cell)
    };
    let margin = 10u32;
    let size = (side as u32 + 2 * margin, side as u32 + 2 * margin + 30);
    let mut buf = vec![255u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let title = format!(
            "consensus matrix, r = {rank}: cophenetic {:.4}, dispersion {:.4}",
            c.cophenetic, c.dispersion
        );
        let root = root
            .titled(&title, ("sans-serif", 16))
            .map_err(|e| err(e.to_string()))?;
        if n > 0 {
            let pixels = side / cell;
            for py in 0..pixels {
                let i = order[(py * n) / pixels];
                for px in 0..pixels {
                    let j = order[(px * n) / pixels];
                    let colour = heat(c.matrix[[i, j]]);
                    let (x0, y0) = (
                        margin as i32 + (px * cell) as i32,
                        margin as i32 + (py * cell) as i32,
                    );
                    if cell == 1 {
                        root.draw_pixel((x0, y0), &colour)
                            .map_err(|e| err(e.to_string()))?;
                    } else {
                        root.draw(&Rectangle::new(
                            [(x0, y0), (x0 + cell as i32, y0 + cell as i32)],
                            colour.filled(),
                        ))
                        .map_err(|e| err(e.to_string()))?;
                    }
                }
            }
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    save_png(path, &buf, size)
}

/// Encode an RGB buffer as a PNG file.
fn save_png(path: &Path, buf: &[u8], (w, h): (u32, u32)) -> Result<()> {
    image::save_buffer_with_format(
        path,
        buf,
        w,
        h,
        image::ColorType::Rgb8,
        image::ImageFormat::Png,
    )
    .map_err(|e| draw_error(path)(e.to_string()))
}
