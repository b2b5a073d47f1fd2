//! Multi-page TIFF / BigTIFF stacks: every sample type, compression and layout read as the
//! same matrix as the `.npy` of the same data (and fitted to the same factors), directories of
//! stacks in natural order, the streaming source and the block reader, hostile headers as typed
//! errors, and the streaming memory bound.
#![cfg(feature = "images")]

use std::path::Path;

use nmf_gpu::frames::{Baseline, FrameSource, FrameSteps};
use nmf_gpu::io::tiff::{
    TiffCompression, TiffFrame, TiffSampleType, TiffSource, TiffStack, TiffWriter,
};
use nmf_gpu::io::{read_matrix, write_npy_atomic, FileFormat, NpySource, ReadOptions};
use nmf_gpu::ndarray::{s, Array2};
use nmf_gpu::online::{OnlineNmf, Source};
use nmf_gpu::{Nmf, NmfError, Solver};

/// Frame width and height of the small stacks.
const W: usize = 7;
const H: usize = 5;
/// Frames of the small stacks.
const FRAMES: usize = 9;

/// The expected V of the small stacks: pixel `(x, y)` of frame `j` is a small integer (every
/// sample type holds it exactly), distinct across pixels and frames.
fn expected(frames: usize) -> Array2<f32> {
    Array2::from_shape_fn((W * H, frames), |(i, j)| ((i * 3 + j * 11) % 97) as f32)
}

/// Write the columns of `v` (integers) as the frames of a stack of type `ty`.
fn write_stack(path: &Path, v: &Array2<f32>, ty: TiffSampleType, big: bool, c: TiffCompression) {
    let mut w = TiffWriter::create(path, W as u32, H as u32, big, c).unwrap();
    for col in v.columns() {
        let x: Vec<f32> = col.to_vec();
        match ty {
            TiffSampleType::U8 => {
                let f: Vec<u8> = x.iter().map(|&v| v as u8).collect();
                w.push(TiffFrame::U8(&f)).unwrap()
            }
            TiffSampleType::U16 => {
                let f: Vec<u16> = x.iter().map(|&v| v as u16).collect();
                w.push(TiffFrame::U16(&f)).unwrap()
            }
            TiffSampleType::U32 => {
                let f: Vec<u32> = x.iter().map(|&v| v as u32).collect();
                w.push(TiffFrame::U32(&f)).unwrap()
            }
            TiffSampleType::I8 => {
                let f: Vec<i8> = x.iter().map(|&v| v as i8).collect();
                w.push(TiffFrame::I8(&f)).unwrap()
            }
            TiffSampleType::I16 => {
                let f: Vec<i16> = x.iter().map(|&v| v as i16).collect();
                w.push(TiffFrame::I16(&f)).unwrap()
            }
            TiffSampleType::I32 => {
                let f: Vec<i32> = x.iter().map(|&v| v as i32).collect();
                w.push(TiffFrame::I32(&f)).unwrap()
            }
            TiffSampleType::F32 => w.push(TiffFrame::F32(&x)).unwrap(),
            TiffSampleType::F64 => {
                let f: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
                w.push(TiffFrame::F64(&f)).unwrap()
            }
            other => panic!("no writer for {other:?}"),
        }
    }
    assert_eq!(w.frames(), v.ncols());
    w.finish().unwrap();
}

#[test]
fn every_sample_type_reads_as_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let v = expected(FRAMES);
    for ty in [
        TiffSampleType::U8,
        TiffSampleType::U16,
        TiffSampleType::U32,
        TiffSampleType::I8,
        TiffSampleType::I16,
        TiffSampleType::I32,
        TiffSampleType::F32,
        TiffSampleType::F64,
    ] {
        let path = dir.path().join(format!("{}.tif", ty.name()));
        write_stack(&path, &v, ty, false, TiffCompression::None);
        let stack = TiffStack::open(&path, &ReadOptions::new()).unwrap();
        assert_eq!(stack.sample_type(), ty);
        assert_eq!((stack.width(), stack.height()), (W, H));
        assert_eq!(stack.shape(), (W * H, FRAMES));
        let read = read_matrix(&path, &ReadOptions::new()).unwrap();
        assert_eq!(read, v, "{}", ty.name());
    }
}

