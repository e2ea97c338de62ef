//! The batch-size study: train at each batch size (and learning-rate factor, and seed), record
//! learning curves and throughput, then read off steps, samples and wall time to a target loss.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::sweep::fit::{StepsFit, fit_steps};
use crate::sweep::{SweepConfig, Target};
use crate::train::{BatchSize, EpochMetrics, EvalPoint, Observer, TrainConfig, Trainer};

/// One training run of the study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Rows per step.
    pub batch: usize,
    /// The batch size as given (`64`, `full`).
    pub label: String,
    /// Learning rate used.
    pub lr: f32,
    /// Its grid factor.
    pub lr_factor: f32,
    /// Seed.
    pub seed: u64,
    /// Validation loss against steps, samples and training time.
    pub curve: Vec<EvalPoint>,
    /// Steady-state training samples per second (median over epochs after the first).
    pub samples_per_s: f64,
    /// Why the run stopped early, if it diverged.
    pub diverged: Option<String>,
    /// The gradient noise scale at the end of the run.
    pub b_simple: Option<f64>,
}

/// The study's result for one batch size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRow {
    /// Rows per step.
    pub batch: usize,
    /// The batch size as given.
    pub label: String,
    /// The learning rate fastest to the target (or best at the budget when none reached it).
    pub best_lr: Option<f32>,
    /// Steady-state samples per second.
    pub samples_per_s: f64,
    /// Steady-state time per step, milliseconds.
    pub step_ms: f64,
    /// Steps to the target `S(B)` (median over seeds), when reached.
    pub steps_to_target: Option<f64>,
    /// Samples to the target `E(B)`.
    pub samples_to_target: Option<f64>,
    /// Training time to the target, seconds (evaluations excluded).
    pub wall_to_target_s: Option<f64>,
    /// Best validation loss within the epoch budget.
    pub best_val_epoch_budget: Option<f64>,
    /// Best validation loss within the step budget.
    pub best_val_step_budget: Option<f64>,
    /// Runs that diverged, of all runs at this batch size.
    pub diverged_runs: usize,
    /// All runs at this batch size.
    pub runs: usize,
    /// Median `B_simple` measured at the end of this batch size's runs.
    pub b_simple: Option<f64>,
}

/// The whole study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// The target validation loss used.
    pub target: f64,
    /// Whether it was chosen automatically.
    pub target_auto: bool,
    /// The step budget used for `best_val_step_budget`.
    pub step_budget: Option<u64>,
    /// One row per batch size, ascending.
    pub rows: Vec<BatchRow>,
    /// `S(B) = S_min (1 + B_crit/B)` fitted to the batch sizes that reached the target.
    pub fit: Option<StepsFit>,
    /// The measured noise scale (median over runs with an estimate).
    pub b_simple: Option<f64>,
    /// The batch size with the shortest wall time to the target.
    pub fastest: Option<String>,
    /// Every run, with its curve.
    pub runs: Vec<RunRecord>,
}

/// Collects the curve and metrics of one run.
#[derive(Default)]
struct Recorder {
    curve: Vec<EvalPoint>,
    epochs: Vec<EpochMetrics>,
}

impl Observer for Recorder {
    fn on_eval(&mut self, point: &EvalPoint) -> Result<()> {
        // A non-finite loss is a run diverging (recorded as such); JSON has no NaN to keep it.
        if point.val_loss.is_finite() {
            self.curve.push(*point);
        }
        Ok(())
    }

