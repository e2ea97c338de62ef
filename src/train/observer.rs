//! The observer a run reports to (console, run directory, tests), and how observers combine.

use crate::checkpoint::Boundary;
use crate::error::Result;
use crate::train::{EpochMetrics, EvalPoint, RunInfo, Snapshot};

/// Receives a run's progress: the CLI prints it, the run directory records it, tests inspect it.
pub trait Observer {
    /// The run is about to take its first step.
    fn on_start(&mut self, _info: &RunInfo) -> Result<()> {
        Ok(())
    }

    /// A step finished (`step` of `steps`, 1-based, in epoch `epoch`). Called on the hot path:
    /// keep it cheap.
    fn on_step(&mut self, _epoch: usize, _step: usize, _steps: usize) {}

    /// An epoch finished.
    fn on_epoch(&mut self, _metrics: &EpochMetrics) -> Result<()> {
        Ok(())
    }

    /// A point of the validation curve: at the start, every `eval_every` samples and at each
    /// epoch end (only when `eval_every` is set and there is a validation split).
    fn on_eval(&mut self, _point: &EvalPoint) -> Result<()> {
        Ok(())
    }

    /// A new best validation loss was reached with `params`.
    fn on_best(&mut self, _epoch: usize, _params: &[f32]) -> Result<()> {
        Ok(())
    }

    /// Whether a checkpoint is wanted at `boundary` (asked after every optimizer step, at every
    /// epoch end and before an interruption; keep it cheap).
    fn wants_checkpoint(&mut self, _boundary: Boundary) -> bool {
        false
    }

    /// The complete state at a boundary where [`Observer::wants_checkpoint`] said yes: write
    /// it to resume from later.
    fn on_checkpoint(&mut self, _snapshot: &Snapshot<'_>) -> Result<()> {
        Ok(())
    }
}

/// Two observers as one: every call goes to `first`, then to `second` (errors stop at the
/// first). A checkpoint is wanted when either wants it, and then offered to both.
#[derive(Debug)]
pub struct Both<A, B>(pub A, pub B);

impl<A: Observer, B: Observer> Observer for Both<A, B> {
    fn on_start(&mut self, info: &RunInfo) -> Result<()> {
        self.0.on_start(info)?;
        self.1.on_start(info)
    }

    fn on_step(&mut self, epoch: usize, step: usize, steps: usize) {
        self.0.on_step(epoch, step, steps);
        self.1.on_step(epoch, step, steps);
    }

    fn on_epoch(&mut self, metrics: &EpochMetrics) -> Result<()> {
        self.0.on_epoch(metrics)?;
        self.1.on_epoch(metrics)
    }

    fn on_eval(&mut self, point: &EvalPoint) -> Result<()> {
        self.0.on_eval(point)?;
        self.1.on_eval(point)
    }

    fn on_best(&mut self, epoch: usize, params: &[f32]) -> Result<()> {
        self.0.on_best(epoch, params)?;
        self.1.on_best(epoch, params)
    }

    fn wants_checkpoint(&mut self, boundary: Boundary) -> bool {
        // Both are asked (no short circuit): an observer may count boundaries.
        let a = self.0.wants_checkpoint(boundary);
        let b = self.1.wants_checkpoint(boundary);
        a || b
    }

    fn on_checkpoint(&mut self, snapshot: &Snapshot<'_>) -> Result<()> {
        self.0.on_checkpoint(snapshot)?;
        self.1.on_checkpoint(snapshot)
    }
}

impl<T: Observer + ?Sized> Observer for &mut T {
    fn on_start(&mut self, info: &RunInfo) -> Result<()> {
        (**self).on_start(info)
    }

    fn on_step(&mut self, epoch: usize, step: usize, steps: usize) {
        (**self).on_step(epoch, step, steps);
    }

    fn on_epoch(&mut self, metrics: &EpochMetrics) -> Result<()> {
        (**self).on_epoch(metrics)
    }

    fn on_eval(&mut self, point: &EvalPoint) -> Result<()> {
        (**self).on_eval(point)
    }

    fn on_best(&mut self, epoch: usize, params: &[f32]) -> Result<()> {
        (**self).on_best(epoch, params)
    }

    fn wants_checkpoint(&mut self, boundary: Boundary) -> bool {
        (**self).wants_checkpoint(boundary)
    }

    fn on_checkpoint(&mut self, snapshot: &Snapshot<'_>) -> Result<()> {
        (**self).on_checkpoint(snapshot)
    }
}

impl<T: Observer> Observer for Option<T> {
    fn on_start(&mut self, info: &RunInfo) -> Result<()> {
        self.as_mut().map_or(Ok(()), |o| o.on_start(info))
    }

    fn on_step(&mut self, epoch: usize, step: usize, steps: usize) {
        if let Some(o) = self {
            o.on_step(epoch, step, steps);
        }
    }

    fn on_epoch(&mut self, metrics: &EpochMetrics) -> Result<()> {
        self.as_mut().map_or(Ok(()), |o| o.on_epoch(metrics))
    }

    fn on_eval(&mut self, point: &EvalPoint) -> Result<()> {
        self.as_mut().map_or(Ok(()), |o| o.on_eval(point))
    }

    fn on_best(&mut self, epoch: usize, params: &[f32]) -> Result<()> {
        self.as_mut().map_or(Ok(()), |o| o.on_best(epoch, params))
    }

    fn wants_checkpoint(&mut self, boundary: Boundary) -> bool {
        self.as_mut().is_some_and(|o| o.wants_checkpoint(boundary))
    }

    fn on_checkpoint(&mut self, snapshot: &Snapshot<'_>) -> Result<()> {
        self.as_mut().map_or(Ok(()), |o| o.on_checkpoint(snapshot))
    }
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Silent;

impl Observer for Silent {}
