//! HDF5 datasets: every numeric type, contiguous and chunked (deflate, shuffle), read as the
//! same matrix as the `.npy` of the same data (and fitted to the same factors), datasets found
//! by name or alone, chunk-aligned streaming equal to the whole read, distributed blocks equal
//! to the blocks of the whole matrix, hostile files as typed errors, and the command line.
#![cfg(feature = "hdf5")]

use std::path::Path;

use hdf5_metno as h5;
use nmf_gpu::io::hdf5::header::{slabs, Hdf5Element};
use nmf_gpu::io::hdf5::{Hdf5Dataset, Hdf5Source};
use nmf_gpu::io::{read_matrix, write_npy_atomic, FileFormat, NpySource, ReadOptions};
use nmf_gpu::ndarray::{s, Array2, ArrayD, IxDyn};
use nmf_gpu::online::{OnlineNmf, Source};
use nmf_gpu::{Nmf, NmfError, Solver};

/// A `(n, h, w)` array of small integers every type holds exactly.
fn movie(n: usize, h: usize, w: usize) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(&[n, h, w]), |i| {
        ((i[0] * 13 + i[1] * 5 + i[2] * 3) % 101) as f64
    })
}

/// V of a `(n, ...)` array: sample j is column j, the rest flattened in C order.
fn v_of(data: &ArrayD<f64>) -> Array2<f32> {
    let n = data.shape()[0];
    let m = data.len() / n;
    let flat: Vec<f32> = data.iter().map(|&x| x as f32).collect();
    Array2::from_shape_vec((n, m), flat)
        .unwrap()
        .reversed_axes()
        .as_standard_layout()
        .to_owned()
}

/// Write `data` as type `T` into `file` at `name`, in chunks of `chunk` (contiguous when
/// `None`), deflated and shuffled when `deflate`.
fn put<T: h5::H5Type + Copy>(
    file: &h5::File,
    name: &str,
    data: &ArrayD<f64>,
    conv: fn(f64) -> T,
    chunk: Option<&[usize]>,
    deflate: bool,
) {
    let typed = data.mapv(conv);
    let mut b = file.new_dataset_builder().with_data(&typed);
    if let Some(c) = chunk {
        b = b.chunk(c.to_vec());
        if deflate {
            b = b.shuffle().deflate(4);
        }
    }
    b.create(name).unwrap();
}

fn named(name: &str) -> ReadOptions {
    ReadOptions::new().dataset(name)
}

