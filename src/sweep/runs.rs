//! A study's run files, `SWEEP/runs/b<batch size>.json`: written per batch size (one job of a
//! Slurm array each, or all in one process) and read back together for the analysis.
//!
//! Each file records, beside its runs, what makes runs comparable ([`StudyIdentity`]): the
//! study's training settings, its own settings and the fingerprints of the data files. Runs are
//! merged only when these agree; the same run found twice is counted once.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pipeline::BatchSize;
use crate::setting::Difference;
use crate::sweep::timing::Throughput;
use crate::sweep::{RunRecord, StudyRuns, SweepConfig};
use crate::train::RunIdentity;

/// What runs must share to be analysed together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyIdentity {
    /// The study's training settings (before a batch size, seed and learning-rate factor are
    /// applied per run) and the data files' fingerprints.
    pub train: RunIdentity,
    /// The study's own settings.
    pub sweep: SweepConfig,
}

impl StudyIdentity {
    /// The first setting that differs between `self` and `other`, as `(flag, self's value,
    /// other's value)`; the data files first. Only settings that change the runs count: the
    /// thread count, the task index, and the target and step budget (which the analysis takes
    /// from the collecting command) may differ.
    pub fn difference(&self, other: &StudyIdentity) -> Option<(String, String, String)> {
        let file = |f: &crate::data::FileFingerprint| {
            format!(
                "{} of {} bytes (sampled hash {:016x})",
                f.file, f.len, f.sample_hash
            )
        };
        for (a, b) in self.train.data.iter().zip(&other.train.data) {
            if a.difference(b).is_some() {
                return Some(("--data".into(), file(a), file(b)));
            }
        }
        if self.train.data.len() != other.train.data.len() {
            let kind = |d: &[crate::data::FileFingerprint]| match d.len() {
                0 => "generated data".to_string(),
                _ => "data files".to_string(),
            };
            return Some((
                "--data".into(),
                kind(&self.train.data),
                kind(&other.train.data),
            ));
        }
        let (a, b) = (&self.train.config, &other.train.config);
        let mut diffs: Vec<Difference> = a.resume_differences(b);
        diffs.extend(b.resume_differences(a).into_iter().map(|d| Difference {
            was: d.now,
            now: d.was,
            ..d
        }));
        let mut sa = self.sweep.clone();
        let mut sb = other.sweep.clone();
        for s in [&mut sa, &mut sb] {
            s.task_index = None;
            s.target_loss = crate::sweep::Target::Auto;
            s.step_budget = None;
        }
        sa.differences(&sb, &mut diffs);
        // `differences` reports (was → now) as (other → self): show self's value first.
        diffs
            .into_iter()
            .next()
            .map(|d| (format!("--{}", d.key), d.now, d.was))
    }
}

/// A run file's contents.
#[derive(Debug, Serialize, Deserialize)]
struct RunFile {
    study: StudyIdentity,
    runs: Vec<RunRecord>,
    #[serde(default)]
    throughput: Vec<Throughput>,
}

/// The file holding the runs of batch size `batch` in the study directory `out`.
pub fn run_file(out: &Path, batch: BatchSize) -> PathBuf {
    out.join("runs").join(format!("b{batch}.json"))
}

/// Writes the runs (and step times) of `batch` of the study `study` atomically into
/// `out/runs/`.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_runs(
    out: &Path,
    batch: BatchSize,
    study: &StudyIdentity,
    runs: &StudyRuns,
) -> Result<()> {
    let file = RunFile {
        study: study.clone(),
        runs: runs.runs.clone(),
        throughput: runs.throughput.clone(),
    };
    let json = serde_json::to_vec(&file).expect("runs serialise");
    crate::fsutil::write_atomic(&run_file(out, batch), |w| {
        std::io::Write::write_all(w, &json)
    })
}

/// Runs read from one run file, with what they were trained with.
#[derive(Debug, Clone)]
pub struct RunSet {
    /// The file read.
    pub file: PathBuf,
    /// What the runs were trained with.
    pub study: StudyIdentity,
    /// The runs.
    pub runs: Vec<RunRecord>,
    /// The step times measured apart.
    pub throughput: Vec<Throughput>,
}

