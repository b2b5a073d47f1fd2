//! Synthetic faces made of parts, so that the faces example runs without any data.
//!
//! Each image (32 wide, 40 high) is a sum of six parts, drawn as light strokes and patches on
//! black like a chalk drawing, so that every part adds light and the images are exactly the
//! kind of data NMF decomposes into parts:
//!
//! | part | variants |
//! |---|---|
//! | outline | oval, round, long |
//! | hair | cap, bun, long at the sides; a quarter of the faces have none |
//! | brows | flat, arched, slanted |
//! | eyes | dots, slits, rings with pupils |
//! | nose | line, wide, button |
//! | mouth | smile, flat, open |
//!
//! For each face and part a variant is drawn uniformly, shifted by a uniform jitter of at most
//! 0.75 pixels in each direction and weighted by a uniform brightness in
//! `[0.6, 1]`; the parts are summed, clipped to `[0, 1]` and scaled to grey levels `0..=255`.
//! Edges are anti-aliased (coverage of 4x4 samples per pixel). The images are synthetic: they
//! test that a method finds parts where parts exist, not what it does on photographs.

use std::path::PathBuf;

use ndarray::{Array1, Array2, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::io::image_set::ImageSet;

/// Largest shift of a part from its place, in pixels, in x and in y.
const JITTER: f32 = 0.75;

const WIDTH: usize = 32;
const HEIGHT: usize = 40;
/// Samples per pixel side for anti-aliasing.
const SUPERSAMPLE: usize = 4;
/// Probability that a face has no hair.
const BALD: f64 = 0.25;

/// A part of a synthetic face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FacePart {
    /// The contour of the face.
    Outline,
    /// The hair (absent from some faces).
    Hair,
    /// Both eyebrows.
    Brows,
    /// Both eyes.
    Eyes,
    /// The nose.
    Nose,
    /// The mouth.
    Mouth,
}

impl FacePart {
    /// Every part, in drawing order.
    pub const ALL: [FacePart; 6] = [
        FacePart::Outline,
        FacePart::Hair,
        FacePart::Brows,
        FacePart::Eyes,
        FacePart::Nose,
        FacePart::Mouth,
    ];

    /// Number of variants of each part.
    pub const VARIANTS: usize = 3;

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            FacePart::Outline => "outline",
            FacePart::Hair => "hair",
            FacePart::Brows => "brows",
            FacePart::Eyes => "eyes",
            FacePart::Nose => "nose",
            FacePart::Mouth => "mouth",
        }
    }

    /// The part's variant `variant` (taken modulo [`VARIANTS`](Self::VARIANTS)) in its place,
    /// without jitter, at full brightness: values in `[0, 1]`, one per pixel, row by row
    /// (`32·40` entries).
    pub fn template(self, variant: usize) -> Array1<f32> {
        let mut canvas = Array1::zeros(WIDTH * HEIGHT);
        draw(
            &mut canvas,
            &shapes(self, variant % Self::VARIANTS),
            (0.0, 0.0),
            1.0,
        );
        canvas
    }
}

/// Synthetic faces and the variant of each part in each face.
#[derive(Debug, Clone)]
pub struct SyntheticFaces {
    /// The images: `32·40` pixels x `n`, grey levels in `[0, 255]`.
    pub images: ImageSet,
    /// For each face, the variant of each part of [`FacePart::ALL`] (`None`: the part is absent).
    pub variants: Vec<[Option<usize>; 6]>,
}

