//! `dptrain eval` and `dptrain predict` on the binary: the whole path from a CSV file with
//! string labels to named predictions, regression models, thread-count independence, the
//! PyTorch round trip, and clean refusals of data that does not fit the model.

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use common::{
    dptrain, dptrain_ok, make_classification_dir, make_regression_dir, read_labels, refuse,
    write_species_csv,
};

fn args(list: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    list.iter().map(|a| a.as_ref().to_os_string()).collect()
}

/// Imports a 90-row species CSV into `root/data` and trains `root/run` on it with
/// `--standardize`; returns (data, run).
fn species_run(root: &Path) -> (PathBuf, PathBuf) {
    let file = root.join("species.csv");
    write_species_csv(&file, 90);
    let data = root.join("data");
    let run = root.join("run");
    dptrain_ok(
        root,
        args(&[
            &"import",
            &"csv",
            &file,
            &"--target",
            &"species",
            &"--out",
            &data,
        ]),
    );
    dptrain_ok(
        root,
        args(&[
            &"train",
            &"--data",
            &data,
            &"--standardize",
            &"--val-fraction",
            &"0.2",
            &"--epochs",
            &"30",
            &"--batch-size",
            &"8",
            &"--lr",
            &"0.05",
            &"--threads",
            &"2",
            &"--out",
            &run,
        ]),
    );
    (data, run)
}

#[test]
fn a_csv_with_string_labels_goes_through_import_train_eval_and_predict() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (data, run) = species_run(root);
    let names = read_labels(&data);
    assert_eq!(names, ["setosa", "versicolor", "virginica"]);

    // eval: text report with the class names, and JSON with the same numbers.
    let text = dptrain_ok(root, args(&[&"eval", &"--model", &run, &"--data", &data]));
    assert!(text.contains("rows: 90"), "{text}");
    assert!(text.contains("accuracy: "), "{text}");
    assert!(text.contains("confusion matrix"), "{text}");
    for n in &names {
        assert!(text.contains(n.as_str()), "{n} missing from\n{text}");
    }
    let json: serde_json::Value = serde_json::from_str(&dptrain_ok(
        root,
        args(&[&"eval", &"--model", &run, &"--data", &data, &"--json"]),
    ))
    .unwrap();
    assert_eq!(json["rows"], 90);
    assert_eq!(json["loss_fn"], "cross-entropy");
    let accuracy = json["accuracy"].as_f64().unwrap();
    assert!(
        accuracy > 0.9,
        "the classes are separable: accuracy {accuracy}"
    );
    let per_class: Vec<&str> = json["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(per_class, names);
    let confusion = json["confusion"].as_array().unwrap();
    let total: u64 = confusion
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(total, 90);

    // predict: one named class per row in .csv, the same ids in .npy.
    let csv = root.join("pred.csv");
    let npy = root.join("pred.npy");
    dptrain_ok(
        root,
        args(&[
            &"predict", &"--model", &run, &"--data", &data, &"--out", &csv,
        ]),
    );
    dptrain_ok(
        root,
        args(&[
            &"predict", &"--model", &run, &"--data", &data, &"--out", &npy,
        ]),
    );
    let lines: Vec<String> = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines[0], "class");
    assert_eq!(lines.len(), 1 + 90);
    let ids = read_i64_npy(&npy);
    assert_eq!(ids.len(), 90);
    for (line, id) in lines[1..].iter().zip(&ids) {
        assert_eq!(line, &names[*id as usize]);
    }
    let correct = ids
        .iter()
        .enumerate()
        .filter(|(r, id)| **id == (*r % 3) as i64)
        .count();
    assert_eq!(correct as f64 / 90.0, accuracy);
}

/// Reads a 1-D int64 `.npy` file (as `np.save` or dptrain writes it).
fn read_i64_npy(path: &Path) -> Vec<i64> {
    let a = dptrain::data::npy::NpyArray::open(path).unwrap();
    assert_eq!(a.shape().len(), 1);
    (0..a.shape()[0])
        .map(|i| i64::try_from(a.int_at(i)).expect("an int64 id"))
        .collect()
}

#[test]
fn predict_needs_only_x_npy_and_gives_the_same_bits_whatever_the_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (data, run) = species_run(root);
    let features = root.join("features");
    std::fs::create_dir(&features).unwrap();
    std::fs::copy(data.join("x.npy"), features.join("x.npy")).unwrap();
    let mut outputs = Vec::new();
    for threads in ["1", "2", "3"] {
        let out = root.join(format!("raw{threads}.npy"));
        dptrain_ok(
            root,
            args(&[
                &"predict",
                &"--model",
                &run.join("final.safetensors"),
                &"--data",
                &features,
                &"--raw",
                &"--threads",
                &threads,
                &"--out",
                &out,
            ]),
        );
        outputs.push(std::fs::read(out).unwrap());
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
}

#[test]
fn a_regression_model_reports_mse_and_predicts_one_value_per_row() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    make_regression_dir(&data, 40, 3);
    let run = root.join("run");
    dptrain_ok(
        root,
        args(&[
            &"train",
            &"--data",
            &data,
            &"--epochs",
            &"3",
            &"--threads",
            &"1",
            &"--out",
            &run,
        ]),
    );
    let text = dptrain_ok(root, args(&[&"eval", &"--model", &run, &"--data", &data]));
    assert!(text.contains("loss (mse): "), "{text}");
    assert!(!text.contains("accuracy"), "{text}");
    let csv = root.join("pred.csv");
    dptrain_ok(
        root,
        args(&[
            &"predict", &"--model", &run, &"--data", &data, &"--out", &csv,
        ]),
    );
    let body = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "prediction");
    assert_eq!(lines.len(), 41);
    assert!(
        lines[1..].iter().all(|l| l.parse::<f32>().is_ok()),
        "{body}"
    );
}