#[test]
fn every_numeric_type_reads_as_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("types.h5");
    assert_eq!(FileFormat::from_path(&path).unwrap(), FileFormat::Hdf5);
    let data = movie(11, 4, 6);
    let v = v_of(&data);
    {
        let f = h5::File::create(&path).unwrap();
        let g = f.create_group("rec").unwrap();
        drop(g);
        for (chunk, deflate, tag) in [
            (None, false, "contiguous"),
            (Some(&[3usize, 2, 6][..]), false, "chunked"),
            (Some(&[4usize, 4, 4][..]), true, "deflated"),
        ] {
            put(
                &f,
                &format!("rec/u8_{tag}"),
                &data,
                |x| x as u8,
                chunk,
                deflate,
            );
            put(
                &f,
                &format!("rec/u16_{tag}"),
                &data,
                |x| x as u16,
                chunk,
                deflate,
            );
            put(
                &f,
                &format!("rec/u32_{tag}"),
                &data,
                |x| x as u32,
                chunk,
                deflate,
            );
            put(
                &f,
                &format!("rec/u64_{tag}"),
                &data,
                |x| x as u64,
                chunk,
                deflate,
            );
            put(
                &f,
                &format!("rec/i8_{tag}"),
                &data,
                |x| x as i8,
                chunk,
                deflate,
            );
            put(
                &f,
                &format!("rec/i16_{tag}"),
                &data,
                |x| x as i16,
                chunk,
                deflate,
            );
            put(
                &f,
                &format!("rec/i32_{tag}"),
                &data,
                |x| x as i32,
                chunk,
                deflate,
            );
            put(
                &f,
                &format!("rec/i64_{tag}"),
                &data,
                |x| x as i64,
                chunk,
                deflate,
            );
            put(
                &f,
                &format!("rec/f32_{tag}"),
                &data,
                |x| x as f32,
                chunk,
                deflate,
            );
            put(&f, &format!("rec/f64_{tag}"), &data, |x| x, chunk, deflate);
        }
    }
    for ty in [
        "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32", "f64",
    ] {
        for tag in ["contiguous", "chunked", "deflated"] {
            let name = format!("/rec/{ty}_{tag}");
            let read = read_matrix(&path, &named(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(read, v, "{name}");
        }
    }
    let ds = Hdf5Dataset::open(&path, &named("rec/u16_deflated")).unwrap();
    assert_eq!(ds.header().element, Hdf5Element::UInt(2));
    assert_eq!(ds.header().chunk, Some(vec![4, 4, 4]));
    assert_eq!(ds.shape(), (24, 11));
    // Several datasets and no name: refused with the datasets listed.
    let err = read_matrix(&path, &ReadOptions::new()).unwrap_err();
    assert!(
        matches!(err, NmfError::UnsupportedInput { .. })
            && err.to_string().contains("/rec/u16_chunked")
            && err.to_string().contains("--dataset"),
        "{err}"
    );
    let err = read_matrix(&path, &named("/rec/nothing")).unwrap_err();
    assert!(matches!(err, NmfError::UnsupportedInput { .. }), "{err}");
}

#[test]
fn a_lone_dataset_needs_no_name_and_2d_and_1d_datasets_are_oriented() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.hdf5");
    // (samples, features): V is its transpose.
    let table = ArrayD::from_shape_fn(IxDyn(&[6, 4]), |i| (i[0] * 4 + i[1]) as f64);
    {
        let f = h5::File::create(&path).unwrap();
        put(&f, "table", &table, |x| x as f32, Some(&[4, 4]), true);
    }
    let v = read_matrix(&path, &ReadOptions::new()).unwrap();
    assert_eq!(v, v_of(&table));
    assert_eq!(v.dim(), (4, 6));
    let path = dir.path().join("line.h5");
    let line = ArrayD::from_shape_fn(IxDyn(&[7]), |i| i[0] as f64);
    {
        let f = h5::File::create(&path).unwrap();
        put(&f, "x", &line, |x| x, None, false);
    }
    assert_eq!(
        read_matrix(&path, &ReadOptions::new()).unwrap(),
        Array2::from_shape_fn((1, 7), |(_, j)| j as f32)
    );
}

/// The same data as an HDF5 dataset and a `.npy`: the same matrix, the same batch fit, the
/// same online fit from the two streaming sources.
#[test]
fn hdf5_and_npy_give_equal_factors() {
    let dir = tempfile::tempdir().unwrap();
    let (n, h, w) = (40, 5, 7);
    let data = ArrayD::from_shape_fn(IxDyn(&[n, h, w]), |ix| {
        let (j, i) = (ix[0], ix[1] * w + ix[2]);
        let a = ((i % 5) as f64) * ((j % 3) as f64 + 1.0);
        let b = ((i % 3) as f64 + 1.0) * ((j % 7) as f64);
        let c = ((i * 7 % 11) as f64) * ((j % 2) as f64);
        (a * 30.0 + b * 20.0 + c * 10.0).round()
    });
    let h5path = dir.path().join("movie.h5");
    {
        let f = h5::File::create(&h5path).unwrap();
        put(&f, "movie", &data, |x| x as u16, Some(&[6, 5, 7]), true);
    }
    let npy = dir.path().join("movie.npy");
    write_npy_atomic(&npy, &v_of(&data)).unwrap();
    let a = read_matrix(&h5path, &named("movie")).unwrap();
    let b = read_matrix(&npy, &ReadOptions::new()).unwrap();
    assert_eq!(a, b);
    let params = Nmf::params(3).solver(Solver::Hals).max_iter(40).seed(5);
    let fa = params.fit(a.view()).unwrap();
    let fb = params.fit(b.view()).unwrap();
    assert_eq!(fa.w(), fb.w());
    assert_eq!(fa.h(), fb.h());
    let online = OnlineNmf::params(3).batch_size(8).max_epochs(3).seed(2);
    let mut sh = Hdf5Source::open(&h5path, &named("movie")).unwrap();
    let mut sn = NpySource::open(&npy, false).unwrap();
    let oa = online.fit(&mut sh).unwrap();
    let ob = online.fit(&mut sn).unwrap();
    assert_eq!(oa.w(), ob.w());
}

