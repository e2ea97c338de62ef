//! The training loop's own state: where a run stands, what identifies it, and what a checkpoint
//! of it holds.

use serde::{Deserialize, Serialize};

use crate::checkpoint::{CheckpointState, Tensors};
use crate::data::FileFingerprint;
use crate::parallel::NoiseScale;
use crate::train::{EarlyStopping, EpochMetrics, TrainConfig};

/// Where the run stands: the next step to take, and what the current epoch has summed so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// 0-based epoch of the next step.
    pub epoch: usize,
    /// 0-based step within `epoch` to take next.
    pub step: usize,
    /// Optimizer steps taken so far.
    pub global_step: u64,
    /// Sample-weighted training loss summed over the current epoch's steps so far.
    pub epoch_loss_sum: f64,
    /// Correct predictions in the current epoch so far (classification).
    pub epoch_correct: usize,
    /// Samples seen in the current epoch so far.
    pub epoch_samples: usize,
    /// Early-stopping state.
    pub stopper: EarlyStopping,
    /// Metrics of every finished epoch.
    pub history: Vec<EpochMetrics>,
    /// Whether early stopping has ended the run.
    pub stopped: bool,
    /// Gradient-noise averages (with `noise_scale`).
    #[serde(default)]
    pub noise: Option<NoiseScale>,
}

impl Progress {
    /// The state before the first step.
    pub fn start(config: &TrainConfig) -> Self {
        Progress {
            epoch: 0,
            step: 0,
            global_step: 0,
            epoch_loss_sum: 0.0,
            epoch_correct: 0,
            epoch_samples: 0,
            stopper: EarlyStopping::new(config.run.patience, config.run.min_delta),
            history: Vec::new(),
            stopped: false,
            noise: None,
        }
    }
}

/// Identifies the data and the settings a run was started with, to refuse resuming onto others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// The run's configuration (every result-changing setting among the rest).
    pub config: TrainConfig,
    /// Fingerprints of the data files (empty for generated data).
    pub data: Vec<FileFingerprint>,
    /// Number of parameters (a cheap consistency check).
    pub params: usize,
}

/// What a training checkpoint's state holds (the vectors are its tensors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// What the run was started with.
    pub identity: RunIdentity,
    /// Where it stood.
    pub progress: Progress,
}

impl CheckpointState for TrainState {
    fn params(&self) -> usize {
        self.identity.params
    }
}

/// The state to save at a boundary, borrowed from the loop: nothing is copied to checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// Position, accumulators, history, early stopping.
    pub progress: &'a Progress,
    /// Parameters, optimizer moments, best parameters.
    pub tensors: Tensors<'a>,
}

impl Snapshot<'_> {
    /// The checkpoint bytes of this snapshot for the run `identity`.
    pub fn to_bytes(&self, identity: &RunIdentity) -> Vec<u8> {
        #[derive(Serialize)]
        struct Borrowed<'a> {
            identity: &'a RunIdentity,
            progress: &'a Progress,
        }
        crate::checkpoint::to_bytes(
            &Borrowed {
                identity,
                progress: self.progress,
            },
            &self.tensors,
        )
    }
}