#[test]
fn the_pytorch_script_reproduces_dptrains_predictions_or_says_why_it_skipped() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import torch, safetensors, numpy"])
        .output();
    match probe {
        Err(e) => {
            common::skip(
                "the_pytorch_script_reproduces_dptrains_predictions_or_says_why_it_skipped",
                &format!("python3 cannot be run ({e})"),
            );
            return;
        }
        Ok(o) if !o.status.success() => {
            let why = String::from_utf8_lossy(&o.stderr);
            let why = why.lines().last().unwrap_or("import failed");
            common::skip(
                "the_pytorch_script_reproduces_dptrains_predictions_or_says_why_it_skipped",
                &format!("python3 cannot import torch, safetensors and numpy ({why})"),
            );
            return;
        }
        Ok(_) => {}
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (data, run) = species_run(root);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/to_pytorch.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&run)
        .arg("--data")
        .arg(&data)
        .arg("--dptrain")
        .arg(env!("CARGO_BIN_EXE_dptrain"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("PyTorch reproduces dptrain's predictions"),
        "{stdout}"
    );
    assert!(stdout.contains("standardize=yes"), "{stdout}");
    assert!(stdout.contains("agree on 90/90 rows"), "{stdout}");
}

// --- bad input: exit 2, one line naming the place, nothing created -------------------------

/// A trained 4-feature classifier in `root/run` and a 3-feature dataset in `root/narrow`.
fn mismatched(root: &Path) -> (PathBuf, PathBuf) {
    let data = root.join("data");
    make_classification_dir(&data, 20, 4, 2);
    let run = root.join("run");
    dptrain_ok(
        root,
        args(&[
            &"train",
            &"--data",
            &data,
            &"--epochs",
            &"1",
            &"--threads",
            &"1",
            &"--out",
            &run,
        ]),
    );
    let narrow = root.join("narrow");
    make_classification_dir(&narrow, 20, 3, 2);
    (run, narrow)
}

#[test]
fn eval_refuses_data_with_another_feature_count_naming_both_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (run, narrow) = mismatched(root);
    refuse(
        root,
        args(&[&"eval", &"--model", &run, &"--data", &narrow]),
        &[
            "narrow/x.npy",
            "has 3 features",
            "takes 4",
            "final.safetensors",
        ],
    );
}

#[test]
fn predict_refuses_data_with_another_feature_count_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (run, narrow) = mismatched(root);
    refuse(
        root,
        args(&[
            &"predict",
            &"--model",
            &run,
            &"--data",
            &narrow,
            &"--out",
            &root.join("p.csv"),
        ]),
        &["narrow/x.npy", "has 3 features", "takes 4"],
    );
}

#[test]
fn predict_never_overwrites_and_wants_a_csv_or_npy_name() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (run, _) = mismatched(root);
    let data = root.join("data");
    std::fs::write(root.join("p.csv"), "mine").unwrap();
    refuse(
        root,
        args(&[
            &"predict",
            &"--model",
            &run,
            &"--data",
            &data,
            &"--out",
            &root.join("p.csv"),
        ]),
        &["--out", "p.csv", "already exists"],
    );
    refuse(
        root,
        args(&[
            &"predict",
            &"--model",
            &run,
            &"--data",
            &data,
            &"--out",
            &root.join("p.txt"),
        ]),
        &["--out", ".csv or .npy"],
    );
    refuse(
        root,
        args(&[
            &"predict",
            &"--model",
            &run,
            &"--data",
            &data,
            &"--out",
            &root.join("missing/p.npy"),
        ]),
        &["--out", "does not exist"],
    );
}

#[test]
fn eval_refuses_a_missing_model_and_targets_of_the_wrong_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (run, _) = mismatched(root);
    let data = root.join("data");
    refuse(
        root,
        args(&[&"eval", &"--model", &root.join("nope"), &"--data", &data]),
        &["nope", "not found"],
    );
    let reg = root.join("reg");
    make_regression_dir(&reg, 10, 4);
    refuse(
        root,
        args(&[&"eval", &"--model", &run, &"--data", &reg]),
        &["reg/y.npy", "float targets", "classifier"],
    );
    let wide_labels = root.join("three");
    make_classification_dir(&wide_labels, 10, 4, 3);
    refuse(
        root,
        args(&[&"eval", &"--model", &run, &"--data", &wide_labels]),
        &["three/y.npy", "label 2", "2 classes"],
    );
}

#[test]
fn eval_of_a_model_file_without_metadata_follows_the_labels() {
    // A PyTorch-made file: no dptrain metadata, so the data's integer labels make it a
    // classifier (ReLU).
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    make_classification_dir(&data, 12, 2, 2);
    let w = root.join("torch.safetensors");
    common::write_safetensors(
        &w,
        &[
            ("fc1.weight", &[3, 2], &[0.1, 0.2, -0.3, 0.4, 0.5, -0.6]),
            ("fc1.bias", &[3], &[0.0, 0.1, -0.1]),
            ("fc2.weight", &[2, 3], &[0.3, -0.2, 0.1, -0.4, 0.2, 0.6]),
            ("fc2.bias", &[2], &[0.05, -0.05]),
        ],
    );
    let out = dptrain(root, args(&[&"eval", &"--model", &w, &"--data", &data]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("loss (cross-entropy)"), "{text}");
}
