//! Image datasets: the directory loader (real ORL faces and files written here), preprocessing,
//! montages, Hoyer sparseness, PCA and the synthetic faces.

use std::path::{Path, PathBuf};

use image::{GrayImage, Luma, Rgb, RgbImage};
use nmf_gpu::images::{self, FacePart, MontageLayout, Preprocess, SizePolicy, TileScale};
use nmf_gpu::ndarray::{array, Array1, Array2, ArrayView1, Axis};
use nmf_gpu::{Backend, Nmf, NmfError, Solver};

// ---------------------------------------------------------------------------------------------
// Files written by the tests

/// A `w x h` test pattern: pixel (x, y) = (7·x + 13·y + seed) mod 256.
fn pattern(w: u32, h: u32, seed: u32) -> Vec<u8> {
    (0..h)
        .flat_map(|y| (0..w).map(move |x| ((7 * x + 13 * y + seed) % 256) as u8))
        .collect()
}

/// Plain PGM (P2): ASCII levels, with a comment and irregular line breaks.
fn write_p2(path: &Path, w: u32, h: u32, levels: &[u8]) {
    let mut text = format!("P2\n# written by the test\n{w} {h}\n255\n");
    for (i, level) in levels.iter().enumerate() {
        text.push_str(&level.to_string());
        text.push(if i % 5 == 4 { '\n' } else { ' ' });
    }
    std::fs::write(path, text).unwrap();
}

/// Binary PGM (P5).
fn write_p5(path: &Path, w: u32, h: u32, levels: &[u8]) {
    let mut bytes = format!("P5\n{w} {h}\n255\n").into_bytes();
    bytes.extend_from_slice(levels);
    std::fs::write(path, bytes).unwrap();
}

fn write_png(path: &Path, w: u32, h: u32, levels: &[u8]) {
    GrayImage::from_raw(w, h, levels.to_vec())
        .unwrap()
        .save(path)
        .unwrap();
}

fn column(set: &images::ImageSet, j: usize) -> Vec<u8> {
    set.matrix().column(j).iter().map(|&x| x as u8).collect()
}

#[test]
fn loads_p2_p5_png_and_jpeg_recursively_in_natural_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("b/deeper")).unwrap();
    let (w, h) = (7, 5); // odd sizes
    write_p2(&root.join("b/img10.pgm"), w, h, &pattern(w, h, 3));
    write_p5(&root.join("b/img2.PGM"), w, h, &pattern(w, h, 5));
    write_png(&root.join("b/deeper/a.png"), w, h, &pattern(w, h, 11));
    write_png(&root.join("a.png"), w, h, &pattern(w, h, 0));
    // A colour PNG: grey = round(0.2126 R + 0.7152 G + 0.0722 B).
    RgbImage::from_pixel(w, h, Rgb([200, 100, 50]))
        .save(root.join("c_colour.png"))
        .unwrap();
    // A JPEG of a flat grey image stays close to that grey.
    GrayImage::from_pixel(w, h, Luma([120]))
        .save(root.join("d.jpg"))
        .unwrap();
    // Skipped: other extensions and hidden files.
    std::fs::write(root.join("README.txt"), "not an image").unwrap();
    write_p5(&root.join(".hidden.pgm"), w, h, &pattern(w, h, 1));

    let set = images::load_dir(root, SizePolicy::Exact).unwrap();
    let names: Vec<String> = set
        .names()
        .iter()
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .collect();
    assert_eq!(
        names,
        [
            "a.png",
            "b/deeper/a.png",
            "b/img2.PGM",
            "b/img10.pgm",
            "c_colour.png",
            "d.jpg"
        ]
    );
    assert_eq!((set.width(), set.height(), set.len()), (7, 5, 6));
    assert_eq!(set.matrix().dim(), (35, 6));
    assert_eq!(column(&set, 0), pattern(w, h, 0));
    assert_eq!(column(&set, 1), pattern(w, h, 11));
    assert_eq!(column(&set, 2), pattern(w, h, 5));
    assert_eq!(column(&set, 3), pattern(w, h, 3));
    let grey = (0.2126f32 * 200.0 + 0.7152 * 100.0 + 0.0722 * 50.0).round();
    assert!(set
        .matrix()
        .column(4)
        .iter()
        .all(|&x| (x - grey).abs() <= 1.0));
    assert!(set
        .matrix()
        .column(5)
        .iter()
        .all(|&x| (x - 120.0).abs() <= 3.0));
    // Pixel (x, y) is row y·width + x.
    assert_eq!(
        set.matrix()[[2 * 7 + 3, 0]],
        f32::from(pattern(w, h, 0)[2 * 7 + 3])
    );
}

