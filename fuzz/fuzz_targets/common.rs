//! What each fuzz target feeds to its reader. Shared by the fuzz targets (`fuzz/fuzz_targets/`)
//! and by the regression test `tests/suite/fuzz_regressions.rs`, which replays the minimised
//! crashers under plain `cargo test`.
//!
//! Every reader must return `Ok` or a typed [`NmfError`] whose message is one line; a panic,
//! an abort, or an allocation beyond the fuzzer's memory limit is a failure. The memory limit
//! of the readers is set to [`MAX_BYTES`] so that a declared size above it is refused rather
//! than allocated.

#![allow(dead_code)]

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nmf_gpu::graph::{self, EdgeOptions};
use nmf_gpu::images::{self, SizePolicy};
use nmf_gpu::io::{self, ReadOptions};
use nmf_gpu::masked::{IdMap, Ratings};
use nmf_gpu::ndarray::Array2;
use nmf_gpu::NmfError;

/// The readers' memory limit under fuzzing: 64 MiB.
pub const MAX_BYTES: u64 = 64 << 20;

/// The options of the matrix readers, made once.
pub fn options() -> &'static ReadOptions {
    static OPTIONS: OnceLock<ReadOptions> = OnceLock::new();
    OPTIONS.get_or_init(|| ReadOptions::new().max_bytes(MAX_BYTES))
}

/// The options of the graph readers.
pub fn edge_options() -> &'static EdgeOptions {
    static OPTIONS: OnceLock<EdgeOptions> = OnceLock::new();
    OPTIONS.get_or_init(|| EdgeOptions::default().max_bytes(MAX_BYTES))
}

/// A directory of this process where inputs are written (kept for the life of the process).
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let builder = tempfile::Builder::new()
            .prefix("nmf-fuzz-")
            .tempdir_in(if shm.is_dir() {
                shm.to_path_buf()
            } else {
                std::env::temp_dir()
            });
        builder
            .or_else(|_| tempfile::Builder::new().prefix("nmf-fuzz-").tempdir())
            .expect("a scratch directory")
            .keep()
    })
}

/// Write `data` to `name` in the scratch directory (`sub` a subdirectory holding only it).
fn write(sub: &str, name: &str, data: &[u8]) -> PathBuf {
    let dir = scratch().join(sub);
    std::fs::create_dir_all(&dir).expect("a scratch subdirectory");
    let path = dir.join(name);
    std::fs::write(&path, data).expect("the input written");
    path
}

/// A reader's outcome is acceptable: `Ok`, or an error with a one-line message.
pub fn check<T>(result: Result<T, NmfError>) {
    if let Err(e) = result {
        let message = e.to_string();
        assert!(
            !message.contains('\n') && !message.contains('\r'),
            "an error message spans lines: {message:?}"
        );
    }
}

/// `.npy` through [`io::read_matrix`].
pub fn npy(data: &[u8]) {
    let path = write("npy", "input.npy", data);
    check(io::read_matrix(&path, options()));
}

/// `.npy` streamed through [`io::NpySource`]: the first byte chooses the orientation (bit 0:
/// samples as rows) and the batch size (bits 1–3, plus 1); the rest is the file. Every batch
/// of two passes is read, and must have the declared number of rows.
pub fn npy_stream(data: &[u8]) {
    use nmf_gpu::online::Source;
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let path = write("npy_stream", "input.npy", rest);
    let batch = usize::from((first >> 1) & 7) + 1;
    let mut source = match io::NpySource::open(&path, first & 1 == 1) {
        Ok(s) => s,
        Err(e) => return check::<()>(Err(e)),
    };
    let (m, n) = source.dim();
    for _ in 0..2 {
        let mut seen = 0;
        loop {
            match source.next_batch(batch) {
                Ok(Some(b)) => {
                    assert_eq!(b.nrows(), m);
                    assert!(b.ncols() >= 1 && b.ncols() <= batch);
                    seen += b.ncols();
                }
                Ok(None) => break,
                Err(e) => return check::<()>(Err(e)),
            }
        }
        assert_eq!(seen, n);
        check(source.rewind());
    }
}

