//! The run directory: everything a run writes, under one folder (layout: [`crate::run`]).
//!
//! Every file but `metrics.jsonl` is written atomically; `metrics.jsonl` grows by whole lines.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::Mlp;
use crate::model::weights::{self, ModelMeta};

/// What a directory given as `--out` holds already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holds {
    /// No run (it may not exist yet, or hold unrelated files).
    Nothing,
    /// A run that stopped before its first checkpoint (its `config.toml`, an empty or no
    /// `metrics.jsonl`, no weights, no checkpoint): nothing in it can be continued or lost, so
    /// a new run replaces it.
    Unstarted,
    /// A run: this file (or `checkpoints/`) shows it.
    Run(&'static str),
}

/// Files that show a directory holds a run that trained (or is training) something.
const RUN_FILES: [&str; 3] = ["final.safetensors", "summary.json", "best.safetensors"];

impl Holds {
    /// What `path` holds.
    pub fn of(path: &Path) -> Holds {
        if let Some(f) = RUN_FILES.iter().find(|f| path.join(f).exists()) {
            return Holds::Run(f);
        }
        let checkpoints = std::fs::read_dir(path.join("checkpoints"))
            .is_ok_and(|mut entries| entries.next().is_some());
        if checkpoints {
            return Holds::Run("checkpoints/");
        }
        let metrics = std::fs::metadata(path.join("metrics.jsonl")).ok();
        match (path.join("config.toml").is_file(), metrics) {
            (_, Some(m)) if m.len() > 0 => Holds::Run("metrics.jsonl"),
            // The configuration a run writes at its start, and no epoch: nothing to lose.
            (true, _) => Holds::Unstarted,
            (false, Some(_)) => Holds::Run("metrics.jsonl"),
            (false, None) => Holds::Nothing,
        }
    }
}

/// Refuses an `--out` that holds a run with something to lose.
fn refuse_existing_run(path: &Path) -> Result<()> {
    match Holds::of(path) {
        Holds::Run(f) => Err(Error::config(
            "--out",
            format!(
                "{} already holds a run ({f} exists): choose a new directory, or continue it \
                 with --resume",
                path.display()
            ),
        )),
        Holds::Nothing | Holds::Unstarted => Ok(()),
    }
}

/// An open run directory.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    metrics: File,
}

impl RunDir {
    /// Creates `path` (and its parents) for a new run; a run that stopped before its first
    /// checkpoint ([`Holds::Unstarted`]) is replaced.
    ///
    /// # Errors
    /// [`Error::Config`] on `--out` when the directory already holds a run (nothing is
    /// overwritten), cannot be created, or is not writable (see [`crate::fsutil::check_out`]).
    pub fn create(path: &Path) -> Result<Self> {
        RunDir::check(path)?;
        if Holds::of(path) == Holds::Unstarted {
            for f in ["config.toml", "metrics.jsonl"] {
                match std::fs::remove_file(path.join(f)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::io(path.join(f), e));
                    }
                    _ => {}
                }
            }
        }
        std::fs::create_dir_all(path).map_err(|e| {
            Error::config(
                "--out",
                format!(
                    "cannot create {}: {}",
                    path.display(),
                    crate::fsutil::plain_reason(&e)
                ),
            )
        })?;
        let metrics = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path.join("metrics.jsonl"))
            .map_err(|e| {
                Error::config(
                    "--out",
                    format!(
                        "cannot write in {}: {}",
                        path.display(),
                        crate::fsutil::plain_reason(&e)
                    ),
                )
            })?;
        Ok(RunDir {
            path: path.to_path_buf(),
            metrics,
        })
    }

    /// Opens the run directory of an interrupted run, to resume it: `metrics.jsonl` is
    /// rewritten (atomically) to hold exactly `history`, the epochs the checkpoint knows, so
    /// lines written after the checkpoint are not repeated.
    ///
    /// # Errors
    /// [`Error::Config`] on `--out` when the directory holds no run; [`Error::Io`].
    pub fn reopen<T: Serialize>(path: &Path, history: &[T]) -> Result<Self> {
        if !path.join("config.toml").is_file() {
            return Err(Error::config(
                "--out",
                format!(
                    "{} holds no run to resume (no config.toml); drop --resume to start one",
                    path.display()
                ),
            ));
        }
        let metrics_path = path.join("metrics.jsonl");
        crate::fsutil::write_atomic(&metrics_path, |w| {
            for line in history {
                serde_json::to_writer(&mut *w, line).map_err(std::io::Error::other)?;
                w.write_all(b"\n")?;
            }
            Ok(())
        })?;
        let metrics = OpenOptions::new()
            .append(true)
            .open(&metrics_path)
            .map_err(|e| Error::io(&metrics_path, e))?;
        Ok(RunDir {
            path: path.to_path_buf(),
            metrics,
        })
    }

    /// Checks, without creating anything, that `path` could become a new run directory: the
    /// nearest existing ancestor must be a writable directory, `path` no symbolic link to
    /// nowhere, and `path` must not hold a run with something to lose ([`Holds::Run`]).
    ///
    /// # Errors
    /// As [`RunDir::create`].
    pub fn check(path: &Path) -> Result<()> {
        crate::fsutil::check_out("--out", path, crate::fsutil::OutKind::Dir)?;
        refuse_existing_run(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `config.toml` atomically (its text is [`crate::train::TrainConfig::to_toml`]'s).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn write_config(&self, text: &str) -> Result<()> {
        crate::fsutil::write_atomic(&self.path.join("config.toml"), |w| {
            w.write_all(text.as_bytes())
        })
    }

    /// Writes `NAME.safetensors` atomically.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn write_weights(
        &self,
        name: &str,
        mlp: &Mlp,
        params: &[f32],
        meta: Option<&ModelMeta>,
    ) -> Result<()> {
        weights::save(
            mlp,
            params,
            meta,
            &self.path.join(format!("{name}.safetensors")),
        )
    }

    /// Writes `summary.json` atomically.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn write_summary<T: Serialize>(&self, summary: &T) -> Result<()> {
        let text = serde_json::to_string_pretty(summary).expect("summaries serialise");
        crate::fsutil::write_atomic(&self.path.join("summary.json"), |w| {
            w.write_all(text.as_bytes())?;
            w.write_all(b"\n")
        })
    }

    /// Appends one line to `metrics.jsonl` (one `write` call, so lines are never interleaved
    /// or split by a crash between them).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn append_metrics<T: Serialize>(&mut self, line: &T) -> Result<()> {
        let mut text = serde_json::to_string(line).expect("metrics serialise");
        text.push('\n');
        self.metrics
            .write_all(text.as_bytes())
            .map_err(|e| Error::io(self.path.join("metrics.jsonl"), e))
    }
}
