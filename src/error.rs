//! The library's error type: every variant carries the file, flag, row or step it is about.

use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, with the context a user needs to fix it.
///
/// The variants are grouped by who has to act: [`Error::Data`], [`Error::Config`] and
/// [`Error::Weights`] are bad input (the user changes a file or a flag), [`Error::Io`] is the
/// environment, [`Error::Diverged`] is the optimisation itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A dataset file is missing, malformed or holds values we cannot train on.
    #[error("{}: {message}", path.display())]
    Data {
        /// The offending file (or directory).
        path: PathBuf,
        /// What is wrong and, where possible, how to fix it.
        message: String,
    },
    /// A flag or configuration value is out of range or inconsistent with the data.
    #[error("{flag}: {message}")]
    Config {
        /// The flag as the user typed it, e.g. `--batch-size`.
        flag: String,
        /// What is wrong and what would be accepted.
        message: String,
    },
    /// A weights file does not fit the model (name, shape or dtype).
    #[error("{}: {message}", path.display())]
    Weights {
        /// The safetensors file.
        path: PathBuf,
        /// Which tensor does not fit, and how.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The processes of a run cannot work together: a launch that would make each train alone,
    /// or ranks that disagree on the settings, the data or the kernels.
    #[error("{message}")]
    World {
        /// What differs or is missing, on which rank, and what to do.
        message: String,
    },
    /// A stop was requested (SIGTERM, SIGINT, SIGUSR1); the state was checkpointed first.
    #[error(
        "interrupted at epoch {epoch} after step {step}; the run directory holds a checkpoint: \
         continue with the same command plus --resume"
    )]
    Interrupted {
        /// 1-based epoch in progress.
        epoch: usize,
        /// Global optimizer steps completed.
        step: u64,
    },
    /// A stop was requested in a run that writes nothing (no `--out`): nothing was saved.
    #[error(
        "interrupted at epoch {epoch} after step {step}; nothing was saved (the run had no \
         --out): give --out DIR to be able to stop a run and continue it with --resume"
    )]
    InterruptedUnsaved {
        /// 1-based epoch in progress.
        epoch: usize,
        /// Global optimizer steps completed.
        step: u64,
    },
    /// Training diverged in a run directory that keeps the checkpoints written before: a rerun
    /// with another `--lr` needs a new directory (a resumed run must keep its `--lr`).
    #[error(
        "training diverged at epoch {epoch}, step {step}: the {what} is not finite; try a lower \
         --lr (now {lr}) with a new --out, or delete {}: it holds this run's checkpoints, and \
         --resume continues a run only with the --lr it started with",
        dir.display()
    )]
    DivergedRun {
        /// The run directory.
        dir: PathBuf,
        /// 1-based epoch.
        epoch: usize,
        /// 1-based global optimizer step.
        step: u64,
        /// `loss` or `gradient`.
        what: &'static str,
        /// The learning rate in force.
        lr: f32,
    },
    /// The loss or the gradient became NaN or infinite.
    #[error(
        "training diverged at epoch {epoch}, step {step}: the {what} is not finite; \
         try a lower --lr (now {lr})"
    )]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based global optimizer step.
        step: u64,
        /// `loss` or `gradient`.
        what: &'static str,
        /// The learning rate in force.
        lr: f32,
    },
}

impl Error {
    /// Shorthand for [`Error::Data`].
    pub fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Config`].
    pub fn config(flag: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            flag: flag.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Weights`].
    pub fn weights(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Weights {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The process exit code documented in the README for this kind of error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Data { .. }
            | Error::Config { .. }
            | Error::Weights { .. }
            | Error::World { .. } => 2,
            Error::Io { .. } => 1,
            Error::Diverged { .. } | Error::DivergedRun { .. } => 3,
            Error::Interrupted { .. } | Error::InterruptedUnsaved { .. } => 75,
        }
    }
}
