//! Checkpoints: everything that decides the rest of a run, written atomically, read back exactly.
//!
//! The *policy* (when to write: every N steps, at epoch ends, on a signal) lives with the run
//! directory ([`crate::run_dir`]); this module only knows how to write and read.

mod fingerprint;
mod state;
mod store;

pub use fingerprint::FileFingerprint;
pub use state::{Checkpoint, Progress, RunIdentity, Snapshot};
pub use store::CheckpointStore;
