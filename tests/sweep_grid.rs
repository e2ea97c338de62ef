//! `dptrain sweep`'s grid: the learning rate tuned per batch size, pruning, the optimizer axis,
//! `--collect` of task-array results, and the refusals of bad grids.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dptrain::data::{SyntheticSpec, Task};

const BIN: &str = env!("CARGO_BIN_EXE_dptrain");

fn data(dir: &Path) -> PathBuf {
    let d = dir.join("data");
    if !d.join("y.npy").exists() {
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
    }
    d
}

fn sweep(dir: &Path, out: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("sweep")
        .arg("--data")
        .arg(data(dir))
        .args(["--hidden", "8", "--epochs", "3", "--threads", "1"])
        .args(["--batch-sizes", "16,64"])
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn refused(o: &Output, names: &[&str]) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    for n in names {
        assert!(stderr.contains(n), "{n:?} not in {stderr}");
    }
}

fn report(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap()
}

fn best_lrs(r: &serde_json::Value) -> Vec<f64> {
    r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["best_lr"].as_f64().unwrap())
        .collect()
}

#[test]
fn the_learning_rate_is_tuned_per_batch_size_and_pruning_never_changes_the_best_rate() {
    let tmp = tempfile::tempdir().unwrap();
    // Every run trained to the end: the seven factors of the default grid at each batch size.
    let full = tmp.path().join("full");
    ok(&sweep(tmp.path(), &full, &["--prune", "false"]));
    let unpruned = report(&full);
    let runs = unpruned["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2 * 7);
    for r in runs {
        assert!(r["pruned"].is_null());
        if r["diverged"].is_null() {
            let last = r["curve"].as_array().unwrap().last().unwrap()["step"].as_u64();
            assert_eq!(last, r["budget_steps"].as_u64(), "trained its whole budget");
        }
    }
    // The same study with its target given: pruning stops runs, records where and why, and
    // keeps the best learning rate of every batch size.
    let target = unpruned["target"].as_f64().unwrap().to_string();
    let pruned_dir = tmp.path().join("pruned");
    let text = ok(&sweep(tmp.path(), &pruned_dir, &["--target-loss", &target]));
    let pruned = report(&pruned_dir);
    let stopped: Vec<&serde_json::Value> = pruned["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["pruned"].is_null())
        .collect();
    assert!(!stopped.is_empty(), "{text}");
    for r in &stopped {
        let why = r["pruned"]["reason"].as_str().unwrap();
        assert!(why.contains("reached") && why.contains("had not"), "{why}");
        assert!(r["pruned"]["at_step"].as_u64().unwrap() < r["budget_steps"].as_u64().unwrap());
    }
    assert_eq!(best_lrs(&pruned), best_lrs(&unpruned));
    let cost = &pruned["cost"];
    assert!(
        cost["samples"].as_u64() < cost["samples_unpruned"].as_u64(),
        "{cost}"
    );
    assert!(text.contains("--prune stopped"), "{text}");
    // With the automatic target too: the same target, the same best rates.
    let auto_dir = tmp.path().join("auto");
    ok(&sweep(tmp.path(), &auto_dir, &[]));
    let auto = report(&auto_dir);
    assert_eq!(auto["target"], unpruned["target"]);
    assert_eq!(best_lrs(&auto), best_lrs(&unpruned));
}

#[test]
fn each_optimizer_gets_its_rows_and_its_fit() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("s");
    let text = ok(&sweep(
        tmp.path(),
        &out,
        &[
            "--optimizers",
            "sgd,adam",
            "--lr-grid",
            "0.5,1",
            "--momentum-grid",
            "0,0.9",
        ],
    ));
    let r = report(&out);
    let rows = r["rows"].as_array().unwrap();
    let optimizers: Vec<&str> = rows
        .iter()
        .map(|row| row["optimizer"].as_str().unwrap())
        .collect();
    assert_eq!(optimizers, ["sgd", "sgd", "adam", "adam"]);
    assert_eq!(r["fits"].as_array().unwrap().len(), 2);
    // Two optimizers × two momenta × two factors × two batch sizes.
    assert_eq!(r["runs"].as_array().unwrap().len(), 16);
    assert!(
        text.contains("16 (adam)") && text.contains("fit (adam)"),
        "{text}"
    );
}

#[test]
fn bad_grids_are_refused_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, names) in [
        (vec!["--lr-grid", "0,1"], vec!["--lr-grid", "positive"]),
        (
            vec!["--momentum-grid", "0.5,1.5"],
            vec!["--momentum-grid", "[0, 1)"],
        ),
        (
            vec!["--optimizers", "sgd,lion"],
            vec!["--optimizers", "lion"],
        ),
        (vec!["--prune", "maybe"], vec!["--prune"]),
        (
            vec!["--momentum-grid", "0", "--nesterov"],
            vec!["--momentum-grid", "--nesterov"],
        ),
    ] {
        let out = tmp.path().join("s");
        refused(&sweep(tmp.path(), &out, &args), &names);
        assert!(!out.exists(), "a refused sweep created its output");
    }
}

#[test]
fn collect_merges_task_results_with_the_same_analysis_and_refuses_another_prune_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let grid = ["--lr-grid", "0.5,1,2"];
    let (t0, t1, other) = (
        tmp.path().join("t0"),
        tmp.path().join("t1"),
        tmp.path().join("x"),
    );
    ok(&sweep(
        tmp.path(),
        &t0,
        &[&grid[..], &["--task-index", "0"]].concat(),
    ));
    ok(&sweep(
        tmp.path(),
        &t1,
        &[&grid[..], &["--task-index", "1"]].concat(),
    ));
    let merged = tmp.path().join("merged");
    let o = Command::new(BIN)
        .args(["sweep", "--collect"])
        .args([&t0, &t1])
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    let text = ok(&o);
    let r = report(&merged);
    assert_eq!(r["rows"].as_array().unwrap().len(), 2, "{text}");
    assert_eq!(
        r["throughput"].as_array().unwrap().len(),
        2,
        "measured per task"
    );
    assert!(merged.join("report.html").is_file());
    ok(&sweep(
        tmp.path(),
        &other,
        &[&grid[..], &["--task-index", "1", "--prune", "false"]].concat(),
    ));
    let o = Command::new(BIN)
        .args(["sweep", "--collect"])
        .args([&t0, &other])
        .arg("--out")
        .arg(tmp.path().join("m2"))
        .output()
        .unwrap();
    refused(&o, &["--collect", "--prune"]);
}
