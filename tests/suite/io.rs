//! File readers and writers of `nmf_gpu::io`: every format read exactly, every malformed input
//! an error naming the file (never a panic), atomic writes, and `Factorization::from_w`.

use std::path::{Path, PathBuf};

use crate::common::planted;
use nmf_gpu::io::{
    read_located, read_matrix, write_npy_atomic, FileFormat, HeaderMode, ReadOptions, StagedFile,
};
use nmf_gpu::ndarray::{array, Array2, ShapeBuilder};
use nmf_gpu::{Factorization, Init, Nmf, NmfError, Solver};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

// ---------- helpers ----------

/// The bytes of a `.npy` file: `descr`, order, shape, and raw data.
fn npy_bytes(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out
}

/// A 2-D `.npy` of `a` with the given element encoding and order.
fn npy_of<T, F>(a: &Array2<f32>, descr: &str, fortran: bool, enc: F) -> Vec<u8>
where
    F: Fn(f32) -> T,
    T: AsRef<[u8]>,
{
    let mut data = Vec::new();
    if fortran {
        for j in 0..a.ncols() {
            for i in 0..a.nrows() {
                data.extend_from_slice(enc(a[[i, j]]).as_ref());
            }
        }
    } else {
        for &x in a.iter() {
            data.extend_from_slice(enc(x).as_ref());
        }
    }
    npy_bytes(
        descr,
        fortran,
        &format!("({}, {})", a.nrows(), a.ncols()),
        &data,
    )
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn opts() -> ReadOptions {
    ReadOptions::new()
}

fn sample() -> Array2<f32> {
    array![[0.0, 1.5, 2.0], [3.25, 0.0, 5.0]]
}

/// Every error of a reader names the file.
fn err_of(path: &Path, o: &ReadOptions) -> NmfError {
    let e = read_matrix(path, o).expect_err("expected an error");
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        e.to_string().contains(&name),
        "message lacks the file name: {e}"
    );
    e
}

// ---------- .npy ----------

/// Half-precision bytes of the (exactly representable) test values.
fn f16_bits(x: f32) -> [u8; 2] {
    let bits: u16 = match x {
        0.0 => 0x0000,
        1.5 => 0x3e00,
        2.0 => 0x4000,
        3.25 => 0x4280,
        5.0 => 0x4500,
        _ => panic!("no half for {x}"),
    };
    bits.to_le_bytes()
}

#[test]
fn npy_every_dtype_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample();
    let ints = array![[0.0, 1.0, 2.0], [3.0, 0.0, 5.0]];
    let cases: Vec<(&str, Vec<u8>, &Array2<f32>)> = vec![
        ("f4c", npy_of(&a, "<f4", false, f32::to_le_bytes), &a),
        ("f4f", npy_of(&a, "<f4", true, f32::to_le_bytes), &a),
        (
            "f8c",
            npy_of(&a, "<f8", false, |x| (x as f64).to_le_bytes()),
            &a,
        ),
        (
            "f8f",
            npy_of(&a, "<f8", true, |x| (x as f64).to_le_bytes()),
            &a,
        ),
        (
            "f8be",
            npy_of(&a, ">f8", true, |x| (x as f64).to_be_bytes()),
            &a,
        ),
        ("f4be", npy_of(&a, ">f4", false, f32::to_be_bytes), &a),
        ("f2", npy_of(&a, "<f2", false, f16_bits), &a),
        (
            "i8",
            npy_of(&ints, "<i8", false, |x| (x as i64).to_le_bytes()),
            &ints,
        ),
        (
            "i4f",
            npy_of(&ints, "<i4", true, |x| (x as i32).to_le_bytes()),
            &ints,
        ),
        ("u1", npy_of(&ints, "|u1", false, |x| [x as u8]), &ints),
        (
            "u2be",
            npy_of(&ints, ">u2", false, |x| (x as u16).to_be_bytes()),
            &ints,
        ),
    ];
    for (name, bytes, expected) in cases {
        let p = write(dir.path(), &format!("{name}.npy"), &bytes);
        let got = read_matrix(&p, &opts()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&got, expected, "{name}");
        assert!(got.is_standard_layout());
    }
}