/// `.csv` (first byte even) or `.tsv` (odd), the rest of the input as the file.
pub fn csv(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let name = if first % 2 == 0 {
        "input.csv"
    } else {
        "input.tsv"
    };
    let path = write("csv", name, rest);
    check(io::read_located(&path, options()));
}

/// `.mtx` read densely ([`io::read_matrix`]) and sparsely ([`io::read_mtx_sparse`]).
pub fn mtx(data: &[u8]) {
    let path = write("mtx", "input.mtx", data);
    check(io::read_matrix(&path, options()));
    check(io::read_mtx_sparse(&path, options()));
}

/// The size policy chosen by a byte: exact, resize to 8x6, or crop to 3x2.
fn policy(byte: u8) -> SizePolicy {
    match byte % 3 {
        0 => SizePolicy::Exact,
        1 => SizePolicy::Resize {
            width: 8,
            height: 6,
        },
        _ => SizePolicy::CenterCrop {
            width: 3,
            height: 2,
        },
    }
}

/// One image file `name` in its own directory, loaded by [`images::load_dir_with`] under the
/// policy the first byte picks.
fn image_dir(sub: &str, name: &str, data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let path = write(sub, name, rest);
    let dir = path.parent().expect("the scratch subdirectory");
    check(images::load_dir_with(dir, policy(first), options()));
}

/// A PGM/PNM image through the directory loader.
pub fn pgm(data: &[u8]) {
    image_dir("pgm", "image.pgm", data);
}

/// A PNG or JPEG image (recognised by its contents) through the directory loader.
pub fn png_jpeg(data: &[u8]) {
    image_dir("png", "image.png", data);
}

/// A rating file, parsed from memory.
pub fn ratings(data: &[u8]) {
    check(Ratings::from_reader_with(
        data,
        "input.ratings",
        IdMap::new(),
        IdMap::new(),
        options(),
    ));
}

/// A GML file, read with the node attribute `value`; its labels when it reads.
pub fn gml(data: &[u8]) {
    let path = write("gml", "input.gml", data);
    match graph::read_gml_with(&path, Some("value"), edge_options()) {
        Ok(g) => check(g.attribute_labels()),
        Err(e) => check::<()>(Err(e)),
    }
}

/// An edge list, parsed from memory.
pub fn edge_list(data: &[u8]) {
    check(graph::parse_edge_list(data, "input.edges", edge_options()));
}

/// A block range chosen by two bytes (start, end: either may exceed the array, or be reversed).
fn range(start: u8, end: u8) -> std::ops::Range<usize> {
    usize::from(start)..usize::from(end)
}

/// The layout of one distributed rank reading rows `rows` and columns `cols` of an `m x n` V
/// (only the block's ranges matter to the readers).
fn block_layout(
    shape: (usize, usize),
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) -> nmf_gpu::distributed::Layout {
    use nmf_gpu::distributed::{Grid, Layout};
    Layout {
        grid: Grid { rows: 1, cols: 1 },
        shape,
        rank: 0,
        coords: (0, 0),
        rows,
        cols,
        w_rows: 0..0,
        h_cols: 0..0,
    }
}

/// The block rows `rows` x columns `cols` of `full`, when it lies inside.
fn slice_of(
    full: &nmf_gpu::ndarray::Array2<f32>,
    rows: &std::ops::Range<usize>,
    cols: &std::ops::Range<usize>,
) -> Option<nmf_gpu::ndarray::Array2<f32>> {
    use nmf_gpu::ndarray::s;
    let inside = rows.start <= rows.end
        && cols.start <= cols.end
        && rows.end <= full.nrows()
        && cols.end <= full.ncols();
    inside.then(|| full.slice(s![rows.clone(), cols.clone()]).to_owned())
}

