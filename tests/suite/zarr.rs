//! Zarr v2 and v3 arrays: stores written by zarr-python (tests/fixtures/zarr) and by the
//! library's writer read as their values for every element type, compressor and chunk layout,
//! the same factors as the `.npy` of the same data, chunk-aligned streaming equal to the whole
//! read, distributed blocks equal to the blocks of the whole matrix, hostile metadata and
//! chunks as typed errors, and the command line.
#![cfg(feature = "zarr")]

use std::path::{Path, PathBuf};

use nmf_gpu::io::zarr::meta::ZarrKind;
use nmf_gpu::io::zarr::{ZarrArray, ZarrCompression, ZarrDtype, ZarrSource, ZarrSpec, ZarrWriter};
use nmf_gpu::io::{read_matrix, write_npy_atomic, FileFormat, NpySource, ReadOptions};
use nmf_gpu::ndarray::{s, Array2, ArrayD, IxDyn};
use nmf_gpu::online::{OnlineNmf, Source};
use nmf_gpu::{Nmf, NmfError, Solver};

/// The fixtures' array: 10 samples of 8x8, value `((s·7 + y·8 + x)·3) mod 251`.
fn fixture_v() -> Array2<f32> {
    Array2::from_shape_fn((64, 10), |(f, s)| (((s * 7 + f) * 3) % 251) as f32)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zarr")
}

fn named(name: &str) -> ReadOptions {
    ReadOptions::new().dataset(name)
}

