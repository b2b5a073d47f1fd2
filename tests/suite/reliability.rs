//! What the process must survive: memory limits it cannot see from the machine's free memory
//! (`ulimit -v`), concurrent and interrupted writers of one model directory, and output paths
//! that are symlinks.

use std::path::Path;
use std::process::{Command, Output};

/// A MatrixMarket file of 68 bytes declaring a 50000 x 50000 matrix (10 GB dense).
const HUGE_MTX: &str = "%%MatrixMarket matrix coordinate real general\n50000 50000 1\n1 1 1.0\n";

/// The address-space limit of the test's child, in KiB (`ulimit -v`): 7.6 GiB, less than the
/// 9.3 GiB the declared matrix needs dense.
const ULIMIT_V_KIB: u64 = 8_000_000;

/// Run `nmf` with `args` under `ulimit -v` of `kib`.
fn nmf_under_ulimit_v(kib: u64, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_nmf"))
        .args(args)
        .output()
        .expect("run nmf under sh")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_dense_read_past_rlimit_as_is_refused_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("huge.mtx");
    std::fs::write(&input, HUGE_MTX).unwrap();
    assert_eq!(HUGE_MTX.len(), 68);
    let out = dir.path().join("model");
    let o = nmf_under_ulimit_v(
        ULIMIT_V_KIB,
        &[
            "fit",
            "-i",
            s(&input),
            "--storage",
            "dense",
            "-r",
            "2",
            "--backend",
            "cpu",
            "-o",
            s(&out),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    // Exit code 1 (a typed error), not a signal (SIGABRT from a failed allocation).
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("50000 x 50000"), "{err}");
    assert!(err.contains("RLIMIT_AS"), "{err}");
    assert!(err.contains("ulimit -v"), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_fit_past_rlimit_as_is_refused_naming_the_limit() {
    // A small file whose fit is refused by the budget: a rank whose factors need more than
    // 7.6 GiB (3000 x 200000 at rank 3000: 5 x 4 x 203000 x 3000 bytes = 11.3 GiB), read
    // sparse so that the reader does not refuse it first.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("wide.mtx");
    std::fs::write(
        &input,
        "%%MatrixMarket matrix coordinate real general\n3000 200000 1\n1 1 1.0\n",
    )
    .unwrap();
    let out = dir.path().join("model");
    let o = nmf_under_ulimit_v(
        ULIMIT_V_KIB,
        &[
            "fit",
            "-i",
            s(&input),
            "--storage",
            "sparse",
            "-r",
            "3000",
            "--init",
            "random",
            "--backend",
            "cpu",
            "-o",
            s(&out),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("the fit needs about"), "{err}");
    assert!(err.contains("RLIMIT_AS"), "{err}");
    assert!(!out.exists());
}

// ---------- the model directory: atomic replacement, leftovers, concurrent writers ----------

use nmf_gpu::io::{write_npy_atomic, StagedDir};
use nmf_gpu::ndarray::Array2;

/// Writers committing to one directory at once, and the commits each makes.
const WRITERS: usize = 8;
const COMMITS_PER_WRITER: usize = 25;

/// The hidden entries of `dir` (temporaries and aside directories).
fn hidden_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    v.sort();
    v
}

/// Stage a model tagged `tag` (the same tag in each of its three files) at `target`.
fn commit_model(target: &Path, tag: &str) -> nmf_gpu::Result<std::path::PathBuf> {
    let staged = StagedDir::new(target)?;
    staged.bytes("W.npy", tag.as_bytes())?;
    staged.bytes("H.npy", tag.as_bytes())?;
    staged.bytes("summary.json", tag.as_bytes())?;
    staged.commit()
}

/// The tag of the model at `dir`, checking that its three files agree and nothing else is there.
fn complete_model_tag(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["H.npy", "W.npy", "summary.json"]);
    let tag = std::fs::read_to_string(dir.join("W.npy")).unwrap();
    for f in ["H.npy", "summary.json"] {
        assert_eq!(std::fs::read_to_string(dir.join(f)).unwrap(), tag, "{f}");
    }
    tag
}

#[test]
fn concurrent_writers_always_leave_one_complete_model_at_the_path() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("model");
    commit_model(&target, "first").unwrap();
    let done = AtomicBool::new(false);
    let missing = AtomicUsize::new(0);
    let looks = AtomicUsize::new(0);
    let errors: Vec<String> = std::thread::scope(|scope| {
        // A watcher: the output path must name a directory at every instant.
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if std::fs::symlink_metadata(&target).is_err() {
                    missing.fetch_add(1, Ordering::Relaxed);
                }
                looks.fetch_add(1, Ordering::Relaxed);
            }
        });
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let target = &target;
                scope.spawn(move || {
                    let mut errors = Vec::new();
                    for c in 0..COMMITS_PER_WRITER {
                        if let Err(e) = commit_model(target, &format!("writer {w} commit {c}")) {
                            errors.push(e.to_string());
                        }
                    }
                    errors
                })
            })
            .collect();
        let errors = writers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        done.store(true, Ordering::Relaxed);
        errors
    });
    assert!(errors.is_empty(), "{errors:?}");
    assert!(looks.load(Ordering::Relaxed) > 0);
    assert_eq!(
        missing.load(Ordering::Relaxed),
        0,
        "the output directory was missing at some instant"
    );
    let tag = complete_model_tag(&target);
    assert!(
        tag.contains(&format!("commit {}", COMMITS_PER_WRITER - 1)),
        "{tag}"
    );
    assert!(
        hidden_entries(dir.path()).is_empty(),
        "{:?}",
        hidden_entries(dir.path())
    );
}