/// The same values, NaN equal to NaN (and -0.0 to 0.0: sparse storage keeps no zeros).
fn same_values(a: &nmf_gpu::ndarray::Array2<f32>, b: &nmf_gpu::ndarray::Array2<f32>) -> bool {
    a.dim() == b.dim()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}

/// The expected block rows x columns of a file, read whole by another reader; `None` when the
/// block lies outside or the file does not read.
type Expected = fn(&Path, &Range<usize>, &Range<usize>) -> Option<Array2<f32>>;

/// A distributed rank's block read by [`nmf_gpu::distributed::read_block`] from the file
/// `name` holding `rest` of `data`; the first five bytes choose the rows (start, end), the
/// columns (start, end) and dense or sparse storage (bit 0). A block that reads has the
/// block's shape and equals that block of the whole matrix (`expected`).
fn block(data: &[u8], name: &str, expected: Expected) {
    use nmf_gpu::distributed::{read_block, LocalBlock};
    let Some((head, rest)) = data.split_first_chunk::<5>() else {
        return;
    };
    let path = write(name, &format!("input.{name}"), rest);
    let (rows, cols) = (range(head[0], head[1]), range(head[2], head[3]));
    let sparse = head[4] & 1 == 1;
    let layout = block_layout((0, 0), rows.clone(), cols.clone());
    let result = read_block(&path, &layout, sparse, options());
    let dense = match result {
        Ok(LocalBlock::Dense(b)) => b,
        Ok(LocalBlock::Sparse(b)) => b.to_dense(),
        Err(e) => return check::<()>(Err(e)),
    };
    assert_eq!(dense.dim(), (rows.len(), cols.len()));
    if let Some(expected) = expected(&path, &rows, &cols) {
        assert!(
            same_values(&dense, &expected),
            "block {rows:?} x {cols:?} differs from the whole file's"
        );
    }
}

/// A `.npy` block (`io::npy::read_block`'s offset arithmetic): see [`block`].
pub fn npy_block(data: &[u8]) {
    block(data, "npy", |p, rows, cols| {
        let full = io::read_matrix(p, options()).ok()?;
        slice_of(&full, rows, cols)
    });
}

/// A MatrixMarket coordinate block (`io::mtx::read_sparse_block`): see [`block`]. The whole
/// matrix is read sparse and only the block's rows are made dense.
pub fn mtx_block(data: &[u8]) {
    block(data, "mtx", |p, rows, cols| {
        let full = io::read_mtx_sparse(p, options()).ok()?;
        let inside = rows.start <= rows.end
            && cols.start <= cols.end
            && rows.end <= full.rows()
            && cols.end <= full.cols();
        if !inside {
            return None;
        }
        let mut b = Array2::zeros((rows.len(), cols.len()));
        for i in rows.clone() {
            let (indices, values) = full.row(i);
            for (&j, &x) in indices.iter().zip(values) {
                if cols.contains(&(j as usize)) {
                    b[[i - rows.start, j as usize - cols.start]] = x;
                }
            }
        }
        Some(b)
    });
}

