//! Hardening of the data side (issue 15): `gen` that streams or refuses up front, absurd class
//! counts, CSV line numbers with CRLF, labels shown as they are, errors that quote little of a
//! file, `--delimiter` and `--target` values, `inspect` of partial datasets, and checkpoints of
//! the old format. Each test runs the real binary, as a user would.

mod common;

use std::ffi::OsString;
use std::path::Path;

use common::{refuse, write_f32};

/// `dptrain gen --out OUT EXTRA…`.
fn gen_args(out: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["gen".into(), "--out".into(), out.into()];
    args.extend(extra.iter().map(OsString::from));
    args
}

// ---- #2: `gen` streams, or refuses up front; nothing is left behind ----

#[test]
fn gen_refuses_a_dataset_larger_than_the_disk_up_front_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // 10^15 rows × 1000 features of float32 is 4 EB: no disk holds it.
    let line = refuse(
        root,
        gen_args(
            &root.join("big"),
            &["--rows", "1000000000000000", "--features", "1000"],
        ),
        &["--rows", "--features", "free"],
    );
    assert!(line.contains("big"), "{line}");
    // A size whose byte count does not even fit in 64 bits.
    refuse(
        root,
        gen_args(
            &root.join("big"),
            &["--rows", "4611686018427387904", "--features", "1000"],
        ),
        &["--rows", "too large"],
    );
}

#[test]
fn gen_refuses_more_classes_than_rows_and_a_teacher_too_large_for_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    refuse(
        root,
        gen_args(
            &root.join("d"),
            &[
                "--task",
                "classification",
                "--rows",
                "100",
                "--classes",
                "1000",
            ],
        ),
        &["--classes", "1000", "100 rows"],
    );
    // The teacher network alone would be 10^12 × 32 float32 weights.
    refuse(
        root,
        gen_args(
            &root.join("d"),
            &["--rows", "1", "--features", "1000000000000"],
        ),
        &["--features", "memory"],
    );
}

/// Runs `dptrain gen` under an address-space limit of `limit_kib` (`ulimit -v`), returning
/// `None` where no POSIX shell is available to set it.
fn gen_with_memory_limit(
    root: &Path,
    limit_kib: u64,
    args: &[OsString],
) -> Option<std::process::Output> {
    let sh = Path::new("/bin/sh");
    if !sh.exists() {
        return None;
    }
    let mut cmd = std::process::Command::new(sh);
    cmd.arg("-c")
        .arg(format!("ulimit -v {limit_kib} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_dptrain"))
        .args(args)
        .current_dir(root);
    Some(cmd.output().expect("run sh"))
}

#[test]
fn gen_writes_a_dataset_larger_than_its_memory_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // 200 000 × 100 float32 is 80 MB of x.npy; the process may map at most 64 MiB (it needs
    // about 24 MiB: the binary, the teacher and a chunk of rows).
    let out = root.join("d");
    let args = gen_args(
        &out,
        &[
            "--task",
            "classification",
            "--classes",
            "3",
            "--rows",
            "200000",
            "--features",
            "100",
        ],
    );
    let Some(run) = gen_with_memory_limit(root, 64 * 1024, &args) else {
        common::skip(
            "gen_writes_a_dataset_larger_than_its_memory_limit",
            "no /bin/sh to set ulimit -v",
        );
        return;
    };
    assert!(
        run.status.success(),
        "gen failed under the memory limit ({:?}): {}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let x = std::fs::metadata(out.join("x.npy")).unwrap().len();
    assert!(x > 80_000_000, "x.npy holds {x} bytes");
    let d = dptrain::data::Dataset::open(&out).unwrap();
    assert_eq!((d.rows(), d.features()), (200_000, 100));
    // Only the two files, no temporary left beside them.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["x.npy", "y.npy"]);
}

#[test]
fn gen_into_a_directory_holding_a_dataset_file_leaves_it_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let out = root.join("d");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("labels.json"), "[\"a\", \"b\"]\n").unwrap();
    refuse(
        root,
        gen_args(&out, &["--rows", "10"]),
        &["--out", "labels.json", "already exists"],
    );
}

// ---- #29: one .npy header writer ----

#[test]
fn the_test_npy_writer_writes_what_ndarray_npy_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = tmp.path().join("ours.npy");
    write_f32(&ours, &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let theirs = tmp.path().join("theirs.npy");
    let a = ndarray::Array2::from_shape_vec((3, 2), vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    ndarray_npy::write_npy(&theirs, &a).unwrap();
    assert_eq!(
        std::fs::read(&ours).unwrap(),
        std::fs::read(&theirs).unwrap()
    );
}