#[test]
fn npy_agrees_with_ndarray_npy() {
    use ndarray_npy::{read_npy, WriteNpyExt};
    let dir = tempfile::tempdir().unwrap();
    let (v, _, _) = planted(13, 7, 3, 5);
    // Ours read by ndarray-npy.
    let ours = dir.path().join("ours.npy");
    write_npy_atomic(&ours, &v).unwrap();
    let back: Array2<f32> = read_npy(&ours).unwrap();
    assert_eq!(back, v);
    // ndarray-npy's (f64, C and Fortran order) read by ours.
    let v64 = v.mapv(f64::from);
    for (name, arr) in [
        ("c.npy", v64.clone()),
        ("f.npy", {
            let mut f = Array2::<f64>::zeros((13, 7).f());
            f.assign(&v64);
            f
        }),
    ] {
        let p = dir.path().join(name);
        arr.write_npy(std::fs::File::create(&p).unwrap()).unwrap();
        assert_eq!(read_matrix(&p, &opts()).unwrap(), v, "{name}");
    }
    // A transposed (non-standard) view is written in logical order.
    let t = dir.path().join("t.npy");
    write_npy_atomic(&t, &v.t()).unwrap();
    assert_eq!(read_matrix(&t, &opts()).unwrap(), v.t().to_owned());
}

#[test]
fn npy_version_2_and_3_headers() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample();
    let v1 = npy_of(&a, "<f4", false, f32::to_le_bytes);
    let header_len = u16::from_le_bytes([v1[8], v1[9]]) as u32;
    for version in [2u8, 3] {
        let mut b = b"\x93NUMPY".to_vec();
        b.extend_from_slice(&[version, 0]);
        b.extend_from_slice(&header_len.to_le_bytes());
        b.extend_from_slice(&v1[10..]);
        let p = write(dir.path(), &format!("v{version}.npy"), &b);
        assert_eq!(read_matrix(&p, &opts()).unwrap(), a);
    }
}

#[test]
fn npy_malformed_headers() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample();
    let data: Vec<u8> = a.iter().flat_map(|x| x.to_le_bytes()).collect();
    let good = npy_of(&a, "<f4", false, f32::to_le_bytes);
    let mut bad_magic = good.clone();
    bad_magic[1] = b'X';
    let mut bad_version = good.clone();
    bad_version[6] = 9;
    let mut huge_header = good.clone();
    huge_header[8] = 0xff;
    huge_header[9] = 0xff;
    huge_header[6] = 2; // 4-byte length: 0x????ffff
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("magic", bad_magic, "magic"),
        ("version", bad_version, "version 9.0"),
        ("hugeheader", huge_header, "header"),
        (
            "garbage",
            npy_bytes("<f4", false, "(2, 3", &data),
            "malformed header",
        ),
        (
            "nokey",
            {
                let mut b = b"\x93NUMPY\x01\x00".to_vec();
                let h = b"{'descr': '<f4', 'shape': (2, 3), }\n";
                b.extend_from_slice(&(h.len() as u16).to_le_bytes());
                b.extend_from_slice(h);
                b.extend_from_slice(&data);
                b
            },
            "fortran_order",
        ),
        ("onedim", npy_bytes("<f4", false, "(6,)", &data), "1-D"),
        (
            "threedim",
            npy_bytes("<f4", false, "(1, 2, 3)", &data),
            "3-D",
        ),
        (
            "complex",
            npy_bytes("<c8", false, "(2, 3)", &data),
            "dtype \"<c8\"",
        ),
        (
            "structured",
            npy_bytes("[('a', '<f4')]", false, "(2, 3)", &data),
            "malformed",
        ),
        (
            "negdim",
            npy_bytes("<f4", false, "(-2, 3)", &data),
            "invalid",
        ),
        ("empty", Vec::new(), "too short"),
        ("short", b"\x93NUMPY\x01".to_vec(), "too short"),
        (
            "trailing",
            {
                let mut b = good.clone();
                b.extend_from_slice(&[0, 0, 0, 0]);
                b
            },
            "unexpected bytes",
        ),
        ("truncated", good[..good.len() - 3].to_vec(), "truncated"),
    ];
    for (name, bytes, needle) in cases {
        let p = write(dir.path(), &format!("{name}.npy"), &bytes);
        let e = err_of(&p, &opts());
        assert!(e.to_string().contains(needle), "{name}: {e}");
    }
}