/// Images streamed by [`images::ImageDirSource`], as an online fit reads them: the first byte
/// chooses the size policy (its value mod 3), the preprocessing (bits 2–3) and the batch size
/// (bits 4–6, plus 1); the rest is cut at each `0xFF 0x00 0xFF 0x00` into up to four files,
/// named `0.pgm`, `1.png`, `2.jpg`, `3.pgm`. Two passes over every batch; each batch has the
/// declared number of rows and the passes agree.
pub fn image_stream(data: &[u8]) {
    use nmf_gpu::images::{ImageDirSource, Preprocess};
    use nmf_gpu::online::Source;
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let dir = scratch().join("image_stream");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch subdirectory");
    const NAMES: [&str; 4] = ["0.pgm", "1.png", "2.jpg", "3.pgm"];
    let mut files = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 4 <= rest.len() && files.len() + 1 < NAMES.len() {
        if rest[i..i + 4] == [0xFF, 0x00, 0xFF, 0x00] {
            files.push(&rest[start..i]);
            start = i + 4;
            i = start;
        } else {
            i += 1;
        }
    }
    files.push(&rest[start..]);
    for (name, bytes) in NAMES.iter().zip(&files) {
        std::fs::write(dir.join(name), bytes).expect("the input written");
    }
    let preprocess = match (first >> 2) & 3 {
        0 => Preprocess::Unit,
        1 => Preprocess::LeeSeung,
        _ => Preprocess::None,
    };
    let batch = usize::from((first >> 4) & 7) + 1;
    let mut source = match ImageDirSource::open_with(&dir, policy(first), preprocess, options()) {
        Ok(s) => s,
        Err(e) => return check::<()>(Err(e)),
    };
    let (m, n) = source.dim();
    let mut first_pass: Vec<nmf_gpu::ndarray::Array2<f32>> = Vec::new();
    for pass in 0..2 {
        let mut seen = 0;
        let mut k = 0;
        loop {
            match source.next_batch(batch) {
                Ok(Some(b)) => {
                    assert_eq!(b.nrows(), m);
                    assert!(b.ncols() >= 1 && b.ncols() <= batch);
                    seen += b.ncols();
                    if pass == 0 {
                        first_pass.push(b);
                    } else {
                        assert!(same_values(&b, &first_pass[k]), "the passes differ");
                    }
                    k += 1;
                }
                Ok(None) => break,
                Err(e) => return check::<()>(Err(e)),
            }
        }
        assert_eq!(seen, n);
        check(source.rewind());
    }
}

/// `.tif` through the whole-matrix reader, the block reader and the streaming source (two
/// passes, which must agree); the first byte chooses the block's first row (bits 0-1) and
/// column (bits 2-3) and the batch (bits 4-5, 1 to 4 frames), the rest is the file.
pub fn tiff(data: &[u8]) {
    use nmf_gpu::io::tiff::{TiffSource, TiffStack};
    use nmf_gpu::online::Source;
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let path = write("tiff", "input.tif", rest);
    check(io::read_matrix(&path, options()));
    let stack = match TiffStack::open(&path, options()) {
        Ok(s) => s,
        Err(e) => return check::<()>(Err(e)),
    };
    let (m, n) = stack.shape();
    let (r0, c0) = (
        usize::from(first & 3).min(m),
        usize::from((first >> 2) & 3).min(n),
    );
    match stack.read_block(r0..m, c0..n) {
        Ok(b) => assert_eq!(b.dim(), (m - r0, n - c0)),
        Err(e) => check::<()>(Err(e)),
    }
    let batch = usize::from((first >> 4) & 3) + 1;
    let mut source = TiffSource::new(stack);
    let mut first_pass: Vec<nmf_gpu::ndarray::Array2<f32>> = Vec::new();
    for pass in 0..2 {
        let mut seen = 0;
        let mut k = 0;
        loop {
            match source.next_batch(batch) {
                Ok(Some(b)) => {
                    assert_eq!(b.nrows(), m);
                    assert!(b.ncols() >= 1 && b.ncols() <= batch);
                    seen += b.ncols();
                    if pass == 0 {
                        first_pass.push(b);
                    } else {
                        // Bit for bit (NaN included): the same file read twice.
                        let same = b.dim() == first_pass[k].dim()
                            && b.iter()
                                .zip(first_pass[k].iter())
                                .all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(same, "the passes differ");
                    }
                    k += 1;
                }
                Ok(None) => break,
                Err(e) => return check::<()>(Err(e)),
            }
        }
        assert_eq!(seen, n);
        check(source.rewind());
    }
}

