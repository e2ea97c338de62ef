//! Bad input is refused cleanly: every case below runs the real `dptrain` binary and checks that
//! it exits with code 2 (never a panic's 101), prints exactly one line on stderr naming the file
//! or flag at fault, and leaves every file under its temporary directory untouched (a `--out`
//! directory is passed wherever training could have started, and must not appear).

mod common;

use std::ffi::OsString;
use std::path::Path;

use common::{
    assert_unchanged, dptrain, f32_bytes, make_classification_dir, make_regression_dir, refuse,
    snapshot, write_f32, write_f64, write_i64, write_npy, write_safetensors,
};

/// `dptrain train --data DATA --out ROOT/run --epochs 1 --threads 1 EXTRA…`.
fn train(root: &Path, data: &Path, extra: &[&str]) -> Vec<OsString> {
    train_to(&root.join("run"), data, extra)
}

/// `dptrain train --data DATA --out OUT --epochs 1 --threads 1 EXTRA…`.
fn train_to(out: &Path, data: &Path, extra: &[&str]) -> Vec<OsString> {
    common::train_args(data, out, extra)
}

/// `dptrain inspect DATA`.
fn inspect(data: &Path) -> Vec<OsString> {
    vec!["inspect".into(), data.into()]
}

/// A temporary directory holding a valid 4 × 2 regression dataset in `data/`.
fn regression() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_regression_dir(&data, 4, 2);
    (tmp, data)
}

#[test]
fn a_missing_x_npy_is_reported_by_name() {
    let (tmp, data) = regression();
    std::fs::remove_file(data.join("x.npy")).unwrap();
    let root = tmp.path();
    refuse(root, train(root, &data, &[]), &["x.npy", "not found"]);
    refuse(root, inspect(&data), &["x.npy", "not found"]);
}

#[test]
fn a_missing_data_directory_is_reported_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("nowhere");
    refuse(root, train(root, &data, &[]), &["nowhere", "not found"]);
    refuse(root, inspect(&data), &["nowhere", "not found"]);
}

#[test]
fn a_data_path_that_is_a_file_is_told_apart_from_a_missing_one() {
    let (tmp, data) = regression();
    let root = tmp.path();
    let x = data.join("x.npy");
    refuse(
        root,
        train(root, &x, &[]),
        &["x.npy", "is a file", "x.npy and y.npy"],
    );
    refuse(
        root,
        inspect(&x),
        &["x.npy", "is a file", "x.npy and y.npy"],
    );
}

#[test]
fn an_x_npy_that_is_a_directory_is_reported_as_such() {
    let (tmp, data) = regression();
    let root = tmp.path();
    std::fs::remove_file(data.join("x.npy")).unwrap();
    std::fs::create_dir(data.join("x.npy")).unwrap();
    refuse(root, train(root, &data, &[]), &["x.npy", "is a directory"]);
    refuse(root, inspect(&data), &["x.npy", "is a directory"]);
}

#[test]
fn a_text_file_named_x_npy_is_not_taken_for_an_array() {
    let (tmp, data) = regression();
    let root = tmp.path();
    std::fs::write(
        data.join("x.npy"),
        "id,a,b\n1,0.5,0.25\n2,0.125,1.5\nthese are not the bytes you are looking for\n",
    )
    .unwrap();
    refuse(root, train(root, &data, &[]), &["x.npy", "not"]);
    refuse(root, inspect(&data), &["x.npy", "not"]);

    // An empty file and a file that stops inside the magic string, too.
    std::fs::write(data.join("x.npy"), b"").unwrap();
    refuse(
        root,
        train(root, &data, &[]),
        &["x.npy", "not an .npy file"],
    );
    refuse(root, inspect(&data), &["x.npy", "not an .npy file"]);
    std::fs::write(data.join("x.npy"), b"\x93NUM").unwrap();
    refuse(
        root,
        train(root, &data, &[]),
        &["x.npy", "not an .npy file"],
    );
    refuse(root, inspect(&data), &["x.npy", "not an .npy file"]);
}

#[test]
fn float64_features_are_refused_with_the_conversion_to_use() {
    let (tmp, data) = regression();
    let root = tmp.path();
    write_f64(&data.join("x.npy"), &[4, 2], &[0.5; 8]);
    refuse(
        root,
        train(root, &data, &[]),
        &["x.npy", "float64", "astype(np.float32)"],
    );
    refuse(
        root,
        inspect(&data),
        &["x.npy", "float64", "astype(np.float32)"],
    );
}

