//! Optimizers over the one flat parameter buffer.

mod adam;
mod clip;
mod optimizer;
mod schedule;
mod settings;
mod sgd;

pub use adam::{Adam, AdamConfig, AdamUpdate};
pub use clip::clip_grad_norm;
pub use optimizer::{Optimizer, OptimizerKind, OptimizerState, StepUpdate, Update};
pub use schedule::{LrScaling, LrSchedule, ScheduleKind};
pub use settings::{LrFlags, LrSettings, OptimFlags, OptimSettings, Schedule};
pub use sgd::{ParamGroup, Sgd, SgdConfig, SgdUpdate};

#[cfg(test)]
mod adam_golden_tests;
#[cfg(test)]
mod clip_golden_tests;
#[cfg(test)]
mod golden_tests;