/// Every batch of two streaming passes over `source`: each of `m` rows and 1 to `batch`
/// columns, `n` columns in all, the passes equal bit for bit.
fn two_passes(source: &mut dyn nmf_gpu::online::Source, batch: usize) {
    let (m, n) = source.dim();
    let mut first_pass: Vec<Array2<f32>> = Vec::new();
    for pass in 0..2 {
        let mut seen = 0;
        let mut k = 0;
        loop {
            match source.next_batch(batch) {
                Ok(Some(b)) => {
                    assert_eq!(b.nrows(), m);
                    assert!(b.ncols() >= 1 && b.ncols() <= batch);
                    seen += b.ncols();
                    if pass == 0 {
                        first_pass.push(b);
                    } else {
                        let same = b.dim() == first_pass[k].dim()
                            && b.iter()
                                .zip(first_pass[k].iter())
                                .all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(same, "the passes differ");
                    }
                    k += 1;
                }
                Ok(None) => break,
                Err(e) => return check::<()>(Err(e)),
            }
        }
        assert_eq!(seen, n);
        check(source.rewind());
    }
}

/// A Zarr array: the first byte chooses v2 (bit 0 clear: `.zarray`) or v3 (`zarr.json`), the
/// block's first row (bits 1-2) and column (bits 3-4) and the batch (bits 5-6, 1 to 4
/// samples); the rest is the metadata text up to the first NUL byte, then the bytes of the
/// array's first chunk (at the key its metadata gives, when it parses). Read through the
/// whole-matrix reader, the block reader (which must equal the whole matrix's block) and the
/// streaming source (two passes, which must agree).
#[cfg(feature = "zarr")]
pub fn zarr(data: &[u8]) {
    use nmf_gpu::io::zarr::meta::ArrayMeta;
    use nmf_gpu::io::zarr::{ZarrArray, ZarrSource};
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (meta, chunk) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let dir = scratch().join("zarr").join("array");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch subdirectory");
    let v3 = first & 1 == 1;
    let name = if v3 { "zarr.json" } else { ".zarray" };
    std::fs::write(dir.join(name), meta).expect("the metadata written");
    let parsed = if v3 {
        ArrayMeta::parse_v3(&dir, meta)
    } else {
        ArrayMeta::parse_v2(&dir, meta)
    };
    if let Ok(m) = &parsed {
        let key = m.keys.key(&vec![0; m.shape.len()]);
        let path = dir.join(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("the chunk's directory");
        }
        std::fs::write(&path, chunk).expect("the chunk written");
    }
    let whole = io::read_matrix(&dir, options());
    let array = match ZarrArray::open(&dir, options()) {
        Ok(a) => a,
        Err(e) => return check::<()>(Err(e)),
    };
    let (m, n) = array.shape();
    let (r0, c0) = (
        usize::from((first >> 1) & 3).min(m),
        usize::from((first >> 3) & 3).min(n),
    );
    match array.read_block(r0..m, c0..n) {
        Ok(b) => {
            assert_eq!(b.dim(), (m - r0, n - c0));
            if let Ok(w) = &whole {
                assert!(
                    same_values(&b, &slice_of(w, &(r0..m), &(c0..n)).expect("inside")),
                    "the block differs from the whole matrix's"
                );
            }
        }
        Err(e) => check::<()>(Err(e)),
    }
    check(whole);
    let batch = usize::from((first >> 5) & 3) + 1;
    two_passes(&mut ZarrSource::new(array), batch);
}

