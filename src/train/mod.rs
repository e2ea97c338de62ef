//! Training: the validated configuration, the loop, early stopping and the metrics it reports.

mod config;
mod early_stop;
mod metrics;
mod trainer;

pub use config::{AUTO_PREFETCH_ROWS, BatchSize, Schedule, TrainConfig};
pub use early_stop::{EarlyStopping, Verdict};
pub use metrics::{EpochMetrics, EvalPoint, NoiseMetrics, Observer, PhaseTimes, RunInfo, Silent};
pub use trainer::{Outcome, Trainer, evaluate_dataset};