#[test]
fn chunk_aligned_streaming_equals_the_whole_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.h5");
    let data = movie(23, 3, 5);
    let v = v_of(&data);
    let chunks: [Option<&[usize]>; 5] = [
        None,
        Some(&[1, 3, 5]),
        Some(&[3, 2, 5]),
        Some(&[4, 3, 2]),
        Some(&[23, 3, 5]),
    ];
    {
        let f = h5::File::create(&path).unwrap();
        for (k, c) in chunks.iter().enumerate() {
            put(&f, &format!("d{k}"), &data, |x| x as i16, *c, k % 2 == 1);
        }
    }
    for k in 0..chunks.len() {
        let mut src = Hdf5Source::open(&path, &named(&format!("d{k}"))).unwrap();
        assert_eq!(src.dim(), (15, 23));
        assert_eq!(src.frame_shape(), Some((3, 5)));
        for batch in [1, 2, 4, 5, 100] {
            src.rewind().unwrap();
            let mut j = 0;
            while let Some(b) = src.next_batch(batch).unwrap() {
                assert_eq!(b.ncols(), batch.min(23 - j));
                assert_eq!(
                    b,
                    v.slice(s![.., j..j + b.ncols()]),
                    "d{k}, batch {batch} at {j}"
                );
                j += b.ncols();
            }
            assert_eq!(j, 23);
        }
        assert!(src.describe(3).contains(&format!("d{k}")));
    }
}

#[test]
fn the_slabs_of_a_block_cover_it_in_whole_chunks() {
    let shape = [100u64, 6, 5];
    for (chunk, rows, cols, stage) in [
        (1, 0..30, 0..100, 1 << 20),
        (7, 3..17, 5..93, 4 * 30 * 10),
        (7, 0..30, 0..100, 4),
        (50, 29..30, 49..51, 1 << 20),
    ] {
        let parts = slabs(&shape, chunk, rows.clone(), cols.clone(), stage);
        let mut j = cols.start;
        for p in &parts {
            assert_eq!(p.samples.start, j);
            assert!(p.samples.end > p.samples.start);
            // Runs end on chunk boundaries (or the block's end).
            assert!(
                p.samples.end == cols.end || p.samples.end % chunk == 0,
                "{p:?}"
            );
            assert!(p.axis1.start * 5 <= rows.start && p.axis1.end * 5 >= rows.end);
            j = p.samples.end;
        }
        assert_eq!(j, cols.end);
    }
}

