//! Step times: measured per batch size apart from the convergence runs (warm, no evaluation,
//! no noise-scale measurement), and recorded along every convergence run, so that a noisy
//! neighbour during one run is seen rather than silently moving the study's answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::optim::OptimizerKind;
use crate::pipeline::BatchSize;
use crate::train::{EpochMetrics, EvalPoint, Observer, RunInfo, TrainConfig, Trainer};

/// Steps run before timing starts (allocation, caches, the loader's first read).
const WARM_STEPS: usize = 2;
/// Timing stops after at least this many timed steps and [`MIN_TIME`]…
const MIN_STEPS: usize = 20;
/// …of timed steps, or after [`MAX_TIME`] (with at least [`FEW_STEPS`] steps).
const MIN_TIME: Duration = Duration::from_millis(500);
const MAX_TIME: Duration = Duration::from_secs(5);
const FEW_STEPS: usize = 3;
/// The most steps a timing run may take (its epoch budget is set from it).
const MAX_STEPS: usize = 20_000;

/// A run whose 90th-percentile step time exceeds its 10th percentile by this factor is flagged.
pub const SPREAD_FLAG: f64 = 3.0;

/// Summary of a sample of step times.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepTime {
    /// Steps timed.
    pub steps: usize,
    /// Median step time, milliseconds.
    pub median_ms: f64,
    /// 10th percentile, milliseconds.
    pub p10_ms: f64,
    /// 90th percentile, milliseconds.
    pub p90_ms: f64,
}

impl StepTime {
    /// The summary of `times` (seconds); `None` when empty.
    pub fn of(times: &[f64]) -> Option<Self> {
        if times.is_empty() {
            return None;
        }
        let mut t = times.to_vec();
        t.sort_by(f64::total_cmp);
        let at = |q: f64| 1e3 * t[((t.len() - 1) as f64 * q).round() as usize];
        Some(StepTime {
            steps: t.len(),
            median_ms: at(0.5),
            p10_ms: at(0.1),
            p90_ms: at(0.9),
        })
    }

    /// Whether the spread (p90 / p10) is large enough to distrust the times.
    pub fn spread_is_large(&self) -> bool {
        self.p90_ms > SPREAD_FLAG * self.p10_ms
    }
}

/// The step time of one batch size and optimizer, measured apart from the convergence runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Rows per step.
    pub batch: usize,
    /// The batch size as given.
    pub label: String,
    /// The update rule timed.
    pub optimizer: OptimizerKind,
    /// The step times.
    pub time: StepTime,
}

impl Throughput {
    /// Training samples per second at the median step time.
    pub fn samples_per_s(&self) -> f64 {
        self.batch as f64 / (self.time.median_ms / 1e3)
    }
}

/// Times each optimizer step: from the end of the previous step (or evaluation, or epoch end,
/// whichever came last) to the end of this one, so evaluations and epoch-end validation are
/// excluded and the loader's wait is included.
///
/// Only full batches are timed: an epoch's short last batch (12,800 rows in batches of 2048 end
/// on one of 512) would otherwise pull the percentiles apart and the median down.
#[derive(Debug, Default)]
pub struct StepClock {
    mark: Option<Instant>,
    /// Step durations in seconds, the first step of the run left out (it warms up).
    pub times: Vec<f64>,
    first_done: bool,
    short_last: bool,
}

impl StepClock {
    /// A clock for batches of `rows` over `train_rows` rows an epoch (`drop_last` as
    /// `--drop-last`: no short batch then).
    pub fn new(rows: usize, train_rows: usize, drop_last: bool) -> Self {
        StepClock {
            short_last: !drop_last && rows > 0 && !train_rows.is_multiple_of(rows),
            ..StepClock::default()
        }
    }

    /// Step `step` of `steps` (1-based) of an epoch ended now.
    pub fn step(&mut self, step: usize, steps: usize) {
        let now = Instant::now();
        let short = self.short_last && step == steps;
        if let Some(m) = self.mark
            && self.first_done
            && !short
        {
            self.times.push((now - m).as_secs_f64());
        }
        self.first_done = true;
        self.mark = Some(now);
    }

    /// Something other than a step ended now (an evaluation): the next step starts here.
    pub fn other(&mut self) {
        self.mark = Some(Instant::now());
    }
}

/// The observer of a timing run: clocks steps, raises the stop flag when enough are timed.
struct Timer {
    clock: StepClock,
    started: Option<Instant>,
    stop: Arc<AtomicBool>,
}

impl Observer for Timer {
    fn on_start(&mut self, _info: &RunInfo) -> Result<()> {
        self.clock.other();
        Ok(())
    }