#[test]
fn npy_structured_descr_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    let h = b"{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (2, 3), }\n";
    b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    b.extend_from_slice(h);
    b.extend_from_slice(&[0u8; 48]);
    let p = write(dir.path(), "rec.npy", &b);
    let e = err_of(&p, &opts());
    assert!(matches!(e, NmfError::UnsupportedInput { .. }), "{e}");
    assert!(e.to_string().contains("structured"), "{e}");
}

#[test]
fn huge_declared_shape_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    // 10^8 x 10^8 floats: refused from the header alone (the file holds 12 bytes of data).
    let p = write(
        dir.path(),
        "huge.npy",
        &npy_bytes("<f4", false, "(100000000, 100000000)", &[0u8; 12]),
    );
    let e = err_of(&p, &opts());
    assert!(matches!(e, NmfError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("100000000 x 100000000"), "{e}");
    // Dimensions whose product overflows 64 bits.
    let p = write(
        dir.path(),
        "overflow.npy",
        &npy_bytes(
            "<f4",
            false,
            "(18446744073709551615, 18446744073709551615)",
            &[],
        ),
    );
    assert!(matches!(err_of(&p, &opts()), NmfError::TooLarge { .. }));
    // The limit is checked before the file length: a truncated 100 x 100 file under a
    // 1000-byte limit is "too large", not "truncated".
    let p = write(
        dir.path(),
        "limit.npy",
        &npy_bytes("<f4", false, "(100, 100)", &[0u8; 8]),
    );
    let e = err_of(&p, &opts().max_bytes(1000));
    assert!(matches!(e, NmfError::TooLarge { .. }), "{e}");
    // Same for MatrixMarket and text tables.
    let p = write(
        dir.path(),
        "huge.mtx",
        b"%%MatrixMarket matrix coordinate real general\n100000000 100000000 1\n1 1 1.0\n",
    );
    assert!(matches!(err_of(&p, &opts()), NmfError::TooLarge { .. }));
    let p = write(dir.path(), "big.csv", "1,2,3,4\n".repeat(100).as_bytes());
    let e = err_of(&p, &opts().max_bytes(400));
    assert!(matches!(e, NmfError::TooLarge { .. }), "{e}");
}

/// Cut a valid file at every length and flip bytes at random: every result is a value or an
/// error, never a panic.
fn fuzz(dir: &Path, name: &str, good: &[u8], seed: u64) {
    let p = dir.join(name);
    for cut in 0..good.len() {
        std::fs::write(&p, &good[..cut]).unwrap();
        let _ = read_matrix(&p, &opts());
    }
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..400 {
        let mut b = good.to_vec();
        for _ in 0..rng.random_range(1..4) {
            let k = rng.random_range(0..b.len());
            b[k] = match rng.random_range(0..4) {
                0 => rng.random(),
                1 => b'9',
                2 => b'\n',
                _ => b' ',
            };
        }
        std::fs::write(&p, &b).unwrap();
        let _ = read_matrix(&p, &opts().max_bytes(1 << 24));
    }
}

#[test]
fn readers_never_panic_on_damaged_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample();
    fuzz(
        dir.path(),
        "a.npy",
        &npy_of(&a, "<f8", true, |x| (x as f64).to_le_bytes()),
        1,
    );
    fuzz(dir.path(), "a.csv", b"x,y,z\n0,1.5,2\n3.25,0,5\n", 2);
    fuzz(
        dir.path(),
        "a.mtx",
        b"%%MatrixMarket matrix coordinate real symmetric\n% c\n3 3 3\n1 1 1.0\n2 1 2.5\n3 3 4\n",
        3,
    );
    fuzz(
        dir.path(),
        "b.mtx",
        b"%%MatrixMarket matrix array real general\n2 3\n0\n3.25\n1.5\n0\n2\n5\n",
        4,
    );
}

