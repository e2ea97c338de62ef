//! Hardening of the data side (issue 15): `gen` that streams or refuses up front, absurd class
//! counts, CSV line numbers with CRLF, labels shown as they are, errors that quote little of a
//! file, `--delimiter` and `--target` values, `inspect` of partial datasets, and checkpoints of
//! the old format. Each test runs the real binary, as a user would.

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use common::{assert_refused, dptrain, dptrain_ok, make_regression_dir, refuse, write_f32};

/// `dptrain train --data DATA --out OUT --epochs 1 --threads 1 EXTRA…`.
fn train(data: &Path, out: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "train".into(),
        "--data".into(),
        data.into(),
        "--out".into(),
        out.into(),
        "--epochs".into(),
        "1".into(),
        "--threads".into(),
        "1".into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    args
}

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

// ---- #30: checkpoints of the old format ----

/// Rewrites the `format` field of a checkpoint's metadata, keeping everything else.
fn set_checkpoint_format(path: &Path, format: u64) {
    use safetensors::SafeTensors;
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = meta.metadata().clone().expect("checkpoint metadata");
    let key = "dptrain.checkpoint";
    let mut header: serde_json::Value = serde_json::from_str(&meta[key]).unwrap();
    header["format"] = format.into();
    meta.insert(key.to_string(), header.to_string());
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let out = safetensors::serialize(st.tensors(), Some(meta)).unwrap();
    std::fs::write(path, out).unwrap();
}

#[test]
fn a_checkpoint_of_the_old_format_is_refused_saying_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    make_regression_dir(&data, 40, 3);
    let run = root.join("run");
    dptrain_ok(root, train(&data, &run, &["--epochs", "2"]));
    let ckpts: Vec<PathBuf> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!ckpts.is_empty());
    for c in &ckpts {
        set_checkpoint_format(c, 1);
    }
    let line = refuse(
        root,
        train(&data, &run, &["--epochs", "3", "--resume"]),
        &["ckpt-", "format 1", "older dptrain", "--out"],
    );
    assert!(line.contains("format 2"), "{line}");
}

#[test]
fn a_resumed_run_still_checks_its_data_fingerprint() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    make_regression_dir(&data, 40, 3);
    let run = root.join("run");
    dptrain_ok(root, train(&data, &run, &["--epochs", "1"]));
    // Same length, one value changed in the middle of the sampled first block.
    let x = data.join("x.npy");
    let mut bytes = std::fs::read(&x).unwrap();
    let n = bytes.len();
    bytes[n - 7] ^= 0x10;
    std::fs::write(&x, bytes).unwrap();
    let out = dptrain(root, train(&data, &run, &["--epochs", "2", "--resume"]));
    let line = assert_refused(&out, &["x.npy", "changed content"]);
    eprintln!("refused as expected: {line}");
}
