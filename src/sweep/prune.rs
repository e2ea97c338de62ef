//! Pruning (`--prune`): stopping a run of the learning-rate grid once it is clearly behind the
//! best finished run of the same batch size, optimizer and seed, to bound a study's cost.
//!
//! Runs of one batch size take the same number of samples per step, so "behind at the same
//! sample count" is "behind at the same step". Two rules, by what is known while training:
//!
//! - **A given target** (`--target-loss X`): a run is stopped at an evaluation when a finished
//!   run reached `X` at no more samples than this run has seen without reaching it. Its steps to
//!   the target can then only be larger: pruning never changes the best learning rate.
//! - **`--target-loss auto`** (the target is known only once every batch size has trained): a
//!   run is stopped when, after at least [`MIN_EVALS`] evaluations, a finished run had reached
//!   this run's best loss so far with [`BEHIND`] times fewer samples or less. This is a
//!   heuristic: a run with a small learning rate that would later pass a faster run stalled on
//!   its noise floor can be stopped. The study records every stop (`pruned` in `sweep.json`);
//!   `--prune false` trains every run to the end.

use serde::{Deserialize, Serialize};

use crate::train::EvalPoint;

/// With an unknown target, a run is stopped when a finished run reached its best loss with at
/// most `1/BEHIND` of its samples.
pub const BEHIND: f64 = 3.0;

/// With an unknown target, evaluations (after the one at step 0) before a run may be stopped.
pub const MIN_EVALS: usize = 3;

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

/// Whether the run with learning curve `curve` (so far) should stop, given the finished runs
/// `references` (`(description, curve)`, e.g. `("lr 2.0e-2", …)`) of the same batch size,
/// optimizer and seed, and the target when it is known. Returns the reason.
pub fn check(
    curve: &[EvalPoint],
    references: &[(String, &[EvalPoint])],
    target: Option<f64>,
) -> Option<String> {
    let last = curve.last()?;
    let seen = last.samples as f64;
    if seen <= 0.0 {
        return None;
    }
    let best = curve
        .iter()
        .map(|p| p.val_loss)
        .fold(f64::INFINITY, f64::min);
    match target {
        Some(t) => {
            if best <= t {
                return None;
            }
            references.iter().find_map(|(name, c)| {
                let r = reached_at(c, t)?;
                (r <= seen).then(|| {
                    format!(
                        "the run at {name} reached the target {t:.5} after {r:.0} samples; this \
                         one had not after {seen:.0}"
                    )
                })
            })
        }
        None => {
            if curve.len() <= MIN_EVALS {
                return None;
            }
            references.iter().find_map(|(name, c)| {
                let r = reached_at(c, best)?;
                (r * BEHIND <= seen).then(|| {
                    format!(
                        "the run at {name} reached this run's best loss {best:.5} after {r:.0} \
                         samples, {BEHIND}× fewer than this run's {seen:.0} or less"
                    )
                })
            })
        }
    }
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
    fn with_a_target_a_run_stops_only_once_a_finished_run_has_reached_it_sooner() {
        let fast = curve(&[(0, 2.0), (100, 1.0), (200, 0.4), (300, 0.3)]);
        let refs = [("lr 1".to_string(), fast.as_slice())];
        // Reached 0.5 at 100 + (1.0-0.5)/(1.0-0.4)·100 ≈ 183 samples.
        let slow = curve(&[(0, 2.0), (100, 1.8)]);
        assert!(check(&slow, &refs, Some(0.5)).is_none(), "not yet at 183");
        let slow = curve(&[(0, 2.0), (100, 1.8), (200, 1.5)]);
        let why = check(&slow, &refs, Some(0.5)).unwrap();
        assert!(why.contains("lr 1") && why.contains("183"), "{why}");
        // A run that reached the target itself is never stopped.
        let done = curve(&[(0, 2.0), (100, 0.45), (200, 0.6)]);
        assert!(check(&done, &refs, Some(0.5)).is_none());
    }

    #[test]
    fn without_a_target_a_run_stops_when_three_times_slower_to_its_own_best_loss() {
        let fast = curve(&[(0, 2.0), (100, 1.0), (200, 0.5), (300, 0.4), (400, 0.35)]);
        let refs = [("lr 1".to_string(), fast.as_slice())];
        // Best 1.0 after 400 samples: the reference had it at 100 (4× fewer).
        let slow = curve(&[(0, 2.0), (100, 1.6), (200, 1.3), (300, 1.1), (400, 1.0)]);
        assert!(check(&slow, &refs, None).unwrap().contains("lr 1"));
        // Best 0.6 after 400 samples: the reference had it at 180 (2.2× fewer): kept.
        let close = curve(&[(0, 2.0), (100, 1.2), (200, 0.9), (300, 0.7), (400, 0.6)]);
        assert!(check(&close, &refs, None).is_none());
        // Too few evaluations to judge.
        let early = curve(&[(0, 2.0), (100, 1.9), (200, 1.9)]);
        assert!(check(&early, &refs, None).is_none());
    }

    #[test]
    fn the_first_sample_count_at_a_level_is_interpolated() {
        let c = curve(&[(0, 2.0), (10, 1.0), (20, 0.5)]);
        assert_eq!(reached_at(&c, 0.75), Some(15.0));
        assert_eq!(reached_at(&c, 3.0), Some(0.0));
        assert_eq!(reached_at(&c, 0.1), None);
    }
}
