//! Hardening of the data side (issue 15): `gen` that streams or refuses up front, absurd class
//! counts, CSV line numbers with CRLF, labels shown as they are, errors that quote little of a
//! file, `--delimiter` and `--target` values, `inspect` of partial datasets, and checkpoints of
//! the old format. Each test runs the real binary, as a user would.

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use common::{
    assert_refused, dptrain, dptrain_ok, make_classification_dir, make_regression_dir, read_labels,
    refuse, write_f32, write_i64, write_npy,
};

/// `dptrain train --data DATA --out OUT --epochs 1 --threads 1 EXTRA…`.
fn train(data: &Path, out: &Path, extra: &[&str]) -> Vec<OsString> {
    common::train_args(data, out, extra)
}

/// `dptrain import csv FILE --out OUT EXTRA…`.
fn import(file: &Path, out: &Path, extra: &[&str]) -> Vec<OsString> {
    common::import_args(file, out, extra)
}

/// `dptrain gen --out OUT EXTRA…`.
fn gen_args(out: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["gen".into(), "--out".into(), out.into()];
    args.extend(extra.iter().map(OsString::from));
    args
}

/// A temporary directory holding `d.csv` with `text`.
fn csv(text: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("d.csv");
    std::fs::write(&file, text).unwrap();
    (tmp, file)
}

/// Writes a little-endian uint64 label file.
fn write_u64(path: &Path, values: &[u64]) {
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(path, "<u8", false, &[values.len()], &data);
}

/// Writes an `.npy` file of format 2.0 (4-byte header length) whose header is `dict`, padded
/// as numpy pads it. Format 2.0 lets the header exceed 64 KiB, as a hostile file may.
fn write_npy_v2(path: &Path, dict: &str) {
    let mut dict = dict.to_string();
    while !(12 + dict.len() + 1).is_multiple_of(64) {
        dict.push(' ');
    }
    dict.push('\n');
    let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
    bytes.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    bytes.extend_from_slice(dict.as_bytes());
    std::fs::write(path, bytes).unwrap();
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

// ---- #3: absurd class counts ----

#[test]
fn a_label_making_more_classes_than_rows_is_refused_naming_its_row_and_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    make_classification_dir(&data, 100, 3, 2);
    for huge in [100_000i64, 1_000_000_000] {
        let mut y: Vec<i64> = (0..100).map(|r| r % 2).collect();
        y[57] = huge;
        write_i64(&data.join("y.npy"), &y);
        let line = refuse(
            root,
            train(&data, &root.join("run"), &[]),
            &[
                "y.npy",
                "row 57",
                &huge.to_string(),
                "100 rows",
                "--classes",
            ],
        );
        assert!(line.contains(&(huge + 1).to_string()), "{line}");
        // A sweep opens the data the same way.
        refuse(
            root,
            [
                "sweep",
                "--data",
                data.to_str().unwrap(),
                "--out",
                root.join("sw").to_str().unwrap(),
            ],
            &["y.npy", "row 57"],
        );
    }
}

#[test]
fn as_many_classes_as_rows_still_train_and_a_small_test_split_still_evaluates() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // 10 classes in 20 rows trains…
    let data = root.join("data");
    make_classification_dir(&data, 20, 3, 10);
    dptrain_ok(root, train(&data, &root.join("run"), &[]));
    // …and a 3-row test split whose labels (7, 8, 9) exceed its row count evaluates against
    // the 10-class model: the model, not the rows, bounds the labels there.
    let test = root.join("test");
    make_classification_dir(&test, 3, 3, 3);
    write_i64(&test.join("y.npy"), &[7, 8, 9]);
    let out = dptrain_ok(
        root,
        [
            "eval",
            "--model",
            root.join("run").to_str().unwrap(),
            "--data",
            test.to_str().unwrap(),
        ],
    );
    assert!(out.contains("accuracy"), "{out}");
}

// ---- #8: CRLF line numbers ----

#[test]
fn line_numbers_are_right_in_a_file_with_crlf_line_ends() {
    let (tmp, file) = csv(b"a,b,y\r\n1,2,3\r\n4,x,5\r\n");
    let out = tmp.path().join("data");
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "y"]),
        &["d.csv", "line 3", "column \"b\"", "not a number"],
    );
    let (tmp, file) = csv(b"a,b,y\r\n1,2,3\r\n4,5\r\n");
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "y"]),
        &["d.csv", "line 3", "2 fields"],
    );
    // A quoted class name spanning two lines, then a blank line: the bad cell is on line 5.
    let (tmp, file) = csv(b"n,a,b\r\n\"two\r\nlines\",1,2\r\n\r\nz,bad,3\r\n");
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "n"]),
        &["d.csv", "line 5", "column \"a\""],
    );
    // The first line of a file with a byte-order mark is line 1.
    let (tmp, file) = csv(b"\xEF\xBB\xBFa,y\r\nq,1\r\n");
    refuse(
        tmp.path(),
        import(&file, &out, &["--target", "y"]),
        &["d.csv", "line 2", "column \"a\""],
    );
}

// ---- #14: a uint64 label is shown as it is ----

#[test]
fn a_uint64_label_beyond_i64_is_shown_truthfully() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    make_classification_dir(&data, 4, 2, 2);
    write_u64(&data.join("y.npy"), &[0, 1, 1, u64::MAX]);
    let line = refuse(
        root,
        train(&data, &root.join("run"), &[]),
        &["y.npy", "row 3", "18446744073709551615"],
    );
    assert!(!line.contains("9223372036854775807"), "{line}");
    let out = dptrain_ok(root, ["inspect", data.to_str().unwrap()]);
    assert!(out.contains("18446744073709551615"), "{out}");
    assert!(!out.contains("9223372036854775807"), "{out}");
    let json = dptrain_ok(root, ["inspect", data.to_str().unwrap(), "--json"]);
    assert!(json.contains("18446744073709551615"), "{json}");
}