#[test]
fn compressions_and_bigtiff_read_as_the_same_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let v = expected(FRAMES);
    for (big, c) in [
        (false, TiffCompression::Lzw),
        (false, TiffCompression::Deflate),
        (true, TiffCompression::None),
        (true, TiffCompression::Deflate),
    ] {
        let path = dir.path().join(format!("{big}-{c:?}.tiff"));
        write_stack(&path, &v, TiffSampleType::U16, big, c);
        let read = read_matrix(&path, &ReadOptions::new()).unwrap();
        assert_eq!(read, v, "bigtiff {big}, {c:?}");
    }
}

/// The same data as a `.tif` and a `.npy`: the same matrix, the same batch fit, the same
/// online fit from the two streaming sources.
#[test]
fn tiff_and_npy_give_equal_factors() {
    let dir = tempfile::tempdir().unwrap();
    let frames = 40;
    // A nonnegative rank-3 movie in 16-bit levels.
    let v = Array2::from_shape_fn((W * H, frames), |(i, j)| {
        let a = ((i % 5) as f32) * ((j % 3) as f32 + 1.0);
        let b = ((i % 3) as f32 + 1.0) * ((j % 7) as f32);
        let c = ((i * 7 % 11) as f32) * ((j % 2) as f32);
        (a * 30.0 + b * 20.0 + c * 10.0).round()
    });
    let tif = dir.path().join("movie.tif");
    let npy = dir.path().join("movie.npy");
    write_stack(&tif, &v, TiffSampleType::U16, false, TiffCompression::Lzw);
    write_npy_atomic(&npy, &v).unwrap();
    assert_eq!(FileFormat::from_path(&tif).unwrap(), FileFormat::Tiff);
    let a = read_matrix(&tif, &ReadOptions::new()).unwrap();
    let b = read_matrix(&npy, &ReadOptions::new()).unwrap();
    assert_eq!(a, b);
    let params = Nmf::params(3).solver(Solver::Hals).max_iter(40).seed(5);
    let fa = params.fit(a.view()).unwrap();
    let fb = params.fit(b.view()).unwrap();
    assert_eq!(fa.w(), fb.w());
    assert_eq!(fa.h(), fb.h());
    // Online, streamed from the files.
    let online = OnlineNmf::params(3).batch_size(8).max_epochs(3).seed(2);
    let mut st = TiffSource::open(&tif, &ReadOptions::new()).unwrap();
    let mut sn = NpySource::open(&npy, false).unwrap();
    let oa = online.fit(&mut st).unwrap();
    let ob = online.fit(&mut sn).unwrap();
    assert_eq!(oa.w(), ob.w());
}

#[test]
fn a_directory_of_stacks_is_one_sequence_in_natural_order() {
    let dir = tempfile::tempdir().unwrap();
    let v = expected(FRAMES);
    // Three files of 2, 3 and 4 frames, named so that natural order differs from byte order.
    let parts = [
        ("part_2.tif", 0..2),
        ("part_10.TIF", 2..5),
        ("part_11.tiff", 5..9),
    ];
    let sub = dir.path().join("stacks");
    std::fs::create_dir(&sub).unwrap();
    for (name, cols) in parts.iter().cloned() {
        let block = v.slice(s![.., cols]).to_owned();
        write_stack(
            &sub.join(name),
            &block,
            TiffSampleType::U16,
            false,
            TiffCompression::None,
        );
    }
    // Not read: a hidden file and a file of another kind.
    std::fs::write(sub.join(".hidden.tif"), b"not a tiff").unwrap();
    std::fs::write(sub.join("notes.txt"), b"recorded at 30 Hz").unwrap();
    assert_eq!(FileFormat::from_path(&sub).unwrap(), FileFormat::Tiff);
    let stack = TiffStack::open(&sub, &ReadOptions::new()).unwrap();
    assert_eq!(stack.frames_per_file(), vec![2, 3, 4]);
    let names: Vec<String> = stack
        .files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["part_2.tif", "part_10.TIF", "part_11.tiff"]);
    assert_eq!(read_matrix(&sub, &ReadOptions::new()).unwrap(), v);
    assert!(stack.describe(6).contains("part_11.tiff") && stack.describe(6).contains("frame 1"));
    // Blocks across file boundaries, any row range (the distributed reader).
    for (rows, cols) in [
        (0..W * H, 0..FRAMES),
        (3..20, 1..7),
        (0..1, 4..5),
        (10..35, 5..9),
    ] {
        let block = stack.read_block(rows.clone(), cols.clone()).unwrap();
        assert_eq!(block, v.slice(s![rows, cols]));
    }
}