#[test]
fn a_corrupt_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_p5(&dir.path().join("1.pgm"), 3, 3, &pattern(3, 3, 0));
    std::fs::write(dir.path().join("2.png"), b"this is not a PNG file at all").unwrap();
    let err = images::load_dir(dir.path(), SizePolicy::Exact).unwrap_err();
    match &err {
        NmfError::UndecodableImage { path, .. } => assert!(path.ends_with("2.png"), "{err}"),
        other => panic!("expected UndecodableImage, got {other:?}"),
    }
    assert!(err.to_string().contains("2.png"), "{err}");
}

#[test]
fn a_truncated_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_p5(&dir.path().join("1.pgm"), 9, 9, &pattern(9, 9, 0));
    // The header promises 9x9 levels; 20 follow.
    write_p5(&dir.path().join("2.pgm"), 9, 9, &pattern(9, 9, 0)[..20]);
    let err = images::load_dir(dir.path(), SizePolicy::Exact).unwrap_err();
    match &err {
        NmfError::UndecodableImage { path, .. } => assert!(path.ends_with("2.pgm"), "{err}"),
        other => panic!("expected UndecodableImage, got {other:?}"),
    }
}

#[test]
fn mixed_sizes_name_two_files_and_suggest_resize_or_crop() {
    let dir = tempfile::tempdir().unwrap();
    write_p5(&dir.path().join("1.pgm"), 9, 7, &pattern(9, 7, 0));
    write_p5(&dir.path().join("2.pgm"), 9, 7, &pattern(9, 7, 1));
    write_png(&dir.path().join("3.png"), 5, 3, &pattern(5, 3, 2));
    let err = images::load_dir(dir.path(), SizePolicy::Exact).unwrap_err();
    let text = err.to_string();
    match &err {
        NmfError::MixedImageSizes {
            first,
            first_width,
            first_height,
            other,
            other_width,
            other_height,
        } => {
            assert!(
                first.ends_with("1.pgm") && other.ends_with("3.png"),
                "{text}"
            );
            assert_eq!(
                (*first_width, *first_height, *other_width, *other_height),
                (9, 7, 5, 3)
            );
        }
        other => panic!("expected MixedImageSizes, got {other:?}"),
    }
    for needle in ["1.pgm", "9x7", "3.png", "5x3", "resize", "crop"] {
        assert!(text.contains(needle), "`{needle}` missing from: {text}");
    }

    // Resizing brings every image to one size.
    let resized = images::load_dir(
        dir.path(),
        SizePolicy::Resize {
            width: 6,
            height: 4,
        },
    )
    .unwrap();
    assert_eq!((resized.width(), resized.height()), (6, 4));
    assert_eq!(resized.matrix().dim(), (24, 3));

    // Cropping keeps the central window: from 9x7 to 5x3 starts at (2, 2).
    let cropped = images::load_dir(
        dir.path(),
        SizePolicy::CenterCrop {
            width: 5,
            height: 3,
        },
    )
    .unwrap();
    assert_eq!(cropped.matrix().dim(), (15, 3));
    let full = pattern(9, 7, 0);
    let expected: Vec<u8> = (0..3)
        .flat_map(|y| (0..5).map(move |x| (x, y)))
        .map(|(x, y)| full[(y + 2) * 9 + x + 2])
        .collect();
    assert_eq!(column(&cropped, 0), expected);
    assert_eq!(column(&cropped, 2), pattern(5, 3, 2));

    // A window larger than some image is refused, naming it.
    let err = images::load_dir(
        dir.path(),
        SizePolicy::CenterCrop {
            width: 6,
            height: 3,
        },
    )
    .unwrap_err();
    match &err {
        NmfError::ImageTooSmall { path, .. } => assert!(path.ends_with("3.png"), "{err}"),
        other => panic!("expected ImageTooSmall, got {other:?}"),
    }
}

