//! Checkpoints: a run's state written atomically and read back exactly.
//!
//! Three parts, kept apart: the file [`format`](Checkpoint) (what the bytes are), the
//! [`CheckpointStore`] (where files go, writing and removing them) and the
//! [`CheckpointPolicy`] (when to write, what to keep). What the state means is the training
//! loop's ([`crate::train`]); this module does not know it.

mod format;
mod policy;
mod settings;
mod store;

pub use format::{Checkpoint, CheckpointState, Tensors, to_bytes};
pub use policy::{Boundary, CheckpointPolicy};
pub use settings::{CheckpointFlags, CheckpointSettings};
pub use store::CheckpointStore;
