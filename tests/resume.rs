//! Fault tolerance end to end: stopped runs resume onto the same bits, killed runs never leave
//! an unreadable newest checkpoint, divergence and a full disk end with clear messages.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dptrain::checkpoint::CheckpointStore;
use dptrain::data::{SyntheticSpec, Task};
use dptrain::train::TrainState;

const BIN: &str = env!("CARGO_BIN_EXE_dptrain");

/// A run with dropout, shuffling, momentum and 2 threads, 60 steps an epoch, 3 epochs.
fn flags(data: &Path) -> Vec<String> {
    let f = "--hidden 24 --dropout 0.2 --momentum 0.9 --nesterov --threads 2 --epochs 3 \
             --batch-size 16 --val-fraction 0.2 --shard-size 8";
    let mut v = vec![
        "train".to_string(),
        "--data".into(),
        data.display().to_string(),
    ];
    v.extend(f.split_whitespace().map(String::from));
    v
}

fn dataset(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    SyntheticSpec {
        task: Task::Classification,
        rows: 1200,
        features: 8,
        outputs: 3,
        noise: 0.2,
        seed: 5,
    }
    .write(&data)
    .unwrap();
    data
}

fn spawn(args: &[String], extra: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn run(args: &[String], extra: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).args(extra).output().unwrap()
}

fn signal(child: &Child, sig: &str) {
    // Ignore failure: the process may just have finished.
    let _ = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status();
}

/// Newest checkpoint step in `run`, if any.
fn newest_step(run: &Path) -> Option<u64> {
    std::fs::read_dir(run.join("checkpoints"))
        .ok()?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix("ckpt-")?
                .strip_suffix(".safetensors")?
                .parse()
                .ok()
        })
        .max()
}