#[test]
fn empty_missing_and_non_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = images::load_dir(dir.path(), SizePolicy::Exact).unwrap_err();
    assert!(matches!(err, NmfError::NoImages { .. }), "{err}");
    assert!(err.to_string().contains("no image files"), "{err}");

    std::fs::write(dir.path().join("notes.txt"), "no images here").unwrap();
    let err = images::load_dir(dir.path(), SizePolicy::Exact).unwrap_err();
    assert!(matches!(err, NmfError::NoImages { .. }), "{err}");

    let missing = dir.path().join("missing");
    let err = images::load_dir(&missing, SizePolicy::Exact).unwrap_err();
    match &err {
        NmfError::Io { path, .. } => assert_eq!(path, &missing),
        other => panic!("expected Io, got {other:?}"),
    }

    let err = images::load_dir(dir.path().join("notes.txt"), SizePolicy::Exact).unwrap_err();
    assert!(matches!(err, NmfError::UnsupportedInput { .. }), "{err}");

    let err = images::load_dir(
        dir.path(),
        SizePolicy::Resize {
            width: 0,
            height: 4,
        },
    )
    .unwrap_err();
    assert!(matches!(err, NmfError::ShapeMismatch { .. }), "{err}");
}

/// The ORL faces in the shared data folder, when it is next to the project.
fn orl_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/orl_faces");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "skipped the ORL faces: {} is absent (it lives in the shared data folder)",
            dir.display()
        );
        None
    }
}

/// Levels of a binary PGM, read here without the image crate.
fn read_p5(path: &Path) -> (usize, usize, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8(bytes[start..i].to_vec()).unwrap());
    }
    assert_eq!(fields[0], "P5");
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    (w, h, bytes[i + 1..i + 1 + w * h].to_vec())
}

#[test]
fn loads_the_orl_faces() {
    let Some(dir) = orl_dir() else { return };
    let set = images::load_dir(&dir, SizePolicy::Exact).unwrap();
    assert_eq!((set.len(), set.width(), set.height()), (400, 92, 112));
    assert_eq!(set.matrix().dim(), (92 * 112, 400));
    // Natural order: s1/1..s1/10, s2/1, ..., s40/10 (the order of orl_labels.txt).
    let names: Vec<String> = set
        .names()
        .iter()
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .collect();
    assert_eq!(names[0], "orl_faces/s1/1.pgm");
    assert_eq!(names[9], "orl_faces/s1/10.pgm");
    assert_eq!(names[10], "orl_faces/s2/1.pgm");
    assert_eq!(names[399], "orl_faces/s40/10.pgm");
    // Pixels agree with the file, byte for byte, for a few images.
    for j in [0, 137, 399] {
        let (w, h, levels) = read_p5(&dir.join(&set.names()[j]));
        assert_eq!((w, h), (92, 112));
        assert_eq!(column(&set, j), levels, "image {}", names[j]);
    }
    let v = set.matrix();
    let max = v.iter().fold(0.0f32, |a, &x| a.max(x));
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
    assert_eq!(max, 251.0);
    assert!((mean - 112.6).abs() < 0.1, "mean {mean}");
}