// ---------- .csv / .tsv ----------

#[test]
fn csv_header_modes() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample();
    let body = "0,1.5,2\n3.25,0,5\n";
    let plain = write(dir.path(), "plain.csv", body.as_bytes());
    let named = write(dir.path(), "named.csv", format!("a,b,c\n{body}").as_bytes());
    let numeric = write(
        dir.path(),
        "numeric.csv",
        format!("1,2,3\n{body}").as_bytes(),
    );
    assert_eq!(read_matrix(&plain, &opts()).unwrap(), a);
    assert_eq!(read_matrix(&named, &opts()).unwrap(), a);
    // A numeric first line is data unless a header is declared.
    assert_eq!(read_matrix(&numeric, &opts()).unwrap().dim(), (3, 3));
    let present = opts().header(HeaderMode::Present);
    assert_eq!(read_matrix(&numeric, &present).unwrap(), a);
    // Declared absent: a named first line is an error at line 1.
    let e = err_of(&named, &opts().header(HeaderMode::Absent));
    assert!(
        matches!(
            e,
            NmfError::Format {
                line: Some(1),
                column: Some(1),
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn csv_tolerates_common_variants() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample();
    let text = "\u{feff}\"x\", \"y\" ,z\r\n\r\n 0 , \"1.5\",2\r\n3.25,0,5e0\r\n\r\n";
    let p = write(dir.path(), "v.csv", text.as_bytes());
    assert_eq!(read_matrix(&p, &opts()).unwrap(), a);
    let p = write(dir.path(), "v.tsv", b"0\t1.5\t2\n3.25\t0\t5\n");
    assert_eq!(read_matrix(&p, &opts()).unwrap(), a);
    // NaN / Inf / negative values are read; the fit rejects them.
    let p = write(dir.path(), "odd.csv", b"nan,-1,inf\n");
    let m = read_matrix(&p, &opts()).unwrap();
    assert!(m[[0, 0]].is_nan() && m[[0, 1]] == -1.0 && m[[0, 2]].is_infinite());
}

#[test]
fn csv_errors_name_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    // (file, contents, line, column, words in the message)
    type Case<'a> = (&'a str, &'a str, Option<usize>, Option<usize>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "cell.csv",
            "a,b,c\n1,2,3\n4,5,abc\n",
            Some(3),
            Some(3),
            "\"abc\"",
        ),
        (
            "empty.csv",
            "1,2,3\n4,,6\n",
            Some(2),
            Some(2),
            "empty field",
        ),
        (
            "ragged.csv",
            "1,2,3\n4,5\n",
            Some(2),
            None,
            "2 fields but line 1 has 3",
        ),
        (
            "semi.csv",
            "1;2;3\n4;5;6\n",
            Some(2),
            Some(1),
            "separated by commas",
        ),
        ("nodata.csv", "a,b,c\n\n", None, None, "no data rows"),
        ("blank.csv", "", None, None, "no data rows"),
        ("commas.tsv", "1,2\n3,4\n", Some(2), Some(1), "\"3,4\""),
        (
            "header.csv",
            "1,x,3\n4,5,6\n",
            Some(1),
            Some(2),
            "pass --header",
        ),
        (
            "binary.csv",
            "1,2\n\u{0},\u{1}\n",
            Some(2),
            Some(1),
            "cannot parse",
        ),
    ];
    for (name, text, line, column, needle) in cases {
        let p = write(dir.path(), name, text.as_bytes());
        let e = err_of(&p, &opts());
        match &e {
            NmfError::Format {
                line: l, column: c, ..
            } => assert_eq!((*l, *c), (line, column), "{name}: {e}"),
            other => panic!("{name}: {other}"),
        }
        assert!(e.to_string().contains(needle), "{name}: {e}");
    }
    let p = write(dir.path(), "latin1.csv", b"1,2\n3,\xe9\n");
    let e = err_of(&p, &opts());
    assert!(
        e.to_string().contains("line 2") && e.to_string().contains("UTF-8"),
        "{e}"
    );
}