/// Per-epoch (train loss, val loss) from metrics.jsonl.
fn losses(run: &Path) -> Vec<(f64, f64)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["train_loss"].as_f64().unwrap(),
                v["val_loss"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn reference(dir: &Path, args: &[String]) -> PathBuf {
    let out = dir.join("reference");
    let o = run(args, &["--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn assert_same_run(a: &Path, b: &Path) {
    let fa = std::fs::read(a.join("final.safetensors")).unwrap();
    let fb = std::fs::read(b.join("final.safetensors")).unwrap();
    assert!(
        fa == fb,
        "final weights differ between {} and {}",
        a.display(),
        b.display()
    );
    assert_eq!(losses(a), losses(b), "per-epoch losses differ");
}

#[test]
fn runs_stopped_by_sigterm_at_several_steps_resume_onto_the_same_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let args = flags(&dataset(tmp.path()));
    let reference = reference(tmp.path(), &args);
    // Stop points: early in epoch 1, mid-epoch 2, and twice in one run (epoch 1 then epoch 3).
    for (case, stops) in [(0, vec![5u64]), (1, vec![90]), (2, vec![30, 150])] {
        let out = tmp.path().join(format!("stopped-{case}"));
        let out_s = out.to_str().unwrap();
        let mut stopped_at = Vec::new();
        for &at in &stops {
            let child = spawn(
                &args,
                &["--out", out_s, "--checkpoint-every", "1", "--resume"],
            );
            let t = Instant::now();
            while newest_step(&out).is_none_or(|s| s < at) {
                assert!(
                    t.elapsed() < Duration::from_secs(60),
                    "run never reached step {at}"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            signal(&child, "-TERM");
            let o = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(75), "case {case}: {stderr}");
            assert!(stderr.contains("--resume"), "{stderr}");
            stopped_at.push(newest_step(&out).unwrap());
        }
        let o = run(&args, &["--out", out_s, "--resume"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Resuming at epoch"),
            "case {case}: the last run did not resume"
        );
        eprintln!("case {case}: stopped after steps {stopped_at:?}");
        assert_same_run(&reference, &out);
    }
}

#[test]
fn adamw_with_warmup_and_a_cosine_schedule_resumes_onto_the_same_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = flags(&dataset(tmp.path()));
    args.retain(|a| a != "--nesterov");
    let extra = "--optimizer adamw --lr 0.003 --weight-decay 0.01 --schedule cosine \
                 --warmup-steps 20 --min-lr 0.0001";
    args.extend(extra.split_whitespace().map(String::from));
    let reference = reference(tmp.path(), &args);
    let out = tmp.path().join("stopped");
    let out_s = out.to_str().unwrap();
    let child = spawn(&args, &["--out", out_s, "--checkpoint-every", "1"]);
    let t = Instant::now();
    while newest_step(&out).is_none_or(|s| s < 70) {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "run never reached step 70"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    signal(&child, "-TERM");
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(&args, &["--out", out_s, "--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same_run(&reference, &out);
}

#[test]
fn the_block_order_with_batches_of_several_chunks_resumes_onto_the_same_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = flags(&dataset(tmp.path()));
    // 120 rows a batch in shards of 4: 30 shards, two chunks each step; blocks of 50 rows.
    let extra = "--shuffle blocks --block-rows 50 --batch-size 120 --shard-size 4 --epochs 6";
    for pair in extra.split_whitespace().collect::<Vec<_>>().chunks(2) {
        if let Some(i) = args.iter().position(|a| a == pair[0]) {
            args.drain(i..i + 2);
        }
        args.extend(pair.iter().map(|s| s.to_string()));
    }
    let reference = reference(tmp.path(), &args);
    let out = tmp.path().join("stopped");
    let out_s = out.to_str().unwrap();
    let child = spawn(&args, &["--out", out_s, "--checkpoint-every", "1"]);
    let t = Instant::now();
    while newest_step(&out).is_none_or(|s| s < 13) {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "run never reached step 13"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    signal(&child, "-TERM");
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    // A fast machine may finish first; then the resume below has nothing left to do.
    assert!(matches!(o.status.code(), Some(75) | Some(0)), "{stderr}");
    let o = run(&args, &["--out", out_s, "--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same_run(&reference, &out);
}

#[test]
fn sigkill_at_random_moments_never_leaves_an_unreadable_newest_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = flags(&dataset(tmp.path()));
    // Long enough (1200 steps, a checkpoint after each) that most kills land mid-run.
    args.extend(["--epochs".into(), "20".into()]);
    let reference = reference(tmp.path(), &args);
    let out = tmp.path().join("killed");
    let out_s = out.to_str().unwrap();
    // A fixed pseudo-random sequence of delays, so a failure can be replayed.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut kills = 0;
    for _ in 0..8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = Duration::from_millis(5 + x % 200);
        let child = spawn(
            &args,
            &["--out", out_s, "--checkpoint-every", "1", "--resume"],
        );
        std::thread::sleep(delay);
        signal(&child, "-KILL");
        let status = child.wait_with_output().unwrap().status;
        kills += usize::from(status.code().is_none());
        // Whatever moment the kill hit (checkpoint writes included), the newest checkpoint
        // file reads back whole: rename is atomic, temporaries are never taken for checkpoints.
        if let Some((_, skipped)) = CheckpointStore::new(&out).newest::<TrainState>().unwrap() {
            assert!(
                skipped.is_empty(),
                "newest checkpoint unreadable: {skipped:?}"
            );
        }
    }
    assert!(
        kills >= 4,
        "only {kills} of 8 runs were killed before finishing"
    );
    let o = run(&args, &["--out", out_s, "--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same_run(&reference, &out);
}

#[test]
fn a_resumed_run_may_train_longer_but_not_with_other_settings_or_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let args = flags(&data);
    let out = tmp.path().join("run");
    let out_s = out.to_str().unwrap();
    let o = run(&args, &["--out", out_s, "--epochs", "2"]);
    assert!(o.status.success());
    // Changing a result-changing setting is refused, naming it; nothing is written.
    let before = std::fs::read(out.join("metrics.jsonl")).unwrap();
    let o = run(&args, &["--out", out_s, "--resume", "--lr", "0.02"]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("--lr") && stderr.contains("0.01"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(out.join("metrics.jsonl")).unwrap(), before);
    // Training longer continues onto exactly the run that had 3 epochs from the start.
    let o = run(&args, &["--out", out_s, "--resume", "--epochs", "3"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same_run(&reference(tmp.path(), &args), &out);
    // Changed data is detected.
    let x = data.join("x.npy");
    let mut bytes = std::fs::read(&x).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(&x, bytes).unwrap();
    let o = run(&args, &["--out", out_s, "--resume", "--epochs", "4"]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("x.npy") && stderr.contains("changed"),
        "{stderr}"
    );
}

#[test]
fn divergence_exits_with_code_3_naming_the_step_and_keeping_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("reg");
    SyntheticSpec {
        task: Task::Regression,
        rows: 400,
        features: 5,
        outputs: 1,
        noise: 0.1,
        seed: 1,
    }
    .write(&data)
    .unwrap();
    let out = tmp.path().join("run");
    let o = Command::new(BIN)
        .args([
            "train",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--lr", "1e6", "--epochs", "5", "--checkpoint-every", "1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("diverged") && stderr.contains("step") && stderr.contains("--lr"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // Whatever was checkpointed before the divergence still reads back.
    if let Some((c, skipped)) = CheckpointStore::new(&out).newest::<TrainState>().unwrap() {
        assert!(skipped.is_empty());
        assert!(c.params.iter().all(|v| v.is_finite()));
    }
}

/// Runs `script` as root in a private mount namespace where `dir` is a tiny tmpfs, if this
/// machine lets us; `None` when it does not (the test then says it skipped).
fn with_tiny_tmpfs(dir: &Path, kib: usize, script: &str) -> Option<std::process::Output> {
    let probe = Command::new("unshare")
        .args(["-rm", "true"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let mount = format!(
        "mount -t tmpfs -o size={kib}k tmpfs '{}' && {script}",
        dir.display()
    );
    if !probe {
        return None;
    }
    Some(
        Command::new("unshare")
            .args(["-rm", "sh", "-c", &mount])
            .output()
            .unwrap(),
    )
}

#[test]
fn a_full_disk_leaves_the_previous_checkpoint_intact_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let disk = tmp.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let mut args = flags(&data);
    args.extend(["--hidden".into(), "512".into(), "--out".into()]);
    args.push(disk.join("run").display().to_string());
    args.extend(["--checkpoint-every".into(), "1".into()]);
    let cmd = format!(
        "'{BIN}' {} ; echo \"exit=$?\"; ls '{}'/run/checkpoints",
        args.join(" "),
        disk.display()
    );
    // Each checkpoint is ~55 kB (params, momentum, best): a few fit, then the disk is full.
    let Some(o) = with_tiny_tmpfs(&disk, 300, &cmd) else {
        common::skip(
            "a_full_disk_leaves_the_previous_checkpoint_intact_and_says_so",
            "cannot mount a tmpfs here (unshare -rm failed)",
        );
        return;
    };
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stdout.contains("exit=1"), "{stdout}\n{stderr}");
    assert!(stderr.contains("no space left"), "{stderr}");
    assert!(stderr.contains("previous checkpoint is intact"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stdout.contains("ckpt-"), "no checkpoint survived: {stdout}");
}