    fn on_epoch(&mut self, m: &EpochMetrics) -> Result<()> {
        self.epochs.push(m.clone());
        Ok(())
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Trains every run of one batch size, calling `log` with a line per run.
///
/// A diverged run is recorded (not an error): it is part of what the study measures.
///
/// # Errors
/// Configuration errors from the trainer; an interruption.
pub fn run_batch_size(
    dataset: &Arc<Dataset>,
    base: &TrainConfig,
    sweep: &SweepConfig,
    batch: BatchSize,
    threads: usize,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<RunRecord>> {
    let mut out = Vec::new();
    for &factor in sweep.lr_grid.iter() {
        for s in 0..sweep.seeds as u64 {
            let mut cfg = base.clone();
            cfg.batch.batch_size = batch;
            cfg.run.seed = base.run.seed + s;
            cfg.run.noise_scale = true;
            cfg.run.patience = None;
            // The trainer scales `lr` for the batch size (`lr_scaling`); the grid factor
            // multiplies the base.
            cfg.optim.lr = base.optim.lr * factor;
            let trainer = Trainer::new(dataset.clone(), cfg.clone(), threads)?;
            let rows = trainer.batch_rows();
            let train_rows = trainer.split().train.len();
            let trainer = trainer.with_learning_curve(train_rows / sweep.evals_per_epoch.max(1));
            let lr = cfg.scaled_lr(rows);
            let mut rec = Recorder::default();
            let diverged = match trainer.run(None, &mut rec) {
                Ok(_) => None,
                Err(e @ Error::Diverged { .. }) => Some(e.to_string()),
                Err(e) => return Err(e),
            };
            let later: Vec<f64> = rec.epochs.iter().skip(1).map(|m| m.samples_per_s).collect();
            let samples_per_s = median(later)
                .or_else(|| rec.epochs.first().map(|m| m.samples_per_s))
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
            log(&format!(
                "batch {batch:>6}  lr {:<10.4e}  seed {}  best val_loss {best:.5}  {:.0} samples/s{}",
                lr,
                cfg.run.seed,
                samples_per_s,
                if diverged.is_some() { "  DIVERGED" } else { "" }
            ));
            out.push(RunRecord {
                batch: rows,
                label: batch.to_string(),
                lr,
                lr_factor: factor,
                seed: cfg.run.seed,
                curve: rec.curve,
                samples_per_s,
                diverged,
                b_simple,
            });
        }
    }
    Ok(out)
}

/// First crossing of `target` along the curve, linearly interpolated between evaluations:
/// `(steps, samples, train seconds)`.
fn crossing(curve: &[EvalPoint], target: f64) -> Option<(f64, f64, f64)> {
    let first = curve.first()?;
    if first.val_loss <= target {
        return Some((first.step as f64, first.samples as f64, first.train_s));
    }
    curve.windows(2).find_map(|w| {
        let (a, b) = (w[0], w[1]);
        if b.val_loss > target {
            return None;
        }
        let f = if a.val_loss > b.val_loss {
            (a.val_loss - target) / (a.val_loss - b.val_loss)
        } else {
            1.0
        };
        let lerp = |x: f64, y: f64| x + f * (y - x);
        Some((
            lerp(a.step as f64, b.step as f64),
            lerp(a.samples as f64, b.samples as f64),
            lerp(a.train_s, b.train_s),
        ))
    })
}

/// Turns the runs into the study's table: target, per-batch-size rows, fit, fastest.
pub fn analyze(runs: Vec<RunRecord>, target: Target, step_budget: Option<u64>) -> SweepReport {
    let mut sizes: Vec<(usize, String)> = runs.iter().map(|r| (r.batch, r.label.clone())).collect();
    sizes.sort();
    sizes.dedup();
    let best_of = |r: &RunRecord| {
        r.curve
            .iter()
            .map(|p| p.val_loss)
            .fold(f64::INFINITY, f64::min)
    };
    let (target_loss, auto) = match target {
        Target::Loss(v) => (v, false),
        Target::Auto => {
            let worst_best = sizes
                .iter()
                .filter_map(|(b, _)| {
                    runs.iter()
                        .filter(|r| r.batch == *b && r.diverged.is_none())
                        .map(best_of)
                        .filter(|v| v.is_finite())
                        .reduce(f64::min)
                })
                .fold(f64::NEG_INFINITY, f64::max);
            (worst_best * 1.02, true)
        }
    };
    let budget = step_budget.or_else(|| {
        // Default: the steps of the largest batch size that trained without diverging, over
        // its whole epoch budget: the budget every batch size had in common.
        let ok = |r: &&RunRecord| r.diverged.is_none();
        let largest = runs.iter().filter(ok).map(|r| r.batch).max()?;
        runs.iter()
            .filter(ok)
            .filter(|r| r.batch == largest)
            .filter_map(|r| r.curve.last().map(|p| p.step))
            .max()
    });
    let mut rows = Vec::new();
    for (b, label) in &sizes {
        let at_b: Vec<&RunRecord> = runs.iter().filter(|r| r.batch == *b).collect();
        let mut factors: Vec<f32> = at_b.iter().map(|r| r.lr_factor).collect();
        factors.sort_by(f32::total_cmp);
        factors.dedup();
        // Per learning rate: median steps (and samples, time) to target over seeds.
        let mut best: Option<(f64, f64, f64, f32)> = None;
        for f in &factors {
            let runs_f: Vec<&&RunRecord> = at_b
                .iter()
                .filter(|r| r.lr_factor == *f && r.diverged.is_none())
                .collect();
            let hits: Vec<(f64, f64, f64)> = runs_f
                .iter()
                .filter_map(|r| crossing(&r.curve, target_loss))
                .collect();
            // Counted only when most seeds reach the target.
            if hits.is_empty() || hits.len() * 2 < runs_f.len().max(1) {
                continue;
            }
            let s = median(hits.iter().map(|h| h.0).collect()).expect("non-empty");
            let e = median(hits.iter().map(|h| h.1).collect()).expect("non-empty");
            let w = median(hits.iter().map(|h| h.2).collect()).expect("non-empty");
            let lr = at_b
                .iter()
                .find(|r| r.lr_factor == *f)
                .map_or(0.0, |r| r.lr);
            if best.is_none_or(|(bs, ..)| s < bs) {
                best = Some((s, e, w, lr));
            }
        }
        let ok: Vec<&&RunRecord> = at_b.iter().filter(|r| r.diverged.is_none()).collect();
        let best_epoch = ok.iter().map(|r| best_of(r)).reduce(f64::min);
        let best_steps = budget.and_then(|n| {
            ok.iter()
                .flat_map(|r| r.curve.iter().filter(|p| p.step <= n).map(|p| p.val_loss))
                .reduce(f64::min)
        });
        let sps = median(ok.iter().map(|r| r.samples_per_s).collect()).unwrap_or(0.0);
        let best_lr = best.map(|b| b.3).or_else(|| {
            ok.iter()
                .min_by(|a, b| best_of(a).total_cmp(&best_of(b)))
                .map(|r| r.lr)
        });
        rows.push(BatchRow {
            batch: *b,
            label: label.clone(),
            best_lr,
            samples_per_s: sps,
            step_ms: if sps > 0.0 {
                1e3 * *b as f64 / sps
            } else {
                f64::NAN
            },
            steps_to_target: best.map(|b| b.0),
            samples_to_target: best.map(|b| b.1),
            wall_to_target_s: best.map(|b| b.2),
            best_val_epoch_budget: best_epoch.filter(|v| v.is_finite()),
            best_val_step_budget: best_steps,
            diverged_runs: at_b.len() - ok.len(),
            runs: at_b.len(),
            b_simple: median(at_b.iter().filter_map(|r| r.b_simple).collect()),
        });
    }
    let fit = fit_steps(
        &rows
            .iter()
            .filter_map(|r| Some((r.batch as f64, r.steps_to_target?)))
            .collect::<Vec<_>>(),
    );
    let fastest = rows
        .iter()
        .filter_map(|r| Some((r.wall_to_target_s?, r.label.clone())))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|x| x.1);
    let b_simple = median(
        rows.iter()
            .filter(|r| r.batch >= 2)
            .filter_map(|r| r.b_simple)
            .collect(),
    );
    SweepReport {
        target: target_loss,
        target_auto: auto,
        step_budget: budget,
        rows,
        fit,
        b_simple,
        fastest,
        runs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(step: u64, loss: f64) -> EvalPoint {
        EvalPoint {
            step,
            samples: step * 10,
            train_s: step as f64 * 0.5,
            val_loss: loss,
            val_accuracy: None,
        }
    }

    #[test]
    fn crossings_are_interpolated_between_evaluations() {
        let curve = [point(0, 2.0), point(10, 1.0), point(20, 0.5)];
        let (s, e, w) = crossing(&curve, 0.75).unwrap();
        assert_eq!((s, e, w), (15.0, 150.0, 7.5));
        assert!(
            crossing(&curve, 0.1).is_none(),
            "unreached targets are not reached"
        );
    }

    #[test]
    fn an_unreachable_target_is_reported_per_batch_size_not_an_error() {
        let run = |batch: usize, end: f64| RunRecord {
            batch,
            label: batch.to_string(),
            lr: 0.1,
            lr_factor: 1.0,
            seed: 0,
            curve: vec![point(0, 2.0), point(10, end)],
            samples_per_s: 1000.0,
            diverged: None,
            b_simple: None,
        };
        let r = analyze(vec![run(16, 0.4), run(64, 0.9)], Target::Loss(0.5), None);
        assert!(r.rows[0].steps_to_target.is_some());
        assert!(r.rows[1].steps_to_target.is_none());
        assert!(r.fit.is_none());
        let auto = analyze(vec![run(16, 0.4), run(64, 0.9)], Target::Auto, None);
        assert!((auto.target - 0.9 * 1.02).abs() < 1e-12);
        assert!(auto.rows.iter().all(|r| r.steps_to_target.is_some()));
    }
}