#[test]
fn zarr_python_v2_arrays_read_as_their_values() {
    let store = fixtures().join("v2.zarr");
    assert_eq!(FileFormat::from_path(&store).unwrap(), FileFormat::Zarr);
    let v = fixture_v();
    for name in [
        "blosc_lz4_u2",
        "blosc_zstd_f4",
        "blosc_zlib_i2",
        "blosc_lz4_u1",
        "zlib_f8_big",
        "gzip_i4",
        "zstd_u2_fortran",
        "lz4_u2_slash",
        "raw_u8",
    ] {
        let read = read_matrix(&store, &named(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(read, v, "{name}");
    }
    // Chunks 0 and 2 were never written: the fill value.
    let missing = read_matrix(&store, &named("missing_f4")).unwrap();
    for s in 0..10 {
        let want = if (4..8).contains(&s) {
            v.column(s).to_owned()
        } else {
            v.column(s).mapv(|_| 7.5)
        };
        assert_eq!(missing.column(s), want, "sample {s}");
    }
    // The array directory and its .zarray, without --dataset.
    let dir = store.join("gzip_i4");
    assert_eq!(read_matrix(&dir, &ReadOptions::new()).unwrap(), v);
    assert_eq!(
        read_matrix(dir.join(".zarray"), &ReadOptions::new()).unwrap(),
        v
    );
    // Refused, naming what: bit shuffle and the BloscLZ compressor.
    for (name, words) in [
        ("blosc_bitshuffle_u2", "bit shuffle"),
        ("blosc_blosclz_u2", "blosclz"),
    ] {
        let err = read_matrix(&store, &named(name)).unwrap_err();
        assert!(
            matches!(err, NmfError::UnsupportedInput { .. }) && err.to_string().contains(words),
            "{name}: {err}"
        );
    }
    // A group without a name: the arrays are listed.
    let err = read_matrix(&store, &ReadOptions::new()).unwrap_err();
    assert!(
        matches!(err, NmfError::UnsupportedInput { .. })
            && err.to_string().contains("--dataset")
            && err.to_string().contains("gzip_i4"),
        "{err}"
    );
    let err = read_matrix(&store, &named("nothing_here")).unwrap_err();
    assert!(matches!(err, NmfError::UnsupportedInput { .. }), "{err}");
}

#[test]
fn zarr_python_v3_arrays_read_as_their_values() {
    let store = fixtures().join("v3.zarr");
    let v = fixture_v();
    for name in [
        "default_u2",
        "gzip_f4",
        "blosc_i2",
        "big_zstd_f8",
        "transpose_u2",
    ] {
        let read = read_matrix(&store, &named(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(read, v, "{name}");
    }
    let arr = ZarrArray::open(&store, &named("/default_u2")).unwrap();
    assert_eq!(arr.zarr_format(), 3);
    assert_eq!(arr.dtype().name(), "uint16");
    assert_eq!(arr.shape(), (64, 10));
    assert_eq!(
        read_matrix(store.join("gzip_f4/zarr.json"), &ReadOptions::new()).unwrap(),
        v
    );
    let err = read_matrix(&store, &named("sharded_u2")).unwrap_err();
    assert!(
        matches!(err, NmfError::UnsupportedInput { .. })
            && err.to_string().contains("sharding_indexed"),
        "{err}"
    );
}

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

fn write(dir: &Path, spec: ZarrSpec, data: &ArrayD<f64>) {
    ZarrWriter::create(dir, spec)
        .unwrap()
        .write_array(data.view())
        .unwrap();
}

fn dtype(kind: ZarrKind, size: usize, big_endian: bool) -> ZarrDtype {
    ZarrDtype {
        kind,
        size,
        big_endian,
    }
}

#[test]
fn every_type_compressor_and_layout_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let data = movie(11, 4, 6);
    let v = v_of(&data);
    let types = [
        dtype(ZarrKind::UInt, 1, false),
        dtype(ZarrKind::UInt, 2, true),
        dtype(ZarrKind::UInt, 4, false),
        dtype(ZarrKind::UInt, 8, false),
        dtype(ZarrKind::Int, 1, false),
        dtype(ZarrKind::Int, 2, false),
        dtype(ZarrKind::Int, 4, true),
        dtype(ZarrKind::Int, 8, false),
        dtype(ZarrKind::Float, 2, false),
        dtype(ZarrKind::Float, 4, false),
        dtype(ZarrKind::Float, 8, true),
    ];
    let mut k = 0;
    for format in [2u8, 3] {
        for ty in types {
            for (compression, fortran, sep) in [
                (ZarrCompression::None, false, '.'),
                (ZarrCompression::Gzip, true, '/'),
                (ZarrCompression::Zstd, false, '/'),
                (ZarrCompression::BloscLz4, true, '.'),
                (
                    if format == 2 {
                        ZarrCompression::Zlib
                    } else {
                        ZarrCompression::Crc32c
                    },
                    false,
                    '.',
                ),
                (
                    if format == 2 {
                        ZarrCompression::Lz4
                    } else {
                        ZarrCompression::None
                    },
                    true,
                    '/',
                ),
            ] {
                k += 1;
                let path = dir.path().join(format!("a{k}.zarr"));
                let mut spec = ZarrSpec::new(format, &[11, 4, 6], &[3, 3, 4], ty);
                spec.compression = compression;
                spec.fortran_order = fortran;
                spec.separator = sep;
                write(&path, spec, &data);
                let read = read_matrix(&path, &ReadOptions::new())
                    .unwrap_or_else(|e| panic!("v{format} {ty:?} {compression:?}: {e}"));
                assert_eq!(read, v, "v{format} {ty:?} {compression:?} F {fortran}");
            }
        }
    }
    // Bool: zero and nonzero.
    let path = dir.path().join("b.zarr");
    write(
        &path,
        ZarrSpec::new(2, &[11, 4, 6], &[5, 4, 6], dtype(ZarrKind::Bool, 1, false)),
        &data,
    );
    assert_eq!(
        read_matrix(&path, &ReadOptions::new()).unwrap(),
        v.mapv(|x| f32::from(u8::from(x != 0.0)))
    );
    // 1-D and 2-D arrays: n samples of one feature; (n, f) gives its transpose.
    let path = dir.path().join("one.zarr");
    let line = ArrayD::from_shape_fn(IxDyn(&[7]), |i| i[0] as f64);
    write(
        &path,
        ZarrSpec::new(3, &[7], &[3], dtype(ZarrKind::Float, 4, false)),
        &line,
    );
    assert_eq!(
        read_matrix(&path, &ReadOptions::new()).unwrap(),
        Array2::from_shape_fn((1, 7), |(_, j)| j as f32)
    );
}

/// The same data as a Zarr array and a `.npy`: the same matrix, the same batch fit, the same
/// online fit from the two streaming sources.
#[test]
fn zarr_and_npy_give_equal_factors() {
    let dir = tempfile::tempdir().unwrap();
    let (n, h, w) = (40, 5, 7);
    let data = ArrayD::from_shape_fn(IxDyn(&[n, h, w]), |ix| {
        let (j, i) = (ix[0], ix[1] * w + ix[2]);
        let a = ((i % 5) as f64) * ((j % 3) as f64 + 1.0);
        let b = ((i % 3) as f64 + 1.0) * ((j % 7) as f64);
        let c = ((i * 7 % 11) as f64) * ((j % 2) as f64);
        (a * 30.0 + b * 20.0 + c * 10.0).round()
    });
    let zarr = dir.path().join("movie.zarr");
    let mut spec = ZarrSpec::new(
        2,
        &[n as u64, h as u64, w as u64],
        &[6, 5, 7],
        dtype(ZarrKind::UInt, 2, false),
    );
    spec.compression = ZarrCompression::BloscLz4;
    write(&zarr, spec, &data);
    let npy = dir.path().join("movie.npy");
    write_npy_atomic(&npy, &v_of(&data)).unwrap();
    let a = read_matrix(&zarr, &ReadOptions::new()).unwrap();
    let b = read_matrix(&npy, &ReadOptions::new()).unwrap();
    assert_eq!(a, b);
    let params = Nmf::params(3).solver(Solver::Hals).max_iter(40).seed(5);
    let fa = params.fit(a.view()).unwrap();
    let fb = params.fit(b.view()).unwrap();
    assert_eq!(fa.w(), fb.w());
    assert_eq!(fa.h(), fb.h());
    let online = OnlineNmf::params(3).batch_size(8).max_epochs(3).seed(2);
    let mut sz = ZarrSource::open(&zarr, &ReadOptions::new()).unwrap();
    let mut sn = NpySource::open(&npy, false).unwrap();
    let oa = online.fit(&mut sz).unwrap();
    let ob = online.fit(&mut sn).unwrap();
    assert_eq!(oa.w(), ob.w());
}

#[test]
fn chunk_aligned_streaming_equals_the_whole_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = movie(23, 3, 5);
    let v = v_of(&data);
    for chunk0 in [1u64, 3, 4, 23, 30] {
        let path = dir.path().join(format!("c{chunk0}.zarr"));
        let mut spec = ZarrSpec::new(
            3,
            &[23, 3, 5],
            &[chunk0, 2, 5],
            dtype(ZarrKind::UInt, 2, false),
        );
        spec.compression = ZarrCompression::Zstd;
        write(&path, spec, &data);
        let mut src = ZarrSource::open(&path, &ReadOptions::new()).unwrap();
        assert_eq!(src.dim(), (15, 23));
        assert_eq!(src.frame_shape(), Some((3, 5)));
        for batch in [1, 2, 4, 5, 100] {
            src.rewind().unwrap();
            let mut j = 0;
            while let Some(b) = src.next_batch(batch).unwrap() {
                assert_eq!(
                    b.ncols(),
                    batch.min(23 - j),
                    "chunk {chunk0}, batch {batch} at {j}"
                );
                assert_eq!(
                    b,
                    v.slice(s![.., j..j + b.ncols()]),
                    "chunk {chunk0}, batch {batch} at {j}"
                );
                j += b.ncols();
            }
            assert_eq!(j, 23);
        }
        // Batch sizes changing between calls.
        src.rewind().unwrap();
        let mut j = 0;
        for batch in [2, 5, 1, 7, 3, 9] {
            let Some(b) = src.next_batch(batch).unwrap() else {
                break;
            };
            assert_eq!(b, v.slice(s![.., j..j + b.ncols()]));
            j += b.ncols();
        }
        assert!(src.describe(3).contains(&format!("c{chunk0}.zarr")));
    }
}

/// Every rank's block of a 2x2 (and 3x1) grid, read by the distributed reader, is the same
/// block of the whole matrix, dense or sparse; blocks cutting the feature axes anywhere too.
#[test]
fn distributed_blocks_of_an_array_are_the_blocks_of_the_matrix() {
    use nmf_gpu::distributed::{input_shape, read_block, Grid, Layout, LocalBlock};
    let dir = tempfile::tempdir().unwrap();
    let data = movie(13, 4, 6);
    let v = v_of(&data);
    let store = dir.path().join("store.zarr");
    std::fs::create_dir(&store).unwrap();
    std::fs::write(store.join(".zgroup"), br#"{"zarr_format": 2}"#).unwrap();
    let mut spec = ZarrSpec::new(2, &[13, 4, 6], &[4, 3, 4], dtype(ZarrKind::Int, 2, false));
    spec.compression = ZarrCompression::Zlib;
    write(&store.join("movie"), spec, &data);
    let options = named("movie");
    let shape = input_shape(&store, &options).unwrap();
    assert_eq!(shape, v.dim());
    for grid in [Grid { rows: 2, cols: 2 }, Grid { rows: 3, cols: 1 }] {
        for rank in 0..grid.rows * grid.cols {
            let layout = Layout::new(grid, shape, rank);
            let want = v.slice(s![layout.rows.clone(), layout.cols.clone()]);
            match read_block(&store, &layout, false, &options).unwrap() {
                LocalBlock::Dense(b) => assert_eq!(b, want, "rank {rank} of {grid:?}"),
                LocalBlock::Sparse(_) => panic!("a dense block was asked for"),
            }
            match read_block(&store, &layout, true, &options).unwrap() {
                LocalBlock::Sparse(b) => assert_eq!(b.to_dense(), want),
                LocalBlock::Dense(_) => panic!("a sparse block was asked for"),
            }
        }
    }
    let arr = ZarrArray::open(&store, &options).unwrap();
    for (rows, cols) in [
        (0..24, 0..13),
        (5..7, 3..9),
        (7..8, 12..13),
        (0..1, 0..1),
        (13..24, 4..5),
    ] {
        assert_eq!(
            arr.read_block(rows.clone(), cols.clone()).unwrap(),
            v.slice(s![rows, cols])
        );
    }
    assert!(matches!(
        arr.read_block(0..25, 0..1),
        Err(NmfError::Format { .. })
    ));
}

// ---- hostile stores ------------------------------------------------------------------------

/// A v2 array directory with the metadata `zarray` and chunk files `(key, bytes)`.
fn raw_array(root: &Path, name: &str, zarray: &str, chunks: &[(&str, &[u8])]) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".zarray"), zarray).unwrap();
    for (key, bytes) in chunks {
        std::fs::write(dir.join(key), bytes).unwrap();
    }
    dir
}

