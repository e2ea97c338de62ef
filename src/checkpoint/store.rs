//! Writing checkpoint files atomically into a run directory, removing old ones, and finding the
//! newest readable one. Which to write and which to remove is the policy's
//! ([`crate::checkpoint::CheckpointPolicy`]).

use std::path::{Path, PathBuf};

use crate::checkpoint::{Checkpoint, CheckpointState};
use crate::error::{Error, Result};

/// `RUN/checkpoints/`, holding `ckpt-<global step>.safetensors` files.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
}

fn step_of(name: &str) -> Option<u64> {
    name.strip_prefix("ckpt-")?
        .strip_suffix(".safetensors")?
        .parse()
        .ok()
}

impl CheckpointStore {
    /// The store under `run_dir`.
    pub fn new(run_dir: &Path) -> Self {
        CheckpointStore {
            dir: run_dir.join("checkpoints"),
        }
    }

    fn path_of(&self, step: u64) -> PathBuf {
        self.dir.join(format!("ckpt-{step:012}.safetensors"))
    }

    /// Checkpoint files, newest first.
    fn list(&self) -> Vec<(u64, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut v: Vec<(u64, PathBuf)> = entries
            .filter_map(|e| {
                let e = e.ok()?;
                let step = step_of(&e.file_name().to_string_lossy())?;
                Some((step, e.path()))
            })
            .collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.0));
        v
    }

    /// The global steps of the checkpoints present, newest first.
    pub fn steps(&self) -> Vec<u64> {
        self.list().into_iter().map(|(s, _)| s).collect()
    }

    /// Writes the checkpoint `bytes` of global step `step` atomically (temporary file, fsync,
    /// rename, directory fsync). Returns the file written.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file; a full disk says so, and the previous checkpoints are
    /// left as they were.
    pub fn write(&self, step: u64, bytes: &[u8]) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let path = self.path_of(step);
        crate::fsutil::write_atomic(&path, |w| std::io::Write::write_all(w, bytes)).map_err(
            |e| match e {
                Error::Io { path, source } if source.kind() == std::io::ErrorKind::StorageFull => {
                    Error::Io {
                        path,
                        source: std::io::Error::new(
                            source.kind(),
                            "no space left on device while writing a checkpoint; the previous \
                             checkpoint is intact: free space, then resume with --resume",
                        ),
                    }
                }
                other => other,
            },
        )?;
        self.remove_stale_temporaries();
        Ok(path)
    }

    /// Removes the checkpoints of `steps` (best effort: a file already gone is no error).
    pub fn remove(&self, steps: &[u64]) {
        for &s in steps {
            let _ = std::fs::remove_file(self.path_of(s));
        }
    }

    /// Removes temporary files left by a process killed mid-write (never the current one's).
    fn remove_stale_temporaries(&self) {
        let ours = format!(".tmp-{}", std::process::id());
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("ckpt-") && name.contains(".tmp-") && !name.ends_with(&ours) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// The newest checkpoint that reads back whole, with the reasons the newer ones were
    /// skipped (damaged or unreadable files are passed over, never fatal while an older one
    /// reads); `None` when there is no checkpoint file at all.
    ///
    /// # Errors
    /// [`Error::Data`] on the directory when checkpoint files exist but none reads back (with
    /// each file's reason).
    pub fn newest<S: CheckpointState>(&self) -> Result<Option<(Checkpoint<S>, Vec<String>)>> {
        let files = self.list();
        if files.is_empty() {
            return Ok(None);
        }
        let mut skipped = Vec::new();
        let mut reasons = Vec::new();
        for (_, path) in files {
            let read = std::fs::read(&path)
                .map_err(|e| Error::data(&path, format!("cannot read: {e}")))
                .and_then(|b| Checkpoint::from_bytes(&path, &b));
            match read {
                Ok(c) => return Ok(Some((c, skipped))),
                Err(e) => {
                    skipped.push(e.to_string());
                    let reason = match e {
                        Error::Data { message, .. } => message,
                        other => other.to_string(),
                    };
                    reasons.push((path, reason));
                }
            }
        }
        // Every file refused for one reason (an old format, say): that reason once.
        let message = match reasons.as_slice() {
            [(first, reason), .., (last, _)] if reasons.iter().all(|(_, r)| r == reason) => {
                let name = |p: &Path| {
                    p.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                };
                format!(
                    "no readable checkpoint: the {} files ({} … {}) all fail the same way: {reason}",
                    reasons.len(),
                    name(first),
                    name(last)
                )
            }
            _ => format!("no readable checkpoint: {}", skipped.join("; ")),
        };
        Err(Error::data(&self.dir, message))
    }
}