/// Every rank's block of a 2x2 (and 3x1) grid, read by the distributed reader, is the same
/// block of the whole matrix, dense or sparse.
#[test]
fn distributed_blocks_of_a_dataset_are_the_blocks_of_the_matrix() {
    use nmf_gpu::distributed::{input_shape, read_block, Grid, Layout, LocalBlock};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.h5");
    let data = movie(13, 4, 6);
    let v = v_of(&data);
    {
        let f = h5::File::create(&path).unwrap();
        put(&f, "c", &data, |x| x as f32, Some(&[4, 3, 4]), true);
        put(&f, "flat", &data, |x| x as u16, None, false);
    }
    for name in ["c", "/flat"] {
        let options = named(name);
        let shape = input_shape(&path, &options).unwrap();
        assert_eq!(shape, v.dim());
        for grid in [Grid { rows: 2, cols: 2 }, Grid { rows: 3, cols: 1 }] {
            for rank in 0..grid.rows * grid.cols {
                let layout = Layout::new(grid, shape, rank);
                let want = v.slice(s![layout.rows.clone(), layout.cols.clone()]);
                match read_block(&path, &layout, false, &options).unwrap() {
                    LocalBlock::Dense(b) => assert_eq!(b, want, "{name}: rank {rank} of {grid:?}"),
                    LocalBlock::Sparse(_) => panic!("a dense block was asked for"),
                }
                match read_block(&path, &layout, true, &options).unwrap() {
                    LocalBlock::Sparse(b) => assert_eq!(b.to_dense(), want),
                    LocalBlock::Dense(_) => panic!("a sparse block was asked for"),
                }
            }
        }
        let ds = Hdf5Dataset::open(&path, &options).unwrap();
        for (rows, cols) in [(5..7, 3..9), (7..8, 12..13), (13..24, 4..5)] {
            assert_eq!(
                ds.read_block(rows.clone(), cols.clone()).unwrap(),
                v.slice(s![rows, cols])
            );
        }
    }
}

// ---- hostile files ---------------------------------------------------------------------------

fn read_err(path: &Path, options: &ReadOptions) -> NmfError {
    let err = read_matrix(path, options).unwrap_err();
    let text = err.to_string();
    assert!(!text.contains('\n'), "{text}");
    if !matches!(err, NmfError::EmptyInput { .. }) {
        assert!(
            text.contains(&*path.file_name().unwrap().to_string_lossy()),
            "{text}"
        );
    }
    err
}

#[test]
fn hostile_files_give_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let small = ReadOptions::new().max_bytes(1 << 30);
    let path = dir.path().join("h.h5");
    {
        let f = h5::File::create(&path).unwrap();
        // Huge declared dimensions (no data written): refused before any allocation.
        f.new_dataset::<f32>()
            .shape([1usize << 40, 1 << 20])
            .chunk([1, 1 << 10])
            .create("huge")
            .unwrap();
        f.new_dataset::<f32>()
            .shape([4usize, 1 << 26])
            .chunk([4, 1 << 26])
            .create("bigchunk")
            .unwrap();
        f.new_dataset::<f32>()
            .shape([0usize, 4])
            .create("empty")
            .unwrap();
        let strings: Vec<h5::types::VarLenUnicode> =
            vec!["a".parse().unwrap(), "b".parse().unwrap()];
        f.new_dataset_builder()
            .with_data(&strings)
            .create("text")
            .unwrap();
        f.new_dataset_builder()
            .with_data(&[true, false, true])
            .create("flags")
            .unwrap();
        f.new_dataset::<f32>().create("scalar").unwrap();
    }
    assert!(matches!(
        read_err(&path, &small.clone().dataset("huge")),
        NmfError::TooLarge { .. }
    ));
    let err = read_err(
        &path,
        &ReadOptions::new().max_bytes(64 << 20).dataset("bigchunk"),
    );
    assert!(matches!(err, NmfError::TooLarge { .. }), "{err}");
    assert!(matches!(
        read_err(&path, &small.clone().dataset("empty")),
        NmfError::EmptyInput { .. }
    ));
    for name in ["text", "flags"] {
        let err = read_err(&path, &small.clone().dataset(name));
        assert!(
            matches!(err, NmfError::UnsupportedInput { .. }),
            "{name}: {err}"
        );
    }
    assert!(matches!(
        read_err(&path, &small.clone().dataset("scalar")),
        NmfError::Format { .. }
    ));
    // Not HDF5 at all; empty; cut short.
    let junk = dir.path().join("junk.h5");
    std::fs::write(&junk, b"\x89HDF\r\n\x1a\nnot really").unwrap();
    assert!(matches!(read_err(&junk, &small), NmfError::Format { .. }));
    std::fs::write(&junk, b"").unwrap();
    assert!(matches!(read_err(&junk, &small), NmfError::Format { .. }));
    let good = dir.path().join("good.h5");
    let data = movie(16, 8, 8);
    {
        let f = h5::File::create(&good).unwrap();
        put(&f, "m", &data, |x| x as u16, Some(&[4, 8, 8]), true);
    }
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.h5");
    for keep in [bytes.len() - 10, bytes.len() / 2, 600, 40] {
        std::fs::write(&cut, &bytes[..keep]).unwrap();
        let err = read_err(&cut, &named("m"));
        assert!(
            matches!(
                err,
                NmfError::Format { .. } | NmfError::UnsupportedInput { .. }
            ),
            "cut at {keep}: {err}"
        );
    }
    // A damaged chunk: its compressed bytes overwritten.
    let (addr, size) = {
        let f = h5::File::open(&good).unwrap();
        let ds = f.dataset("m").unwrap();
        let info = ds.chunk_info(1).unwrap();
        (info.addr as usize, info.size as usize)
    };
    let mut damaged = bytes.clone();
    for b in &mut damaged[addr..addr + size] {
        *b = 0xA5;
    }
    let bad = dir.path().join("bad.h5");
    std::fs::write(&bad, &damaged).unwrap();
    let err = read_err(&bad, &named("m"));
    assert!(matches!(err, NmfError::Format { .. }), "{err}");
    // The undamaged chunks still stream; the damaged one is an error of the source.
    let mut src = Hdf5Source::open(&bad, &named("m")).unwrap();
    assert_eq!(
        src.next_batch(4).unwrap().unwrap(),
        v_of(&data).slice(s![.., 0..4])
    );
    assert!(matches!(src.next_batch(4), Err(NmfError::Format { .. })));
}

