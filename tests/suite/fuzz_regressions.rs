//! Inputs that once broke a reader (minimised crashers of the fuzz targets in `fuzz/`, and the
//! hostile files of the reliability review), replayed under plain `cargo test`: each must read
//! as `Ok` or as a typed error with a one-line message, never a panic, an abort or an
//! allocation past the readers' memory limit.
//!
//! `tests/fuzz_regressions/<target>/` holds the inputs of the fuzz target `<target>`, fed to
//! the same function the target calls (`fuzz/fuzz_targets/common.rs`).

#![cfg(feature = "images")]

use crate::fuzz_common as common;

use std::path::Path;

/// What a fuzz target does with one input.
type Feed = fn(&[u8]);

/// Each fuzz target and what it feeds its reader (those of optional formats with their
/// features).
fn targets() -> Vec<(&'static str, Feed)> {
    #[allow(unused_mut)]
    let mut targets: Vec<(&'static str, Feed)> = vec![
        ("npy", common::npy),
        ("npy_stream", common::npy_stream),
        ("csv", common::csv),
        ("mtx", common::mtx),
        ("pgm", common::pgm),
        ("image_dir", common::png_jpeg),
        ("ratings", common::ratings),
        ("gml", common::gml),
        ("edge_list", common::edge_list),
        ("npy_block", common::npy_block),
        ("mtx_block", common::mtx_block),
        ("image_stream", common::image_stream),
        ("tiff", common::tiff),
    ];
    #[cfg(feature = "zarr")]
    targets.extend([
        ("zarr", common::zarr as Feed),
        ("zarr_codec", common::zarr_codec as Feed),
    ]);
    #[cfg(feature = "hdf5")]
    targets.push(("hdf5_header", common::hdf5_header as Feed));
    targets
}

#[test]
fn every_regression_input_reads_without_panicking() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&root).expect("tests/fuzz_regressions") {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let known = targets();
        let Some(&(_, run)) = known.iter().find(|(t, _)| *t == name) else {
            // The inputs of a target whose format's feature is off are skipped.
            if ["zarr", "zarr_codec", "hdf5_header"].contains(&name.as_str()) {
                continue;
            }
            panic!("{}: no fuzz target of that name", dir.display());
        };
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).unwrap();
            eprintln!("{name}: {}", file.display());
            run(&data);
            replayed += 1;
        }
    }
    assert!(
        replayed > 0,
        "no regression input found under {}",
        root.display()
    );
}
