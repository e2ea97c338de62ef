//! What a run reports per epoch, and the observer that receives it.

use serde::{Deserialize, Serialize};

/// Seconds spent per phase during one epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// Waiting for the loader.
    pub data_wait_s: f64,
    /// Forward and backward passes.
    pub compute_s: f64,
    /// Reducing shard gradients (in-process and across processes); in one process without
    /// clipping, also the optimizer's update, which runs in the last reduction pass.
    pub all_reduce_s: f64,
    /// Optimizer steps run as a pass of their own (with clipping, or several processes).
    pub optimizer_s: f64,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Sample-weighted mean training loss over the epoch's steps (training mode).
    pub train_loss: f64,
    /// Training accuracy over the epoch's steps (classification).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub train_accuracy: Option<f64>,
    /// Validation loss in evaluation mode.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub val_loss: Option<f64>,
    /// Validation accuracy in evaluation mode (classification).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub val_accuracy: Option<f64>,
    /// Optimizer steps in this epoch.
    pub steps: usize,
    /// Global optimizer steps so far.
    pub global_step: u64,
    /// Training samples presented in this epoch.
    pub samples: usize,
    /// Wall time of the epoch's training steps (validation excluded).
    pub train_s: f64,
    /// Wall time of the validation pass.
    pub val_s: f64,
    /// Training samples per second.
    pub samples_per_s: f64,
    /// Where the step time went.
    pub time: PhaseTimes,
    /// The gradient noise scale at the end of the epoch (with `noise_scale`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub noise_scale: Option<NoiseMetrics>,
}

/// Moving averages of the gradient-noise estimates (see [`crate::parallel::NoiseScale`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseMetrics {
    /// `B_simple = EMA(tr Σ) / EMA(|G|²)`; absent while `EMA(|G|²)` is not positive.
    pub b_simple: Option<f64>,
    /// `EMA(|G|²)`.
    pub g2: f64,
    /// `EMA(tr Σ)`.
    pub trace: f64,
}

/// One validation measurement on the run's learning curve (see `TrainConfig::eval_every`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    /// Optimizer steps taken.
    pub step: u64,
    /// Training samples presented so far.
    pub samples: u64,
    /// Training time so far, evaluations excluded.
    pub train_s: f64,
    /// Validation loss (evaluation mode).
    pub val_loss: f64,
    /// Validation accuracy (classification).
    pub val_accuracy: Option<f64>,
    /// The gradient noise scale `B_simple` at this point (moving averages, with `noise_scale`
    /// and batches of two shards or more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b_simple: Option<f64>,
}

/// Static facts about a run, given to the observer when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Layer sizes, input first.
    pub sizes: Vec<usize>,
    /// Number of parameters.
    pub params: usize,
    /// Training rows.
    pub train_rows: usize,
    /// Validation rows.
    pub val_rows: usize,
    /// Rows per step.
    pub batch_rows: usize,
    /// Steps per epoch.
    pub steps_per_epoch: usize,
    /// Worker threads.
    pub threads: usize,
    /// `mse` or `cross-entropy`.
    pub loss: crate::loss::Loss,
}