/// Zarr's chunk decoders on their own: the first byte chooses the codecs (bits 0-2 the last,
/// bits 3-5 one before it, 6 or 7 for none), the next two the decoded size (little-endian);
/// the rest is the stored chunk. A decode that succeeds has exactly that size.
#[cfg(feature = "zarr")]
pub fn zarr_codec(data: &[u8]) {
    use nmf_gpu::io::zarr::codec::{decode, DecodeError};
    use nmf_gpu::io::zarr::meta::ByteCodec;
    let Some((head, rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let pick = |k: u8| match k {
        0 => Some(ByteCodec::Zlib),
        1 => Some(ByteCodec::Gzip),
        2 => Some(ByteCodec::Zstd),
        3 => Some(ByteCodec::Blosc),
        4 => Some(ByteCodec::Lz4),
        5 => Some(ByteCodec::Crc32c),
        _ => None,
    };
    let codecs: Vec<ByteCodec> = [pick((head[0] >> 3) & 7), pick(head[0] & 7)]
        .into_iter()
        .flatten()
        .collect();
    let expected = usize::from(u16::from_le_bytes([head[1], head[2]]));
    match decode(&codecs, rest.to_vec(), expected, 1 << 20) {
        Ok(out) => assert_eq!(out.len(), expected),
        Err(DecodeError::Corrupt(m) | DecodeError::Unsupported(m)) => {
            assert!(!m.contains('\n'), "a message spans lines: {m:?}")
        }
    }
}

/// The HDF5 reader's header checks and block plan (`io::hdf5::header`; the HDF5 library itself
/// is not fuzzed in process): the bytes give the axes (first byte mod 34), each extent (8
/// bytes, little-endian, the top bits cleared by the second byte), the chunk extents (when the
/// third byte is odd), the element type (fourth byte) and a block; a header that passes the
/// check gives slabs that cover the block in whole chunks of the first axis.
#[cfg(feature = "hdf5")]
pub fn hdf5_header(data: &[u8]) {
    use nmf_gpu::io::hdf5::header::{check as check_header, slabs, Hdf5Element, Hdf5Header};
    let Some((head, mut rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let axes = usize::from(head[0] % 34);
    let mask = u64::MAX >> (head[1] % 64);
    let mut take = || -> u64 {
        let Some((x, r)) = rest.split_first_chunk::<8>() else {
            return 1;
        };
        rest = r;
        u64::from_le_bytes(*x) & mask
    };
    let shape: Vec<u64> = (0..axes).map(|_| take()).collect();
    let chunk = (head[2] & 1 == 1).then(|| (0..axes).map(|_| take()).collect::<Vec<u64>>());
    let bytes = usize::from(head[3] >> 4);
    let element = match head[3] & 3 {
        0 => Hdf5Element::Int(bytes),
        1 => Hdf5Element::UInt(bytes),
        2 => Hdf5Element::Float(bytes),
        _ => Hdf5Element::Other("compound".into()),
    };
    let header = Hdf5Header {
        shape: shape.clone(),
        chunk,
        element,
    };
    let plan = match check_header(Path::new("fuzz.h5"), &header, MAX_BYTES) {
        Ok(p) => p,
        Err(e) => return check::<()>(Err(e)),
    };
    let (m, n) = plan.v;
    assert!((m as u128) * 4 <= u128::from(MAX_BYTES));
    let r0 = usize::from(head[4]) % m;
    let r1 = (r0 + 1 + usize::from(head[5])).min(m);
    let c0 = usize::from(head[6]) % n;
    let c1 = (c0 + 1 + usize::from(head[7]) * 97).min(n);
    let stage = 4 << (head[2] >> 3);
    let parts = slabs(&shape, plan.chunk_samples, r0..r1, c0..c1, stage);
    let inner: u128 = shape.iter().skip(2).map(|&d| u128::from(d)).product();
    let mut j = c0;
    for p in &parts {
        assert_eq!(p.samples.start, j);
        assert!(p.samples.end > j && p.samples.end <= c1);
        assert!(p.samples.end == c1 || p.samples.end % plan.chunk_samples.max(1) == 0);
        if shape.len() >= 2 {
            assert!(p.axis1.start as u128 * inner <= r0 as u128);
            assert!(p.axis1.end as u128 * inner >= r1 as u128);
            assert!(p.axis1.end as u64 <= shape[1]);
        }
        j = p.samples.end;
    }
    assert_eq!(j, c1);
}
