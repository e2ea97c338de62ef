//! The study's analysis: per optimizer and batch size, the grid's best cell and its steps,
//! samples and wall time to the target (with `B_simple` there); per optimizer the fit of
//! `S(B) = S_min (1 + B_crit/B)` with its interval or the reason it failed; and notes on what
//! to distrust or run next.

use serde::{Deserialize, Serialize};

use crate::optim::OptimizerKind;
use crate::sweep::fit::{self, FitFailure, Measured, StepsFit, median};
use crate::sweep::timing::{StepTime, Throughput};
use crate::sweep::{RunRecord, StudyRuns, Target, optimizer_name};
use crate::train::EvalPoint;

/// A run whose own median step time is off the median of its batch size's runs by more than
/// this share is counted as noisy (the runs measure the noise scale, which the timing apart
/// leaves out, so they are compared with each other).
const STEP_TIME_TOLERANCE: f64 = 0.25;

/// The study's result for one optimizer and batch size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRow {
    /// The update rule.
    pub optimizer: OptimizerKind,
    /// Rows per step.
    pub batch: usize,
    /// The batch size as given.
    pub label: String,
    /// The learning rate fastest to the target (or best at the budget when none reached it).
    pub best_lr: Option<f32>,
    /// Its factor on the scaled rate.
    pub best_lr_factor: Option<f32>,
    /// The momentum of the best cell, with `--momentum-grid`.
    pub best_momentum: Option<f32>,
    /// The best factor is the smallest or largest of the grid: the optimum may lie outside.
    pub lr_on_grid_edge: bool,
    /// Samples per second at the step time measured apart.
    pub samples_per_s: f64,
    /// Time per step measured apart (warm, no evaluation), milliseconds.
    pub step_ms: f64,
    /// The step-time measurement: median and deciles.
    pub step_time: Option<StepTime>,
    /// Steps to the target `S(B)` (median over seeds), when reached.
    pub steps_to_target: Option<f64>,
    /// Samples to the target `E(B)`.
    pub samples_to_target: Option<f64>,
    /// Wall time to the target, seconds: `steps_to_target × step_ms`.
    pub wall_to_target_s: Option<f64>,
    /// Training time to the target as the run itself measured it (evaluations excluded).
    pub run_time_to_target_s: Option<f64>,
    /// Best validation loss within the epoch budget.
    pub best_val_epoch_budget: Option<f64>,
    /// Best validation loss within the step budget.
    pub best_val_step_budget: Option<f64>,
    /// Runs that diverged.
    pub diverged_runs: usize,
    /// Runs stopped by `--prune`.
    pub pruned_runs: usize,
    /// Runs whose step times were noisy (a large spread, or off the measured step time).
    pub noisy_runs: usize,
    /// All runs at this batch size and optimizer.
    pub runs: usize,
    /// Median `B_simple` at the end of the runs.
    pub b_simple: Option<f64>,
    /// Median `B_simple` of the best cell's runs where they reached the target.
    pub b_simple_at_target: Option<f64>,
}

/// The fit of one optimizer's steps to target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerFit {
    /// The update rule.
    pub optimizer: OptimizerKind,
    /// The model, when it could be fitted.
    pub fit: Option<StepsFit>,
    /// 90% bootstrap interval of `B_crit`.
    pub b_crit_interval: Option<[f64; 2]>,
    /// Share of bootstrap replicates that could not be fitted.
    pub bootstrap_failed: Option<f64>,
    /// Why it could not be fitted.
    pub failure: Option<FitFailure>,
    /// What to run next, when it failed.
    pub next: Option<String>,
    /// What the points say beside the fit.
    pub notes: Vec<String>,
    /// Median over batch sizes of `B_simple` at the target.
    pub b_simple_at_target: Option<f64>,
}

