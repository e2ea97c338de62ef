//! The checkpoint settings of a run: how often, and how many to keep.

use crate::setting::settings;

settings! {
    /// When checkpoints are written and how many are kept (never part of the numbers).
    pub struct CheckpointSettings, flags CheckpointFlags, heading "Checkpoints" {
        /// Also checkpoint every N optimizer steps (epoch ends always are, with --out).
        #[arg(value_name = "N")]
        record checkpoint_every: u64;
        /// Checkpoints to keep in RUN/checkpoints (at least 1).
        #[arg(value_name = "N")]
        record keep: usize = 3;
    }
}
