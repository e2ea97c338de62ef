//! Issue 15 ("Hardening"), the run and CLI side: each test is one item of the issue, named for
//! what a user now sees, and failed before its fix. They run the real `dptrain` binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{
    assert_refused, assert_unchanged, dptrain, dptrain_ok, make_classification_dir,
    make_regression_dir, refuse, snapshot, write_safetensors, write_species_csv,
};

const BIN: &str = env!("CARGO_BIN_EXE_dptrain");

/// `path` as an argument.
fn s(path: &Path) -> String {
    path.display().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A regression dataset of `rows` × 4 in `root/data`.
fn regression(root: &Path, rows: usize) -> PathBuf {
    let data = root.join("data");
    make_regression_dir(&data, rows, 4);
    data
}

/// Writes a CSV of the three species (as [`write_species_csv`]) keeping only the rows of
/// `keep`, and imports it into `root/name` (no `--labels`: ids follow the sorted names present).
fn import_species(root: &Path, name: &str, rows: usize, keep: &[&str]) -> PathBuf {
    let all = root.join(format!("{name}-all.csv"));
    write_species_csv(&all, rows);
    let text = std::fs::read_to_string(&all).unwrap();
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for l in lines.filter(|l| keep.iter().any(|k| l.contains(&format!(",{k},")))) {
        out.push_str(l);
        out.push('\n');
    }
    let file = root.join(format!("{name}.csv"));
    std::fs::write(&file, out).unwrap();
    let dir = root.join(name);
    dptrain_ok(
        root,
        [
            "import",
            "csv",
            &s(&file),
            "--target",
            "species",
            "--out",
            &s(&dir),
        ],
    );
    dir
}

const SPECIES: [&str; 3] = ["setosa", "versicolor", "virginica"];

// ---------------------------------------------------------------------------------------------
// #1: memory

#[test]
fn a_model_too_large_for_memory_is_refused_before_allocating_naming_hidden_and_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let out = s(&root.join("run"));
    // The seed's 20 features: 20·10⁹ + 10⁹ + 10⁹ + 1 parameters, far past any machine here.
    let line = refuse(
        root,
        ["train", "--hidden", "1000000000", "--out", &out],
        &["--hidden", "22000000001 parameters", "available"],
    );
    assert!(line.contains("GiB") || line.contains("TiB"), "{line}");
    refuse(
        root,
        ["train", "--hidden", "100000,100000", "--out", &out],
        &["--hidden", "10002300001 parameters", "available"],
    );
    // With a limit given, the refusal says where the limit comes from.
    refuse(
        root,
        [
            "train",
            "--hidden",
            "1000000",
            "--max-memory",
            "1G",
            "--out",
            &out,
        ],
        &[
            "--hidden",
            "22000001 parameters",
            "1.0 GiB is available (--max-memory)",
        ],
    );
    // Past what a machine word can count: still a refusal, not an overflow.
    refuse(
        root,
        ["train", "--hidden", "10000000000000,10000000000000"],
        &["--hidden", "more parameters than any machine can hold"],
    );
    // The sweep checks its largest batch size the same way.
    refuse(
        root,
        [
            "sweep",
            "--hidden",
            "1000000000",
            "--batch-sizes",
            "16,full",
            "--out",
            &out,
        ],
        &["--hidden", "22000000001 parameters"],
    );
}

#[test]
fn max_memory_overrides_the_detected_limit_and_is_not_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    refuse(
        root,
        ["train", "--epochs", "1", "--max-memory", "1M"],
        &["--max-memory", "1.0 MiB is available (--max-memory)"],
    );
    refuse(
        root,
        ["train", "--max-memory", "lots"],
        &["--max-memory", "512M"],
    );
    // A limit above the machine's is the user's to give.
    let run = root.join("run");
    dptrain_ok(
        root,
        [
            "train",
            "--epochs",
            "1",
            "--max-memory",
            "64T",
            "--out",
            &s(&run),
        ],
    );
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(!config.contains("max-memory"), "{config}");
}

// ---------------------------------------------------------------------------------------------
// #6: what an --init file records