#[test]
fn locate_points_into_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "loc.csv", b"a,b\n\n1,2\n\n3,4\n");
    let m = read_located(&p, &opts()).unwrap();
    assert_eq!(m.format, FileFormat::Csv);
    assert_eq!(m.locate(1, 1), "line 5, column 2");
    let p = write(
        dir.path(),
        "loc.mtx",
        b"%%MatrixMarket matrix coordinate real symmetric\n2 2 1\n2 1 1\n",
    );
    let m = read_located(&p, &opts()).unwrap();
    assert!(m.locate(0, 1).contains("(1, 2)") && m.locate(0, 1).contains("(2, 1)"));
    let p = dir.path().join("loc.npy");
    write_npy_atomic(&p, &sample()).unwrap();
    assert_eq!(
        read_located(&p, &opts()).unwrap().locate(1, 2),
        "element [1, 2]"
    );
}

// ---------- .mtx ----------

#[test]
fn mtx_every_variant() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample();
    let sym = array![[1.0, 2.0, 0.0], [2.0, 0.0, 3.5], [0.0, 3.5, 4.0]];
    let cases: Vec<(&str, &str, Array2<f32>)> = vec![
        (
            "coord_real",
            "%%MatrixMarket matrix coordinate real general\n% comment\n\n2 3 4\n1 2 1.5\n1 3 2\n2 1 3.25\n2 3 5e0\n",
            a.clone(),
        ),
        (
            "coord_dup",
            "%%MatrixMarket matrix coordinate real general\n2 3 5\n1 2 1\n1 2 0.5\n1 3 2\n2 1 3.25\n2 3 5\n",
            a.clone(),
        ),
        (
            "coord_int",
            "%%MatrixMarket matrix coordinate integer general\n2 2 2\n1 1 7\n2 2 3\n",
            array![[7.0, 0.0], [0.0, 3.0]],
        ),
        (
            "coord_pattern",
            "%%MatrixMarket matrix coordinate pattern general\n2 3 2\n1 1\n2 3\n",
            array![[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
        ),
        (
            "coord_sym",
            "%%MatrixMarket matrix coordinate real symmetric\n3 3 4\n1 1 1\n2 1 2\n3 2 3.5\n3 3 4\n",
            sym.clone(),
        ),
        (
            "coord_skew",
            "%%MatrixMarket matrix coordinate real skew-symmetric\n2 2 1\n2 1 3\n",
            array![[0.0, -3.0], [3.0, 0.0]],
        ),
        (
            "array_general",
            "%%MatrixMarket matrix array real general\n2 3\n0\n3.25\n1.5\n0\n2\n5\n",
            a.clone(),
        ),
        (
            "array_sym",
            "%%MatrixMarket matrix array real symmetric\n3 3\n1\n2\n0\n0\n3.5\n4\n",
            sym.clone(),
        ),
        (
            "array_skew",
            "%%MatrixMarket matrix array real skew-symmetric\n3 3\n1\n2\n3\n",
            array![[0.0, -1.0, -2.0], [1.0, 0.0, -3.0], [2.0, 3.0, 0.0]],
        ),
        (
            "array_int_case",
            "%%matrixmarket MATRIX Array Integer General\r\n2 2\r\n1 2\r\n3 4\r\n",
            array![[1.0, 3.0], [2.0, 4.0]],
        ),
    ];
    for (name, text, expected) in cases {
        let p = write(dir.path(), &format!("{name}.mtx"), text.as_bytes());
        let got = read_matrix(&p, &opts()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn mtx_errors() {
    let dir = tempfile::tempdir().unwrap();
    let h = "%%MatrixMarket matrix coordinate real general\n";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "nobanner",
            "2 2 1\n1 1 1\n".into(),
            "must start with %%MatrixMarket",
        ),
        (
            "shortbanner",
            "%%MatrixMarket matrix coordinate\n2 2 1\n1 1 1\n".into(),
            "expected",
        ),
        (
            "vector",
            "%%MatrixMarket vector coordinate real general\n2 1\n".into(),
            "'vector'",
        ),
        (
            "complex",
            "%%MatrixMarket matrix coordinate complex general\n1 1 1\n1 1 1 0\n".into(),
            "complex",
        ),
        (
            "arraypattern",
            "%%MatrixMarket matrix array pattern general\n1 1\n".into(),
            "pattern",
        ),
        ("nosize", h.to_string(), "size line"),
        ("badsize", format!("{h}2 x 1\n1 1 1\n"), "\"x\""),
        ("sizecount", format!("{h}2 2\n"), "three integers"),
        ("toomanynnz", format!("{h}2 2 5\n1 1 1\n"), "cannot fit"),
        (
            "truncated",
            format!("{h}3 3 3\n1 1 1\n2 2 2\n"),
            "truncated",
        ),
        ("extra", format!("{h}2 2 1\n1 1 1\n2 2 2\n"), "more entries"),
        ("range", format!("{h}2 2 1\n3 1 1\n"), "out of range 1..=2"),
        ("zeroindex", format!("{h}2 2 1\n0 1 1\n"), "out of range"),
        ("value", format!("{h}2 2 1\n1 1 x\n"), "\"x\""),
        ("fields", format!("{h}2 2 1\n1 1\n"), "expected 3 fields"),
        (
            "intfield",
            "%%MatrixMarket matrix coordinate integer general\n1 1 1\n1 1 1.5\n".into(),
            "integer",
        ),
        (
            "nonsquare",
            "%%MatrixMarket matrix coordinate real symmetric\n2 3 1\n1 1 1\n".into(),
            "square",
        ),
        (
            "skewdiag",
            "%%MatrixMarket matrix coordinate real skew-symmetric\n2 2 1\n1 1 1\n".into(),
            "diagonal",
        ),
        (
            "arrayshort",
            "%%MatrixMarket matrix array real general\n2 2\n1\n2\n3\n".into(),
            "truncated",
        ),
        (
            "arraylong",
            "%%MatrixMarket matrix array real general\n1 2\n1\n2\n3\n".into(),
            "more values",
        ),
        ("emptyfile", String::new(), "empty"),
    ];
    for (name, text, needle) in cases {
        let p = write(dir.path(), &format!("{name}.mtx"), text.as_bytes());
        let e = err_of(&p, &opts());
        assert!(e.to_string().contains(needle), "{name}: {e}");
    }
    // Located errors carry the line and field.
    let p = write(
        dir.path(),
        "loc.mtx",
        format!("{h}% c\n2 2 2\n1 1 1\n1 7 1\n").as_bytes(),
    );
    let e = err_of(&p, &opts());
    assert!(
        matches!(
            e,
            NmfError::Format {
                line: Some(5),
                column: Some(2),
                ..
            }
        ),
        "{e}"
    );
}

// ---------- dispatch ----------

#[test]
fn format_from_path() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        FileFormat::from_path(Path::new("a.NPY")).unwrap(),
        FileFormat::Npy
    );
    assert_eq!(
        FileFormat::from_path(Path::new("a.tsv")).unwrap(),
        FileFormat::Tsv
    );
    assert_eq!(
        FileFormat::from_path(Path::new("a.mtx")).unwrap(),
        FileFormat::MatrixMarket
    );
    assert_eq!(
        FileFormat::from_path(Path::new("a.TIFF")).unwrap(),
        FileFormat::Tiff
    );
    assert_eq!(
        FileFormat::from_path(Path::new("a.H5")).unwrap(),
        FileFormat::Hdf5
    );
    assert_eq!(
        FileFormat::from_path(Path::new("store/zarr.json")).unwrap(),
        FileFormat::Zarr
    );
    for name in ["a.xlsx", "noext"] {
        let p = write(dir.path(), name, b"1,2\n");
        let e = err_of(&p, &opts());
        assert!(
            e.to_string()
                .contains(".npy, .csv, .tsv, .mtx, .tif/.tiff and .h5/.hdf5 files and Zarr stores"),
            "{e}"
        );
    }
    // A directory is read as images; this one holds none.
    let e = err_of(dir.path(), &opts());
    assert!(matches!(e, NmfError::NoImages { .. }), "{e}");
    let missing = dir.path().join("missing.csv");
    let e = read_matrix(&missing, &opts()).unwrap_err();
    assert!(
        matches!(e, NmfError::Io { .. }) && e.to_string().contains("missing.csv"),
        "{e}"
    );
}

