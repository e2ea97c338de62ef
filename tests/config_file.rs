//! `config.toml` and `--config`: the run's recorded settings are exactly the flags, and a
//! recorded configuration reproduces its run bit for bit from anywhere.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{dptrain, dptrain_ok, make_classification_dir, make_regression_dir};
use dptrain::setting::Effect;
use dptrain::train::TrainConfig;

fn keys_of(config_toml: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(config_toml).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    table.keys().cloned().collect()
}

fn long_flags_of_train_help(cwd: &Path) -> BTreeSet<String> {
    let help = dptrain_ok(cwd, ["train", "--help"]);
    help.split_whitespace()
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn every_key_of_config_toml_is_a_flag_and_every_result_affecting_flag_is_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    make_classification_dir(&data, 120, 4, 3);
    let run = dir.path().join("run");
    // Every optional result-affecting setting given (warmup-epochs excludes warmup-steps).
    dptrain_ok(
        dir.path(),
        [
            "train",
            "--data",
            data.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--epochs",
            "2",
            "--val-fraction",
            "0.25",
            "--patience",
            "3",
            "--classes",
            "4",
            "--loss",
            "cross-entropy",
            "--warmup-steps",
            "2",
            "--clip-grad-norm",
            "5",
            "--block-rows",
            "64",
        ],
    );
    let keys = keys_of(&run.join("config.toml"));
    let flags = long_flags_of_train_help(dir.path());
    for k in &keys {
        assert!(
            flags.contains(k),
            "config.toml key {k} is not a flag of train --help"
        );
    }
    let unset: BTreeSet<String> = ["warmup-epochs".to_string()].into();
    for s in TrainConfig::settings().filter(|s| s.effect == Effect::Numbers) {
        let k = s.key();
        assert!(flags.contains(&k), "{k} is no flag of train --help");
        assert!(
            keys.contains(&k) || unset.contains(&k),
            "result-affecting --{k} is missing from config.toml: {keys:?}"
        );
    }
    assert!(
        !keys.contains("threads"),
        "the thread count is the machine's, not the run's"
    );
}

#[test]
fn config_toml_reproduces_its_run_bit_for_bit_from_another_directory() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    make_regression_dir(&work.join("data"), 300, 5);
    // The first run names its data relative to its working directory.
    dptrain_ok(
        &work,
        [
            "train",
            "--data",
            "data",
            "--out",
            "first",
            "--hidden",
            "16,8",
            "--epochs",
            "3",
            "--batch-size",
            "50",
            "--dropout",
            "0.1",
            "--threads",
            "2",
        ],
    );
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let config = work.join("first/config.toml");
    dptrain_ok(
        &elsewhere,
        [
            "train",
            "--config",
            config.to_str().unwrap(),
            "--out",
            "second",
            "--threads",
            "1",
        ],
    );
    let a = std::fs::read(work.join("first/final.safetensors")).unwrap();
    let b = std::fs::read(elsewhere.join("second/final.safetensors")).unwrap();
    assert!(a == b, "the recorded configuration trained other weights");
}

#[test]
fn relative_paths_in_a_config_file_are_resolved_against_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    make_regression_dir(&project.join("data"), 100, 3);
    std::fs::write(
        project.join("run.toml"),
        "data = \"data\"\nepochs = 1\nhidden = \"8\"\n",
    )
    .unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let out = dptrain_ok(
        &cwd,
        [
            "train",
            "--config",
            project.join("run.toml").to_str().unwrap(),
            "--out",
            "run",
        ],
    );
    assert!(out.contains("Epoch 1/1"), "{out}");
    let recorded = std::fs::read_to_string(cwd.join("run/config.toml")).unwrap();
    let want = std::path::absolute(project.join("data")).unwrap();
    assert!(
        recorded.contains(&format!("data = {:?}", want.to_str().unwrap())),
        "{recorded}"
    );
}

#[test]
fn config_file_errors_name_the_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 5] = [
        (
            "epochs = 2\nkeep-checkpoints = 3\n",
            &["line 2", "keep-checkpoints", "unknown key"],
        ),
        ("lr = 0.1\nlr = 0.2\n", &["line 2", "duplicate key"]),
        (
            "batch-size = \"half\"\n",
            &["line 1", "batch-size", "positive integer or \"full\""],
        ),
        ("beta2 = 1.5\n", &["--beta2", "[0, 1)"]),
        ("hidden = [8, 0]\n", &["--hidden"]),
    ];
    for (i, (text, mentions)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let out = dptrain(dir.path(), ["train", "--config", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        for m in *mentions {
            assert!(stderr.contains(m), "{text:?}: {stderr} lacks {m:?}");
        }
    }
}

#[test]
fn a_sweep_reads_its_own_keys_from_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    make_regression_dir(&dir.path().join("data"), 200, 3);
    std::fs::write(
        dir.path().join("sweep.toml"),
        "data = \"data\"\nbatch-sizes = \"16,64\"\nepochs = 2\nhidden = 8\n",
    )
    .unwrap();
    let out = dptrain_ok(
        dir.path(),
        [
            "sweep",
            "--config",
            "sweep.toml",
            "--out",
            "study",
            "--threads",
            "1",
        ],
    );
    assert!(
        out.contains("batch 16 ") && out.contains("batch 64 "),
        "{out}"
    );
}