/// `n` synthetic faces of 32x40 pixels (see the module documentation), reproducible from `seed`.
pub fn synthetic_faces(n: usize, seed: u64) -> SyntheticFaces {
    let mut v = Array2::<f32>::zeros((WIDTH * HEIGHT, n));
    let variants: Vec<[Option<usize>; 6]> = v
        .axis_iter_mut(Axis(1))
        .into_par_iter()
        .enumerate()
        .map(|(i, mut column)| {
            // One generator per face, so the result does not depend on the thread count.
            let mut rng =
                StdRng::seed_from_u64(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut canvas = Array1::<f32>::zeros(WIDTH * HEIGHT);
            let mut chosen = [None; 6];
            for (slot, part) in chosen.iter_mut().zip(FacePart::ALL) {
                if part == FacePart::Hair && rng.random_bool(BALD) {
                    continue;
                }
                let variant = rng.random_range(0..FacePart::VARIANTS);
                let shift = (
                    rng.random_range(-JITTER..=JITTER),
                    rng.random_range(-JITTER..=JITTER),
                );
                let brightness = rng.random_range(0.6..=1.0);
                draw(&mut canvas, &shapes(part, variant), shift, brightness);
                *slot = Some(variant);
            }
            for (dst, &x) in column.iter_mut().zip(canvas.iter()) {
                *dst = 255.0 * x.min(1.0);
            }
            chosen
        })
        .collect();
    let names = (0..n)
        .map(|i| PathBuf::from(format!("synthetic/{i:04}")))
        .collect();
    SyntheticFaces {
        images: ImageSet::from_parts(v, WIDTH, HEIGHT, names),
        variants,
    }
}

/// A filled or outlined primitive, in pixel coordinates (x right, y down; the centre of pixel
/// `(i, j)` is `(i + 0.5, j + 0.5)`).
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Filled ellipse `((x−cx)/rx)² + ((y−cy)/ry)² ≤ 1`, restricted to `y ∈ [y_min, y_max]`.
    Disc {
        c: (f32, f32),
        r: (f32, f32),
        y_min: f32,
        y_max: f32,
    },
    /// Elliptic ring of width `w` around the ellipse of radii `r`, restricted to
    /// `y ∈ [y_min, y_max]` (an arc when restricted).
    Ring {
        c: (f32, f32),
        r: (f32, f32),
        w: f32,
        y_min: f32,
        y_max: f32,
    },
    /// Segment from `a` to `b`, `w` wide, with round ends.
    Stroke {
        a: (f32, f32),
        b: (f32, f32),
        w: f32,
    },
}

const ALL_Y: (f32, f32) = (f32::NEG_INFINITY, f32::INFINITY);

fn disc(c: (f32, f32), r: (f32, f32)) -> Shape {
    Shape::Disc {
        c,
        r,
        y_min: ALL_Y.0,
        y_max: ALL_Y.1,
    }
}

fn ring(c: (f32, f32), r: (f32, f32), w: f32) -> Shape {
    Shape::Ring {
        c,
        r,
        w,
        y_min: ALL_Y.0,
        y_max: ALL_Y.1,
    }
}

fn stroke(a: (f32, f32), b: (f32, f32), w: f32) -> Shape {
    Shape::Stroke { a, b, w }
}