fn zarray(shape: &str, chunks: &str, dtype: &str, compressor: &str) -> String {
    format!(
        r#"{{"zarr_format": 2, "shape": {shape}, "chunks": {chunks}, "dtype": "{dtype}", "compressor": {compressor}, "fill_value": 0, "order": "C", "filters": null}}"#
    )
}

fn read_err(dir: &Path, options: &ReadOptions) -> NmfError {
    let err = read_matrix(dir, options).unwrap_err();
    let text = err.to_string();
    assert!(!text.contains('\n'), "{text}");
    err
}

#[test]
fn hostile_metadata_and_chunks_give_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let small = ReadOptions::new().max_bytes(1 << 30);
    // Huge dimensions: refused from the metadata, before any allocation.
    let huge = raw_array(
        root,
        "huge",
        &zarray("[1000000000, 1000000000]", "[1, 1000]", "<f4", "null"),
        &[],
    );
    assert!(matches!(read_err(&huge, &small), NmfError::TooLarge { .. }));
    let many = raw_array(
        root,
        "many",
        &zarray("[18446744073709551615, 4, 4]", "[1, 4, 4]", "<f4", "null"),
        &[],
    );
    assert!(matches!(
        read_err(&many, &small),
        NmfError::TooLarge { .. } | NmfError::Format { .. }
    ));
    // One chunk larger than the limit.
    let big_chunk = raw_array(
        root,
        "bigchunk",
        &zarray("[4, 4]", "[100000000, 100000]", "<f8", "null"),
        &[],
    );
    assert!(matches!(
        read_err(&big_chunk, &small),
        NmfError::TooLarge { .. }
    ));
    // Empty and zero extents.
    let empty = raw_array(
        root,
        "empty",
        &zarray("[0, 4]", "[1, 4]", "<f4", "null"),
        &[],
    );
    assert!(matches!(
        read_err(&empty, &small),
        NmfError::EmptyInput { .. }
    ));
    let zero_chunk = raw_array(
        root,
        "zerochunk",
        &zarray("[4, 4]", "[0, 4]", "<f4", "null"),
        &[],
    );
    assert!(matches!(
        read_err(&zero_chunk, &small),
        NmfError::Format { .. }
    ));
    // Not JSON; not an object; a wrong format number; a structured dtype; an unknown codec.
    for (name, text) in [
        ("notjson", "{\"zarr_format\": 2, \"shape\": [".to_string()),
        ("list", "[1, 2]".to_string()),
        (
            "v9",
            zarray("[4, 4]", "[2, 2]", "<f4", "null")
                .replace("\"zarr_format\": 2", "\"zarr_format\": 9"),
        ),
        ("chunkaxes", zarray("[4, 4]", "[2]", "<f4", "null")),
        ("negative", zarray("[4, -4]", "[2, 2]", "<f4", "null")),
    ] {
        let d = raw_array(root, name, &text, &[]);
        assert!(
            matches!(read_err(&d, &small), NmfError::Format { .. }),
            "{name}"
        );
    }
    for (name, text, words) in [
        (
            "complex",
            zarray("[4, 4]", "[2, 2]", "<c8", "null"),
            "dtype",
        ),
        (
            "bz2",
            zarray("[4, 4]", "[2, 2]", "<f4", r#"{"id": "bz2", "level": 1}"#),
            "bz2",
        ),
        (
            "filters",
            zarray("[4, 4]", "[2, 2]", "<f4", "null").replace(
                "\"filters\": null",
                r#""filters": [{"id": "delta", "dtype": "<f4"}]"#,
            ),
            "delta",
        ),
    ] {
        let d = raw_array(root, name, &text, &[]);
        let err = read_err(&d, &small);
        assert!(
            matches!(err, NmfError::UnsupportedInput { .. }) && err.to_string().contains(words),
            "{name}: {err}"
        );
    }
    // A truncated chunk, an oversized one, a corrupt zlib stream, a zlib stream decoding to more
    // than the chunk (a small bomb), a blosc header claiming more than the chunk.
    let meta = zarray("[2, 4]", "[2, 4]", "<f4", "null");
    let d = raw_array(root, "trunc", &meta, &[("0.0", &[0u8; 31])]);
    assert!(matches!(read_err(&d, &small), NmfError::Format { .. }));
    let d = raw_array(root, "long", &meta, &[("0.0", &[0u8; 33])]);
    assert!(matches!(read_err(&d, &small), NmfError::Format { .. }));
    let zmeta = zarray("[2, 4]", "[2, 4]", "<f4", r#"{"id": "zlib", "level": 1}"#);
    let d = raw_array(
        root,
        "corrupt",
        &zmeta,
        &[("0.0", b"\x78\x9c\xff\xff\xff\xff")],
    );
    assert!(matches!(read_err(&d, &small), NmfError::Format { .. }));
    let bomb = {
        use std::io::Write;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![0u8; 1 << 20]).unwrap();
        e.finish().unwrap()
    };
    let d = raw_array(root, "bomb", &zmeta, &[("0.0", &bomb)]);
    assert!(matches!(read_err(&d, &small), NmfError::Format { .. }));
    let bmeta = zarray(
        "[2, 4]",
        "[2, 4]",
        "<f4",
        r#"{"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1}"#,
    );
    let mut header = vec![2u8, 1, 0x21, 4];
    header.extend_from_slice(&(1u32 << 30).to_le_bytes());
    header.extend_from_slice(&4096u32.to_le_bytes());
    header.extend_from_slice(&16u32.to_le_bytes());
    let d = raw_array(root, "blosc", &bmeta, &[("0.0", &header)]);
    assert!(matches!(read_err(&d, &small), NmfError::Format { .. }));
    // A v3 array with an unsupported codec, a non-regular grid; a group without arrays.
    let v3 = root.join("v3");
    std::fs::create_dir_all(&v3).unwrap();
    std::fs::write(
        v3.join("zarr.json"),
        r#"{"zarr_format": 3, "node_type": "array", "shape": [4, 4], "data_type": "float32",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2, 2]}},
            "chunk_key_encoding": {"name": "default"}, "fill_value": 0,
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "bz2"}]}"#,
    )
    .unwrap();
    let err = read_err(&v3, &small);
    assert!(
        matches!(err, NmfError::UnsupportedInput { .. }) && err.to_string().contains("bz2"),
        "{err}"
    );
    let group = root.join("group.zarr");
    std::fs::create_dir_all(&group).unwrap();
    std::fs::write(
        group.join("zarr.json"),
        r#"{"zarr_format": 3, "node_type": "group"}"#,
    )
    .unwrap();
    let err = read_err(&group, &small);
    assert!(matches!(err, NmfError::UnsupportedInput { .. }), "{err}");
    // A dataset name climbing out of the store.
    let err = read_err(&group, &ReadOptions::new().dataset("../v3"));
    assert!(matches!(err, NmfError::UnsupportedInput { .. }), "{err}");
}

