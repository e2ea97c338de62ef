//! The batch-size study: how the batch size trades throughput against convergence.
//!
//! [`run_batch_size`] trains at one batch size: its step time measured apart
//! ([`timing`]), then every cell of the grid ([`grid`]: optimizer, momentum, learning-rate
//! factor, seed), each recording a learning curve with the noise scale at every evaluation,
//! and stopped early when clearly behind ([`prune`]). [`analyze`] turns the runs into steps,
//! samples and wall time to a target loss per batch size, fits `S(B) = S_min (1 + B_crit/B)`
//! with a bootstrap interval (or says why it cannot, [`FitFailure`]) and puts `B_simple` at
//! the target beside it; [`report`], [`plot`] and [`html`] write the results. Runs are plain
//! data ([`RunRecord`]), so the batch sizes of one study can be trained by separate jobs (a
//! Slurm array) and analysed together.

mod analysis;
mod fit;
pub mod grid;
pub mod html;
pub mod plot;
pub mod prune;
pub mod report;
mod runs;
mod session;
mod settings;
mod study;
pub mod timing;

pub use analysis::{BatchRow, Cost, Crossing, OptimizerFit, SweepReport, analyze, crossing};
pub use fit::{FitFailure, Measured, StepsFit, bootstrap, fit_steps};
pub use runs::{RunSet, StudyIdentity, collect, read_runs, run_file, write_runs};
pub use session::Study;
pub use settings::{
    OptimizerChoice, SweepConfig, SweepFlags, Target, changed_defaults, optimizer_name,
    train_defaults,
};
pub use study::{RunRecord, StudyRuns, run_batch_size};