// ---- #16: errors quote little of a file ----

#[test]
fn a_hostile_npy_header_gives_one_short_line() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    make_regression_dir(&data, 4, 2);
    let deep = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let long_descr = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': (4, 2), }}",
        "f".repeat(100_000)
    );
    let many_dims = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}), }}",
        "1, ".repeat(30_000)
    );
    let unknown_key = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2), '{}': 1}}",
        "k".repeat(100_000)
    );
    for dict in [deep, long_descr, many_dims, unknown_key] {
        write_npy_v2(&data.join("x.npy"), &dict);
        for args in [
            train(&data, &root.join("run"), &[]),
            vec!["inspect".into(), data.clone().into()],
        ] {
            let line = refuse(root, args, &["x.npy"]);
            assert!(line.len() < 400, "{} bytes: {line}", line.len());
        }
    }
}

#[test]
fn a_huge_csv_cell_is_quoted_short() {
    let mut text = b"a,y\n1,2\n".to_vec();
    text.extend(std::iter::repeat_n(b'z', 100_000));
    text.extend_from_slice(b",3\n");
    let (tmp, file) = csv(&text);
    let line = refuse(
        tmp.path(),
        import(&file, &tmp.path().join("data"), &["--target", "y"]),
        &["d.csv", "line 3", "column \"a\"", "not a number"],
    );
    assert!(line.len() < 400, "{} bytes: {line}", line.len());
}

// ---- #19: --delimiter ----

#[test]
fn a_non_ascii_delimiter_is_called_one_character_but_not_one_byte() {
    let (tmp, file) = csv(b"a\xC2\xA7y\n1\xC2\xA72\n");
    let line = refuse(
        tmp.path(),
        import(
            &file,
            &tmp.path().join("data"),
            &["--target", "y", "--delimiter", "§"],
        ),
        &["--delimiter", "§", "one character", "2 bytes", "ASCII"],
    );
    assert!(!line.contains("not one character"), "{line}");
}

// ---- #25: inspect ----

#[test]
fn inspect_shows_a_directory_holding_only_x_npy() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    make_regression_dir(&data, 4, 2);
    std::fs::remove_file(data.join("y.npy")).unwrap();
    let out = dptrain_ok(root, ["inspect", data.to_str().unwrap()]);
    assert!(out.contains("x.npy: shape [4, 2], dtype float32"), "{out}");
    assert!(out.contains("no y.npy"), "{out}");
    let json = dptrain_ok(root, ["inspect", data.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["y"].is_null(), "{json}");
}

#[test]
fn inspect_warns_when_x_and_y_have_different_row_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    make_regression_dir(&data, 100, 2);
    write_f32(&data.join("y.npy"), &[50], &[0.5; 50]);
    let run = dptrain(root, ["inspect", data.to_str().unwrap()]);
    assert!(run.status.success(), "{run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("warning")
            && stderr.contains("x.npy has 100 rows")
            && stderr.contains("y.npy has 50"),
        "{stderr}"
    );
    let json = dptrain_ok(root, ["inspect", data.to_str().unwrap(), "--json"]);
    assert!(json.contains("y.npy has 50"), "{json}");
}

#[test]
fn inspect_names_the_classes_from_labels_json() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    make_classification_dir(&data, 6, 2, 3);
    std::fs::write(
        data.join("labels.json"),
        "[\"setosa\", \"versicolor\", \"virginica\"]\n",
    )
    .unwrap();
    let out = dptrain_ok(root, ["inspect", data.to_str().unwrap()]);
    for name in ["setosa", "versicolor", "virginica"] {
        assert!(out.contains(name), "{out}");
    }
    let json = dptrain_ok(root, ["inspect", data.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["labels"][2], "virginica", "{json}");
    // Names that do not fit the labels are shown, with a warning.
    std::fs::write(data.join("labels.json"), "[\"a\", \"b\"]\n").unwrap();
    let run = dptrain(root, ["inspect", data.to_str().unwrap()]);
    assert!(run.status.success(), "{run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("labels.json") && stderr.contains("2 class names"),
        "{stderr}"
    );
}

// ---- #26: --target names holding a comma ----

#[test]
fn a_target_name_holding_a_comma_is_given_in_double_quotes() {
    let (tmp, file) = csv(b"x1,\"label, with comma\"\n1,a\n2,b\n3,a\n");
    let out = tmp.path().join("data");
    dptrain_ok(
        tmp.path(),
        import(&file, &out, &["--target", "\"label, with comma\""]),
    );
    assert_eq!(read_labels(&out), ["a", "b"]);
    // Unquoted, the value is two names; the refusal says how to quote.
    let (tmp, file) = csv(b"x1,\"label, with comma\"\n1,a\n2,b\n3,a\n");
    refuse(
        tmp.path(),
        import(
            &file,
            &tmp.path().join("data"),
            &["--target", "label, with comma"],
        ),
        &["--target", "\"label\"", "double quotes"],
    );
}

#[test]
fn several_targets_are_still_comma_separated_or_repeated() {
    let text = b"y1,x,y2\n1,2,3\n4,5,6\n";
    for extra in [
        &["--target", "y1,y2"][..],
        &["--target", "y1", "--target", "y2"],
    ] {
        let (tmp, file) = csv(text);
        let out = tmp.path().join("data");
        dptrain_ok(tmp.path(), import(&file, &out, extra));
        let d = dptrain::data::Dataset::open(&out).unwrap();
        assert_eq!(d.y_values().unwrap(), &[1.0, 3.0, 4.0, 6.0]);
    }
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
