//! A run as a user starts it: the run directory, what records into it, its summary, and the
//! session that starts or resumes a run (everything `dptrain train` does, for library users).
//!
//! ```text
//! RUN/config.toml         the effective configuration (flags and file merged; keys = flags)
//! RUN/metrics.jsonl       one JSON object per epoch, appended as epochs finish
//! RUN/best.safetensors    the best validation epoch's weights (with a validation split)
//! RUN/final.safetensors   the weights at the end (the best ones after early stopping)
//! RUN/summary.json        the outcome: epochs run, best epoch, final losses, timing
//! RUN/checkpoints/        ckpt-<step>.safetensors: the newest few full training states
//! ```

mod agree;
mod dir;
mod init;
pub mod memory;
mod recorder;
mod session;
mod summary;
mod watchdog;

pub use agree::agree;
pub use dir::{Holds, RunDir};
pub use memory::{MemoryLimit, MemoryNeed};
pub use recorder::RunRecorder;
pub use session::{Finished, Output, Session};
pub use summary::Summary;
pub use watchdog::{TIMEOUT_EXIT, Watchdog};