    fn on_step(&mut self, _epoch: usize, step: usize, steps: usize) {
        self.clock.step(step, steps);
        // The clock drops the first step; `WARM_STEPS - 1` more are dropped below.
        let timed = self.clock.times.len().saturating_sub(WARM_STEPS - 1);
        if timed == 1 && self.started.is_none() {
            self.started = Some(Instant::now());
        }
        let elapsed = self.started.map_or(Duration::ZERO, |s| s.elapsed());
        if (timed >= MIN_STEPS && elapsed >= MIN_TIME)
            || (timed >= FEW_STEPS && elapsed >= MAX_TIME)
        {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    fn on_eval(&mut self, _point: &EvalPoint) -> Result<()> {
        self.clock.other();
        Ok(())
    }

    fn on_epoch(&mut self, _metrics: &EpochMetrics) -> Result<()> {
        self.clock.other();
        Ok(())
    }
}

/// Measures the step time of `batch` with `optimizer`: the study's settings at the learning
/// rate `base.optim.lr` (a safe one: the grid's smallest factor), without evaluations or the
/// noise-scale measurement, after `WARM_STEPS` warm-up steps, for at least `MIN_STEPS`
/// steps and `MIN_TIME` (at most `MAX_TIME`).
///
/// # Errors
/// Configuration errors from the trainer; a run diverging before any step was timed.
pub fn measure(
    dataset: &Arc<Dataset>,
    base: &TrainConfig,
    batch: BatchSize,
    optimizer: OptimizerKind,
    threads: usize,
) -> Result<Throughput> {
    let mut cfg = base.clone();
    cfg.batch.batch_size = batch;
    cfg.optim.optimizer = optimizer;
    if optimizer != OptimizerKind::Sgd {
        cfg.optim.nesterov = false;
    }
    cfg.run.noise_scale = false;
    cfg.run.patience = None;
    let stop = Arc::new(AtomicBool::new(false));
    let probe = Trainer::new(dataset.clone(), cfg.clone(), threads)?;
    let rows = probe.batch_rows();
    let per_epoch = probe.split().train.len().div_ceil(rows).max(1);
    let clock = StepClock::new(rows, probe.split().train.len(), cfg.batch.drop_last);
    // Epochs for up to MAX_STEPS steps; the stop flag ends the run long before.
    cfg.run.epochs = MAX_STEPS.div_ceil(per_epoch);
    let trainer = Trainer::new(dataset.clone(), cfg, threads)?.with_stop_flag(stop.clone());
    let mut timer = Timer {
        clock,
        started: None,
        stop,
    };
    match trainer.run(None, &mut timer) {
        Ok(_) | Err(Error::Interrupted { .. }) | Err(Error::Diverged { .. }) => {}
        Err(e) => return Err(e),
    }
    let times: Vec<f64> = timer
        .clock
        .times
        .iter()
        .skip(WARM_STEPS - 1)
        .copied()
        .collect();
    let time = StepTime::of(&times).ok_or_else(|| {
        Error::config(
            "--lr",
            format!("batch {batch}: the timing run diverged before a step could be timed"),
        )
    })?;
    Ok(Throughput {
        batch: rows,
        label: batch.to_string(),
        optimizer,
        time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_times_are_summarised_by_median_and_deciles() {
        let times: Vec<f64> = (1..=11).map(|i| i as f64 / 1e3).collect();
        let t = StepTime::of(&times).unwrap();
        assert_eq!(
            (t.steps, t.median_ms, t.p10_ms, t.p90_ms),
            (11, 6.0, 2.0, 10.0)
        );
        assert!(t.spread_is_large(), "10 ms against 2 ms");
        let t = StepTime::of(&[0.002, 0.002, 0.003, 0.004, 0.005]).unwrap();
        assert!(!t.spread_is_large(), "5 ms against 2 ms");
        let even = StepTime::of(&[0.01; 5]).unwrap();
        assert!(!even.spread_is_large());
        assert!(StepTime::of(&[]).is_none());
    }

    #[test]
    fn an_epochs_short_last_batch_is_not_timed() {
        // 10 rows in batches of 4: steps 1, 2 full, step 3 of 2 rows.
        let mut clock = StepClock::new(4, 10, false);
        for _ in 0..2 {
            for step in 1..=3 {
                clock.step(step, 3);
            }
        }
        // The run's first step is dropped, then every step 3: steps 2, 1, 2 of the two epochs.
        assert_eq!(clock.times.len(), 3);
        let mut dropped = StepClock::new(4, 10, true);
        for step in [1, 2, 1, 2] {
            dropped.step(step, 2);
        }
        assert_eq!(dropped.times.len(), 3, "--drop-last: every step is full");
        let mut even = StepClock::new(5, 10, false);
        for step in [1, 2, 1, 2] {
            even.step(step, 2);
        }
        assert_eq!(
            even.times.len(),
            3,
            "no short batch: every step after the first"
        );
    }
}
