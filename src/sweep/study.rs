//! Training the runs of one batch size: its step time measured apart, then every cell of the
//! grid (optimizer, momentum, learning-rate factor, seed), each recording its learning curve
//! (with the noise scale at each evaluation) and its own step times, pruned when clearly behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::optim::OptimizerKind;
use crate::sweep::fit::median;
use crate::sweep::grid::{self, RunSpec};
use crate::sweep::prune::{self, Pruned};
use crate::sweep::timing::{self, StepClock, StepTime, Throughput};
use crate::sweep::{SweepConfig, optimizer_name};
use crate::train::{BatchSize, EpochMetrics, EvalPoint, Observer, RunInfo, TrainConfig, Trainer};

/// One training run of the study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Rows per step.
    pub batch: usize,
    /// The batch size as given (`64`, `full`).
    pub label: String,
    /// The update rule.
    #[serde(default)]
    pub optimizer: OptimizerKind,
    /// The momentum of `--momentum-grid` (SGD's momentum, Adam's β₁), when one was given.
    #[serde(default)]
    pub momentum: Option<f32>,
    /// Learning rate used.
    pub lr: f32,
    /// Its grid factor.
    pub lr_factor: f32,
    /// Seed.
    pub seed: u64,
    /// Validation loss (and `B_simple`) against steps, samples and training time.
    pub curve: Vec<EvalPoint>,
    /// Samples per second at the run's own median step time.
    pub samples_per_s: f64,
    /// The run's own step times (evaluations excluded).
    #[serde(default)]
    pub step_time: Option<StepTime>,
    /// Why the run stopped early, if it diverged.
    pub diverged: Option<String>,
    /// Where and why it was stopped early by `--prune`.
    #[serde(default)]
    pub pruned: Option<Pruned>,
    /// Steps its epoch budget holds (what it would have trained unpruned).
    #[serde(default)]
    pub budget_steps: u64,
    /// The gradient noise scale at the end of the run.
    pub b_simple: Option<f64>,
}

impl RunRecord {
    /// Optimizer steps it trained.
    pub fn steps_trained(&self) -> u64 {
        self.curve.last().map_or(0, |p| p.step)
    }

    /// `lr 2.000e-2` (and `, momentum 0.9`): the run's cell, for messages.
    pub fn cell(&self) -> String {
        match self.momentum {
            Some(m) => format!("lr {:.3e}, momentum {m}", self.lr),
            None => format!("lr {:.3e}", self.lr),
        }
    }
}

/// Everything a study trained: the runs and the step times measured apart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StudyRuns {
    /// Every run, with its curve.
    pub runs: Vec<RunRecord>,
    /// The step time of each batch size and optimizer.
    pub throughput: Vec<Throughput>,
}

/// The finished runs a run is compared with (`(cell, curve)`), and the prune level.
type PruneAgainst<'r> = (Vec<(String, &'r [EvalPoint])>, f64);

/// Collects the curve, metrics and step times of one run, and stops it when pruning says so.
struct Recorder<'r> {
    curve: Vec<EvalPoint>,
    epochs: Vec<EpochMetrics>,
    clock: StepClock,
    /// The finished runs it is compared with, and the target when known (with `--prune`).
    prune: Option<PruneAgainst<'r>>,
    pruned: Option<Pruned>,
    stop: Arc<AtomicBool>,
    /// Steps of the epoch budget: a run at its end is finished, not pruned.
    budget_steps: u64,
}

impl Observer for Recorder<'_> {
    fn on_start(&mut self, _info: &RunInfo) -> Result<()> {
        self.clock.other();
        Ok(())
    }

    fn on_step(&mut self, _epoch: usize, step: usize, steps: usize) {
        self.clock.step(step, steps);
    }

    fn on_eval(&mut self, point: &EvalPoint) -> Result<()> {
        // A non-finite loss is a run diverging (recorded as such); JSON has no NaN to keep it.
        if point.val_loss.is_finite() {
            self.curve.push(*point);
        }
        if let Some((refs, level)) = &self.prune
            && self.pruned.is_none()
            && point.step < self.budget_steps
            && let Some(reason) = prune::check(&self.curve, refs, *level)
        {
            self.pruned = Some(Pruned {
                at_step: point.step,
                at_samples: point.samples,
                reason,
            });
            self.stop.store(true, Ordering::Relaxed);
        }
        self.clock.other();
        Ok(())
    }

    fn on_epoch(&mut self, m: &EpochMetrics) -> Result<()> {
        self.epochs.push(m.clone());
        self.clock.other();
        Ok(())
    }
}

/// The optimizers of `specs`, in order of first appearance.
fn optimizers(specs: &[RunSpec]) -> Vec<OptimizerKind> {
    let mut out: Vec<OptimizerKind> = Vec::new();
    for s in specs {
        if !out.contains(&s.optimizer) {
            out.push(s.optimizer);
        }
    }
    out
}