#[test]
fn the_whole_matrix_is_held_to_the_limit_but_the_source_streams() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.h5");
    let data = movie(9, 5, 7);
    let v = v_of(&data);
    {
        let f = h5::File::create(&path).unwrap();
        put(&f, "m", &data, |x| x as u8, Some(&[2, 5, 7]), false);
    }
    let tight = ReadOptions::new().max_bytes(1000).dataset("m");
    assert!(matches!(
        read_matrix(&path, &tight),
        Err(NmfError::TooLarge { .. })
    ));
    let mut src = Hdf5Source::open(&path, &tight).unwrap();
    assert_eq!(src.next_batch(4).unwrap().unwrap(), v.slice(s![.., 0..4]));
    src.rewind().unwrap();
    assert!(matches!(src.next_batch(9), Err(NmfError::TooLarge { .. })));
}

/// `nmf fit` reads a dataset named by `--dataset` whole and streams it with `--online`;
/// summary.json records the dataset; `nmf rank` reads it too.
#[test]
fn nmf_fit_reads_and_streams_an_hdf5_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.h5");
    let data = movie(12, 5, 7);
    {
        let f = h5::File::create(&path).unwrap();
        f.create_group("imaging").unwrap();
        put(
            &f,
            "imaging/movie",
            &data,
            |x| x as u16,
            Some(&[5, 5, 7]),
            true,
        );
        put(&f, "other", &data, |x| x as f32, None, false);
    }
    for online in [false, true] {
        let out = dir.path().join(format!("fit-{online}"));
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_nmf"));
        cmd.args([
            "fit",
            "--rank",
            "2",
            "--quiet",
            "--dataset",
            "/imaging/movie",
            "--input",
        ])
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
        assert_eq!(w.dim(), (35, 2), "online {online}");
        let h = read_matrix(out.join("H.npy"), &ReadOptions::new()).unwrap();
        assert_eq!(h.dim(), (2, 12), "online {online}");
        let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
        assert!(
            summary.contains("\"dataset\": \"/imaging/movie\""),
            "{summary}"
        );
    }
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_nmf"))
        .args(["fit", "--rank", "2", "--quiet", "--input"])
        .arg(&path)
        .arg("--output-dir")
        .arg(dir.path().join("nope"))
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("/imaging/movie"));
}
