//! The Slurm batch script's logic, run here with the SLURM_* variables set by hand and a stand-in
//! `scontrol` on the PATH (no Slurm needed): a warning signal makes dptrain checkpoint, the job
//! asks to be requeued, and the requeued job resumes onto the same bits as an unbroken run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dptrain::data::{SyntheticSpec, Task};

const BIN: &str = env!("CARGO_BIN_EXE_dptrain");

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm/train.sbatch")
}

fn sbatch(dir: &Path, data: &Path, runs: &str) -> Command {
    let mut c = Command::new("bash");
    c.arg(script())
        .arg(data)
        .args([
            "--hidden",
            "32",
            "--epochs",
            "30",
            "--batch-size",
            "8",
            "--dropout",
            "0.1",
        ])
        .current_dir(dir)
        .env(
            "PATH",
            format!(
                "{}:{}",
                dir.join("bin").display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .env("DPTRAIN", BIN)
        .env("DPTRAIN_RUNS", runs)
        .env("DPTRAIN_CHECKPOINT_EVERY", "20")
        .env("SLURM_JOB_ID", "4242")
        .env("SLURM_CPUS_PER_TASK", "2");
    c
}

#[test]
fn a_warned_job_checkpoints_requeues_and_resumes_onto_the_same_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    SyntheticSpec {
        task: Task::Regression,
        rows: 2000,
        features: 10,
        outputs: 1,
        noise: 0.1,
        seed: 3,
    }
    .write(&data)
    .unwrap();
    // A stand-in scontrol that records its arguments.
    std::fs::create_dir(dir.join("bin")).unwrap();
    let fake = dir.join("bin/scontrol");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/../scontrol.log\"\n",
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&fake).status().unwrap();

    // The unbroken run.
    let o = sbatch(dir, &data, "unbroken").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

    // The warned run: SIGUSR1 to the batch shell, as `--signal=B:USR1@120` sends it.
    let child = sbatch(dir, &data, "warned")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ckpts = dir.join("warned/4242/checkpoints");
    let t = Instant::now();
    while std::fs::read_dir(&ckpts).map_or(true, |mut d| d.next().is_none()) {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    Command::new("kill")
        .args(["-USR1", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(75), "{log}");
    assert!(log.contains("requeueing"), "{log}");
    let requeued = std::fs::read_to_string(dir.join("scontrol.log")).unwrap();
    assert_eq!(requeued.trim(), "requeue 4242");

    // The requeued job: same job id, same run directory, resumes.
    let o = sbatch(dir, &data, "warned")
        .env("SLURM_RESTART_COUNT", "1")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{log}");
    assert!(log.contains("Resuming at epoch"), "{log}");
    let a = std::fs::read(dir.join("unbroken/4242/final.safetensors")).unwrap();
    let b = std::fs::read(dir.join("warned/4242/final.safetensors")).unwrap();
    assert!(
        a == b,
        "the requeued job did not end on the unbroken run's weights"
    );
}

#[test]
fn array_tasks_each_train_one_batch_size_and_collect_merges_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    SyntheticSpec {
        task: Task::Regression,
        rows: 1200,
        features: 6,
        outputs: 1,
        noise: 0.2,
        seed: 9,
    }
    .write(&data)
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm/sweep-array.sbatch");
    let sweep = dir.join("sweep");
    for task in 0..3 {
        let o = Command::new("bash")
            .arg(&script)
            .arg(&data)
            .arg(&sweep)
            .arg("16,64,full")
            .args(["--hidden", "16", "--epochs", "3", "--lr", "0.01"])
            .env("DPTRAIN", BIN)
            .env("SLURM_ARRAY_TASK_ID", task.to_string())
            .env("SLURM_ARRAY_JOB_ID", "77")
            .env("SLURM_CPUS_PER_TASK", "2")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "task {task}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let mut files: Vec<String> = std::fs::read_dir(sweep.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["b16.json", "b64.json", "bfull.json"]);
    let o = Command::new(BIN)
        .args(["sweep", "--collect"])
        .arg(&sweep)
        .arg("--out")
        .arg(&sweep)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for b in ["16", "64", "full"] {
        assert!(
            table.lines().any(|l| l.trim_start().starts_with(b)),
            "{table}"
        );
    }
    for f in [
        "sweep.csv",
        "sweep.json",
        "steps_to_target.svg",
        "loss_curves.svg",
    ] {
        assert!(sweep.join(f).is_file(), "{f} missing");
    }
    // A rerun task refuses to overwrite its finished result.
    let o = Command::new("bash")
        .arg(&script)
        .arg(&data)
        .arg(&sweep)
        .arg("16,64,full")
        .env("DPTRAIN", BIN)
        .env("SLURM_ARRAY_TASK_ID", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("b64.json"));
}
