//! `RUN/summary.json`: the outcome of a finished run.

use serde::{Deserialize, Serialize};

use crate::loss::Loss;
use crate::train::Outcome;

/// What `summary.json` holds. Under early stopping the last epoch trained and the weights kept
/// differ: `last_epoch_*` describe the former, `final_weights_*` what `final.safetensors` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Layer widths, inputs first.
    pub sizes: Vec<usize>,
    /// The loss minimised.
    pub loss: Loss,
    /// Epochs trained.
    pub epochs_run: usize,
    /// Whether early stopping ended the run before its epoch budget.
    pub stopped_early: bool,
    /// 1-based best validation epoch (with a validation split).
    pub best_epoch: Option<usize>,
    /// Whether the final weights are the best epoch's, restored (with `--patience`).
    pub restored_best: bool,
    /// The 1-based epoch whose weights `final.safetensors` holds: the best epoch's when they
    /// were restored, else the last epoch's.
    pub final_weights_epoch: usize,
    /// The validation loss of the weights in `final.safetensors` (that epoch's).
    pub final_weights_val_loss: Option<f64>,
    /// The last epoch's training loss (training mode, the mean over its steps).
    pub last_epoch_train_loss: Option<f64>,
    /// The last epoch's validation loss.
    pub last_epoch_val_loss: Option<f64>,
    /// The best validation loss of any epoch.
    pub best_val_loss: Option<f64>,
    /// Training samples presented, over every epoch of the run.
    pub samples: usize,
    /// Seconds of training steps over every epoch of the run (data wait, passes, reduction,
    /// optimizer; validation excluded).
    pub train_s: f64,
    /// Seconds of validation passes over every epoch of the run.
    pub val_s: f64,
    /// `samples / train_s`: training samples per second of training-step time.
    pub samples_per_s: f64,
    /// Seconds from the start of training to its end in this process (start-up, validation
    /// and checkpoints included; a resumed run counts from its resume).
    pub wall_s: f64,
    /// The matrix kernels: instruction set and depth block (`model::matmul::kernel_isa`), part
    /// of the bits, since each gives its own rounding (a multi-process run's ranks agree on it
    /// before they start).
    #[serde(default)]
    pub kernels: String,
    /// Processes the run was shared by (1 without MPI).
    #[serde(default = "one")]
    pub processes: usize,
}

fn one() -> usize {
    1
}

impl Summary {
    /// The summary of `outcome`, which took `wall_s` seconds.
    pub fn of(o: &Outcome, wall_s: f64) -> Self {
        let last = o.history.last();
        let samples: usize = o.history.iter().map(|m| m.samples).sum();
        let train_s: f64 = o.history.iter().map(|m| m.train_s).sum();
        let val_s: f64 = o.history.iter().map(|m| m.val_s).sum();
        let final_epoch = if o.restored_best {
            o.best_epoch
        } else {
            o.history.len()
        };
        Summary {
            sizes: o.mlp.sizes().to_vec(),
            loss: o.loss,
            epochs_run: o.history.len(),
            stopped_early: o.stopped_early,
            best_epoch: (o.best_epoch > 0).then_some(o.best_epoch),
            restored_best: o.restored_best,
            final_weights_epoch: final_epoch,
            final_weights_val_loss: final_epoch
                .checked_sub(1)
                .and_then(|i| o.history.get(i))
                .and_then(|m| m.val_loss),
            last_epoch_train_loss: last.map(|m| m.train_loss),
            last_epoch_val_loss: last.and_then(|m| m.val_loss),
            best_val_loss: o.history.iter().filter_map(|m| m.val_loss).reduce(f64::min),
            samples,
            train_s,
            val_s,
            samples_per_s: samples as f64 / train_s.max(1e-12),
            wall_s,
            kernels: crate::model::matmul::kernel_isa().to_string(),
            processes: 1,
        }
    }
}
