//! Swimmer (Donoho & Stodden 2003): the generator against the data file, and NMF finding the
//! 16 limb positions as parts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nmf_gpu::images::{self, ImageSet, SWIMMER_LIMBS};
use nmf_gpu::ndarray::{Array1, ArrayView1, ArrayView2, Axis};
use nmf_gpu::{Backend, Init, Nmf, Solver};

/// The data file, when the shared data folder is next to the project.
fn swimmer_file() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/swimmer/swimmer_u8.bin");
    if path.is_file() {
        Some(path)
    } else {
        println!(
            "skipped the Swimmer file: {} is absent (it lives in the shared data folder)",
            path.display()
        );
        None
    }
}

/// The data file when present, else the generator (the two are identical, see below).
fn swimmer_data() -> ImageSet {
    match swimmer_file() {
        Some(path) => images::read_swimmer(&path).expect("the Swimmer file reads"),
        None => images::swimmer(),
    }
}

#[test]
fn generator_reproduces_the_data_file() {
    let Some(path) = swimmer_file() else { return };
    let file = images::read_swimmer(&path).unwrap();
    let made = images::swimmer();
    assert_eq!((file.width(), file.height(), file.len()), (32, 32, 256));
    assert_eq!(file.matrix(), made.matrix());
}

#[test]
fn generated_images_have_a_torso_and_four_limbs() {
    let set = images::swimmer();
    let v = set.matrix();
    assert_eq!(v.dim(), (1024, 256));
    for (i, column) in v.axis_iter(Axis(1)).enumerate() {
        assert_eq!(column.sum(), 37.0, "image {i}");
        assert!(column.iter().all(|&x| x == 0.0 || x == 1.0));
    }
    // All 256 images differ, and every limb position is 5 pixels off the torso.
    let mut seen = std::collections::HashSet::new();
    for column in v.axis_iter(Axis(1)) {
        let on: Vec<usize> = (0..1024).filter(|&p| column[p] > 0.0).collect();
        assert!(seen.insert(on));
    }
    let torso = images::swimmer_torso();
    assert_eq!(torso.len(), 17);
    for limb in SWIMMER_LIMBS {
        for position in 0..4 {
            let pixels = limb.pixels(position);
            assert_eq!(pixels.len(), 5);
            assert!(pixels.iter().all(|p| !torso.contains(p)));
        }
    }
    // Image 64a + 16b + 4c + d has the limbs in positions a, b, c, d.
    let positions = [3, 2, 1, 0];
    let i = 64 * positions[0] + 16 * positions[1] + 4 * positions[2] + positions[3];
    for (limb, position) in SWIMMER_LIMBS.into_iter().zip(positions) {
        for p in limb.pixels(position) {
            assert_eq!(v[[p, i]], 1.0, "{limb:?} in position {position}");
        }
    }
}

#[test]
fn read_swimmer_rejects_a_file_of_the_wrong_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.bin");
    std::fs::write(&path, vec![0u8; 1000]).unwrap();
    let err = images::read_swimmer(&path).unwrap_err();
    assert!(matches!(err, nmf_gpu::NmfError::Format { .. }), "{err}");
    assert!(err.to_string().contains("262144"), "{err}");
}

/// The limb templates, read off the data alone: pixels that are on in exactly the same set of
/// images form one group; the groups on in exactly a quarter of the images (64 of 256) are
/// the limb positions (each limb is in one of its four positions in a quarter of the images),
/// and pixels on in every image form the torso. Returns (torso mask, templates as 0/1 masks).
fn templates_from_data(v: ArrayView2<'_, f32>) -> (Array1<f32>, Vec<Array1<f32>>) {
    let (m, n) = v.dim();
    let mut groups: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
    let mut torso = Array1::zeros(m);
    for p in 0..m {
        let on: Vec<usize> = (0..n).filter(|&i| v[[p, i]] > 0.0).collect();
        if on.len() == n {
            torso[p] = 1.0;
        } else if on.len() == n / 4 {
            groups.entry(on).or_default().push(p);
        }
    }
    let templates = groups
        .into_values()
        .map(|pixels| {
            let mut t = Array1::zeros(m);
            for p in pixels {
                t[p] = 1.0;
            }
            t
        })
        .collect();
    (torso, templates)
}

fn cosine(a: ArrayView1<'_, f32>, b: ArrayView1<'_, f32>) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let na: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// Matching rule: a limb position is found when some basis image, with the torso pixels
/// (on in every image, so shared by every part) set to zero, has cosine similarity above 0.9
/// with that position's template. Returns the best cosine of each template.
fn best_matches(
    w: ArrayView2<'_, f32>,
    torso: &Array1<f32>,
    templates: &[Array1<f32>],
) -> Vec<f64> {
    let limbs_only: Vec<Array1<f32>> = w
        .axis_iter(Axis(1))
        .map(|basis| &basis * &torso.mapv(|t| 1.0 - t))
        .collect();
    templates
        .iter()
        .map(|t| {
            limbs_only
                .iter()
                .map(|b| cosine(b.view(), t.view()))
                .fold(0.0, f64::max)
        })
        .collect()
}

fn assert_parts_found(rank: usize, solver: Solver, init: Init) {
    let set = swimmer_data();
    let v = set.matrix();
    let (torso, templates) = templates_from_data(v);
    assert_eq!(templates.len(), 16, "16 limb positions in the data");
    assert!(templates.iter().all(|t| t.sum() == 5.0));
    assert_eq!(torso.sum(), 17.0);

    let fit = Nmf::params(rank)
        .solver(solver)
        .init(init)
        .max_iter(2000)
        .tol(1e-7)
        .backend(Backend::Cpu)
        .fit(v)
        .unwrap();
    let best = best_matches(fit.w(), &torso, &templates);
    println!(
        "rank {rank}, {}: relative error {:.3e} after {} iterations; best cosines {:?}",
        solver.name(),
        fit.relative_error(v).unwrap(),
        fit.n_iter(),
        best.iter()
            .map(|c| (c * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>()
    );
    for (k, &c) in best.iter().enumerate() {
        assert!(
            c > 0.9,
            "limb position {k} is matched by no basis image (best cosine {c:.3})"
        );
    }
}

/// HALS from NNDSVDa recovers the data exactly: 16 limb positions and the torso.
#[test]
fn hals_rank_17_finds_every_limb_position() {
    assert_parts_found(17, Solver::Hals, Init::Nndsvda);
}

/// Multiplicative updates need a random start here: from NNDSVDa they settle in a local
/// minimum (relative error 0.14) in which one limb position has no basis image of its own.
#[test]
fn mu_rank_17_from_random_finds_every_limb_position() {
    assert_parts_found(17, Solver::MultiplicativeUpdate, Init::Random);
}
