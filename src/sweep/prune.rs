//! Pruning (`--prune`): stopping a run of the learning-rate grid once it is clearly behind the
//! best finished run of the same batch size, optimizer and seed, to bound a study's cost,
//! without changing the study's answer.
//!
//! Runs of one batch size take the same number of samples per step, so "behind at the same
//! sample count" is "behind at the same step". A run is stopped at an evaluation when a
//! finished run reached a *level* `L` with no more samples than this run has seen, while this
//! run has not reached `L`. The level is a loss the target is known not to be below:
//!
//! - with `--target-loss X`, `L = X`;
//! - with `--target-loss auto` (2% above the worst batch size's best loss), `L` is the worst of
//!   the best losses of the batch sizes already trained (the study trains the largest first,
//!   whose best loss is usually the worst); the first batch size trained is not pruned.
//!
//! Why this never changes the best learning rate: for a target `T ≥ L` below this run's best
//! loss so far, the finished run reached `T` before this run could; for a target above it, this
//! run's crossing is in the part of its curve that was kept. With `auto`, a stopped run's batch
//! size still reaches `L`, so the worst best loss, hence the target, is unchanged. (With several
//! seeds the argument holds seed by seed; the median over seeds may in principle differ.) What
//! does change is the best loss within the epoch budget of a batch size whose best run was
//! stopped. The study records every stop (`pruned` in `sweep.json`); `--prune false` trains
//! every run to the end.

use serde::{Deserialize, Serialize};

use crate::optim::OptimizerKind;
use crate::sweep::{RunRecord, Target};
use crate::train::EvalPoint;

/// Why and where a run was stopped early.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pruned {
    /// Optimizer steps taken when it was stopped.
    pub at_step: u64,
    /// Training samples seen when it was stopped.
    pub at_samples: u64,
    /// The rule that stopped it, with the run it was behind.
    pub reason: String,
}

/// The first sample count at which `curve` reaches `level` or below, interpolated linearly
/// between evaluations; `None` when it never does.
pub fn reached_at(curve: &[EvalPoint], level: f64) -> Option<f64> {
    let first = curve.first()?;
    if first.val_loss <= level {
        return Some(first.samples as f64);
    }
    curve.windows(2).find_map(|w| {
        let (a, b) = (w[0], w[1]);
        if b.val_loss > level {
            return None;
        }
        let f = if a.val_loss > b.val_loss {
            (a.val_loss - level) / (a.val_loss - b.val_loss)
        } else {
            1.0
        };
        Some(a.samples as f64 + f * (b.samples as f64 - a.samples as f64))
    })
}

/// The level runs are pruned against (see the [module docs](self)): the target when it is
/// given, else the worst best loss of the optimizers and batch sizes in `finished`; `None`
/// (no pruning) when neither is known.
pub fn level(target: Target, finished: &[RunRecord]) -> Option<f64> {
    match target {
        Target::Loss(v) => Some(v),
        Target::Auto => {
            let mut groups: Vec<(OptimizerKind, usize)> =
                finished.iter().map(|r| (r.optimizer, r.batch)).collect();
            groups.dedup();
            groups
                .iter()
                .filter_map(|&(o, b)| {
                    finished
                        .iter()
                        .filter(|r| r.optimizer == o && r.batch == b && r.diverged.is_none())
                        .flat_map(|r| r.curve.iter().map(|p| p.val_loss))
                        .reduce(f64::min)
                })
                .reduce(f64::max)
        }
    }
}

/// Whether the run with learning curve `curve` (so far) should stop, given the finished runs
/// `references` (`(description, curve)`, e.g. `("lr 2.0e-2", …)`) of the same batch size,
/// optimizer and seed, and the prune `level` ([`level`]). Returns the reason.
pub fn check(
    curve: &[EvalPoint],
    references: &[(String, &[EvalPoint])],
    level: f64,
) -> Option<String> {
    let last = curve.last()?;
    let seen = last.samples as f64;
    let best = curve
        .iter()
        .map(|p| p.val_loss)
        .fold(f64::INFINITY, f64::min);
    if seen <= 0.0 || best <= level {
        return None;
    }
    references.iter().find_map(|(name, c)| {
        let r = reached_at(c, level)?;
        (r <= seen).then(|| {
            format!(
                "the run at {name} reached {level:.5} after {r:.0} samples; this one had not \
                 after {seen:.0}"
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(points: &[(u64, f64)]) -> Vec<EvalPoint> {
        points
            .iter()
            .map(|&(samples, val_loss)| EvalPoint {
                step: samples / 10,
                samples,
                train_s: 0.0,
                val_loss,
                val_accuracy: None,
                b_simple: None,
            })
            .collect()
    }

    #[test]
    fn a_run_stops_only_once_a_finished_run_has_reached_the_level_sooner() {
        let fast = curve(&[(0, 2.0), (100, 1.0), (200, 0.4), (300, 0.3)]);
        let refs = [("lr 1".to_string(), fast.as_slice())];
        // Reached 0.5 at 100 + (1.0-0.5)/(1.0-0.4)·100 ≈ 183 samples.
        let slow = curve(&[(0, 2.0), (100, 1.8)]);
        assert!(check(&slow, &refs, 0.5).is_none(), "not yet at 183");
        let slow = curve(&[(0, 2.0), (100, 1.8), (200, 1.5)]);
        let why = check(&slow, &refs, 0.5).unwrap();
        assert!(why.contains("lr 1") && why.contains("183"), "{why}");
        // A run that reached the level itself is never stopped.
        let done = curve(&[(0, 2.0), (100, 0.45), (200, 0.6)]);
        assert!(check(&done, &refs, 0.5).is_none());
    }

    #[test]
    fn the_level_is_the_target_or_the_worst_best_loss_trained_so_far() {
        let run = |batch: usize, end: f64| RunRecord {
            batch,
            label: batch.to_string(),
            optimizer: OptimizerKind::Sgd,
            momentum: None,
            lr: 0.1,
            lr_factor: 1.0,
            seed: 0,
            curve: curve(&[(0, 2.0), (100, end)]),
            samples_per_s: 0.0,
            step_time: None,
            diverged: None,
            pruned: None,
            budget_steps: 10,
            b_simple: None,
        };
        assert_eq!(level(Target::Loss(0.3), &[]), Some(0.3));
        assert_eq!(
            level(Target::Auto, &[]),
            None,
            "nothing trained: no pruning"
        );
        let finished = [run(1024, 0.5), run(1024, 0.4), run(256, 0.2)];
        // Best of 1024 is 0.4, of 256 is 0.2: the worst is 0.4.
        assert_eq!(level(Target::Auto, &finished), Some(0.4));
    }

    #[test]
    fn the_first_sample_count_at_a_level_is_interpolated() {
        let c = curve(&[(0, 2.0), (10, 1.0), (20, 0.5)]);
        assert_eq!(reached_at(&c, 0.75), Some(15.0));
        assert_eq!(reached_at(&c, 3.0), Some(0.0));
        assert_eq!(reached_at(&c, 0.1), None);
    }
}