#[test]
fn an_init_file_s_activation_standardisation_and_classes_are_used_or_the_conflict_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = import_species(root, "data", 90, &SPECIES);
    let first = root.join("first");
    let common = [
        "--data".to_string(),
        s(&data),
        "--val-fraction".into(),
        "0.2".into(),
        "--epochs".into(),
        "3".into(),
        "--threads".into(),
        "2".into(),
    ];
    let train = |extra: &[&str]| {
        let mut a: Vec<String> = vec!["train".into()];
        a.extend(common.iter().cloned());
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    dptrain_ok(
        root,
        train(&["--standardize", "--activation", "tanh", "--out", &s(&first)]),
    );
    let init = first.join("final.safetensors");
    // Nothing said: the file's activation and standardisation are used.
    let second = root.join("second");
    dptrain_ok(root, train(&["--init", &s(&init), "--out", &s(&second)]));
    let config = std::fs::read_to_string(second.join("config.toml")).unwrap();
    assert!(config.contains("activation = \"tanh\""), "{config}");
    assert!(config.contains("standardize = true"), "{config}");
    let eval = dptrain_ok(
        root,
        [
            "eval",
            "--model",
            &s(&second),
            "--data",
            &s(&data),
            "--json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&eval).unwrap();
    let names: Vec<&str> = report["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, SPECIES, "the class names travel with the weights");
    // Said otherwise: refused, naming the flag and both values.
    let out = s(&root.join("third"));
    refuse(
        root,
        train(&["--init", &s(&init), "--activation", "relu", "--out", &out]),
        &["--activation", "tanh", "relu", "final.safetensors"],
    );
    refuse(
        root,
        train(&["--init", &s(&init), "--standardize=false", "--out", &out]),
        &["--standardize", "standardised inputs"],
    );
    // Another split fits another standardisation: the weights would see other inputs.
    let mut other = train(&["--init", &s(&init), "--out", &out]);
    other[4] = "0.5".into(); // --val-fraction
    refuse(root, other, &["--init", "standardisation"]);
    // Data of another kind (three float targets for the file's three classes): the file is a
    // classifier.
    let reg = root.join("reg");
    std::fs::create_dir(&reg).unwrap();
    let x = common::features(60, 3);
    common::write_f32(&reg.join("x.npy"), &[60, 3], &x);
    common::write_f32(&reg.join("y.npy"), &[60, 3], &x);
    refuse(
        root,
        [
            "train",
            "--data",
            &s(&reg),
            "--init",
            &s(&init),
            "--out",
            &out,
        ],
        &["--init", "cross-entropy", "mse"],
    );
    // Class names that disagree with the file's: refused naming both lists.
    let two = import_species(root, "two", 90, &["versicolor", "virginica", "setosa"]);
    std::fs::write(
        two.join("labels.json"),
        r#"["setosa","virginica","versicolor"]"#,
    )
    .unwrap();
    let mut swapped = train(&["--init", &s(&init), "--out", &out]);
    swapped[2] = s(&two);
    refuse(
        root,
        swapped,
        &[
            "labels.json",
            "\"virginica\", \"versicolor\"",
            "\"versicolor\", \"virginica\"",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// #5: eval compares the data's class names with the model's

#[test]
fn eval_remaps_a_test_split_s_classes_by_name_or_refuses_naming_both_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = import_species(root, "data", 90, &SPECIES);
    let run = root.join("run");
    dptrain_ok(
        root,
        [
            "train",
            "--data",
            &s(&data),
            "--standardize",
            "--epochs",
            "30",
            "--batch-size",
            "8",
            "--lr",
            "0.05",
            "--threads",
            "2",
            "--out",
            &s(&run),
        ],
    );
    // Imported on its own: labels.json is [versicolor, virginica], ids 0 and 1.
    let test = import_species(root, "test", 60, &["versicolor", "virginica"]);
    assert_eq!(common::read_labels(&test), ["versicolor", "virginica"]);
    let eval = dptrain_ok(
        root,
        ["eval", "--model", &s(&run), "--data", &s(&test), "--json"],
    );
    let report: serde_json::Value = serde_json::from_str(&eval).unwrap();
    let accuracy = report["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.9, "ids were not remapped by name: {eval}");
    let setosa = &report["per_class"][0];
    assert_eq!(setosa["name"], "setosa");
    assert_eq!(setosa["support"], 0, "{eval}");
    // A class the model never saw: refused, naming both lists.
    std::fs::write(test.join("labels.json"), r#"["oak","virginica"]"#).unwrap();
    refuse(
        root,
        ["eval", "--model", &s(&run), "--data", &s(&test)],
        &[
            "labels.json",
            "\"oak\"",
            "[\"setosa\", \"versicolor\", \"virginica\"]",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// #7: a NaN in an --init file

#[test]
fn an_init_file_holding_a_nan_is_refused_naming_the_file_and_the_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = regression(root, 40);
    let init = root.join("w.safetensors");
    let mut w1 = [0.1f32; 16];
    w1[5] = f32::NAN;
    write_safetensors(
        &init,
        &[
            ("fc1.weight", &[4, 4], &w1),
            ("fc1.bias", &[4], &[0.0; 4]),
            ("fc2.weight", &[1, 4], &[0.1; 4]),
            ("fc2.bias", &[1], &[0.0]),
        ],
    );
    refuse(
        root,
        [
            "train",
            "--data",
            &s(&data),
            "--hidden",
            "4",
            "--init",
            &s(&init),
            "--out",
            &s(&root.join("run")),
        ],
        &["w.safetensors", "fc1.weight", "NaN", "[1, 1]"],
    );
}

// ---------------------------------------------------------------------------------------------
// #10: a resumed run and its files

#[test]
fn resume_refuses_fewer_epochs_than_already_run_and_a_finished_run_keeps_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = regression(root, 64);
    let run = root.join("run");
    let train = |epochs: &str, resume: bool| {
        let mut a = vec![
            "train".to_string(),
            "--data".into(),
            s(&data),
            "--epochs".into(),
            epochs.into(),
            "--out".into(),
            s(&run),
        ];
        if resume {
            a.push("--resume".into());
        }
        a
    };
    dptrain_ok(root, train("2", false));
    // Grown to 3 on resume, then asked for 2: the run has trained 3 (it did not start with 3).
    dptrain_ok(root, train("3", true));
    assert_eq!(json(&run.join("summary.json"))["epochs_run"], 3);
    refuse(
        root,
        train("2", true),
        &["--epochs", "already trained 3 epochs", "2"],
    );
    // Resumed again as it is: nothing to train, and its files are left as they are.
    let before = snapshot(root);
    let o = dptrain(root, train("3", true));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Nothing to train"), "{}", stdout(&o));
    assert_unchanged(&before, &snapshot(root));
    // A finished run without checkpoints cannot be continued: refused, not restarted over it.
    std::fs::remove_dir_all(run.join("checkpoints")).unwrap();
    refuse(
        root,
        train("3", true),
        &["--resume", "final.safetensors", "no checkpoint"],
    );
}

// ---------------------------------------------------------------------------------------------
// #18: a bad --out

/// Runs `script` (sh) where `dir` is a read-only bind mount, if this machine lets us.
fn with_read_only(dir: &Path, script: &str) -> Option<Output> {
    let probe = Command::new("unshare")
        .args(["-rm", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !probe {
        return None;
    }
    let d = s(dir);
    let mount = format!("mount --bind '{d}' '{d}' && mount -o remount,bind,ro '{d}' && {script}");
    Some(
        Command::new("unshare")
            .args(["-rm", "sh", "-c", &mount])
            .output()
            .unwrap(),
    )
}

#[test]
fn a_bad_out_is_refused_alike_by_every_command_with_a_plain_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = regression(root, 40);
    let run = root.join("run");
    dptrain_ok(
        root,
        [
            "train",
            "--data",
            &s(&data),
            "--epochs",
            "1",
            "--out",
            &s(&run),
        ],
    );
    let csv = root.join("t.csv");
    std::fs::write(&csv, "a,b\n1,2\n3,4\n").unwrap();
    let ro = root.join("ro");
    std::fs::create_dir(&ro).unwrap();
    let o = |target: &str| s(&ro.join(target));
    let commands: Vec<Vec<String>> = vec![
        vec![
            "train".into(),
            "--data".into(),
            s(&data),
            "--out".into(),
            o("run"),
        ],
        vec![
            "sweep".into(),
            "--data".into(),
            s(&data),
            "--batch-sizes".into(),
            "8".into(),
            "--out".into(),
            o("sweep"),
        ],
        vec!["gen".into(), "--out".into(), o("gen")],
        vec![
            "import".into(),
            "csv".into(),
            s(&csv),
            "--target".into(),
            "b".into(),
            "--out".into(),
            o("imp"),
        ],
        vec![
            "predict".into(),
            "--model".into(),
            s(&run),
            "--data".into(),
            s(&data),
            "--out".into(),
            o("p.csv"),
        ],
    ];
    let script: String = commands
        .iter()
        .map(|c| {
            let args: Vec<String> = c.iter().map(|a| format!("'{a}'")).collect();
            format!("'{BIN}' {} 2>&1; echo \"exit=$?\"; ", args.join(" "))
        })
        .collect();
    match with_read_only(&ro, &script) {
        None => common::skip(
            "a_bad_out_is_refused_alike_by_every_command_with_a_plain_reason",
            "cannot make a read-only mount here (unshare -rm failed); the other cases ran",
        ),
        Some(out) => {
            let text = stdout(&out);
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 2 * commands.len(), "{text}");
            for pair in lines.chunks(2) {
                assert_eq!(pair[1], "exit=2", "{text}");
                assert!(pair[0].contains("--out"), "{text}");
                assert!(pair[0].contains("read-only file system"), "{text}");
                assert!(!pair[0].contains("os error"), "{text}");
            }
        }
    }
    // An existing file as gen's --out: a plain message, no "os error".
    let file = root.join("file");
    std::fs::write(&file, "mine").unwrap();
    let line = refuse(
        root,
        ["gen", "--out", &s(&file)],
        &["--out", "exists and is a file, not a directory"],
    );
    assert!(!line.contains("os error"), "{line}");
    // A dangling symbolic link is never replaced, by train or predict.
    let link = root.join("link");
    std::os::unix::fs::symlink(root.join("nowhere"), &link).unwrap();
    for args in [
        vec![
            "train".to_string(),
            "--data".into(),
            s(&data),
            "--out".into(),
            s(&link),
        ],
        vec![
            "predict".into(),
            "--model".into(),
            s(&run),
            "--data".into(),
            s(&data),
            "--out".into(),
            s(&link),
        ],
    ] {
        let o = dptrain(root, &args);
        assert_refused(&o, &["--out", "symbolic link", "never replaced"]);
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(!root.join("nowhere").exists());
    }
    let link_csv = root.join("p.csv");
    std::os::unix::fs::symlink(root.join("nowhere.csv"), &link_csv).unwrap();
    let o = dptrain(
        root,
        [
            "predict",
            "--model",
            &s(&run),
            "--data",
            &s(&data),
            "--out",
            &s(&link_csv),
        ],
    );
    assert_refused(&o, &["--out", "symbolic link"]);
    assert!(
        std::fs::symlink_metadata(&link_csv)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

// ---------------------------------------------------------------------------------------------
// #24: flags that do nothing

#[test]
fn flags_that_would_do_nothing_are_refused_or_warned_about_never_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = regression(root, 2000);
    let d = s(&data);
    let train = |extra: &[&str]| {
        let mut a = vec!["train", "--data", &d, "--epochs", "1"];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    refuse(
        root,
        train(&["--classes", "3"]),
        &["--classes", "float targets"],
    );
    refuse(
        root,
        train(&["--optimizer", "adam", "--momentum", "0.5"]),
        &["--momentum", "no effect", "--optimizer sgd"],
    );
    refuse(
        root,
        train(&["--beta1", "0.8"]),
        &["--beta1", "0.8 has no effect", "adam"],
    );
    refuse(
        root,
        train(&["--min-lr", "0.001"]),
        &["--min-lr", "--schedule cosine"],
    );
    refuse(root, train(&["--keep", "5"]), &["--keep", "without --out"]);
    refuse(root, train(&["--keep", "0"]), &["--keep", "at least 1"]);
    // A default value restated where it cannot act: said on stderr, and the run goes on.
    let o = dptrain(root, train(&["--optimizer", "adam", "--momentum", "0.9"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: --momentum has no effect without --optimizer sgd"),
        "{}",
        stderr(&o)
    );
    // A batch larger than the training rows: train says so, a sweep refuses (it would repeat
    // "full").
    let o = dptrain(root, train(&["--batch-size", "5000"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--batch-size 5000 is larger than the 2000 training rows"),
        "{}",
        stderr(&o)
    );
    refuse(
        root,
        [
            "sweep",
            "--data",
            &d,
            "--batch-sizes",
            "5000",
            "--out",
            &s(&root.join("sw")),
        ],
        &[
            "--batch-sizes",
            "5000 is larger than the 1600 training rows",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// #4: sweep --collect

fn sweep(root: &Path, data: &Path, out: &Path, extra: &[&str]) {
    let mut a: Vec<String> = [
        "sweep",
        "--data",
        &s(data),
        "--batch-sizes",
        "16,full",
        "--hidden",
        "8",
        "--epochs",
        "2",
        "--threads",
        "1",
        "--out",
        &s(out),
    ]
    .into_iter()
    .map(String::from)
    .collect();
    a.extend(extra.iter().map(|x| x.to_string()));
    dptrain_ok(root, a);
}

#[test]
fn collect_refuses_runs_of_other_settings_or_data_and_counts_a_run_found_twice_once() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = regression(root, 200);
    let other_data = root.join("other");
    make_regression_dir(&other_data, 240, 4);
    let (a, b, c) = (root.join("a"), root.join("b"), root.join("c"));
    sweep(root, &data, &a, &[]);
    sweep(root, &data, &b, &["--hidden", "16"]);
    sweep(root, &other_data, &c, &[]);
    let merged = s(&root.join("merged"));
    refuse(
        root,
        ["sweep", "--collect", &s(&a), &s(&b), "--out", &merged],
        &["--collect", "--hidden 8", "--hidden 16"],
    );
    refuse(
        root,
        ["sweep", "--collect", &s(&a), &s(&c), "--out", &merged],
        &["--collect", "--data"],
    );
    // The same directory twice: its runs are counted once.
    dptrain_ok(
        root,
        ["sweep", "--collect", &s(&a), &s(&a), "--out", &merged],
    );
    let once = json(&a.join("sweep.json"))["runs"]
        .as_array()
        .unwrap()
        .len();
    let twice = json(&root.join("merged/sweep.json"))["runs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(once, twice);
}

// ---------------------------------------------------------------------------------------------
// #9 and #28: signals

/// Starts a long run, waits for its first epoch line, and sends `signals` (one `kill` each).
fn interrupt(root: &Path, extra: &[&str], signals: usize) -> Output {
    use std::io::BufRead;
    let data = root.join("big");
    if !data.exists() {
        make_regression_dir(&data, 4000, 16);
    }
    let mut child = Command::new(BIN)
        .args([
            "train",
            "--data",
            &s(&data),
            "--hidden",
            "256",
            "--epochs",
            "1000",
        ])
        .args(["--batch-size", "8", "--threads", "1"])
        .args(extra)
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.starts_with("Epoch 1/"), "{first}");
    let kills: Vec<String> = vec![child.id().to_string(); signals];
    let script = kills
        .iter()
        .map(|p| format!("kill -INT {p}"))
        .collect::<Vec<_>>()
        .join("; ");
    Command::new("sh").args(["-c", &script]).status().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let o = child.wait_with_output().unwrap();
    Output {
        stdout: format!("{first}{rest}").into_bytes(),
        ..o
    }
}

#[test]
fn sigint_without_out_says_that_nothing_was_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let o = interrupt(tmp.path(), &[], 1);
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("nothing was saved"), "{e}");
    assert!(!e.contains("holds a checkpoint"), "{e}");
}

#[test]
fn a_second_signal_ends_the_run_at_once_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let o = interrupt(tmp.path(), &["--out", &s(&run)], 2);
    let e = stderr(&o);
    // Both signals may land before the loop sees the first: then the second ends it (130).
    match o.status.code() {
        Some(130) => {
            assert!(e.contains("second signal"), "{e}");
            assert!(e.contains("--resume"), "{e}");
        }
        Some(75) => assert!(e.contains("--resume"), "{e}"),
        other => panic!("exit {other:?}: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// #11, #15, #28: what a run prints

#[test]
fn the_last_line_says_what_each_figure_covers_and_counts_in_words() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = regression(root, 300);
    let o = dptrain_ok(
        root,
        [
            "train",
            "--data",
            &s(&data),
            "--epochs",
            "1",
            "--val-fraction",
            "0.2",
        ],
    );
    let last = o.lines().last().unwrap();
    assert!(last.starts_with("Trained 1 epoch in "), "{last}");
    for words in [
        "240 samples in",
        "s of training steps (",
        "samples/s), validation",
        "the rest",
    ] {
        assert!(last.contains(words), "{last} lacks {words:?}");
    }
    // The rate is the samples over the training-step time, both as printed.
    let after = |key: &str| -> f64 {
        let at = last.find(key).unwrap() + key.len();
        last[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .trim_matches('(')
            .parse()
            .unwrap()
    };
    let train_s = after("240 samples in ");
    let rate = after("of training steps ");
    assert!(
        (rate - 240.0 / train_s).abs() <= 0.02 * rate + 240.0 / 0.0005,
        "{last}"
    );
    // And one row is a row.
    let csv = root.join("one.csv");
    std::fs::write(&csv, "a,b\n1,2\n").unwrap();
    let o = dptrain_ok(
        root,
        [
            "import",
            "csv",
            &s(&csv),
            "--target",
            "b",
            "--out",
            &s(&root.join("one")),
        ],
    );
    assert!(o.contains("imported 1 row ×"), "{o}");
}

#[test]
fn the_progress_bar_shows_whole_steps_per_second() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // The bar is drawn on a terminal only: `script` gives the run one.
    let has_script = Command::new("script")
        .args(["-qec", "true", "/dev/null"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        common::skip(
            "the_progress_bar_shows_whole_steps_per_second",
            "no `script` command to give the run a terminal",
        );
        return;
    }
    let command = format!("'{BIN}' train --epochs 20 --batch-size 2 --lr 0.002 --threads 1");
    let o = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(root)
        .output()
        .unwrap();
    let text = stdout(&o).replace('\r', "\n");
    let bars: Vec<&str> = text.lines().filter(|l| l.contains(" steps  ")).collect();
    assert!(!bars.is_empty(), "no progress bar drawn: {text}");
    for bar in bars {
        let rate = bar.split("steps  ").nth(1).unwrap_or("");
        let number = rate.split_whitespace().next().unwrap_or("");
        assert!(rate.contains(" steps/s"), "{bar}");
        assert!(number.chars().all(|c| c.is_ascii_digit()), "{bar}");
    }
}

#[test]
fn the_noise_scale_is_printed_on_the_epoch_line_without_out() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = regression(root, 1000);
    let o = dptrain_ok(
        root,
        [
            "train",
            "--data",
            &s(&data),
            "--epochs",
            "2",
            "--batch-size",
            "128",
            "--shard-size",
            "32",
            "--noise-scale",
        ],
    );
    let epochs: Vec<&str> = o.lines().filter(|l| l.starts_with("Epoch ")).collect();
    assert_eq!(epochs.len(), 2, "{o}");
    assert!(epochs.iter().all(|l| l.contains(", B_simple: ")), "{o}");
}

// ---------------------------------------------------------------------------------------------
// #17: summary.json under early stopping

#[test]
fn summary_names_the_last_epoch_and_the_final_weights_apart_under_early_stopping() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = regression(root, 200);
    let run = root.join("run");
    dptrain_ok(
        root,
        [
            "train",
            "--data",
            &s(&data),
            "--val-fraction",
            "0.3",
            "--patience",
            "1",
            "--epochs",
            "200",
            "--lr",
            "0.2",
            "--out",
            &s(&run),
        ],
    );
    let summary = json(&run.join("summary.json"));
    let metrics: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(summary["stopped_early"], true, "{summary}");
    let best = summary["best_epoch"].as_u64().unwrap() as usize;
    assert_eq!(
        summary["final_weights_epoch"].as_u64().unwrap() as usize,
        best
    );
    assert_eq!(
        summary["final_weights_val_loss"],
        metrics[best - 1]["val_loss"],
        "{summary}"
    );
    let last = metrics.last().unwrap();
    assert_eq!(summary["last_epoch_val_loss"], last["val_loss"]);
    assert_eq!(summary["last_epoch_train_loss"], last["train_loss"]);
    assert_ne!(best, metrics.len(), "the last epoch is not the best one");
    assert!(summary.get("final_val_loss").is_none(), "{summary}");
}

// ---------------------------------------------------------------------------------------------
// #12, #20: help

#[test]
fn sweep_help_shows_the_sweep_s_defaults_and_describes_a_sweep_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let help = dptrain_ok(tmp.path(), ["sweep", "--help"]);
    let entry = |flag: &str| {
        let at = help
            .find(&format!("--{flag} "))
            .unwrap_or_else(|| panic!("{flag}: {help}"));
        help[at..].split("\n      --").next().unwrap().to_string()
    };
    assert!(entry("val-fraction").contains("[default: 0.2]"), "{help}");
    assert!(entry("lr-scaling").contains("[default: linear]"), "{help}");
    let out = entry("out");
    assert!(out.contains("Sweep directory"), "{out}");
    assert!(!out.contains("metrics.jsonl"), "{out}");
    // Flags a sweep refuses are not offered.
    assert!(!help.contains("--resume"), "{help}");
    // train's own help keeps train's defaults.
    let train = dptrain_ok(tmp.path(), ["train", "--help"]);
    assert!(
        train.contains("0 disables validation [default: 0.0]"),
        "{train}"
    );
}

#[test]
fn dptrain_alone_prints_the_command_list() {
    let tmp = tempfile::tempdir().unwrap();
    let o = dptrain(tmp.path(), std::iter::empty::<&str>());
    assert_eq!(o.status.code(), Some(2));
    let text = stderr(&o);
    assert!(text.contains("Commands:"), "{text}");
    for c in [
        "train", "sweep", "gen", "import", "eval", "predict", "inspect",
    ] {
        assert!(text.contains(&format!("  {c} ")), "{c}: {text}");
    }
    assert!(!text.contains("error:"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// #22: a diverged run

#[test]
fn a_diverged_run_without_a_checkpoint_is_replaced_and_one_with_checkpoints_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    dptrain_ok(
        root,
        [
            "gen",
            "--rows",
            "400",
            "--features",
            "4",
            "--out",
            &s(&data),
        ],
    );
    let run = root.join("run");
    let train = |lr: &str, extra: &[&str]| {
        let mut a: Vec<String> = ["train", "--data", &s(&data), "--epochs", "3", "--lr", lr]
            .into_iter()
            .map(String::from)
            .collect();
        a.extend(["--out".to_string(), s(&run)]);
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let o = dptrain(root, train("1e6", &[]));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        !run.join("checkpoints").exists()
            || std::fs::read_dir(run.join("checkpoints"))
                .unwrap()
                .next()
                .is_none()
    );
    // A lower --lr in the same directory: the run that never checkpointed is replaced.
    let o = dptrain(root, train("0.01", &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("replacing the run"), "{}", stderr(&o));
    assert!(run.join("final.safetensors").is_file());
    // A run that diverges after checkpoints says how to go on.
    let run2 = root.join("run2");
    let o = dptrain(
        root,
        [
            "train",
            "--data",
            &s(&data),
            "--epochs",
            "50",
            "--lr",
            "1e3",
            "--checkpoint-every",
            "1",
            "--out",
            &s(&run2),
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("new --out") && e.contains("--lr"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// #27: a sweep where no batch size reaches the target

#[test]
fn a_sweep_where_no_batch_size_reaches_the_target_says_so_and_draws_no_blank_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = regression(root, 200);
    let out = root.join("sweep");
    let o = dptrain_ok(
        root,
        [
            "sweep",
            "--data",
            &s(&data),
            "--batch-sizes",
            "16,full",
            "--epochs",
            "2",
            "--target-loss",
            "0",
            "--out",
            &s(&out),
        ],
    );
    assert!(
        o.contains("steps_to_target.svg not written: no batch size reached the target"),
        "{o}"
    );
    assert!(o.contains("wall_to_target.svg not written"), "{o}");
    assert!(!out.join("steps_to_target.svg").exists());
    assert!(!out.join("wall_to_target.svg").exists());
    assert!(out.join("throughput.svg").is_file());
    assert!(out.join("loss_curves.svg").is_file());
}

// ---------------------------------------------------------------------------------------------
// #28: eval of an unfinished run

#[test]
fn eval_of_an_unfinished_run_says_so_and_how_to_finish_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = regression(root, 100);
    let run = root.join("run");
    dptrain_ok(
        root,
        [
            "train",
            "--data",
            &s(&data),
            "--epochs",
            "2",
            "--out",
            &s(&run),
        ],
    );
    // As a run interrupted after its last checkpoint leaves it.
    std::fs::remove_file(run.join("final.safetensors")).unwrap();
    std::fs::remove_file(run.join("summary.json")).unwrap();
    let line = refuse(
        root,
        ["eval", "--model", &s(&run), "--data", &s(&data)],
        &["unfinished run", "--resume", "config.toml"],
    );
    // The command it names finishes the run.
    let at = line.find("`dptrain ").unwrap() + 1;
    let command = &line[at..at + line[at..].find('`').unwrap()];
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    dptrain_ok(root, &args);
    dptrain_ok(root, ["eval", "--model", &s(&run), "--data", &s(&data)]);
}

// ---------------------------------------------------------------------------------------------
// #13 and #23: already fixed; confirmed

#[test]
fn a_bad_value_names_its_own_flag_and_a_config_error_names_key_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    refuse(
        root,
        ["train", "--optimizer", "adam", "--beta2", "1.5"],
        &["--beta2", "[0, 1)"],
    );
    let dup = root.join("dup.toml");
    std::fs::write(&dup, "epochs = 2\nlr = 0.1\nepochs = 3\n").unwrap();
    refuse(
        root,
        ["train", "--config", &s(&dup)],
        &["--config", "dup.toml line 3", "duplicate key `epochs`"],
    );
    let bad = root.join("bad.toml");
    std::fs::write(&bad, "batch-size = \"half\"\n").unwrap();
    let line = refuse(
        root,
        ["train", "--config", &s(&bad)],
        &[
            "--config",
            "line 1",
            "batch-size",
            "positive integer or \"full\"",
        ],
    );
    assert!(!line.contains("untagged"), "{line}");
}

#[test]
fn a_resume_refusal_shows_the_values_as_the_user_wrote_them() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = regression(root, 64);
    let run = s(&root.join("run"));
    let d = s(&data);
    dptrain_ok(
        root,
        [
            "train", "--data", &d, "--epochs", "1", "--lr", "0.01", "--out", &run,
        ],
    );
    let line = refuse(
        root,
        [
            "train", "--data", &d, "--epochs", "2", "--lr", "0.02", "--out", &run, "--resume",
        ],
        &["--lr", "was 0.01", "now 0.02"],
    );
    assert!(!line.contains("0.0099999"), "{line}");
}

/// Classification data for the item below.
#[test]
fn classes_given_with_labels_still_count_and_check_the_labels() {
    // (#24's --classes is refused only for float targets: with labels it still sizes the model.)
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("cls");
    make_classification_dir(&data, 60, 3, 3);
    let run = root.join("run");
    dptrain_ok(
        root,
        [
            "train",
            "--data",
            &s(&data),
            "--classes",
            "5",
            "--epochs",
            "1",
            "--out",
            &s(&run),
        ],
    );
    assert_eq!(json(&run.join("summary.json"))["sizes"][2], 5);
}

/// #21: a dataset whose labels.json names more classes than its labels show trains that many
/// classes without --classes, and records it.
#[test]
fn the_class_count_comes_from_labels_json_when_it_names_more_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("cls");
    make_classification_dir(&data, 60, 3, 3); // labels 0..2
    std::fs::write(data.join("labels.json"), r#"["a", "b", "c", "d"]"#).unwrap();
    let run = root.join("run");
    dptrain_ok(
        root,
        [
            "train",
            "--data",
            &s(&data),
            "--epochs",
            "1",
            "--out",
            &s(&run),
        ],
    );
    assert_eq!(json(&run.join("summary.json"))["sizes"][2], 4);
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("classes = 4"), "{config}");
}
