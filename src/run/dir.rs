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

/// Files that mark a directory as holding a run already.
const RUN_FILES: [&str; 4] = [
    "config.toml",
    "metrics.jsonl",
    "final.safetensors",
    "summary.json",
];

/// An open run directory.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    metrics: File,
}

impl RunDir {
    /// Creates `path` (and its parents) for a new run.
    ///
    /// # Errors
    /// [`Error::Config`] on `--out` when the directory already holds a run (nothing is
    /// overwritten), cannot be created, or is not writable.
    pub fn create(path: &Path) -> Result<Self> {
        if let Some(f) = RUN_FILES.iter().find(|f| path.join(f).exists()) {
            return Err(Error::config(
                "--out",
                format!(
                    "{} already holds a run ({f} exists); choose a new directory",
                    path.display()
                ),
            ));
        }
        if path.exists() && !path.is_dir() {
            return Err(Error::config(
                "--out",
                format!("{} exists and is not a directory", path.display()),
            ));
        }
        std::fs::create_dir_all(path).map_err(|e| {
            Error::config("--out", format!("cannot create {}: {e}", path.display()))
        })?;
        let metrics = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path.join("metrics.jsonl"))
            .map_err(|e| {
                Error::config("--out", format!("cannot write in {}: {e}", path.display()))
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
    /// nearest existing ancestor must be a writable directory and `path` must not hold a run.
    ///
    /// # Errors
    /// As [`RunDir::create`].
    pub fn check(path: &Path) -> Result<()> {
        if let Some(f) = RUN_FILES.iter().find(|f| path.join(f).exists()) {
            return Err(Error::config(
                "--out",
                format!(
                    "{} already holds a run ({f} exists); choose a new directory",
                    path.display()
                ),
            ));
        }
        let mut dir = path;
        while !dir.exists() {
            dir = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
        }
        if !dir.is_dir() {
            return Err(Error::config(
                "--out",
                format!("{} is not a directory", dir.display()),
            ));
        }
        // access(2) answers for the real user, which is what we run as.
        let probe = dir.join(format!(".dptrain-probe-{}", std::process::id()));
        match File::create(&probe) {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
                Ok(())
            }
            Err(e) => Err(Error::config(
                "--out",
                format!("cannot write in {}: {e}", dir.display()),
            )),
        }
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
