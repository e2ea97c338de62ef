//! `RUN/summary.json`: the outcome of a finished run.

use serde::{Deserialize, Serialize};

use crate::loss::Loss;
use crate::train::Outcome;

/// What `summary.json` holds.
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
    /// The last epoch's training loss.
    pub final_train_loss: Option<f64>,
    /// The last epoch's validation loss.
    pub final_val_loss: Option<f64>,
    /// The best validation loss of any epoch.
    pub best_val_loss: Option<f64>,
    /// Training samples per second of training time (evaluation excluded).
    pub samples_per_s: f64,
    /// Seconds from the start of training to its end, evaluations included.
    pub wall_s: f64,
}

impl Summary {
    /// The summary of `outcome`, which took `wall_s` seconds.
    pub fn of(o: &Outcome, wall_s: f64) -> Self {
        let last = o.history.last();
        let samples: usize = o.history.iter().map(|m| m.samples).sum();
        let train_s: f64 = o.history.iter().map(|m| m.train_s).sum();
        Summary {
            sizes: o.mlp.sizes().to_vec(),
            loss: o.loss,
            epochs_run: o.history.len(),
            stopped_early: o.stopped_early,
            best_epoch: (o.best_epoch > 0).then_some(o.best_epoch),
            restored_best: o.restored_best,
            final_train_loss: last.map(|m| m.train_loss),
            final_val_loss: last.and_then(|m| m.val_loss),
            best_val_loss: o.history.iter().filter_map(|m| m.val_loss).reduce(f64::min),
            samples_per_s: samples as f64 / train_s.max(1e-12),
            wall_s,
        }
    }
}
