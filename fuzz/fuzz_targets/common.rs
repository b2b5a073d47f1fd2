//! What each fuzz target feeds to its reader. Shared by the fuzz targets (`fuzz/fuzz_targets/`)
//! and by the regression test `tests/suite/fuzz_regressions.rs`, which replays the minimised
//! crashers under plain `cargo test`.
//!
//! Every reader must return `Ok` or a typed [`NmfError`] whose message is one line; a panic,
//! an abort, or an allocation beyond the fuzzer's memory limit is a failure. The memory limit
//! of the readers is set to [`MAX_BYTES`] so that a declared size above it is refused rather
//! than allocated.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nmf_gpu::graph::{self, EdgeOptions};
use nmf_gpu::images::{self, SizePolicy};
use nmf_gpu::io::{self, ReadOptions};
use nmf_gpu::masked::{IdMap, Ratings};
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