#[test]
fn the_whole_matrix_is_held_to_the_limit_but_the_source_streams() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.zarr");
    let data = movie(9, 5, 7);
    let v = v_of(&data);
    write(
        &path,
        ZarrSpec::new(2, &[9, 5, 7], &[2, 5, 7], dtype(ZarrKind::UInt, 1, false)),
        &data,
    );
    // The matrix takes 35·9·4 = 1260 bytes: a 1000-byte limit refuses it, streaming 4 samples
    // (560 bytes) a batch works.
    let tight = ReadOptions::new().max_bytes(1000);
    assert!(matches!(
        read_matrix(&path, &tight),
        Err(NmfError::TooLarge { .. })
    ));
    let mut src = ZarrSource::open(&path, &tight).unwrap();
    assert_eq!(src.next_batch(4).unwrap().unwrap(), v.slice(s![.., 0..4]));
    src.rewind().unwrap();
    assert!(matches!(src.next_batch(9), Err(NmfError::TooLarge { .. })));
}

/// `nmf fit` reads an array of a store named by `--dataset` whole and streams it with
/// `--online`; summary.json records the dataset; `nmf transform` and `nmf rank` read it too.
#[test]
fn nmf_fit_reads_and_streams_a_zarr_array() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("rec.zarr");
    std::fs::create_dir(&store).unwrap();
    std::fs::write(
        store.join("zarr.json"),
        r#"{"zarr_format": 3, "node_type": "group"}"#,
    )
    .unwrap();
    let data = movie(12, 5, 7);
    let mut spec = ZarrSpec::new(3, &[12, 5, 7], &[5, 5, 7], dtype(ZarrKind::UInt, 2, false));
    spec.compression = ZarrCompression::Zstd;
    write(&store.join("movie"), spec, &data);
    for online in [false, true] {
        let out = dir.path().join(format!("fit-{online}"));
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_nmf"));
        cmd.args([
            "fit",
            "--rank",
            "2",
            "--quiet",
            "--dataset",
            "/movie",
            "--input",
        ])
        .arg(&store)
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
        assert!(summary.contains("\"dataset\": \"/movie\""), "{summary}");
    }
    // transform with the fitted model.
    let h_out = dir.path().join("h.npy");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_nmf"))
        .args(["transform", "--quiet", "--dataset", "movie", "--input"])
        .arg(&store)
        .arg("--model")
        .arg(dir.path().join("fit-false"))
        .arg("--output")
        .arg(&h_out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        read_matrix(&h_out, &ReadOptions::new()).unwrap().dim(),
        (2, 12)
    );
    // Without --dataset: the group's arrays are named in the error.
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_nmf"))
        .args(["fit", "--rank", "2", "--quiet", "--input"])
        .arg(&store)
        .arg("--output-dir")
        .arg(dir.path().join("nope"))
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("movie"));
}