#[test]
fn image_directory_is_one_image_per_column() {
    let dir = tempfile::tempdir().unwrap();
    // Three 3x2 plain PGM images, named so that natural order differs from byte order.
    for (name, base) in [("img10.pgm", 20u32), ("img2.pgm", 10), ("img1.pgm", 0)] {
        let levels: Vec<String> = (0..6).map(|k| (base + k).to_string()).collect();
        let text = format!("P2\n3 2\n255\n{}\n", levels.join(" "));
        write(dir.path(), name, text.as_bytes());
    }
    let loaded = read_located(dir.path(), &opts()).unwrap();
    assert_eq!(loaded.format, FileFormat::ImageDir);
    let v = read_matrix(dir.path(), &opts()).unwrap();
    assert_eq!(v, loaded.data);
    assert_eq!(v.dim(), (6, 3));
    for (j, base) in [0.0f32, 10.0, 20.0].into_iter().enumerate() {
        for i in 0..6 {
            assert_eq!(v[[i, j]], base + i as f32, "pixel {i} of image {j}");
        }
    }
}

// ---------- writing ----------

#[test]
fn atomic_writes_leave_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("W.npy");
    write_npy_atomic(&p, &sample()).unwrap();
    write_npy_atomic(&p, &array![[1.0f32]]).unwrap(); // replaces
    assert_eq!(read_matrix(&p, &opts()).unwrap(), array![[1.0f32]]);
    // A staged file that is dropped uncommitted vanishes; the target is untouched.
    let staged = StagedFile::npy(&p, &sample()).unwrap();
    assert_eq!(staged.target(), p.as_path());
    drop(staged);
    assert_eq!(read_matrix(&p, &opts()).unwrap(), array![[1.0f32]]);
    // A failing writer leaves nothing behind.
    let q = dir.path().join("summary.json");
    let e = StagedFile::write_with(&q, |w| {
        w.write_all(b"{")?;
        Err(std::io::Error::other("disk full"))
    })
    .unwrap_err();
    assert!(
        e.to_string().contains("summary.json") && e.to_string().contains("disk full"),
        "{e}"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["W.npy".to_string()]);
    // An unwritable place is an error naming it.
    let e = write_npy_atomic(dir.path().join("nodir/W.npy"), &sample()).unwrap_err();
    assert!(e.to_string().contains("nodir"), "{e}");
}

