//! `dptrain sweep` end to end: the table and files it writes, and its refusals.

use std::path::Path;
use std::process::{Command, Output};

use dptrain::data::{SyntheticSpec, Task};

const BIN: &str = env!("CARGO_BIN_EXE_dptrain");

fn data(dir: &Path) -> std::path::PathBuf {
    let d = dir.join("data");
    if d.join("y.npy").exists() {
        return d;
    }
    SyntheticSpec {
        task: Task::Regression,
        rows: 500,
        features: 5,
        outputs: 1,
        noise: 0.2,
        seed: 2,
    }
    .write(&d)
    .unwrap();
    d
}

fn sweep(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("sweep")
        .arg("--data")
        .arg(data(dir))
        .args(["--hidden", "8", "--epochs", "2"])
        .args(args)
        .output()
        .unwrap()
}

fn refused(o: &Output, names: &[&str]) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    for n in names {
        assert!(stderr.contains(n), "{n:?} not in {stderr}");
    }
}

#[test]
fn empty_or_malformed_batch_sizes_are_refused_naming_the_flag() {
    for (sizes, names) in [
        ("", vec!["--batch-sizes", "empty"]),
        ("16,abc", vec!["--batch-sizes", "abc"]),
        ("16,0", vec!["--batch-sizes", "at least 1"]),
        (",", vec!["--batch-sizes"]),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("sweep");
        let o = sweep(
            tmp.path(),
            &["--batch-sizes", sizes, "--out", out.to_str().unwrap()],
        );
        refused(&o, &names);
        assert!(!out.exists(), "a refused sweep created its output");
    }
}

#[test]
fn a_batch_size_larger_than_the_data_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    // 500 rows, 20% held out: 400 training rows.
    let o = sweep(
        tmp.path(),
        &["--batch-sizes", "16,1000", "--out", out.to_str().unwrap()],
    );
    refused(&o, &["--batch-sizes", "1000", "400"]);
    let o = sweep(
        tmp.path(),
        &["--batch-sizes", "16", "--batch-size", "8", "--out", "x"],
    );
    refused(&o, &["--batch-size"]);
    let o = sweep(tmp.path(), &["--batch-sizes", "16"]);
    refused(&o, &["--out"]);
    let o = sweep(
        tmp.path(),
        &["--batch-sizes", "16", "--resume", "--out", "x"],
    );
    refused(&o, &["--resume", "sweep"]);
}

#[test]
fn an_unreachable_target_is_reported_per_batch_size_not_as_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    let o = sweep(
        tmp.path(),
        &[
            "--batch-sizes",
            "16,64,full",
            "--target-loss",
            "0",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("not reached"))
        .collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    let fit = &report["fits"][0];
    assert!(fit["fit"].is_null());
    assert_eq!(fit["failure"]["case"], "too_few_reached", "{fit}");
    for row in report["rows"].as_array().unwrap() {
        assert!(row["steps_to_target"].is_null());
        assert!(row["best_val_epoch_budget"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn a_sweep_writes_its_table_csv_json_and_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    let o = sweep(
        tmp.path(),
        &[
            "--batch-sizes",
            "8,32,128",
            "--lr-grid",
            "0.5,1",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains("target validation loss") && stdout.contains("B_crit"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    for f in [
        "sweep.json",
        "report.html",
        "steps_to_target.svg",
        "wall_to_target.svg",
        "throughput.svg",
        "best_lr.svg",
        "loss_curves.svg",
    ] {
        let text = std::fs::read_to_string(out.join(f)).unwrap();
        assert!(!text.is_empty(), "{f}");
    }
    // The page stands alone: the plots inline, nothing fetched.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.matches("<svg").count() >= 4, "plots inline");
    for outside in ["<script", "<link", "src=\"http", "href=\"http"] {
        assert!(!html.contains(outside), "{outside} in report.html");
    }
    // Two learning rates per batch size, one seed each.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(report["runs"].as_array().unwrap().len(), 6);
}
