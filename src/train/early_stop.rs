//! Early stopping on the validation loss.

/// What one epoch's validation loss means for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A new best: keep these weights.
    Improved,
    /// No improvement, patience not yet exhausted.
    Wait,
    /// `patience` epochs without improvement: stop and restore the best weights.
    Stop,
}

/// Tracks the best validation loss, like Keras' `EarlyStopping(restore_best_weights=True)`:
/// an epoch improves when its loss is below `best − min_delta`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EarlyStopping {
    patience: Option<usize>,
    min_delta: f64,
    /// `None` before the first epoch (JSON has no infinity, so no sentinel).
    best: Option<f64>,
    best_epoch: usize,
    bad_epochs: usize,
}

impl EarlyStopping {
    /// `patience: None` only tracks the best epoch and never stops.
    pub fn new(patience: Option<usize>, min_delta: f64) -> Self {
        EarlyStopping {
            patience,
            min_delta,
            best: None,
            best_epoch: 0,
            bad_epochs: 0,
        }
    }

    /// Records the validation loss of `epoch` (1-based).
    pub fn update(&mut self, epoch: usize, val_loss: f64) -> Verdict {
        if self.best.is_none_or(|b| val_loss < b - self.min_delta) {
            self.best = Some(val_loss);
            self.best_epoch = epoch;
            self.bad_epochs = 0;
            return Verdict::Improved;
        }
        self.bad_epochs += 1;
        match self.patience {
            Some(p) if self.bad_epochs >= p => Verdict::Stop,
            _ => Verdict::Wait,
        }
    }

    /// The best epoch so far (1-based; 0 before any).
    pub fn best_epoch(&self) -> usize {
        self.best_epoch
    }

    /// The best validation loss so far (infinite before any).
    pub fn best_loss(&self) -> f64 {
        self.best.unwrap_or(f64::INFINITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_after_patience_epochs_without_improvement() {
        let mut es = EarlyStopping::new(Some(2), 0.0);
        assert_eq!(es.update(1, 1.0), Verdict::Improved);
        assert_eq!(es.update(2, 0.5), Verdict::Improved);
        assert_eq!(es.update(3, 0.6), Verdict::Wait);
        assert_eq!(es.update(4, 0.4), Verdict::Improved);
        assert_eq!(es.update(5, 0.4), Verdict::Wait);
        assert_eq!(es.update(6, 0.45), Verdict::Stop);
        assert_eq!(es.best_epoch(), 4);
    }

    #[test]
    fn improvements_smaller_than_min_delta_do_not_count() {
        let mut es = EarlyStopping::new(Some(1), 0.1);
        es.update(1, 1.0);
        assert_eq!(es.update(2, 0.95), Verdict::Stop);
        assert_eq!(es.best_epoch(), 1);
    }
}