/// What the study trained, and what it would have trained without pruning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Runs trained.
    pub runs: usize,
    /// Runs stopped by `--prune`.
    pub pruned_runs: usize,
    /// Samples trained.
    pub samples: u64,
    /// Samples the runs' epoch budgets hold (pruned runs counted whole).
    pub samples_unpruned: u64,
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
    /// One row per optimizer and batch size, ascending.
    pub rows: Vec<BatchRow>,
    /// One fit per optimizer.
    pub fits: Vec<OptimizerFit>,
    /// Median over rows of `B_simple` at the target.
    pub b_simple_at_target: Option<f64>,
    /// Median over rows of `B_simple` at the end of the runs.
    pub b_simple: Option<f64>,
    /// The batch size (and optimizer) with the shortest wall time to the target.
    pub fastest: Option<String>,
    /// What to distrust, what was pruned, what to widen.
    pub notes: Vec<String>,
    /// Samples trained, with and without pruning.
    pub cost: Cost,
    /// Every run, with its curve.
    pub runs: Vec<RunRecord>,
    /// The step times measured apart.
    pub throughput: Vec<Throughput>,
}

impl SweepReport {
    /// Whether the study compares more than one optimizer.
    pub fn several_optimizers(&self) -> bool {
        self.fits.len() > 1
    }

    /// `64` or, comparing optimizers, `64 (adam)`.
    pub fn row_name(&self, row: &BatchRow) -> String {
        if self.several_optimizers() {
            format!("{} ({})", row.label, optimizer_name(row.optimizer))
        } else {
            row.label.clone()
        }
    }
}

/// A crossing of the target: where, and the evaluations around it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crossing {
    /// Steps, interpolated between evaluations.
    pub steps: f64,
    /// Samples.
    pub samples: f64,
    /// Training seconds, as the run measured them.
    pub train_s: f64,
    /// Steps of the evaluations bracketing it.
    pub steps_lo: f64,
    /// As `steps_lo`.
    pub steps_hi: f64,
    /// `B_simple` there, interpolated when both evaluations have it.
    pub b_simple: Option<f64>,
}

/// First crossing of `target` along the curve, linearly interpolated between evaluations.
pub fn crossing(curve: &[EvalPoint], target: f64) -> Option<Crossing> {
    let first = curve.first()?;
    if first.val_loss <= target {
        let s = first.step as f64;
        return Some(Crossing {
            steps: s,
            samples: first.samples as f64,
            train_s: first.train_s,
            steps_lo: s,
            steps_hi: s,
            b_simple: first.b_simple,
        });
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
        Some(Crossing {
            steps: lerp(a.step as f64, b.step as f64),
            samples: lerp(a.samples as f64, b.samples as f64),
            train_s: lerp(a.train_s, b.train_s),
            steps_lo: a.step as f64,
            steps_hi: b.step as f64,
            b_simple: match (a.b_simple, b.b_simple) {
                (Some(x), Some(y)) => Some(lerp(x, y)),
                (x, y) => y.or(x),
            },
        })
    })
}

fn best_of(r: &RunRecord) -> f64 {
    r.curve
        .iter()
        .map(|p| p.val_loss)
        .fold(f64::INFINITY, f64::min)
}

/// The target loss: the one given, or 2% above the worst of the best losses of every
/// optimizer and batch size.
fn target_loss(runs: &[RunRecord], groups: &[(OptimizerKind, usize, String)], t: Target) -> f64 {
    match t {
        Target::Loss(v) => v,
        Target::Auto => {
            let worst_best = groups
                .iter()
                .filter_map(|(o, b, _)| {
                    runs.iter()
                        .filter(|r| r.optimizer == *o && r.batch == *b && r.diverged.is_none())
                        .map(best_of)
                        .filter(|v| v.is_finite())
                        .reduce(f64::min)
                })
                .fold(f64::NEG_INFINITY, f64::max);
            worst_best * 1.02
        }
    }
}

/// The best cell of one optimizer and batch size: `(median crossing, its runs' crossings,
/// a run of the cell)`.
type Best<'r> = (Crossing, Vec<Crossing>, &'r RunRecord);