#[test]
fn the_source_streams_the_columns_in_order_and_rewinds() {
    let dir = tempfile::tempdir().unwrap();
    let v = expected(FRAMES);
    let sub = dir.path().join("two");
    std::fs::create_dir(&sub).unwrap();
    write_stack(
        &sub.join("a1.tif"),
        &v.slice(s![.., 0..4]).to_owned(),
        TiffSampleType::F32,
        false,
        TiffCompression::None,
    );
    write_stack(
        &sub.join("a2.tif"),
        &v.slice(s![.., 4..]).to_owned(),
        TiffSampleType::F32,
        true,
        TiffCompression::Deflate,
    );
    let mut src = TiffSource::open(&sub, &ReadOptions::new()).unwrap();
    assert_eq!(src.dim(), (W * H, FRAMES));
    for batch in [1, 2, 3, 4, 100] {
        src.rewind().unwrap();
        let mut j = 0;
        while let Some(b) = src.next_batch(batch).unwrap() {
            assert!(b.ncols() <= batch && b.ncols() >= 1);
            assert_eq!(b, v.slice(s![.., j..j + b.ncols()]), "batch {batch} at {j}");
            j += b.ncols();
        }
        assert_eq!(j, FRAMES);
    }
    assert!(src.describe(5).contains("a2.tif"));
}

// ---- hand-made files: tiles and hostile headers -------------------------------------------

const SHORT: u16 = 3;
const LONG: u16 = 4;

/// A classic little-endian TIFF: the header, `data` at offset 8, then one directory per page
/// with the entries `(tag, type, count, value or offset)` (sorted by the caller), chained.
fn raw_tiff(data: &[u8], pages: &[Vec<(u16, u16, u32, u32)>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"II");
    out.extend_from_slice(&42u16.to_le_bytes());
    let first = 8 + data.len() as u32;
    out.extend_from_slice(&first.to_le_bytes());
    out.extend_from_slice(data);
    for (k, entries) in pages.iter().enumerate() {
        let at = out.len() as u32;
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for &(tag, ty, count, value) in entries {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            out.extend_from_slice(&value.to_le_bytes());
        }
        let next = if k + 1 < pages.len() {
            at + 2 + 12 * entries.len() as u32 + 4
        } else {
            0
        };
        out.extend_from_slice(&next.to_le_bytes());
    }
    out
}

/// The entries of a grey uncompressed single-strip page.
fn strip_page(
    width: u32,
    height: u32,
    bits: u16,
    offset: u32,
    bytes: u32,
) -> Vec<(u16, u16, u32, u32)> {
    vec![
        (256, LONG, 1, width),
        (257, LONG, 1, height),
        (258, SHORT, 1, u32::from(bits)),
        (259, SHORT, 1, 1),
        (262, SHORT, 1, 1),
        (273, LONG, 1, offset),
        (277, SHORT, 1, 1),
        (278, LONG, 1, height),
        (279, LONG, 1, bytes),
    ]
}