#[test]
fn float64_targets_are_refused_with_the_conversion_to_use() {
    let (tmp, data) = regression();
    let root = tmp.path();
    write_f64(&data.join("y.npy"), &[4], &[0.5; 4]);
    refuse(
        root,
        train(root, &data, &[]),
        &["y.npy", "float64", "astype(np.float32)"],
    );
}

#[test]
fn fortran_order_features_are_refused_with_the_fix() {
    let (tmp, data) = regression();
    let root = tmp.path();
    write_npy(
        &data.join("x.npy"),
        "<f4",
        true,
        &[4, 2],
        &f32_bytes(&[0.5; 8]),
    );
    refuse(
        root,
        train(root, &data, &[]),
        &["x.npy", "Fortran", "ascontiguousarray"],
    );
    refuse(
        root,
        inspect(&data),
        &["x.npy", "Fortran", "ascontiguousarray"],
    );
}

#[test]
fn a_three_dimensional_array_is_refused_with_its_shape() {
    let (tmp, data) = regression();
    let root = tmp.path();
    write_f32(&data.join("x.npy"), &[4, 1, 2], &[0.5; 8]);
    refuse(
        root,
        train(root, &data, &[]),
        &["x.npy", "3 dimensions", "[4, 1, 2]"],
    );
    refuse(
        root,
        inspect(&data),
        &["x.npy", "3 dimensions", "[4, 1, 2]"],
    );
}

#[test]
fn one_dimensional_features_are_refused_with_the_reshape_to_use() {
    let (tmp, data) = regression();
    let root = tmp.path();
    write_f32(&data.join("x.npy"), &[4], &[0.5; 4]);
    refuse(root, train(root, &data, &[]), &["x.npy", "reshape(-1, 1)"]);
}

#[test]
fn row_counts_that_differ_between_x_and_y_are_refused() {
    let (tmp, data) = regression();
    let root = tmp.path();
    write_f32(&data.join("y.npy"), &[3], &[1.0, 2.0, 3.0]);
    let line = refuse(root, train(root, &data, &[]), &["y.npy", "3 rows", "4"]);
    assert!(line.contains("x.npy"), "{line}");
}

#[test]
fn a_truncated_file_is_refused_before_anything_reads_past_its_end() {
    let (tmp, data) = regression();
    let root = tmp.path();
    // The header promises 4 × 2 float32 (32 bytes); only 2 values (8 bytes) follow.
    write_npy(
        &data.join("x.npy"),
        "<f4",
        false,
        &[4, 2],
        &f32_bytes(&[0.5, 0.25]),
    );
    refuse(
        root,
        train(root, &data, &[]),
        &["x.npy", "truncated", "32", "8"],
    );
    refuse(root, inspect(&data), &["x.npy", "truncated", "32", "8"]);

    // A file cut inside its header.
    let full = std::fs::read(data.join("y.npy")).unwrap();
    std::fs::write(data.join("x.npy"), &full[..40]).unwrap();
    refuse(
        root,
        train(root, &data, &[]),
        &["x.npy", "not an .npy file"],
    );
    refuse(root, inspect(&data), &["x.npy", "not an .npy file"]);
}

#[test]
fn trailing_bytes_after_the_data_are_refused() {
    let (tmp, data) = regression();
    let root = tmp.path();
    write_npy(
        &data.join("y.npy"),
        "<f4",
        false,
        &[4],
        &f32_bytes(&[0.5; 5]),
    );
    refuse(
        root,
        train(root, &data, &[]),
        &["y.npy", "4 unexpected bytes"],
    );
}

#[test]
fn a_dataset_with_zero_rows_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    std::fs::create_dir(&data).unwrap();
    write_f32(&data.join("x.npy"), &[0, 2], &[]);
    write_f32(&data.join("y.npy"), &[0], &[]);
    refuse(root, train(root, &data, &[]), &["x.npy", "zero rows"]);
}

#[test]
fn a_dataset_with_zero_features_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    std::fs::create_dir(&data).unwrap();
    write_f32(&data.join("x.npy"), &[3, 0], &[]);
    write_f32(&data.join("y.npy"), &[3], &[1.0; 3]);
    refuse(root, train(root, &data, &[]), &["x.npy", "zero features"]);
}

#[test]
fn nan_in_features_is_refused_naming_its_row_and_column() {
    let (tmp, data) = regression();
    let root = tmp.path();
    let mut x = vec![0.5f32; 8];
    x[2 * 2 + 1] = f32::NAN; // row 2, column 1
    write_f32(&data.join("x.npy"), &[4, 2], &x);
    refuse(
        root,
        train(root, &data, &[]),
        &["x.npy", "row 2", "column 1", "NaN"],
    );
}

