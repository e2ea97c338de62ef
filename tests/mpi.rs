//! Multi-process runs under `mpirun` (built with `--features mpi`; `.ci/run` installs OpenMPI and
//! runs these): the same bits for any layout of processes × threads, a stop on one rank that
//! resumes with another process count, a failing rank that ends the job, and refused launches.
//! Without `mpirun` on the PATH, every test says SKIPPED and passes.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_dptrain");

fn mpirun() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|d| d.join("mpirun"))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!("test SKIPPED: mpirun is not on the PATH (apt-get install openmpi-bin)");
    }
    found
}

/// `mpirun -np n` (OpenMPI: as root, more ranks than cores, no binding to one core).
fn launcher(mpirun: &Path, np: usize) -> Command {
    let mut c = Command::new(mpirun);
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_orte_base_help_aggregate", "0")
        .args(["--oversubscribe", "--bind-to", "none", "-np"])
        .arg(np.to_string());
    c
}

/// Waits at most `limit` for `child`, killing it (and failing the test) past that.
fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> (ExitStatus, String, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return (status, err, started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}: the job hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run(mut cmd: Command, limit: Duration, what: &str) -> (ExitStatus, String) {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, err, _) = wait_bounded(child, limit, what);
    (status, err)
}

fn gen_data(dir: &Path, seed: u64) -> PathBuf {
    let out = dir.join(format!("data-{seed}"));
    let ok = Command::new(BIN)
        .args(["gen", "--task", "classification", "--rows", "2000"])
        .args(["--features", "12", "--classes", "3", "--seed"])
        .arg(seed.to_string())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    out
}

