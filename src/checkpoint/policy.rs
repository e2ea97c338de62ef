//! When to write a checkpoint and which to keep: decisions only, as burn's
//! `CheckpointingStrategy` returns actions; [`crate::checkpoint::CheckpointStore`] carries them
//! out.

use crate::checkpoint::CheckpointSettings;

/// A point of a run where a checkpoint may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// After an optimizer step inside an epoch (`global_step` steps done).
    Step {
        /// Optimizer steps taken so far.
        global_step: u64,
    },
    /// After an epoch's last step and its validation.
    EpochEnd,
    /// A stop was requested (signal): the state is saved before the run returns.
    Stop,
}

/// The checkpoint policy of a run with a run directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    every_steps: Option<u64>,
    keep: usize,
}

impl CheckpointPolicy {
    /// The policy `settings` describe: every epoch end and every stop, plus every
    /// `--checkpoint-every` steps; the newest `--keep` (at least 1) are kept.
    pub fn new(settings: &CheckpointSettings) -> Self {
        CheckpointPolicy {
            every_steps: settings.checkpoint_every.filter(|&n| n > 0),
            keep: settings.keep.max(1),
        }
    }

    /// Whether to write a checkpoint at `boundary`.
    pub fn writes_at(&self, boundary: Boundary) -> bool {
        match boundary {
            Boundary::Step { global_step } => self
                .every_steps
                .is_some_and(|n| global_step.is_multiple_of(n)),
            Boundary::EpochEnd | Boundary::Stop => true,
        }
    }

    /// Of the checkpoints at `steps` (any order), those to remove: all but the newest `keep`.
    pub fn to_remove(&self, steps: &[u64]) -> Vec<u64> {
        let mut newest_first = steps.to_vec();
        newest_first.sort_unstable_by(|a, b| b.cmp(a));
        newest_first.into_iter().skip(self.keep).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_ends_and_stops_always_write_steps_when_due() {
        let p = CheckpointPolicy::new(&CheckpointSettings {
            checkpoint_every: Some(5),
            keep: 2,
        });
        assert!(p.writes_at(Boundary::EpochEnd));
        assert!(p.writes_at(Boundary::Stop));
        assert!(p.writes_at(Boundary::Step { global_step: 10 }));
        assert!(!p.writes_at(Boundary::Step { global_step: 11 }));
        let none = CheckpointPolicy::new(&CheckpointSettings::default());
        assert!(!none.writes_at(Boundary::Step { global_step: 10 }));
    }

    #[test]
    fn keeps_the_newest() {
        let p = CheckpointPolicy::new(&CheckpointSettings {
            checkpoint_every: None,
            keep: 2,
        });
        assert_eq!(p.to_remove(&[3, 9, 1, 7]), vec![3, 1]);
        assert!(p.to_remove(&[4]).is_empty());
    }
}
