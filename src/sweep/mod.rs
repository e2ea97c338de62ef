//! The batch-size study: how the batch size trades throughput against convergence.
//!
//! [`run_batch_size`] trains at one batch size (each learning-rate factor and seed) and records
//! learning curves; [`analyze`] turns the runs into steps, samples and wall time to a target
//! loss per batch size, fits `S(B) = S_min (1 + B_crit/B)` and puts the measured gradient noise
//! scale beside it; [`report`] and [`plot`] write the results. Runs are plain data
//! ([`RunRecord`]), so the batch sizes of one study can be trained by separate jobs (a Slurm
//! array) and analysed together.

mod fit;
pub mod plot;
pub mod report;
mod runs;
mod session;
mod settings;
mod study;

pub use fit::{StepsFit, fit_steps};
pub use runs::{RunSet, StudyIdentity, collect, read_runs, run_file, write_runs};
pub use session::Study;
pub use settings::{SweepConfig, SweepFlags, Target, changed_defaults, train_defaults};
pub use study::{BatchRow, RunRecord, SweepReport, analyze, run_batch_size};