/// Streaming throughput of a 16-bit movie as Zarr arrays (uncompressed, Blosc-LZ4, Zstandard;
/// chunks of 16 frames) and, with the feature `hdf5`, as HDF5 datasets (contiguous; chunks of
/// 16 frames, shuffled and deflated), beside the same movie as a float32 `.npy` (one pass,
/// batches of 256 frames, files fresh in the page cache); prints frames/s and MB/s of file.
/// `cargo test --release --features hdf5 --test suite zarr::stream_throughput -- --ignored
/// --nocapture` (`NMF_BENCH_FRAMES` frames of 256x256, default 2000).
#[test]
#[ignore = "a measurement, not a check"]
fn stream_throughput() {
    use nmf_gpu::io::NpyColumnWriter;
    let frames: usize = std::env::var("NMF_BENCH_FRAMES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let side = 256usize;
    let px = |i: usize, j: usize| (((i % 251) * (j % 7) + (i / 256) * 3 + j) % 4000) as u16;
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("movie.npy");
    let mut npy_w = NpyColumnWriter::create(&npy, side * side, frames).unwrap();
    let mut column = Array2::<f32>::zeros((side * side, 1));
    for j in 0..frames {
        for (i, dst) in column.iter_mut().enumerate() {
            *dst = f32::from(px(i, j));
        }
        npy_w.append(column.view()).unwrap();
    }
    npy_w.commit().unwrap();
    let chunk = 16usize;
    let mut cases: Vec<(String, PathBuf, ReadOptions)> = Vec::new();
    for (name, c) in [
        ("zarr u16", ZarrCompression::None),
        ("zarr u16 blosc-lz4", ZarrCompression::BloscLz4),
        ("zarr u16 zstd", ZarrCompression::Zstd),
    ] {
        let path = dir.path().join(format!("{}.zarr", name.replace(' ', "-")));
        let mut spec = ZarrSpec::new(
            2,
            &[frames as u64, side as u64, side as u64],
            &[chunk as u64, side as u64, side as u64],
            dtype(ZarrKind::UInt, 2, false),
        );
        spec.compression = c;
        let w = ZarrWriter::create(&path, spec).unwrap();
        let mut values = vec![0f64; chunk * side * side];
        for k in 0..frames.div_ceil(chunk) {
            for (t, v) in values.chunks_mut(side * side).enumerate() {
                for (i, x) in v.iter_mut().enumerate() {
                    *x = f64::from(px(i, k * chunk + t));
                }
            }
            w.write_chunk(&[k as u64, 0, 0], &values).unwrap();
        }
        cases.push((name.to_string(), path, ReadOptions::new()));
    }
    #[cfg(feature = "hdf5")]
    {
        use hdf5_metno as h5;
        let dims = [frames, side, side];
        for name in ["plain", "deflate"] {
            let path = dir.path().join(format!("movie-{name}.h5"));
            let f = h5::File::create(&path).unwrap();
            let ds = if name == "plain" {
                f.new_dataset::<u16>().shape(dims).create("movie").unwrap()
            } else {
                f.new_dataset::<u16>()
                    .shape(dims)
                    .chunk([chunk, side, side])
                    .shuffle()
                    .deflate(1)
                    .create("movie")
                    .unwrap()
            };
            for k in 0..frames.div_ceil(chunk) {
                let n = chunk.min(frames - k * chunk);
                let slab = ArrayD::from_shape_fn(IxDyn(&[n, side, side]), |ix| {
                    px(ix[1] * side + ix[2], k * chunk + ix[0])
                });
                ds.write_slice(&slab, s![k * chunk..k * chunk + n, .., ..])
                    .unwrap();
            }
            drop(f);
            cases.push((format!("hdf5 u16 {name}"), path, ReadOptions::new()));
        }
    }
    let pass = |src: &mut dyn Source| -> f64 {
        let start = std::time::Instant::now();
        let mut n = 0;
        while let Some(b) = src.next_batch(256).unwrap() {
            n += b.ncols();
        }
        assert_eq!(n, frames);
        start.elapsed().as_secs_f64()
    };
    let size = |p: &Path| -> f64 {
        if p.is_dir() {
            std::fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().metadata().unwrap().len() as f64)
                .sum::<f64>()
                / 1e6
        } else {
            std::fs::metadata(p).unwrap().len() as f64 / 1e6
        }
    };
    let report = |name: &str, mb: f64, s: f64| {
        println!(
            "{name:>22}: {:>8.0} frames/s, {:>7.0} MB/s of file ({mb:.0} MB), {s:.2} s",
            frames as f64 / s,
            mb / s
        );
    };
    let mut src = NpySource::open(&npy, false).unwrap();
    pass(&mut src);
    src.rewind().unwrap();
    report("npy f32", size(&npy), pass(&mut src));
    for (name, path, options) in &cases {
        let mut src: Box<dyn Source> = if name.starts_with("zarr") {
            Box::new(ZarrSource::open(path, options).unwrap())
        } else {
            #[cfg(feature = "hdf5")]
            {
                Box::new(nmf_gpu::io::hdf5::Hdf5Source::open(path, options).unwrap())
            }
            #[cfg(not(feature = "hdf5"))]
            unreachable!()
        };
        pass(&mut *src);
        src.rewind().unwrap();
        report(name, size(path), pass(&mut *src));
    }
}