#[test]
fn inf_in_targets_is_refused_naming_its_row_and_column() {
    let (tmp, data) = regression();
    let root = tmp.path();
    let mut y = vec![0.5f32; 8];
    y[3 * 2] = f32::NEG_INFINITY; // row 3, column 0 of a (4, 2) target
    write_f32(&data.join("y.npy"), &[4, 2], &y);
    refuse(
        root,
        train(root, &data, &[]),
        &["y.npy", "row 3", "column 0", "inf"],
    );
}

#[test]
fn a_negative_class_label_is_refused_naming_its_row() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    make_classification_dir(&data, 4, 2, 2);
    write_i64(&data.join("y.npy"), &[0, 1, -1, 0]);
    refuse(
        root,
        train(root, &data, &[]),
        &["y.npy", "row 2", "-1", "negative"],
    );
}

#[test]
fn a_class_label_beyond_the_classes_flag_is_refused_naming_row_and_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    make_classification_dir(&data, 4, 2, 2);
    write_i64(&data.join("y.npy"), &[0, 1, 2, 5]);
    refuse(
        root,
        train(root, &data, &["--classes", "3"]),
        &["--classes", "y.npy", "row 3", "5"],
    );
}

#[test]
fn a_zero_batch_size_is_refused_naming_the_flag() {
    let (tmp, data) = regression();
    let root = tmp.path();
    refuse(
        root,
        train(root, &data, &["--batch-size", "0"]),
        &["--batch-size"],
    );
}

#[test]
fn a_validation_fraction_above_one_is_refused_naming_the_flag() {
    let (tmp, data) = regression();
    let root = tmp.path();
    refuse(
        root,
        train(root, &data, &["--val-fraction", "1.5"]),
        &["--val-fraction", "1.5"],
    );
}

#[test]
fn a_zero_hidden_width_is_refused_naming_the_flag() {
    let (tmp, data) = regression();
    let root = tmp.path();
    refuse(root, train(root, &data, &["--hidden", "0"]), &["--hidden"]);
    refuse(
        root,
        train(root, &data, &["--hidden", "8,0"]),
        &["--hidden"],
    );
    refuse(
        root,
        train(root, &data, &["--hidden", "8,x"]),
        &["--hidden"],
    );
}

#[test]
fn an_out_directory_below_a_regular_file_is_refused() {
    let (tmp, data) = regression();
    let root = tmp.path();
    std::fs::write(root.join("somefile"), "not a directory\n").unwrap();
    let out = root.join("somefile").join("run");
    refuse(
        root,
        train_to(&out, &data, &[]),
        &["--out", "somefile", "not a directory"],
    );

    // --out naming the regular file itself.
    refuse(
        root,
        train_to(&root.join("somefile"), &data, &[]),
        &["--out", "somefile", "not a directory"],
    );
}