// ---------- Factorization::from_w ----------

#[test]
fn from_w_transform_matches_the_fitted_model() {
    let (v, _, _) = planted(30, 25, 4, 9);
    for solver in [Solver::Hals, Solver::MultiplicativeUpdate] {
        let params = Nmf::params(4).solver(solver).max_iter(300).tol(1e-6);
        let fit = params.fit(v.view()).unwrap();
        let model = Factorization::from_w(fit.w().to_owned(), &params).unwrap();
        assert_eq!(model.h().dim(), (4, 0));
        assert_eq!(model.n_iter(), 0);
        let a = fit.transform(v.view()).unwrap();
        let b = model.transform(v.view()).unwrap();
        assert_eq!(a, b, "{solver:?}");
    }
}

#[test]
fn from_w_validates_w() {
    let params = Nmf::params(2).init(Init::Nndsvd);
    let mut w = Array2::<f32>::ones((5, 2));
    assert!(Factorization::from_w(w.clone(), &params).is_ok());
    w[[3, 1]] = -1.0;
    let e = Factorization::from_w(w.clone(), &params).unwrap_err();
    assert!(
        matches!(e, NmfError::InvalidFactorEntry { row: 3, col: 1, .. }),
        "{e}"
    );
    w[[3, 1]] = f32::NAN;
    assert!(Factorization::from_w(w, &params).is_err());
    let e = Factorization::from_w(Array2::ones((5, 3)), &params).unwrap_err();
    assert!(matches!(e, NmfError::ShapeMismatch { .. }), "{e}");
    let e = Factorization::from_w(Array2::ones((5, 0)), &Nmf::params(0)).unwrap_err();
    assert!(matches!(e, NmfError::ZeroRank), "{e}");
    // Rank above the row count is fine for a given W (no SVD is involved).
    assert!(Factorization::from_w(Array2::ones((2, 3)), &Nmf::params(3)).is_ok());
    // Invalid parameters are still caught.
    let e = Factorization::from_w(Array2::ones((5, 2)), &Nmf::params(2).tol(-1.0)).unwrap_err();
    assert!(matches!(e, NmfError::InvalidTol(_)), "{e}");
}