// ---- streaming memory --------------------------------------------------------------------

/// The movie streamed: 64x64 16-bit frames, 4000 of them in chunks of 50 (33 MB on disk,
/// 66 MB as float32), through one online epoch in batches of 128 frames.
const STREAM_SIDE: usize = 64;
const STREAM_FRAMES: usize = 4000;
const STREAM_CHUNK: usize = 50;
const STREAM_BATCH: usize = 128;
/// The read limit of the child: the whole matrix would exceed it.
const STREAM_LIMIT: u64 = 48 << 20;
/// One batch as float32 (bytes).
const STREAM_BATCH_BYTES: u64 = (STREAM_SIDE * STREAM_SIDE * STREAM_BATCH * 4) as u64;
/// The growth of resident memory (VmHWM at the end less VmRSS once the source is opened) of a
/// child streaming the array through one online epoch stays under this bound: the batch being
/// fitted, the batch read ahead and the fit's copies and products of a batch (6 batches, as
/// for TIFF stacks), the source's chunk-aligned assembly (2·m·(b + c − 1)·4 bytes), one stored
/// and one decoded chunk, one chunk row staged as float32, and 8 MiB of slack (thread stacks,
/// allocator).
const STREAM_PEAK_BYTES: u64 = 6 * STREAM_BATCH_BYTES
    + (2 * STREAM_SIDE * STREAM_SIDE * (STREAM_BATCH + STREAM_CHUNK - 1) * 4) as u64
    + (2 * STREAM_CHUNK * STREAM_SIDE * STREAM_SIDE * 2) as u64
    + (STREAM_CHUNK * STREAM_SIDE * STREAM_SIDE * 4) as u64
    + (8 << 20);

fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// The child half of `streaming_a_large_array_keeps_memory_bounded` (does nothing unless the
/// parent set the array to stream).
#[test]
fn zarr_stream_child() {
    let Some(path) = std::env::var_os("NMF_ZARR_STREAM_DIR") else {
        return;
    };
    let options = ReadOptions::new().max_bytes(STREAM_LIMIT);
    assert!(matches!(
        read_matrix(&path, &options),
        Err(NmfError::TooLarge { .. })
    ));
    let mut src = ZarrSource::open(&path, &options).unwrap();
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
fn streaming_a_large_array_keeps_memory_bounded() {
    #[cfg(not(target_os = "linux"))]
    return;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.zarr");
    let mut spec = ZarrSpec::new(
        3,
        &[STREAM_FRAMES as u64, STREAM_SIDE as u64, STREAM_SIDE as u64],
        &[STREAM_CHUNK as u64, STREAM_SIDE as u64, STREAM_SIDE as u64],
        dtype(ZarrKind::UInt, 2, false),
    );
    spec.compression = ZarrCompression::None;
    let w = ZarrWriter::create(&path, spec).unwrap();
    let frame = STREAM_SIDE * STREAM_SIDE;
    let mut values = vec![0f64; STREAM_CHUNK * frame];
    for k in 0..STREAM_FRAMES / STREAM_CHUNK {
        for (t, v) in values.chunks_mut(frame).enumerate() {
            let j = k * STREAM_CHUNK + t;
            for (i, x) in v.iter_mut().enumerate() {
                *x = (((i % 7) * (j % 5) + (i % 3) * (j % 11)) * 100 + (i * j) % 13) as f64;
            }
        }
        w.write_chunk(&[k as u64, 0, 0], &values).unwrap();
    }
    let float_bytes = (frame * STREAM_FRAMES * 4) as u64;
    assert!(float_bytes > STREAM_LIMIT);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "zarr::zarr_stream_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NMF_ZARR_STREAM_DIR", &path)
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
        "resident memory grew by {} MiB streaming a {} MiB (as float32) array",
        (peak - base) >> 20,
        float_bytes >> 20
    );
}
