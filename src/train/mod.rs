//! Training: the run's configuration, the loop, its state, early stopping and what it reports.

mod config;
mod early_stop;
mod metrics;
mod observer;
mod progress;
mod trainer;

pub use config::{RunFlags, RunSettings, TrainConfig, TrainFlags};
pub use early_stop::{EarlyStopping, Verdict};
pub use metrics::{EpochMetrics, EvalPoint, NoiseMetrics, PhaseTimes, RunInfo};
pub use observer::{Both, Observer, Silent};
pub use progress::{Progress, RunIdentity, Snapshot, TrainState};
pub use trainer::{CHUNK_SHARDS, Outcome, Trainer, evaluate_dataset};

// The settings types a training configuration is made of, where users of `train` look for them.
pub use crate::optim::Schedule;
pub use crate::parallel::AUTO_PREFETCH_ROWS;
pub use crate::pipeline::BatchSize;