impl Shape {
    fn contains(&self, x: f32, y: f32) -> bool {
        match *self {
            Shape::Disc { c, r, y_min, y_max } => {
                let (u, v) = ((x - c.0) / r.0, (y - c.1) / r.1);
                y >= y_min && y <= y_max && u * u + v * v <= 1.0
            }
            Shape::Ring {
                c,
                r,
                w,
                y_min,
                y_max,
            } => {
                let (u, v) = ((x - c.0) / r.0, (y - c.1) / r.1);
                // Distance to the ellipse, approximated by the radial offset times the radius
                // along that direction.
                let rho = (u * u + v * v).sqrt();
                let radius = if rho > 0.0 {
                    let (dx, dy) = (u / rho * r.0, v / rho * r.1);
                    (dx * dx + dy * dy).sqrt()
                } else {
                    r.0.min(r.1)
                };
                y >= y_min && y <= y_max && ((rho - 1.0) * radius).abs() <= w / 2.0
            }
            Shape::Stroke { a, b, w } => {
                let (dx, dy) = (b.0 - a.0, b.1 - a.1);
                let len_sq = dx * dx + dy * dy;
                let t = if len_sq > 0.0 {
                    (((x - a.0) * dx + (y - a.1) * dy) / len_sq).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (px, py) = (a.0 + t * dx - x, a.1 + t * dy - y);
                px * px + py * py <= w * w / 4.0
            }
        }
    }
}

/// Add `brightness` times the anti-aliased coverage of the union of `shapes`, moved by `shift`,
/// to `canvas` (row-major `WIDTH x HEIGHT`).
fn draw(canvas: &mut Array1<f32>, shapes: &[Shape], shift: (f32, f32), brightness: f32) {
    let step = 1.0 / SUPERSAMPLE as f32;
    let per_pixel = (SUPERSAMPLE * SUPERSAMPLE) as f32;
    for (p, value) in canvas.iter_mut().enumerate() {
        let (px, py) = ((p % WIDTH) as f32, (p / WIDTH) as f32);
        let mut hits = 0u32;
        for sy in 0..SUPERSAMPLE {
            for sx in 0..SUPERSAMPLE {
                let x = px + (sx as f32 + 0.5) * step - shift.0;
                let y = py + (sy as f32 + 0.5) * step - shift.1;
                if shapes.iter().any(|s| s.contains(x, y)) {
                    hits += 1;
                }
            }
        }
        *value += brightness * hits as f32 / per_pixel;
    }
}

/// The primitives of one variant of one part.
fn shapes(part: FacePart, variant: usize) -> Vec<Shape> {
    match (part, variant) {
        (FacePart::Outline, 0) => vec![ring((16.0, 22.0), (10.0, 13.5), 1.3)],
        (FacePart::Outline, 1) => vec![ring((16.0, 23.0), (12.0, 12.5), 1.3)],
        (FacePart::Outline, _) => vec![ring((16.0, 22.0), (8.5, 15.0), 1.3)],

        (FacePart::Hair, 0) => vec![Shape::Disc {
            c: (16.0, 17.0),
            r: (11.5, 10.0),
            y_min: ALL_Y.0,
            y_max: 12.0,
        }],
        (FacePart::Hair, 1) => vec![
            disc((16.0, 4.5), (4.0, 3.0)),
            Shape::Ring {
                c: (16.0, 17.0),
                r: (10.5, 9.5),
                w: 2.0,
                y_min: ALL_Y.0,
                y_max: 14.0,
            },
        ],
        (FacePart::Hair, _) => vec![
            Shape::Ring {
                c: (16.0, 17.0),
                r: (12.0, 10.0),
                w: 2.0,
                y_min: ALL_Y.0,
                y_max: 17.0,
            },
            stroke((4.5, 16.0), (3.5, 33.0), 2.5),
            stroke((27.5, 16.0), (28.5, 33.0), 2.5),
        ],

        (FacePart::Brows, 0) => vec![
            stroke((9.0, 15.0), (13.5, 15.0), 1.4),
            stroke((18.5, 15.0), (23.0, 15.0), 1.4),
        ],
        (FacePart::Brows, 1) => vec![
            stroke((8.5, 16.0), (11.0, 14.0), 1.3),
            stroke((11.0, 14.0), (13.8, 15.0), 1.3),
            stroke((18.2, 15.0), (21.0, 14.0), 1.3),
            stroke((21.0, 14.0), (23.5, 16.0), 1.3),
        ],
        (FacePart::Brows, _) => vec![
            stroke((9.0, 14.0), (13.8, 16.5), 1.4),
            stroke((18.2, 16.5), (23.0, 14.0), 1.4),
        ],

        (FacePart::Eyes, 0) => vec![
            disc((11.5, 19.0), (1.8, 1.8)),
            disc((20.5, 19.0), (1.8, 1.8)),
        ],
        (FacePart::Eyes, 1) => vec![
            disc((11.2, 19.0), (2.8, 0.9)),
            disc((20.8, 19.0), (2.8, 0.9)),
        ],
        (FacePart::Eyes, _) => vec![
            ring((11.5, 19.0), (2.4, 2.0), 0.9),
            disc((11.5, 19.0), (0.7, 0.7)),
            ring((20.5, 19.0), (2.4, 2.0), 0.9),
            disc((20.5, 19.0), (0.7, 0.7)),
        ],

        (FacePart::Nose, 0) => vec![stroke((16.0, 20.0), (16.0, 26.5), 1.2)],
        (FacePart::Nose, 1) => vec![
            stroke((16.0, 20.5), (13.5, 26.5), 1.1),
            stroke((13.5, 26.5), (18.5, 26.5), 1.1),
        ],
        (FacePart::Nose, _) => vec![disc((16.0, 25.5), (1.8, 1.5))],

        (FacePart::Mouth, 0) => vec![Shape::Ring {
            c: (16.0, 28.5),
            r: (5.0, 3.0),
            w: 1.3,
            y_min: 28.5,
            y_max: ALL_Y.1,
        }],
        (FacePart::Mouth, 1) => vec![stroke((12.0, 31.0), (20.0, 31.0), 1.4)],
        (FacePart::Mouth, _) => vec![ring((16.0, 31.0), (3.0, 2.0), 1.1)],
    }
}