/// Dropout, shuffled rows, batches of 3 shards (48, 48, 14 rows) so 3 processes get one each,
/// and a short last batch of 40 rows (one shard: more processes than shards).
fn train_args(data: &Path, optimizer: &str, epochs: usize) -> Vec<String> {
    let mut a: Vec<String> = ["train", "--hidden", "24,12", "--dropout", "0.2"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(
        [
            "--batch-size",
            "110",
            "--shard-size",
            "48",
            "--val-fraction",
            "0.1",
            "--momentum",
            "0.9",
            "--optimizer",
            optimizer,
            "--epochs",
            &epochs.to_string(),
            "--data",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    a.push(data.display().to_string());
    a
}

fn final_weights(out: &Path) -> Vec<u8> {
    std::fs::read(out.join("final.safetensors"))
        .unwrap_or_else(|e| panic!("{}: {e}", out.display()))
}

#[test]
fn every_layout_of_processes_and_threads_ends_on_one_process_bits() {
    let Some(mpirun) = mpirun() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = gen_data(tmp.path(), 1);
    for optimizer in ["sgd", "adam"] {
        let alone = tmp.path().join(format!("alone-{optimizer}"));
        let (status, err) = run(
            {
                let mut c = Command::new(BIN);
                c.args(train_args(&data, optimizer, 2))
                    .args(["--threads", "2", "--out"])
                    .arg(&alone);
                c
            },
            Duration::from_secs(60),
            "one process",
        );
        assert!(status.success(), "{err}");
        let want = final_weights(&alone);
        for (np, threads) in [(1, 2), (2, 1), (3, 1), (2, 2)] {
            let out = tmp.path().join(format!("{optimizer}-{np}x{threads}"));
            let mut c = launcher(&mpirun, np);
            c.arg(BIN)
                .args(train_args(&data, optimizer, 2))
                .args(["--threads", &threads.to_string(), "--out"])
                .arg(&out);
            let (status, err) = run(c, Duration::from_secs(60), "mpirun");
            assert!(status.success(), "{np}×{threads}: {err}");
            assert!(
                final_weights(&out) == want,
                "{optimizer}: {np} processes × {threads} threads differ from one process"
            );
        }
    }
}

/// The pids of `parent`'s children (the ranks mpirun started).
fn children(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …; comm may hold spaces: split after the last ')'.
        let after = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
        let ppid = after.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(parent) && stat.contains("(dptrain)") {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill {sig} {pid}");
}

/// Starts a long 2-process run into `out` and waits until it has trained a while.
fn start_long_run(mpirun: &Path, data: &Path, out: &Path, np: usize) -> (Child, Vec<u32>) {
    let mut c = launcher(mpirun, np);
    c.arg(BIN)
        .args(train_args(data, "adam", 400))
        .args(["--threads", "1", "--checkpoint-every", "50", "--out"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    let started = Instant::now();
    // Until the first epoch is recorded: the ranks are past their agreement and training.
    while !std::fs::read_to_string(out.join("metrics.jsonl")).is_ok_and(|m| m.lines().count() > 1) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the run did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ranks = children(child.id());
    assert_eq!(ranks.len(), np, "ranks of the job: {ranks:?}");
    (child, ranks)
}

#[test]
fn a_stop_on_one_rank_stops_all_and_resumes_with_three_on_the_same_bits() {
    let Some(mpirun) = mpirun() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = gen_data(tmp.path(), 2);
    let never = tmp.path().join("never-stopped");
    let (status, err) = run(
        {
            let mut c = Command::new(BIN);
            c.args(train_args(&data, "adam", 400))
                .args(["--threads", "1", "--out"])
                .arg(&never);
            c
        },
        Duration::from_secs(120),
        "one process",
    );
    assert!(status.success(), "{err}");
    let want = final_weights(&never);
    // SIGUSR1 (Slurm's --signal) to rank 1 only, and SIGTERM to the launcher.
    for (how, out) in [("usr1-rank1", "a"), ("term-mpirun", "b")] {
        let out = tmp.path().join(out);
        let (child, ranks) = start_long_run(&mpirun, &data, &out, 2);
        match how {
            "usr1-rank1" => signal(ranks[1], "-USR1"),
            _ => signal(child.id(), "-TERM"),
        }
        let (status, err, _) = wait_bounded(child, Duration::from_secs(30), how);
        if how == "usr1-rank1" {
            assert_eq!(status.code(), Some(75), "{how}: {err}");
            assert!(err.contains("interrupted at epoch"), "{how}: {err}");
        } else {
            // OpenMPI's mpirun forwards SIGTERM to the ranks, which checkpoint and exit 75,
            // but it reports the job it was told to end as failed (exit code 1) and stops
            // forwarding their output.
            assert!(!status.success(), "{how}: {err}");
        }
        let checkpoints = std::fs::read_dir(out.join("checkpoints")).unwrap().count();
        assert!(checkpoints > 0, "{how}: no checkpoint");
        let mut c = launcher(&mpirun, 3);
        c.arg(BIN)
            .args(train_args(&data, "adam", 400))
            .args(["--threads", "1", "--resume", "--out"])
            .arg(&out);
        let (status, err) = run(c, Duration::from_secs(120), "resume with 3");
        assert!(status.success(), "{how}: resume: {err}");
        assert!(
            final_weights(&out) == want,
            "{how}: stopped with 2 processes and resumed with 3 differs from a run never stopped"
        );
    }
}

#[test]
fn a_rank_killed_panicking_or_hung_ends_the_whole_job_quickly() {
    let Some(mpirun) = mpirun() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = gen_data(tmp.path(), 3);
    // SIGKILL to rank 1 mid-run.
    let out = tmp.path().join("killed");
    let (child, ranks) = start_long_run(&mpirun, &data, &out, 2);
    signal(ranks[1], "-KILL");
    let (status, err, took) = wait_bounded(child, Duration::from_secs(20), "SIGKILL");
    assert!(!status.success(), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}: {err}");
    // A panic on rank 1, and a rank that hangs with --step-timeout.
    for (fault, extra, code) in [
        ("panic@1", vec![], 70),
        ("hang@1", vec!["--step-timeout", "2"], 124),
    ] {
        let mut c = launcher(&mpirun, 2);
        c.env("DPTRAIN_FAULT", fault)
            .arg(BIN)
            .args(train_args(&data, "sgd", 2))
            .args(extra);
        let child = c
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (status, err, took) = wait_bounded(child, Duration::from_secs(20), fault);
        assert_eq!(status.code(), Some(code), "{fault}: {err}");
        assert!(took < Duration::from_secs(10), "{fault}: took {took:?}");
        assert!(
            err.contains("[rank 1]"),
            "{fault}: the rank is named: {err}"
        );
    }
}

#[test]
fn a_data_file_that_differs_on_one_rank_is_refused_naming_it() {
    let Some(mpirun) = mpirun() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (same, other) = (gen_data(tmp.path(), 4), gen_data(tmp.path(), 5));
    // MPMD: rank 0 reads one directory, rank 1 another of the same shape.
    let mut c = launcher(&mpirun, 1);
    c.arg(BIN)
        .args(train_args(&same, "sgd", 1))
        .args([":", "-np", "1", BIN])
        .args(train_args(&other, "sgd", 1));
    let (status, err) = run(c, Duration::from_secs(30), "differing data");
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("rank 1: data file x.npy"), "{err}");
    // A result-changing flag that differs.
    let mut c = launcher(&mpirun, 1);
    c.arg(BIN)
        .args(train_args(&same, "sgd", 1))
        .args([":", "-np", "1", BIN])
        .args(train_args(&same, "sgd", 1))
        .args(["--lr", "0.5"]);
    let (status, err) = run(c, Duration::from_secs(30), "differing --lr");
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("rank 1: --lr is 0.5 here but 0.01 on rank 0"),
        "{err}"
    );
}

#[test]
fn a_world_of_one_under_a_slurm_step_of_several_tasks_is_refused() {
    if mpirun().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = gen_data(tmp.path(), 6);
    let out = Command::new(BIN)
        .args(train_args(&data, "sgd", 1))
        .env("SLURM_STEP_NUM_TASKS", "4")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("Slurm started 4 tasks") && err.contains("world of 1"),
        "{err}"
    );
}