/// The id of a process that has exited (and been reaped).
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// The machine tag of a temporary made on another machine: one that this machine's own
/// temporaries (read from a staged directory's name) do not carry.
fn other_machine() -> String {
    let dir = tempfile::tempdir().unwrap();
    let staged = StagedDir::new(dir.path().join("probe")).unwrap();
    let name = staged
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let own = name
        .split('.')
        .nth(2)
        .unwrap()
        .split_once('-')
        .unwrap()
        .1
        .to_string();
    if own == "00000000" {
        "00000001"
    } else {
        "00000000"
    }
    .to_string()
}

#[test]
fn temporaries_of_dead_processes_are_removed_by_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let target = d.join("model");
    commit_model(&target, "old").unwrap();
    let dead = dead_pid();
    let mut alive = Command::new("sleep").arg("30").spawn().unwrap();
    // What a process killed mid-write leaves: a staged directory, an aside directory, a staged
    // file; and the live temporary of a process still writing.
    let stale_tmp = d.join(format!(".model.{dead}.0.tmp"));
    let stale_old = d.join(format!(".model.{dead}.1.old"));
    std::fs::create_dir(&stale_tmp).unwrap();
    std::fs::write(stale_tmp.join("W.npy"), b"partial").unwrap();
    std::fs::create_dir(&stale_old).unwrap();
    std::fs::write(d.join(format!(".model.{dead}.2.tmp")), b"partial").unwrap();
    let live = d.join(format!(".model.{}.0.tmp", alive.id()));
    std::fs::create_dir(&live).unwrap();
    // Another output's temporaries are not this write's business, nor those of a process on
    // another machine sharing the directory (its pid means nothing here).
    let other = d.join(format!(".other.{dead}.0.tmp"));
    std::fs::create_dir(&other).unwrap();
    let elsewhere = d.join(format!(".model.{dead}-{}.0.tmp", other_machine()));
    std::fs::create_dir(&elsewhere).unwrap();

    commit_model(&target, "new").unwrap();
    let _ = alive.kill();
    let _ = alive.wait();
    assert_eq!(complete_model_tag(&target), "new");
    let left = hidden_entries(d);
    let mut kept = vec![
        format!(".model.{}.0.tmp", alive.id()),
        format!(".model.{dead}-{}.0.tmp", other_machine()),
        format!(".other.{dead}.0.tmp"),
    ];
    kept.sort();
    assert_eq!(left, kept);
}

#[test]
fn an_aside_model_of_a_killed_writer_is_put_back_at_a_missing_path() {
    // A writer of the two-rename fallback killed between its renames: the old model is aside
    // and the output path is missing. The next write puts it back before staging its own,
    // so that a write that then fails leaves the old model at the path.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let target = d.join("model");
    commit_model(&target, "old").unwrap();
    let aside = d.join(format!(".model.{}.7.old", dead_pid()));
    std::fs::rename(&target, &aside).unwrap();
    let staged = StagedDir::new(&target).unwrap();
    drop(staged);
    assert_eq!(complete_model_tag(&target), "old");
    assert!(hidden_entries(d).is_empty(), "{:?}", hidden_entries(d));
}

// ---------- output paths checked before the fit ----------

/// Run `nmf fit` on `input` at rank 2 into `out`.
fn fit_into(input: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nmf"))
        .args([
            "fit",
            "-i",
            s(input),
            "-r",
            "2",
            "-o",
            s(out),
            "-q",
            "--max-iter",
            "5",
            "--backend",
            "cpu",
        ])
        .output()
        .expect("run nmf")
}

/// A small positive matrix written as `v.npy` in `dir`.
fn small_input(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("v.npy");
    let v = Array2::from_shape_fn((12, 9), |(i, j)| 1.0 + ((i * 7 + j * 3) % 5) as f32);
    write_npy_atomic(&p, &v).unwrap();
    p
}

#[cfg(unix)]
#[test]
fn an_output_directory_that_is_a_symlink_to_a_directory_receives_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = small_input(d);
    let real = d.join("real");
    std::fs::create_dir(&real).unwrap();
    let link = d.join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    for round in 0..2 {
        let o = fit_into(&input, &link);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "round {round}: {err}");
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let mut names: Vec<String> = std::fs::read_dir(&real)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["H.npy", "W.npy", "summary.json"], "round {round}");
        assert!(hidden_entries(d).is_empty(), "{:?}", hidden_entries(d));
    }
}

#[cfg(unix)]
#[test]
fn output_paths_that_cannot_be_a_directory_are_refused_before_the_fit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = small_input(d);
    let file = d.join("notes.txt");
    std::fs::write(&file, "mine").unwrap();
    let to_file = d.join("to_file");
    std::os::unix::fs::symlink(&file, &to_file).unwrap();
    let dangling = d.join("dangling");
    std::os::unix::fs::symlink(d.join("nowhere"), &dangling).unwrap();
    let cases = [
        (to_file.clone(), "symbolic link"),
        (dangling.clone(), "symbolic link"),
        (file.join("model"), "which is a file"),
        (file.join("deeper/model"), "which is a file"),
    ];
    for (out, expected) in cases {
        let o = fit_into(&input, &out);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{}: {err}", out.display());
        assert!(err.contains(expected), "{}: {err}", out.display());
        // Refused up front: no fit ran, so no summary was ever staged anywhere.
        assert!(!err.contains("in the way"), "{err}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
    assert!(hidden_entries(d).is_empty(), "{:?}", hidden_entries(d));
}