#[test]
fn tiled_frames_read_as_their_pixels() {
    // A 20x18 16-bit frame in 16x16 tiles (2 x 2, the right and bottom ones partly outside),
    // twice, the second frame's pixels doubled.
    let (width, height, tile) = (20usize, 18usize, 16usize);
    let value = |x: usize, y: usize, f: usize| ((x + 100 * y) * (f + 1)) as u16;
    let mut data = Vec::new();
    let mut pages = Vec::new();
    for f in 0..2 {
        let mut offsets = Vec::new();
        for ty in 0..2 {
            for tx in 0..2 {
                offsets.push(8 + data.len() as u32);
                for y in ty * tile..(ty + 1) * tile {
                    for x in tx * tile..(tx + 1) * tile {
                        let px = if x < width && y < height {
                            value(x, y, f)
                        } else {
                            0
                        };
                        data.extend_from_slice(&px.to_le_bytes());
                    }
                }
            }
        }
        let offsets_at = 8 + data.len() as u32;
        for o in &offsets {
            data.extend_from_slice(&o.to_le_bytes());
        }
        let counts_at = 8 + data.len() as u32;
        for _ in &offsets {
            data.extend_from_slice(&((tile * tile * 2) as u32).to_le_bytes());
        }
        pages.push(vec![
            (256, LONG, 1, width as u32),
            (257, LONG, 1, height as u32),
            (258, SHORT, 1, 16),
            (259, SHORT, 1, 1),
            (262, SHORT, 1, 1),
            (277, SHORT, 1, 1),
            (322, LONG, 1, tile as u32),
            (323, LONG, 1, tile as u32),
            (324, LONG, 4, offsets_at),
            (325, LONG, 4, counts_at),
        ]);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiled.tif");
    std::fs::write(&path, raw_tiff(&data, &pages)).unwrap();
    let v = read_matrix(&path, &ReadOptions::new()).unwrap();
    assert_eq!(v.dim(), (width * height, 2));
    for f in 0..2 {
        for y in 0..height {
            for x in 0..width {
                assert_eq!(
                    v[[y * width + x, f]],
                    f32::from(value(x, y, f)),
                    "({x}, {y}) of {f}"
                );
            }
        }
    }
}

/// The error of reading `bytes` as a `.tif` with `options`.
fn read_err(bytes: &[u8], options: &ReadOptions) -> NmfError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.tif");
    std::fs::write(&path, bytes).unwrap();
    let err = read_matrix(&path, options).unwrap_err();
    assert!(err.to_string().contains("hostile.tif"), "{err}");
    err
}

fn is_format(err: &NmfError, words: &str) -> bool {
    matches!(err, NmfError::Format { .. }) && err.to_string().contains(words)
}