/// The run files of the study directory `dir` (every `runs/*.json`, in file-name order).
///
/// # Errors
/// [`Error::Config`] on `--collect` when `dir` holds no runs directory, [`Error::Data`] naming
/// a file that is not a run file (or one written before run files recorded their settings).
pub fn read_runs(dir: &Path) -> Result<Vec<RunSet>> {
    let runs_dir = dir.join("runs");
    let entries = std::fs::read_dir(&runs_dir).map_err(|e| {
        Error::config(
            "--collect",
            format!(
                "{}: no sweep runs here ({})",
                runs_dir.display(),
                crate::fsutil::plain_reason(&e)
            ),
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut sets = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)
            .map_err(|e| Error::data(&f, crate::fsutil::plain_reason(&e)))?;
        if serde_json::from_str::<Vec<serde_json::Value>>(&text).is_ok() {
            return Err(Error::data(
                &f,
                "records no settings (an older dptrain wrote it), so it cannot be checked \
                 against the other runs: train that batch size again",
            ));
        }
        let file: RunFile = serde_json::from_str(&text)
            .map_err(|e| Error::data(&f, format!("not a sweep run file: {e}")))?;
        sets.push(RunSet {
            file: f,
            study: file.study,
            runs: file.runs,
            throughput: file.throughput,
        });
    }
    Ok(sets)
}

/// The runs of every study directory in `dirs` (a task array's), merged: refused when two were
/// trained with different settings or data; a run found twice (the same directory given twice)
/// is counted once.
///
/// # Errors
/// As [`read_runs`]; [`Error::Config`] on `--collect` when none holds a run, naming the setting
/// (with both values and files) when two run files disagree, and when two different results
/// claim the same batch size, optimizer, momentum, learning-rate factor and seed (or two
/// different step times the same batch size and optimizer).
pub fn collect(dirs: &[PathBuf]) -> Result<StudyRuns> {
    let mut first: Option<RunSet> = None;
    let mut runs: Vec<RunRecord> = Vec::new();
    let mut throughput: Vec<(Throughput, PathBuf)> = Vec::new();
    let mut from: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        for set in read_runs(dir)? {
            match &first {
                None => first = Some(set.clone()),
                Some(f) => {
                    if let Some((flag, here, there)) = set.study.difference(&f.study) {
                        return Err(Error::config(
                            "--collect",
                            format!(
                                "{} was trained with {flag} {here}, {} with {flag} {there}: \
                                 collect only the runs of one study",
                                set.file.display(),
                                f.file.display()
                            ),
                        ));
                    }
                }
            }
            for t in set.throughput {
                match throughput
                    .iter()
                    .find(|(u, _)| u.batch == t.batch && u.optimizer == t.optimizer)
                {
                    Some((u, _)) if *u == t => {}
                    Some((_, there)) => {
                        return Err(Error::config(
                            "--collect",
                            format!(
                                "{} and {} both hold a step-time measurement of batch {} ({}): \
                                 collect each batch size once",
                                there.display(),
                                set.file.display(),
                                t.label,
                                crate::sweep::optimizer_name(t.optimizer)
                            ),
                        ));
                    }
                    None => throughput.push((t, set.file.clone())),
                }
            }
            for run in set.runs {
                let same_cell = |r: &RunRecord| {
                    r.batch == run.batch
                        && r.optimizer == run.optimizer
                        && r.momentum.map(f32::to_bits) == run.momentum.map(f32::to_bits)
                        && r.lr_factor.to_bits() == run.lr_factor.to_bits()
                        && r.seed == run.seed
                };
                match runs.iter().position(same_cell) {
                    Some(i) if runs[i] == run => {} // the same run, found again
                    Some(i) => {
                        return Err(Error::config(
                            "--collect",
                            format!(
                                "{} and {} both hold a run of batch {}, lr factor {}, seed {} \
                                 with different results: collect each run once",
                                from[i].display(),
                                set.file.display(),
                                run.label,
                                run.lr_factor,
                                run.seed
                            ),
                        ));
                    }
                    None => {
                        runs.push(run);
                        from.push(set.file.clone());
                    }
                }
            }
        }
    }
    if runs.is_empty() {
        return Err(Error::config("--collect", "the directories hold no runs"));
    }
    Ok(StudyRuns {
        runs,
        throughput: throughput.into_iter().map(|t| t.0).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::TrainConfig;

    fn study() -> StudyIdentity {
        StudyIdentity {
            train: RunIdentity {
                config: TrainConfig::default(),
                data: Vec::new(),
                params: 10,
            },
            sweep: SweepConfig::default(),
        }
    }

    #[test]
    fn studies_differ_by_the_settings_that_change_runs_only() {
        let a = study();
        let mut b = study();
        b.sweep.task_index = Some(2);
        b.sweep.step_budget = Some(100);
        b.train.config.threads.threads = Some(3);
        assert_eq!(a.difference(&b), None);
        b.train.config.optim.lr = 0.02;
        assert_eq!(
            a.difference(&b),
            Some(("--lr".into(), "0.01".into(), "0.02".into()))
        );
        let mut c = study();
        c.train.config.run.epochs = 30;
        assert_eq!(
            a.difference(&c),
            Some(("--epochs".into(), "20".into(), "30".into()))
        );
        assert_eq!(
            c.difference(&a),
            Some(("--epochs".into(), "30".into(), "20".into()))
        );
        let mut d = study();
        d.sweep.seeds = 3;
        assert_eq!(
            a.difference(&d),
            Some(("--seeds".into(), "1".into(), "3".into()))
        );
    }
}