fn best_cell<'r>(at: &[&'r RunRecord], target: f64) -> Option<Best<'r>> {
    let mut cells: Vec<(Option<u32>, u32)> = at
        .iter()
        .map(|r| (r.momentum.map(f32::to_bits), r.lr_factor.to_bits()))
        .collect();
    cells.sort();
    cells.dedup();
    let mut best: Option<Best<'r>> = None;
    for cell in cells {
        let runs: Vec<&&RunRecord> = at
            .iter()
            .filter(|r| (r.momentum.map(f32::to_bits), r.lr_factor.to_bits()) == cell)
            .filter(|r| r.diverged.is_none())
            .collect();
        let hits: Vec<Crossing> = runs
            .iter()
            .filter_map(|r| crossing(&r.curve, target))
            .collect();
        // Counted only when most seeds reach the target.
        if hits.is_empty() || hits.len() * 2 < runs.len() {
            continue;
        }
        let med = |f: fn(&Crossing) -> f64| median(hits.iter().map(f).collect()).unwrap_or(0.0);
        let m = Crossing {
            steps: med(|c| c.steps),
            samples: med(|c| c.samples),
            train_s: med(|c| c.train_s),
            steps_lo: med(|c| c.steps_lo),
            steps_hi: med(|c| c.steps_hi),
            b_simple: median(hits.iter().filter_map(|c| c.b_simple).collect()),
        };
        if best.as_ref().is_none_or(|(b, ..)| m.steps < b.steps) {
            best = Some((m, hits, runs[0]));
        }
    }
    best
}