#[test]
fn hostile_headers_give_typed_errors() {
    let small = ReadOptions::new().max_bytes(1 << 30);
    // Huge declared dimensions: refused from the directory, before any allocation.
    let huge = raw_tiff(&[0; 16], &[strip_page(1 << 20, 1 << 20, 16, 8, 16)]);
    let err = read_err(&huge, &small);
    assert!(matches!(err, NmfError::TooLarge { .. }), "{err}");
    // A first directory past the end of the file.
    let mut bad_ifd = raw_tiff(&[0; 8], &[strip_page(2, 2, 16, 8, 8)]);
    bad_ifd[4..8].copy_from_slice(&(1u32 << 30).to_le_bytes());
    let err = read_err(&bad_ifd, &small);
    assert!(matches!(err, NmfError::Format { .. }), "{err}");
    // A strip past the end of the file.
    let err = read_err(
        &raw_tiff(&[0; 8], &[strip_page(2, 2, 16, 1 << 20, 8)]),
        &small,
    );
    assert!(is_format(&err, "page 0"), "{err}");
    // A truncated strip: 8 bytes declared, the last 4 of the file (the directory's link).
    let len = 8 + 4 + 2 + 12 * 9 + 4;
    let err = read_err(
        &raw_tiff(&[0; 4], &[strip_page(2, 2, 16, len - 4, 8)]),
        &small,
    );
    assert!(is_format(&err, "page 0"), "{err}");
    // Not a TIFF at all, and an empty file.
    assert!(matches!(
        read_err(b"P5\n2 2\n255\n\0\0\0\0", &small),
        NmfError::Format { .. }
    ));
    assert!(matches!(read_err(b"", &small), NmfError::Format { .. }));
    // Colour frames: refused with the reason.
    let mut rgb = strip_page(2, 2, 8, 8, 12);
    rgb[2] = (258, SHORT, 3, 8 | (8 << 16)); // an inline pair is too short: the crate errors or
    rgb[4] = (262, SHORT, 1, 2); // sees RGB; either way a typed error
    rgb[6] = (277, SHORT, 1, 3);
    let err = read_err(&raw_tiff(&[0; 12], &[rgb]), &small);
    assert!(matches!(err, NmfError::Format { .. }), "{err}");
    // 1-bit frames: refused with the reason.
    let err = read_err(&raw_tiff(&[0; 8], &[strip_page(2, 2, 1, 8, 1)]), &small);
    assert!(is_format(&err, "1-bit"), "{err}");
    // A second page of another size.
    let two = raw_tiff(
        &[0; 16],
        &[strip_page(2, 2, 16, 8, 8), strip_page(2, 1, 16, 16, 4)],
    );
    let err = read_err(&two, &small);
    assert!(is_format(&err, "page 1"), "{err}");
    // A directory chain that loops back on itself.
    let mut looped = raw_tiff(
        &[0; 8],
        &[strip_page(2, 2, 16, 8, 8), strip_page(2, 2, 16, 8, 8)],
    );
    let second = 16 + 2 + 12 * 9 + 4;
    let end = looped.len();
    looped[end - 4..].copy_from_slice(&(second as u32).to_le_bytes());
    let err = read_err(&looped, &small);
    assert!(matches!(err, NmfError::Format { .. }), "{err}");
}

#[test]
fn a_file_cut_short_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.tif");
    write_stack(
        &path,
        &expected(FRAMES),
        TiffSampleType::U16,
        false,
        TiffCompression::None,
    );
    let bytes = std::fs::read(&path).unwrap();
    for keep in [bytes.len() - 3, bytes.len() / 2, 20, 9] {
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let err = read_matrix(&path, &ReadOptions::new()).unwrap_err();
        assert!(
            matches!(err, NmfError::Format { .. }),
            "cut at {keep}: {err}"
        );
    }
}

#[test]
fn the_whole_matrix_is_held_to_the_limit_but_the_source_streams() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.tif");
    let v = expected(FRAMES);
    write_stack(&path, &v, TiffSampleType::U8, false, TiffCompression::None);
    // The matrix takes 35·9·4 = 1260 bytes: a 1000-byte limit refuses it, streaming 4 frames
    // (560 bytes) a batch works.
    let tight = ReadOptions::new().max_bytes(1000);
    let err = read_matrix(&path, &tight).unwrap_err();
    assert!(matches!(err, NmfError::TooLarge { .. }), "{err}");
    let mut src = TiffSource::open(&path, &tight).unwrap();
    let b = src.next_batch(4).unwrap().unwrap();
    assert_eq!(b, v.slice(s![.., 0..4]));
    src.rewind().unwrap();
    assert!(matches!(src.next_batch(9), Err(NmfError::TooLarge { .. })));
}

// ---- streaming memory --------------------------------------------------------------------

/// Frames per batch of the streaming test.
const STREAM_BATCH: usize = 128;
/// One batch as float32 (bytes).
const STREAM_BATCH_BYTES: u64 = (STREAM_SIDE * STREAM_SIDE * STREAM_BATCH * 4) as u64;
/// The growth of resident memory (VmHWM at the end less VmRSS once the source is opened) of a
/// child streaming a TIFF movie larger than the test's read limit through one online epoch
/// stays under this bound: the batch being fitted, the batch read ahead, the fit's copies and
/// products of a batch (6 batches in all), the reader's staging buffer and 8 MiB of slack
/// (thread stacks, allocator). Holding the movie would take 221 MB.
const STREAM_PEAK_BYTES: u64 =
    6 * STREAM_BATCH_BYTES + nmf_gpu::io::tiff::STAGE_BYTES as u64 + (8 << 20);