/// Trains every run of one batch size, calling `log` with a line per run: first the step time
/// of each optimizer ([`timing::measure`]), then the grid's runs ([`grid::runs`]).
///
/// A diverged run is recorded (not an error): it is part of what the study measures. With
/// `--prune`, a run behind a finished one of the same optimizer and seed at `prune_level`
/// ([`prune::level`] of the batch sizes trained before; `None`: no pruning) is stopped and
/// recorded as pruned.
///
/// # Errors
/// Configuration errors from the trainer.
pub fn run_batch_size(
    dataset: &Arc<Dataset>,
    base: &TrainConfig,
    sweep: &SweepConfig,
    batch: BatchSize,
    prune_level: Option<f64>,
    threads: usize,
    log: &mut dyn FnMut(&str),
) -> Result<StudyRuns> {
    let specs = grid::runs(base, sweep);
    let mut throughput = Vec::new();
    let smallest = sweep.lr_grid.iter().copied().fold(f32::INFINITY, f32::min);
    for optimizer in optimizers(&specs) {
        let mut cfg = base.clone();
        cfg.optim.lr = base.optim.lr * smallest;
        let t = timing::measure(dataset, &cfg, batch, optimizer, threads)?;
        log(&format!(
            "batch {batch:>6}  {}  step time {:.3} ms (p10 {:.3}, p90 {:.3}, {} steps, warm, no \
             evaluation)  {:.0} samples/s",
            optimizer_name(optimizer),
            t.time.median_ms,
            t.time.p10_ms,
            t.time.p90_ms,
            t.time.steps,
            t.samples_per_s()
        ));
        throughput.push(t);
    }
    let mut out: Vec<RunRecord> = Vec::new();
    for spec in &specs {
        let cfg = grid::config(base, batch, spec);
        let stop = Arc::new(AtomicBool::new(false));
        let trainer = Trainer::new(dataset.clone(), cfg.clone(), threads)?;
        let rows = trainer.batch_rows();
        let train_rows = trainer.split().train.len();
        let budget_steps = (train_rows.div_ceil(rows) * cfg.run.epochs) as u64;
        let trainer = trainer
            .with_learning_curve(train_rows / sweep.evals_per_epoch.max(1))
            .with_stop_flag(stop.clone());
        let lr = cfg.scaled_lr(rows);
        let refs: Vec<(String, &[EvalPoint])> = out
            .iter()
            .filter(|r| r.optimizer == spec.optimizer && r.seed == spec.seed)
            .filter(|r| r.diverged.is_none() && r.pruned.is_none())
            .map(|r| (r.cell(), r.curve.as_slice()))
            .collect();
        let mut rec = Recorder {
            curve: Vec::new(),
            epochs: Vec::new(),
            clock: StepClock::new(rows, train_rows, cfg.batch.drop_last),
            prune: prune_level.filter(|_| sweep.prune).map(|l| (refs, l)),
            pruned: None,
            stop,
            budget_steps,
        };
        let diverged = match trainer.run(None, &mut rec) {
            Ok(_) => None,
            Err(Error::Interrupted { .. }) if rec.pruned.is_some() => None,
            Err(e @ Error::Diverged { .. }) => Some(e.to_string()),
            Err(e) => return Err(e),
        };
        // The references borrow `out`, which takes this run next.
        rec.prune = None;
        let step_time = StepTime::of(&rec.clock.times);
        let samples_per_s = step_time
            .map(|t| rows as f64 / (t.median_ms / 1e3))
            .or_else(|| median(rec.epochs.iter().map(|m| m.samples_per_s).collect()))
            .unwrap_or(0.0);
        let b_simple = rec
            .epochs
            .last()
            .and_then(|m| m.noise_scale)
            .and_then(|n| n.b_simple)
            .filter(|b| b.is_finite());
        let best = rec
            .curve
            .iter()
            .map(|p| p.val_loss)
            .fold(f64::INFINITY, f64::min);
        let momentum = spec
            .momentum
            .map_or(String::new(), |m| format!("  momentum {m}"));
        let end = match (&diverged, &rec.pruned) {
            (Some(_), _) => "  DIVERGED".to_string(),
            (None, Some(p)) => format!("  pruned at step {}", p.at_step),
            (None, None) => String::new(),
        };
        log(&format!(
            "batch {batch:>6}  {}  lr {lr:<10.4e}{momentum}  seed {}  best val_loss {best:.5}  \
             {samples_per_s:.0} samples/s{end}",
            optimizer_name(spec.optimizer),
            spec.seed,
        ));
        out.push(RunRecord {
            batch: rows,
            label: batch.to_string(),
            optimizer: spec.optimizer,
            momentum: spec.momentum,
            lr,
            lr_factor: spec.lr_factor,
            seed: spec.seed,
            curve: rec.curve,
            samples_per_s,
            step_time,
            diverged,
            pruned: rec.pruned,
            budget_steps,
            b_simple,
        });
    }
    Ok(StudyRuns {
        runs: out,
        throughput,
    })
}