/// Turns the runs into the study's table: target, per-row results, fits, notes, cost.
pub fn analyze(study: StudyRuns, target: Target, step_budget: Option<u64>) -> SweepReport {
    let StudyRuns { runs, throughput } = study;
    let mut order: Vec<OptimizerKind> = Vec::new();
    for r in &runs {
        if !order.contains(&r.optimizer) {
            order.push(r.optimizer);
        }
    }
    let rank = |o: OptimizerKind| order.iter().position(|x| *x == o).unwrap_or(0);
    let mut groups: Vec<(OptimizerKind, usize, String)> = runs
        .iter()
        .map(|r| (r.optimizer, r.batch, r.label.clone()))
        .collect();
    groups.sort_by(|a, b| (rank(a.0), a.1, &a.2).cmp(&(rank(b.0), b.1, &b.2)));
    groups.dedup();
    let target_loss = target_loss(&runs, &groups, target);
    let budget = step_budget.or_else(|| {
        // Default: the steps of the largest batch size that trained without diverging or being
        // pruned, over its whole epoch budget: the budget every batch size had in common.
        let ok = |r: &&RunRecord| r.diverged.is_none() && r.pruned.is_none();
        let largest = runs.iter().filter(ok).map(|r| r.batch).max()?;
        runs.iter()
            .filter(ok)
            .filter(|r| r.batch == largest)
            .filter_map(|r| r.curve.last().map(|p| p.step))
            .max()
    });
    let mut rows = Vec::new();
    let mut coarse = Vec::new();
    let mut measured: Vec<(OptimizerKind, Measured)> = Vec::new();
    for (o, b, label) in &groups {
        let at: Vec<&RunRecord> = runs
            .iter()
            .filter(|r| r.optimizer == *o && r.batch == *b)
            .collect();
        let ok: Vec<&RunRecord> = at
            .iter()
            .copied()
            .filter(|r| r.diverged.is_none())
            .collect();
        let best = best_cell(&at, target_loss);
        // The best cell: fastest to the target, else the lowest loss reached.
        let chosen = best.as_ref().map(|b| b.2).or_else(|| {
            ok.iter()
                .copied()
                .min_by(|a, b| best_of(a).total_cmp(&best_of(b)))
        });
        let factors: Vec<f32> = at.iter().map(|r| r.lr_factor).collect();
        let lo = factors.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = factors.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lr_on_grid_edge =
            lo < hi && chosen.is_some_and(|c| c.lr_factor == lo || c.lr_factor == hi);
        let apart = throughput
            .iter()
            .find(|t| t.optimizer == *o && t.batch == *b)
            .map(|t| t.time);
        let step_ms = apart
            .map(|t| t.median_ms)
            .or_else(|| {
                median(
                    ok.iter()
                        .filter_map(|r| r.step_time.map(|t| t.median_ms))
                        .collect(),
                )
            })
            .unwrap_or(f64::NAN);
        let typical = median(
            ok.iter()
                .filter_map(|r| r.step_time.map(|t| t.median_ms))
                .collect(),
        );
        let noisy_runs = ok
            .iter()
            .filter(|r| {
                r.step_time.is_some_and(|t| {
                    t.spread_is_large()
                        || typical
                            .is_some_and(|m| (t.median_ms / m - 1.0).abs() > STEP_TIME_TOLERANCE)
                })
            })
            .count();
        let best_steps = budget.and_then(|n| {
            ok.iter()
                .flat_map(|r| r.curve.iter().filter(|p| p.step <= n).map(|p| p.val_loss))
                .reduce(f64::min)
        });
        if let Some((_, hits, _)) = &best {
            measured.push((
                *o,
                Measured {
                    batch: *b as f64,
                    crossings: hits
                        .iter()
                        .map(|c| (c.steps, c.steps_lo, c.steps_hi))
                        .collect(),
                },
            ));
        }
        let m = best.as_ref().map(|b| b.0);
        if let Some(c) = m.filter(|c| c.steps_lo == 0.0 && c.steps > 0.0) {
            coarse.push(format!(
                "batch {}: reached the target before its first evaluation (step {:.0}): its \
                 steps to target are interpolated from the start; raise --evals-per-epoch or \
                 lower --target-loss",
                if order.len() > 1 {
                    format!("{label} ({})", optimizer_name(*o))
                } else {
                    label.clone()
                },
                c.steps_hi
            ));
        }
        rows.push(BatchRow {
            optimizer: *o,
            batch: *b,
            label: label.clone(),
            best_lr: chosen.map(|c| c.lr),
            best_lr_factor: chosen.map(|c| c.lr_factor),
            best_momentum: chosen.and_then(|c| c.momentum),
            lr_on_grid_edge,
            samples_per_s: *b as f64 / (step_ms / 1e3),
            step_ms,
            step_time: apart,
            steps_to_target: m.map(|c| c.steps),
            samples_to_target: m.map(|c| c.samples),
            wall_to_target_s: m.map(|c| c.steps * step_ms / 1e3).filter(|w| w.is_finite()),
            run_time_to_target_s: m.map(|c| c.train_s),
            best_val_epoch_budget: ok
                .iter()
                .map(|r| best_of(r))
                .reduce(f64::min)
                .filter(|v| v.is_finite()),
            best_val_step_budget: best_steps,
            diverged_runs: at.len() - ok.len(),
            pruned_runs: at.iter().filter(|r| r.pruned.is_some()).count(),
            noisy_runs,
            runs: at.len(),
            b_simple: median(ok.iter().filter_map(|r| r.b_simple).collect()),
            b_simple_at_target: m.and_then(|c| c.b_simple),
        });
    }
    let fits: Vec<OptimizerFit> = order
        .iter()
        .map(|&o| {
            let mine: Vec<&BatchRow> = rows.iter().filter(|r| r.optimizer == o).collect();
            let points: Vec<(f64, f64)> = mine
                .iter()
                .filter_map(|r| Some((r.batch as f64, r.steps_to_target?)))
                .collect();
            let result = fit::fit_steps(&points, mine.len());
            let fit = result.as_ref().ok().copied();
            let boot = fit.and_then(|f| {
                let m: Vec<Measured> = measured
                    .iter()
                    .filter(|(k, _)| *k == o)
                    .map(|(_, m)| m.clone())
                    .collect();
                fit::bootstrap(&m, &f)
            });
            let failure = result.err();
            OptimizerFit {
                optimizer: o,
                fit,
                b_crit_interval: boot.map(|b| b.0),
                bootstrap_failed: boot.map(|b| b.1),
                next: failure.as_ref().map(FitFailure::next),
                failure,
                notes: fit::notes(&points, fit.as_ref()),
                b_simple_at_target: median(
                    mine.iter().filter_map(|r| r.b_simple_at_target).collect(),
                ),
            }
        })
        .collect();
    let several = fits.len() > 1;
    let name = |r: &BatchRow| {
        if several {
            format!("{} ({})", r.label, optimizer_name(r.optimizer))
        } else {
            r.label.clone()
        }
    };
    let fastest = rows
        .iter()
        .filter_map(|r| Some((r.wall_to_target_s?, name(r))))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|x| x.1);
    let cost = Cost {
        runs: runs.len(),
        pruned_runs: runs.iter().filter(|r| r.pruned.is_some()).count(),
        samples: runs
            .iter()
            .map(|r| r.steps_trained() * r.batch as u64)
            .sum(),
        samples_unpruned: runs
            .iter()
            .map(|r| {
                let steps = if r.pruned.is_some() {
                    r.budget_steps.max(r.steps_trained())
                } else {
                    r.steps_trained()
                };
                steps * r.batch as u64
            })
            .sum(),
    };
    let mut notes = coarse;
    for r in &rows {
        if r.lr_on_grid_edge {
            notes.push(format!(
                "batch {}: the best learning rate {:.3e} is on the edge of the grid (factor {}): \
                 widen --lr-grid",
                name(r),
                r.best_lr.unwrap_or(f32::NAN),
                r.best_lr_factor.unwrap_or(f32::NAN)
            ));
        }
        if r.runs > 0 && r.diverged_runs == r.runs {
            notes.push(format!(
                "batch {}: every run diverged, even at the grid's smallest rate: widen --lr-grid \
                 downwards (or scale the rate less with the batch: --lr-scaling sqrt)",
                name(r)
            ));
        }
        if r.noisy_runs > 0 {
            notes.push(format!(
                "batch {}: {} of {} runs had noisy step times (p90 above {}× p10, or a median \
                 more than {:.0}% off the other runs'): was the machine busy? Wall times use \
                 the {:.3} ms step time measured apart",
                name(r),
                r.noisy_runs,
                r.runs,
                crate::sweep::timing::SPREAD_FLAG,
                STEP_TIME_TOLERANCE * 100.0,
                r.step_ms
            ));
        }
        if let Some(t) = r.step_time.filter(StepTime::spread_is_large) {
            notes.push(format!(
                "batch {}: the step-time measurement itself was noisy (p10 {:.3} ms, p90 {:.3} \
                 ms): rerun on a quiet machine",
                name(r),
                t.p10_ms,
                t.p90_ms
            ));
        }
    }
    if cost.pruned_runs > 0 {
        notes.push(format!(
            "--prune stopped {} of {} runs: {:.0}% of the samples an unpruned study trains",
            cost.pruned_runs,
            cost.runs,
            100.0 * cost.samples as f64 / cost.samples_unpruned.max(1) as f64
        ));
    }
    if rows.iter().all(|r| r.b_simple.is_none()) && !rows.is_empty() {
        notes.push(
            "no B_simple: the noise scale is measured on batches of two shards or more (at \
             least 2 × --shard-size rows)"
                .into(),
        );
    } else {
        let missing: Vec<&str> = rows
            .iter()
            .filter(|r| r.steps_to_target.is_some() && r.b_simple_at_target.is_none())
            .map(|r| r.label.as_str())
            .collect();
        if !missing.is_empty() {
            notes.push(format!(
                "no B_simple at the target for batch {}: it is measured on batches of two \
                 shards or more (at least 2 × --shard-size rows), and read once its running \
                 average is positive",
                missing.join(", ")
            ));
        }
    }
    SweepReport {
        target: target_loss,
        target_auto: matches!(target, Target::Auto),
        step_budget: budget,
        b_simple_at_target: median(rows.iter().filter_map(|r| r.b_simple_at_target).collect()),
        b_simple: median(
            rows.iter()
                .filter(|r| r.batch >= 2)
                .filter_map(|r| r.b_simple)
                .collect(),
        ),
        rows,
        fits,
        fastest,
        notes,
        cost,
        runs,
        throughput,
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
            b_simple: Some(step as f64),
        }
    }

    fn run(batch: usize, factor: f32, end: f64) -> RunRecord {
        RunRecord {
            batch,
            label: batch.to_string(),
            optimizer: OptimizerKind::Sgd,
            momentum: None,
            lr: 0.1 * factor,
            lr_factor: factor,
            seed: 0,
            curve: vec![point(0, 2.0), point(10, end)],
            samples_per_s: 1000.0,
            step_time: None,
            diverged: None,
            pruned: None,
            budget_steps: 10,
            b_simple: None,
        }
    }

    #[test]
    fn crossings_are_interpolated_between_evaluations() {
        let curve = [point(0, 2.0), point(10, 1.0), point(20, 0.5)];
        let c = crossing(&curve, 0.75).unwrap();
        assert_eq!((c.steps, c.samples, c.train_s), (15.0, 150.0, 7.5));
        assert_eq!(
            (c.steps_lo, c.steps_hi, c.b_simple),
            (10.0, 20.0, Some(15.0))
        );
        assert!(
            crossing(&curve, 0.1).is_none(),
            "unreached targets are not reached"
        );
    }

    #[test]
    fn an_unreachable_target_is_reported_per_batch_size_not_an_error() {
        let study = StudyRuns {
            runs: vec![run(16, 1.0, 0.4), run(64, 1.0, 0.9)],
            throughput: vec![],
        };
        let r = analyze(study.clone(), Target::Loss(0.5), None);
        assert!(r.rows[0].steps_to_target.is_some());
        assert!(r.rows[1].steps_to_target.is_none());
        assert_eq!(
            r.fits[0].failure,
            Some(FitFailure::TooFewReached {
                reached: 1,
                tried: 2
            })
        );
        let auto = analyze(study, Target::Auto, None);
        assert!((auto.target - 0.9 * 1.02).abs() < 1e-12);
        assert!(auto.rows.iter().all(|r| r.steps_to_target.is_some()));
    }

    #[test]
    fn the_fastest_factor_is_kept_and_a_best_factor_on_the_edge_is_flagged() {
        // Factor 2 reaches 0.5 first; it is the largest of the grid.
        let runs = vec![run(16, 0.5, 0.8), run(16, 1.0, 0.45), run(16, 2.0, 0.2)];
        let r = analyze(
            StudyRuns {
                runs,
                throughput: vec![],
            },
            Target::Loss(0.5),
            None,
        );
        let row = &r.rows[0];
        assert_eq!(row.best_lr_factor, Some(2.0));
        assert!(row.lr_on_grid_edge);
        assert!(
            r.notes.iter().any(|n| n.contains("widen --lr-grid")),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn a_batch_size_where_every_run_diverged_asks_for_smaller_rates() {
        let mut bad = run(64, 0.5, 0.4);
        bad.diverged = Some("loss not finite".into());
        let r = analyze(
            StudyRuns {
                runs: vec![run(16, 1.0, 0.4), bad],
                throughput: vec![],
            },
            Target::Loss(0.5),
            None,
        );
        assert!(r.rows[1].best_lr.is_none());
        assert!(
            r.notes
                .iter()
                .any(|n| n.starts_with("batch 64: every run diverged") && n.contains("--lr-grid")),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn wall_time_to_target_is_steps_times_the_measured_step_time() {
        let runs = vec![run(16, 1.0, 0.4)];
        let throughput = vec![Throughput {
            batch: 16,
            label: "16".into(),
            optimizer: OptimizerKind::Sgd,
            time: StepTime {
                steps: 20,
                median_ms: 2.0,
                p10_ms: 1.9,
                p90_ms: 2.2,
            },
        }];
        let r = analyze(StudyRuns { runs, throughput }, Target::Loss(0.5), None);
        let row = &r.rows[0];
        let steps = row.steps_to_target.unwrap();
        assert_eq!(row.wall_to_target_s, Some(steps * 2.0 / 1e3));
        assert_eq!(row.samples_per_s, 16.0 / 2e-3);
    }
}