/// The movie: 96x96 16-bit frames, 6000 of them (110 MB on disk, 221 MB as float32).
const STREAM_SIDE: usize = 96;
const STREAM_FRAMES: usize = 6000;
/// The read limit of the child: the whole matrix would exceed it.
const STREAM_LIMIT: u64 = 128 << 20;

fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// The child half of `streaming_a_large_tiff_keeps_memory_bounded` (does nothing unless the
/// parent set the file to stream).
#[test]
fn tiff_stream_child() {
    let Some(path) = std::env::var_os("NMF_TIFF_STREAM_FILE") else {
        return;
    };
    let options = ReadOptions::new().max_bytes(STREAM_LIMIT);
    assert!(matches!(
        read_matrix(&path, &options),
        Err(NmfError::TooLarge { .. })
    ));
    let mut src = TiffSource::open(&path, &options).unwrap();
    assert_eq!(src.dim(), (STREAM_SIDE * STREAM_SIDE, STREAM_FRAMES));
    println!("\nBASE={}", status_bytes("VmRSS:"));
    let model = OnlineNmf::params(4)
        .batch_size(STREAM_BATCH)
        .max_epochs(1)
        .inner_max_iter(3)
        .fit(&mut src)
        .unwrap();
    assert_eq!(model.report().samples, STREAM_FRAMES as u64);
    println!("\nVMHWM={}", status_bytes("VmHWM:"));
}

#[test]
fn streaming_a_large_tiff_keeps_memory_bounded() {
    #[cfg(not(target_os = "linux"))]
    return;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.tif");
    {
        let side = STREAM_SIDE as u32;
        let mut w = TiffWriter::create(&path, side, side, true, TiffCompression::None).unwrap();
        let mut frame = vec![0u16; STREAM_SIDE * STREAM_SIDE];
        for j in 0..STREAM_FRAMES {
            for (i, px) in frame.iter_mut().enumerate() {
                *px = (((i % 7) * (j % 5) + (i % 3) * (j % 11)) * 100 + (i * j) % 13) as u16;
            }
            w.push(TiffFrame::U16(&frame)).unwrap();
        }
        w.finish().unwrap();
    }
    let float_bytes = (STREAM_SIDE * STREAM_SIDE * STREAM_FRAMES * 4) as u64;
    // The movie exceeds the read limit (and so the bound on growth, far below the limit).
    assert!(float_bytes > STREAM_LIMIT);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tiff::tiff_stream_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NMF_TIFF_STREAM_FILE", &path)
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
    eprintln!(
        "streaming: {} MiB at open, peak {} MiB",
        base >> 20,
        peak >> 20
    );
    assert!(
        peak.saturating_sub(base) < STREAM_PEAK_BYTES,
        "resident memory grew by {} MiB streaming a {} MiB (as float32) movie",
        (peak - base) >> 20,
        float_bytes >> 20
    );
}

// ---- the movie example's pipeline ---------------------------------------------------------

/// The mean footprint correlation (after the optimal matching) a fit of the small synthetic
/// movie must reach.
const MOVIE_MIN_MEAN_CORRELATION: f64 = 0.9;