// ---------- bounded lines ----------

/// `err` is [`NmfError::LineTooLong`] for `path`, line `line`; its message is one line that
/// names the file and the line.
fn assert_line_too_long(err: &NmfError, path: &Path, line: usize) {
    match err {
        NmfError::LineTooLong {
            path: p, line: l, ..
        } => {
            assert_eq!((p.as_path(), *l), (path, line), "{err}");
        }
        other => panic!("expected LineTooLong, got {other:?}"),
    }
    let text = err.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(
        text.starts_with(&format!("{}, line {line}:", path.display())),
        "{text}"
    );
}

#[test]
fn an_over_long_line_is_refused_with_its_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let long = "1,".repeat(3000) + "1\n";
    let tight = ReadOptions::new().max_line_bytes(4096);
    // csv, tsv, mtx (dense and sparse): the long line is line 3.
    let csv = write(dir.path(), "t.csv", format!("1,2\n3,4\n{long}").as_bytes());
    let tsv = write(
        dir.path(),
        "t.tsv",
        format!("1\t2\n3\t4\n{}", long.replace(',', "\t")).as_bytes(),
    );
    let mtx = write(
        dir.path(),
        "t.mtx",
        format!(
            "%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 {}\n",
            "1".repeat(5000)
        )
        .as_bytes(),
    );
    for path in [&csv, &tsv, &mtx] {
        assert_line_too_long(&read_matrix(path, &tight).unwrap_err(), path, 3);
        // Under the default bound (16 MiB) the line is read, and found wrong or right.
        assert!(!matches!(
            read_matrix(path, &opts()),
            Err(NmfError::LineTooLong { .. })
        ));
    }
    assert_line_too_long(
        &nmf_gpu::io::read_mtx_sparse(&mtx, &tight).unwrap_err(),
        &mtx,
        3,
    );
    // A line over the default bound.
    let huge = write(
        dir.path(),
        "huge.csv",
        &vec![b'7'; nmf_gpu::io::DEFAULT_MAX_LINE_BYTES + 1],
    );
    assert_line_too_long(&read_matrix(&huge, &opts()).unwrap_err(), &huge, 1);
    let raised = ReadOptions::new().max_line_bytes(nmf_gpu::io::DEFAULT_MAX_LINE_BYTES + 1);
    assert!(!matches!(
        read_matrix(&huge, &raised),
        Err(NmfError::LineTooLong { .. })
    ));
}

#[cfg(unix)]
#[test]
fn a_link_to_dev_zero_fails_quickly() {
    let zero = Path::new("/dev/zero");
    if !zero.exists() {
        eprintln!("skipped: no /dev/zero");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for name in ["zero.csv", "zero.tsv", "zero.mtx"] {
        let link = dir.path().join(name);
        std::os::unix::fs::symlink(zero, &link).unwrap();
        assert_line_too_long(&read_matrix(&link, &opts()).unwrap_err(), &link, 1);
    }
    let link = dir.path().join("zero.mtx");
    assert_line_too_long(
        &nmf_gpu::io::read_mtx_sparse(&link, &opts()).unwrap_err(),
        &link,
        1,
    );
}