// ---------------------------------------------------------------------------------------------
// Preprocessing

#[test]
fn unit_divides_by_255_and_none_keeps_values() {
    let mut v = array![[0.0f32, 255.0], [51.0, 127.5]];
    Preprocess::None.apply(v.view_mut());
    assert_eq!(v, array![[0.0f32, 255.0], [51.0, 127.5]]);
    Preprocess::Unit.apply(v.view_mut());
    assert_eq!(v, array![[0.0f32, 1.0], [0.2, 0.5]]);
}

fn mean_sd(x: ArrayView1<'_, f32>) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

#[test]
fn lee_seung_sets_mean_and_sd_to_a_quarter_then_clips() {
    // Column 0: no clipping needed, so mean and standard deviation become exactly 0.25.
    // Column 1: one bright pixel among 99 dark ones: it is clipped to 1.
    // Column 2: constant: 0.25 everywhere.
    let mut v = Array2::<f32>::zeros((100, 3));
    for i in 0..100 {
        // Two levels, half each: z-scores ±1, so the values become 0 and 0.5 with no clipping.
        v[[i, 0]] = if i % 2 == 0 { 100.0 } else { 110.0 };
        v[[i, 2]] = 77.0;
    }
    v[[42, 1]] = 255.0;
    let (mean1, sd1) = mean_sd(v.column(1));
    Preprocess::LeeSeung.apply(v.view_mut());

    let (mean, sd) = mean_sd(v.column(0));
    assert!(
        (mean - 0.25).abs() < 1e-6 && (sd - 0.25).abs() < 1e-6,
        "{mean} {sd}"
    );

    let dark = 0.25 + 0.25 * (0.0 - mean1) / sd1;
    assert!((f64::from(v[[0, 1]]) - dark).abs() < 1e-6);
    assert_eq!(v[[42, 1]], 1.0); // 0.25 + 0.25·(255 − 2.55)/25.37 ≈ 2.74, clipped
    assert!(v.column(2).iter().all(|&x| x == 0.25));
    assert!(v.iter().all(|&x| (0.0..=1.0).contains(&x)));
}

// ---------------------------------------------------------------------------------------------
// Montages

#[test]
fn montage_dimensions_follow_the_layout() {
    // 5 tiles of 7x5 in rows of 3, gaps of 2, zoom 3:
    // width 3·7·3 + 4·2 = 71, height 2·5·3 + 3·2 = 36.
    let tiles = Array2::from_shape_fn((35, 5), |(p, j)| (p + j) as f32);
    let layout = MontageLayout::new(3).spacing(2).zoom(3).background(200);
    let picture = images::montage(tiles.view(), 7, 5, &layout).unwrap();
    assert_eq!(picture.dimensions(), (71, 36));
    assert_eq!(layout.picture_size(5, 7, 5), (71, 36));
    // Gaps, and the empty sixth cell, are background.
    assert_eq!(picture.get_pixel(0, 0).0[0], 200);
    assert_eq!(picture.get_pixel(70, 35).0[0], 200);
    assert_eq!(
        picture.get_pixel(2 + 2 * (21 + 2) + 10, 2 + 15 + 2 + 7).0[0],
        200
    );
    // Tile 0: its minimum (pixel 0) is black, its maximum (pixel 34, at (6, 4)) white, each
    // drawn as a 3x3 block.
    for d in 0..3 {
        assert_eq!(picture.get_pixel(2 + d, 2 + d).0[0], 0);
        assert_eq!(picture.get_pixel(2 + 18 + d, 2 + 12 + d).0[0], 255);
    }
    // Tile 4 (row 1, column 1) starts at (2 + 21 + 2, 2 + 15 + 2).
    assert_eq!(picture.get_pixel(25, 19).0[0], 0);

    // Fewer tiles than columns: the grid shrinks to the tiles.
    let one = images::montage(tiles.slice(nmf_gpu::ndarray::s![.., ..1]), 7, 5, &layout).unwrap();
    assert_eq!(one.dimensions(), (7 * 3 + 4, 5 * 3 + 4));
}

#[test]
fn montage_scales_per_tile_or_by_a_fixed_range() {
    let tiles = array![[0.0f32, 10.0], [1.0, 20.0], [2.0, 30.0], [4.0, 40.0]];
    let per_tile = images::montage(tiles.view(), 2, 2, &MontageLayout::new(2).spacing(0)).unwrap();
    let row0: Vec<u8> = (0..4).map(|x| per_tile.get_pixel(x, 0).0[0]).collect();
    let row1: Vec<u8> = (0..4).map(|x| per_tile.get_pixel(x, 1).0[0]).collect();
    assert_eq!(row0, [0, 64, 0, 85]);
    assert_eq!(row1, [128, 255, 170, 255]);

    let fixed = MontageLayout::new(2)
        .spacing(0)
        .scale(TileScale::Range { lo: 0.0, hi: 20.0 });
    let picture = images::montage(tiles.view(), 2, 2, &fixed).unwrap();
    assert_eq!(picture.get_pixel(0, 0).0[0], 0);
    assert_eq!(picture.get_pixel(2, 0).0[0], 128); // 10 of 20
    assert_eq!(picture.get_pixel(3, 1).0[0], 255); // 40, clipped
}

#[test]
fn montage_refuses_tiles_of_the_wrong_size_and_writes_png() {
    let tiles = Array2::<f32>::ones((10, 2));
    let err = images::montage(tiles.view(), 3, 3, &MontageLayout::new(2)).unwrap_err();
    assert!(matches!(err, NmfError::ShapeMismatch { .. }), "{err}");

    let tiles = Array2::from_shape_fn((12, 3), |(p, j)| (p * (j + 1)) as f32);
    let picture = images::montage(tiles.view(), 4, 3, &MontageLayout::new(2)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.png");
    images::save_png(&picture, &path).unwrap();
    let back = image::open(&path).unwrap().into_luma8();
    assert_eq!(back, picture);
}

// ---------------------------------------------------------------------------------------------
// Sparseness

#[test]
fn hoyer_sparseness_of_known_vectors() {
    let s = |v: Array1<f32>| images::hoyer_sparseness(v.view());
    assert!(s(Array1::from_elem(16, 3.0)).abs() < 1e-12, "constant: 0");
    let mut one_hot = Array1::zeros(16);
    one_hot[5] = 2.5;
    assert!((s(one_hot) - 1.0).abs() < 1e-12, "one-hot: 1");
    // (√4 − 2/√2)/(√4 − 1) = 2 − √2.
    assert!((s(array![1.0, 1.0, 0.0, 0.0]) - (2.0 - 2f64.sqrt())).abs() < 1e-12);
    // Signs do not matter; undefined cases count as 0.
    assert!(s(array![-1.0, 1.0, 1.0, -1.0]).abs() < 1e-12);
    assert_eq!(s(Array1::zeros(8)), 0.0);
    assert_eq!(s(array![5.0]), 0.0);

    let a = array![[1.0f32, 0.0], [1.0, 0.0], [1.0, 7.0], [1.0, 0.0]];
    assert_eq!(images::column_sparseness(a.view()).to_vec(), vec![0.0, 1.0]);
    assert!((images::mean_column_sparseness(a.view()) - 0.5).abs() < 1e-12);
}

// ---------------------------------------------------------------------------------------------
// PCA

#[test]
fn pca_recovers_orthogonal_directions_and_the_mean() {
    // Images = mean + a_j·u + b_j·w with orthonormal u, w and var(a) > var(b).
    let m = 60;
    let mean = Array1::from_shape_fn(m, |i| 1.0 + (i % 7) as f32);
    let mut u = Array1::<f32>::zeros(m);
    let mut w = Array1::<f32>::zeros(m);
    for i in 0..m {
        if i < 30 {
            u[i] = 1.0;
        } else {
            w[i] = if i % 2 == 0 { 1.0 } else { -1.0 };
        }
    }
    u /= (30.0f32).sqrt();
    w /= (30.0f32).sqrt();
    let n = 40;
    let v = Array2::from_shape_fn((m, n), |(i, j)| {
        let a = 3.0 * ((j % 4) as f32 - 1.5);
        // b is ±1 by blocks of four images, so it is uncorrelated with a.
        let b = if (j / 4) % 2 == 0 { 1.0 } else { -1.0 };
        mean[i] + a * u[i] + b * w[i]
    });
    let pca = images::pca(v.view(), 3, 0).unwrap();
    for (i, (&got, &want)) in pca.mean().iter().zip(mean.iter()).enumerate() {
        assert!((got - want).abs() < 1e-4, "mean pixel {i}: {got} vs {want}");
    }
    let c = pca.components();
    let cos = |k: usize, x: &Array1<f32>| c.column(k).dot(x).abs();
    assert!(cos(0, &u) > 0.999, "first axis: {}", cos(0, &u));
    assert!(cos(1, &w) > 0.999, "second axis: {}", cos(1, &w));
    let ratio = pca.explained_variance_ratio();
    assert!(
        (ratio.sum() - 1.0).abs() < 1e-4 && ratio[2] < 1e-6,
        "{ratio}"
    );
    let var = pca.explained_variance();
    assert!(var[0] > var[1] && var[1] > 0.0);
    // Orthonormal columns.
    let g = c.t().dot(&c);
    for i in 0..2 {
        for j in 0..2 {
            let e = if i == j { 1.0 } else { 0.0 };
            assert!((g[[i, j]] - e).abs() < 1e-4, "gram {g}");
        }
    }
    assert!(matches!(
        images::pca(v.view(), 0, 0),
        Err(NmfError::ZeroRank)
    ));
}

// ---------------------------------------------------------------------------------------------
// Synthetic faces

#[test]
fn synthetic_faces_are_reproducible_and_in_range() {
    let a = images::synthetic_faces(50, 7);
    let b = images::synthetic_faces(50, 7);
    let c = images::synthetic_faces(50, 8);
    assert_eq!(a.images.matrix(), b.images.matrix());
    assert_ne!(a.images.matrix(), c.images.matrix());
    assert_eq!((a.images.width(), a.images.height()), (32, 40));
    assert_eq!(a.images.matrix().dim(), (32 * 40, 50));
    assert!(a
        .images
        .matrix()
        .iter()
        .all(|&x| (0.0..=255.0).contains(&x)));
    assert_eq!(a.variants.len(), 50);
    for (j, parts) in a.variants.iter().enumerate() {
        for (part, variant) in FacePart::ALL.iter().zip(parts) {
            match variant {
                Some(k) => assert!(*k < FacePart::VARIANTS),
                None => assert_eq!(*part, FacePart::Hair, "face {j}: only hair may be absent"),
            }
        }
    }
    for part in FacePart::ALL {
        for k in 0..FacePart::VARIANTS {
            let t = part.template(k);
            assert_eq!(t.len(), 32 * 40);
            assert!(t.sum() > 3.0, "{} {k} draws something", part.name());
            assert!(t.iter().all(|&x| (0.0..=1.0).contains(&x)));
        }
    }
}

fn cosine(a: ArrayView1<'_, f32>, b: ArrayView1<'_, f32>) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let na = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let nb = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    if na * nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// NMF finds the parts of the synthetic faces: every part variant (its unjittered template) is
/// close to some basis image. Rule: cosine similarity above 0.6 between the template and the
/// best basis image; jitter smears each part over neighbouring pixels, so bases are blurred
/// versions of the templates. PCA's eigenfaces, which mix all parts, match far fewer.
#[test]
fn nmf_bases_of_synthetic_faces_are_parts() {
    let mut faces = images::synthetic_faces(1000, 0).images;
    Preprocess::Unit.apply(faces.matrix_mut());
    let fit = Nmf::params(49)
        .solver(Solver::MultiplicativeUpdate)
        .max_iter(500)
        .backend(Backend::Cpu)
        .fit(faces.matrix())
        .unwrap();
    let pca = images::pca(faces.matrix(), 49, 0).unwrap();
    let mut nmf_matched = 0;
    let mut pca_matched = 0;
    for part in FacePart::ALL {
        for k in 0..FacePart::VARIANTS {
            let t = part.template(k);
            let best = |basis: nmf_gpu::ndarray::ArrayView2<'_, f32>| {
                basis
                    .axis_iter(Axis(1))
                    .map(|b| cosine(b, t.view()).abs())
                    .fold(0.0, f64::max)
            };
            let (nmf, pca) = (best(fit.w()), best(pca.components()));
            println!("{} {k}: NMF {nmf:.3}, PCA {pca:.3}", part.name());
            nmf_matched += usize::from(nmf > 0.6);
            pca_matched += usize::from(pca > 0.6);
        }
    }
    println!("matched: NMF {nmf_matched}/18, PCA {pca_matched}/18");
    assert_eq!(nmf_matched, 18);
    assert!(pca_matched < 9, "eigenfaces mix parts");
}

// ---------------------------------------------------------------------------------------------
// Hostile headers: sizes checked against the memory limit before anything is allocated

/// CRC-32 (IEEE) of `bytes`, as PNG chunks need.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A tiny PNG whose header declares `w x h` 8-bit grey pixels, with an empty zlib stream as
/// its only data chunk.
fn hostile_png(w: u32, h: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
        out
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    png.extend(chunk(b"IEND", &[]));
    png
}

/// The error of loading `dir` under a 1 GiB limit, by the images API and by `read_matrix`.
fn load_errors(dir: &Path) -> [NmfError; 2] {
    let options = nmf_gpu::io::ReadOptions::new().max_bytes(1 << 30);
    [
        images::load_dir_with(dir, SizePolicy::Exact, &options).unwrap_err(),
        nmf_gpu::io::read_matrix(dir, &options).unwrap_err(),
    ]
}

#[test]
fn declared_sizes_beyond_the_limit_are_refused_naming_the_file() {
    let cases: [(&str, Vec<u8>); 3] = [
        // Some bytes declaring 4e9 x 4e9 (once a panic: the shape of V overflowed).
        (
            "huge.pgm",
            b"P5\n4000000000 4000000000\n255\n\x00\x01".to_vec(),
        ),
        // 100000 x 100000 (once an abort allocating 40 GB).
        ("big.pgm", b"P5\n100000 100000\n255\n\x00".to_vec()),
        // About 70 bytes declaring 65535 x 65535 (once an abort allocating 17 GB).
        ("wide.png", hostile_png(65535, 65535)),
    ];
    for (name, bytes) in cases {
        let dir = tempfile::tempdir().unwrap();
        write_p5(&dir.path().join("a_small.pgm"), 4, 3, &pattern(4, 3, 0));
        std::fs::write(dir.path().join(name), &bytes).unwrap();
        for err in load_errors(dir.path()) {
            match &err {
                NmfError::TooLarge { path, limit, .. } => {
                    assert!(path.ends_with(name), "{name}: {err}");
                    assert_eq!(*limit, 1 << 30);
                }
                other => panic!("{name}: expected TooLarge, got {other:?}"),
            }
            let text = err.to_string();
            assert!(
                text.starts_with(&dir.path().join(name).display().to_string()),
                "{text}"
            );
            assert!(!text.contains('\n'), "{text}");
        }
    }
    // The default limit (half the available memory) refuses them too, or at worst the decoder
    // refuses the missing pixels: never a panic or an abort.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wide.png"), hostile_png(65535, 65535)).unwrap();
    let err = images::load_dir(dir.path(), SizePolicy::Exact).unwrap_err();
    assert!(
        matches!(
            err,
            NmfError::TooLarge { .. } | NmfError::UndecodableImage { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn v_beyond_the_limit_is_refused_naming_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    for k in 0..3 {
        write_p5(
            &dir.path().join(format!("{k}.pgm")),
            10,
            10,
            &pattern(10, 10, k),
        );
    }
    // Each image alone (100 pixels: 200 bytes decoding) fits in 1000 bytes; V (3 x 100 x 4 =
    // 1200 bytes) does not.
    let tight = nmf_gpu::io::ReadOptions::new().max_bytes(1000);
    let err = images::load_dir_with(dir.path(), SizePolicy::Exact, &tight).unwrap_err();
    match &err {
        NmfError::TooLarge { path, bytes, .. } => {
            assert_eq!(path, dir.path());
            assert!(*bytes >= 1200, "{err}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // Under a limit that holds V and the decoding, the same directory loads.
    let roomy = nmf_gpu::io::ReadOptions::new().max_bytes(1 << 20);
    let set = images::load_dir_with(dir.path(), SizePolicy::Exact, &roomy).unwrap();
    assert_eq!(set.matrix().dim(), (100, 3));
}

#[test]
fn decoder_errors_are_one_line_and_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jpg");
    RgbImage::from_fn(16, 16, |x, y| Rgb([(x * 16) as u8, (y * 16) as u8, 7]))
        .save(&good)
        .unwrap();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::remove_file(&good).unwrap();
    // An APP0 segment of length 1: the decoder's message ends in a line break.
    let mut damaged: Vec<Vec<u8>> = vec![b"\xFF\xD8\xFF\xE0\x00\x01\x00\x00\x00\x00".to_vec()];
    for cut in [4, 20, 100, bytes.len() / 2, bytes.len() - 2] {
        damaged.push(bytes[..cut].to_vec());
    }
    for at in (2..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[at] ^= 0xFF;
        damaged.push(b);
    }
    let mut undecodable = 0;
    for (k, b) in damaged.iter().enumerate() {
        let sub = dir.path().join(format!("case{k}"));
        std::fs::create_dir(&sub).unwrap();
        let file = sub.join("photo.jpg");
        std::fs::write(&file, b).unwrap();
        if let Err(err) = images::load_dir(&sub, SizePolicy::Exact) {
            let text = err.to_string();
            assert!(!text.contains('\n') && !text.contains('\r'), "{text:?}");
            assert!(text.starts_with(&file.display().to_string()), "{text}");
            undecodable += 1;
        }
    }
    assert!(
        undecodable >= 5,
        "only {undecodable} damaged files were refused"
    );
}

#[test]
fn mixed_sizes_message_starts_with_the_offending_file() {
    let dir = tempfile::tempdir().unwrap();
    write_p5(&dir.path().join("1.pgm"), 9, 7, &pattern(9, 7, 0));
    write_p5(&dir.path().join("2.pgm"), 5, 3, &pattern(5, 3, 0));
    let err = images::load_dir(dir.path(), SizePolicy::Exact).unwrap_err();
    let text = err.to_string();
    let offending = dir.path().join("2.pgm").display().to_string();
    assert!(text.starts_with(&format!("{offending}: ")), "{text}");
    assert!(text.contains("differ in size"), "{text}");
}

#[cfg(unix)]
#[test]
fn a_swimmer_file_linked_to_dev_zero_is_refused_without_reading_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("swimmer.bin");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    match images::read_swimmer(&link) {
        Err(NmfError::Format { message, .. }) => {
            assert!(message.contains("more than"), "{message}")
        }
        other => panic!("expected a format error, got {other:?}"),
    }
}