/// `examples/movie.rs` at test size: a synthetic calcium-imaging movie written as a 16-bit
/// TIFF, factorized online from the file less each pixel's 20th percentile (rank: the neurons
/// and the background; the example's baseline, start, batch and epochs), its parts matched to
/// the planted footprints. (Measured over movie seeds 1, 3, 5, 7: 0.991 to 0.999 with this
/// baseline, start and batch.)
#[test]
fn the_movie_example_recovers_its_planted_footprints() {
    use nmf_gpu::images::movie::{match_parts, write_synthetic_movie, MovieSpec};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("movie.tif");
    let spec = MovieSpec {
        width: 40,
        height: 40,
        frames: 800,
        neurons: 6,
        seed: 3,
        ..MovieSpec::default()
    };
    let truth = write_synthetic_movie(&spec, &path, false).unwrap();
    assert_eq!(truth.footprints.dim(), (40 * 40, 6));
    assert_eq!(truth.traces.dim(), (6, 800));
    let raw = TiffSource::open(&path, &ReadOptions::new()).unwrap();
    assert_eq!(raw.stack().sample_type(), TiffSampleType::U16);
    // The example's preprocessing: each pixel's 20th percentile over time subtracted.
    let steps = FrameSteps::new().baseline(Baseline::Percentile(20.0));
    let mut src = FrameSource::new(raw, &steps).unwrap();
    // NNDSVD's zeros kept: sparse, local parts from the start (NNDSVDa's filled zeros and
    // random starts more often merge two neurons or mix in the background).
    let model = OnlineNmf::params(spec.neurons + 1)
        .init(nmf_gpu::Init::Nndsvd)
        .batch_size(64)
        .max_epochs(60)
        .seed(0)
        .fit(&mut src)
        .unwrap();
    let matched = match_parts(truth.footprints.view(), model.w()).unwrap();
    assert_eq!(matched.pairs.len(), spec.neurons);
    assert_eq!(matched.unmatched(spec.neurons + 1).len(), 1);
    assert!(
        matched.mean() >= MOVIE_MIN_MEAN_CORRELATION,
        "mean matched footprint correlation {:.3}: {:?}",
        matched.mean(),
        matched.pairs
    );
}

/// Streaming throughput of a TIFF movie beside the same movie as a float32 `.npy` (one pass,
/// batches of 256 frames, files fresh in the page cache); prints frames/s and MB/s of file.
/// `cargo test --release --test suite tiff::stream_throughput -- --ignored --nocapture`
/// (`NMF_TIFF_BENCH_FRAMES` frames of 256x256, default 2000).
#[test]
#[ignore = "a measurement, not a check"]
fn stream_throughput() {
    use nmf_gpu::io::NpyColumnWriter;
    let frames: usize = std::env::var("NMF_TIFF_BENCH_FRAMES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let side = 256usize;
    let dir = tempfile::tempdir().unwrap();
    let mut frame = vec![0u16; side * side];
    let mut column = Array2::<f32>::zeros((side * side, 1));
    let cases = [
        ("tiff u16", TiffCompression::None),
        ("tiff u16 deflate", TiffCompression::Deflate),
    ];
    let npy = dir.path().join("movie.npy");
    let mut npy_w = NpyColumnWriter::create(&npy, side * side, frames).unwrap();
    let mut paths = Vec::new();
    for (k, (name, c)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("movie{k}.tif"));
        let mut w = TiffWriter::create(&path, side as u32, side as u32, true, *c).unwrap();
        for j in 0..frames {
            for (i, px) in frame.iter_mut().enumerate() {
                *px = (((i % 251) * (j % 7) + (i / 256) * 3 + j) % 4000) as u16;
            }
            w.push(TiffFrame::U16(&frame)).unwrap();
            if k == 0 {
                for (dst, &px) in column.iter_mut().zip(&frame) {
                    *dst = f32::from(px);
                }
                npy_w.append(column.view()).unwrap();
            }
        }
        w.finish().unwrap();
        paths.push((name.to_string(), path));
    }
    npy_w.commit().unwrap();
    let pass = |src: &mut dyn Source| -> f64 {
        let start = std::time::Instant::now();
        let mut n = 0;
        while let Some(b) = src.next_batch(256).unwrap() {
            n += b.ncols();
        }
        assert_eq!(n, frames);
        start.elapsed().as_secs_f64()
    };
    let report = |name: &str, path: &Path, s: f64| {
        let mb = std::fs::metadata(path).unwrap().len() as f64 / 1e6;
        println!(
            "{name:>18}: {:>8.0} frames/s, {:>7.0} MB/s of file ({mb:.0} MB), {s:.2} s",
            frames as f64 / s,
            mb / s
        );
    };
    let mut src = NpySource::open(&npy, false).unwrap();
    pass(&mut src);
    src.rewind().unwrap();
    report("npy f32", &npy, pass(&mut src));
    for (name, path) in &paths {
        let mut src = TiffSource::open(path, &ReadOptions::new()).unwrap();
        pass(&mut src);
        src.rewind().unwrap();
        report(name, path, pass(&mut src));
    }
}