#[test]
fn an_out_directory_in_a_read_only_directory_is_refused_unless_running_as_root() {
    use std::os::unix::fs::PermissionsExt;
    let (tmp, data) = regression();
    let root = tmp.path();
    let ro = root.join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let probe = ro.join("probe");
    if std::fs::File::create(&probe).is_ok() {
        // Root (or a filesystem that ignores modes) writes anyway: nothing to test here.
        std::fs::remove_file(&probe).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
        common::skip(
            "an_out_directory_in_a_read_only_directory_is_refused_unless_running_as_root",
            "a 0o555 directory is writable here (running as root?)",
        );
        return;
    }
    let args = train_to(&ro.join("run"), &data, &[]);
    let result = std::panic::catch_unwind(|| refuse(root, args, &["--out", "ro", "cannot write"]));
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn an_out_directory_holding_a_run_is_refused_and_left_byte_identical() {
    let (tmp, data) = regression();
    let root = tmp.path();
    let first = dptrain(root, train(root, &data, &[]));
    assert!(
        first.status.success(),
        "the first run failed: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(root.join("run/final.safetensors").is_file());
    let before = snapshot(root);
    let line = refuse(
        root,
        train(root, &data, &[]),
        &["--out", "run", "already holds a run"],
    );
    assert!(!line.contains("panicked"));
    assert_unchanged(&before, &snapshot(root));

    // A directory holding only the metrics of an interrupted run is a run too.
    std::fs::create_dir(root.join("partial")).unwrap();
    std::fs::write(root.join("partial/metrics.jsonl"), "").unwrap();
    refuse(
        root,
        train_to(&root.join("partial"), &data, &[]),
        &["--out", "partial", "metrics.jsonl"],
    );
}

#[test]
fn init_weights_of_the_wrong_shape_are_refused_naming_tensor_and_shapes() {
    let (tmp, data) = regression();
    let root = tmp.path();
    // Weights for 2 → 5 → 1, given to a 2 → 4 → 1 model.
    let init = root.join("w.safetensors");
    write_safetensors(
        &init,
        &[
            ("fc1.weight", &[5, 2], &[0.1; 10]),
            ("fc1.bias", &[5], &[0.0; 5]),
            ("fc2.weight", &[1, 5], &[0.1; 5]),
            ("fc2.bias", &[1], &[0.0]),
        ],
    );
    let init_arg = init.to_str().unwrap();
    refuse(
        root,
        train(root, &data, &["--hidden", "4", "--init", init_arg]),
        &["w.safetensors", "fc1.weight", "[5, 2]", "[4, 2]"],
    );

    // A tensor missing, and one too many.
    write_safetensors(&init, &[("fc1.weight", &[4, 2], &[0.1; 8])]);
    refuse(
        root,
        train(root, &data, &["--hidden", "4", "--init", init_arg]),
        &["w.safetensors", "fc1.bias", "missing"],
    );
    write_safetensors(
        &init,
        &[
            ("fc1.weight", &[4, 2], &[0.1; 8]),
            ("fc1.bias", &[4], &[0.0; 4]),
            ("fc2.weight", &[1, 4], &[0.1; 4]),
            ("fc2.bias", &[1], &[0.0]),
            ("fc3.weight", &[1, 1], &[0.1]),
        ],
    );
    refuse(
        root,
        train(root, &data, &["--hidden", "4", "--init", init_arg]),
        &["w.safetensors", "fc3.weight"],
    );
}

#[test]
fn init_that_is_not_a_safetensors_file_is_refused() {
    let (tmp, data) = regression();
    let root = tmp.path();
    let init = root.join("w.safetensors");
    std::fs::write(
        &init,
        "PK\x03\x04 this is a zip, perhaps a torch.save checkpoint",
    )
    .unwrap();
    let init_arg = init.to_str().unwrap();
    refuse(
        root,
        train(root, &data, &["--init", init_arg]),
        &["w.safetensors", "safetensors"],
    );
    std::fs::write(&init, b"").unwrap();
    refuse(
        root,
        train(root, &data, &["--init", init_arg]),
        &["w.safetensors", "safetensors"],
    );
    let missing = root.join("missing.safetensors");
    refuse(
        root,
        train(root, &data, &["--init", missing.to_str().unwrap()]),
        &["missing.safetensors", "not found"],
    );
    let dir = root.join("initdir");
    std::fs::create_dir(&dir).unwrap();
    refuse(
        root,
        train(root, &data, &["--init", dir.to_str().unwrap()]),
        &["initdir", "directory"],
    );
}

#[test]
fn a_config_file_with_an_unknown_key_is_refused_naming_file_and_key() {
    let (tmp, data) = regression();
    let root = tmp.path();
    let config = root.join("run.toml");
    std::fs::write(&config, "epochs = 1\nlearning-rate = 0.1\n").unwrap();
    refuse(
        root,
        train(root, &data, &["--config", config.to_str().unwrap()]),
        &["--config", "run.toml", "learning-rate"],
    );
}

#[test]
fn a_config_file_that_is_not_toml_or_is_missing_is_refused() {
    let (tmp, data) = regression();
    let root = tmp.path();
    let config = root.join("run.toml");
    std::fs::write(&config, "epochs: 1\n").unwrap();
    refuse(
        root,
        train(root, &data, &["--config", config.to_str().unwrap()]),
        &["--config", "run.toml"],
    );
    let missing = root.join("missing.toml");
    refuse(
        root,
        train(root, &data, &["--config", missing.to_str().unwrap()]),
        &["--config", "missing.toml"],
    );
}

#[test]
fn a_slurm_step_of_several_tasks_is_refused_by_a_build_without_mpi() {
    if cfg!(feature = "mpi") {
        eprintln!("test SKIPPED: this build has MPI (tests/mpi.rs checks its refusal)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dptrain"))
        .args(["train", "--epochs", "1"])
        .current_dir(dir.path())
        .env("SLURM_STEP_NUM_TASKS", "4")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("Slurm started 4 tasks") && err.contains("built without MPI"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
