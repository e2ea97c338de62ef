//! A study's run files, `SWEEP/runs/b<batch size>.json`: written per batch size (one job of a
//! Slurm array each, or all in one process) and read back together for the analysis.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::pipeline::BatchSize;
use crate::sweep::RunRecord;

/// The file holding the runs of batch size `batch` in the study directory `out`.
pub fn run_file(out: &Path, batch: BatchSize) -> PathBuf {
    out.join("runs").join(format!("b{batch}.json"))
}

/// Writes the runs of `batch` atomically into `out/runs/`.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_runs(out: &Path, batch: BatchSize, runs: &[RunRecord]) -> Result<()> {
    let json = serde_json::to_vec(runs).expect("runs serialise");
    crate::fsutil::write_atomic(&run_file(out, batch), |w| {
        std::io::Write::write_all(w, &json)
    })
}

/// The runs found in the study directory `dir` (every `runs/*.json`, in file-name order).
///
/// # Errors
/// [`Error::Config`] on `--collect` when `dir` holds no runs directory, [`Error::Data`] naming
/// a file that is not a run file.
pub fn read_runs(dir: &Path) -> Result<Vec<RunRecord>> {
    let runs_dir = dir.join("runs");
    let entries = std::fs::read_dir(&runs_dir).map_err(|e| {
        Error::config(
            "--collect",
            format!("{}: no sweep runs here ({e})", runs_dir.display()),
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut runs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| Error::data(&f, e.to_string()))?;
        let mut r: Vec<RunRecord> = serde_json::from_str(&text)
            .map_err(|e| Error::data(&f, format!("not a sweep run file: {e}")))?;
        runs.append(&mut r);
    }
    Ok(runs)
}

/// The runs of every study directory in `dirs` (a task array's), merged.
///
/// # Errors
/// As [`read_runs`]; [`Error::Config`] on `--collect` when none holds a run.
pub fn collect(dirs: &[PathBuf]) -> Result<Vec<RunRecord>> {
    let mut runs = Vec::new();
    for dir in dirs {
        runs.append(&mut read_runs(dir)?);
    }
    if runs.is_empty() {
        return Err(Error::config("--collect", "the directories hold no runs"));
    }
    Ok(runs)
}