// ---- the distributed block reader and the command line ------------------------------------

/// Every rank's block of a 2x2 (and 3x1) grid, read from a TIFF stack (a file, and a directory of
/// two files) by the distributed reader, is the same block of the whole matrix, dense or sparse.
#[test]
fn distributed_blocks_of_a_stack_are_the_blocks_of_the_matrix() {
    use nmf_gpu::distributed::{input_shape, read_block, Grid, Layout, LocalBlock};
    let dir = tempfile::tempdir().unwrap();
    let v = expected(FRAMES);
    let file = dir.path().join("m.tif");
    write_stack(&file, &v, TiffSampleType::U16, false, TiffCompression::Lzw);
    let sub = dir.path().join("parts");
    std::fs::create_dir(&sub).unwrap();
    write_stack(
        &sub.join("p1.tif"),
        &v.slice(s![.., ..5]).to_owned(),
        TiffSampleType::U16,
        true,
        TiffCompression::None,
    );
    write_stack(
        &sub.join("p2.tif"),
        &v.slice(s![.., 5..]).to_owned(),
        TiffSampleType::U16,
        false,
        TiffCompression::Deflate,
    );
    let options = ReadOptions::new();
    for path in [&file, &sub] {
        let shape = input_shape(path, &options).unwrap();
        assert_eq!(shape, v.dim());
        for grid in [Grid { rows: 2, cols: 2 }, Grid { rows: 3, cols: 1 }] {
            for rank in 0..grid.rows * grid.cols {
                let layout = Layout::new(grid, shape, rank);
                let want = v.slice(s![layout.rows.clone(), layout.cols.clone()]);
                match read_block(path, &layout, false, &options).unwrap() {
                    LocalBlock::Dense(b) => assert_eq!(b, want, "rank {rank} of {grid:?}"),
                    LocalBlock::Sparse(_) => panic!("a dense block was asked for"),
                }
                match read_block(path, &layout, true, &options).unwrap() {
                    LocalBlock::Sparse(b) => assert_eq!(b.to_dense(), want),
                    LocalBlock::Dense(_) => panic!("a sparse block was asked for"),
                }
            }
        }
    }
}

/// `nmf fit` reads a `.tif` whole and streams it with `--online`; W has a row per pixel.
#[test]
fn nmf_fit_reads_and_streams_a_tiff() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("movie.tif");
    write_stack(
        &path,
        &expected(FRAMES),
        TiffSampleType::U16,
        false,
        TiffCompression::None,
    );
    for online in [false, true] {
        let out = dir.path().join(format!("fit-{online}"));
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_nmf"));
        cmd.args(["fit", "--rank", "2", "--quiet", "--input"])
            .arg(&path)
            .arg("--output-dir")
            .arg(&out);
        if online {
            cmd.args(["--online", "--batch-size", "4"]);
        }
        let run = cmd.output().unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let w = read_matrix(out.join("W.npy"), &ReadOptions::new()).unwrap();
        assert_eq!(w.dim(), (W * H, 2), "online {online}");
        let h = read_matrix(out.join("H.npy"), &ReadOptions::new()).unwrap();
        assert_eq!(h.dim(), (2, FRAMES), "online {online}");
        let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
        assert!(summary.contains("movie.tif"), "{summary}");
    }
}
