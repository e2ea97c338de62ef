//! Batch buffers and the gathering of rows into them.

use crate::data::{Dataset, TargetKind};
use crate::loss::Targets;

/// One batch of rows gathered into contiguous, reusable buffers.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Features, `rows × features` row-major.
    pub x: Vec<f32>,
    /// Regression targets, `rows × outputs` (empty for classification).
    pub values: Vec<f32>,
    /// Class labels, one per row (empty for regression).
    pub labels: Vec<u32>,
    /// Rows in this batch (the last batch of an epoch may be short).
    pub rows: usize,
    /// 0-based epoch this batch belongs to.
    pub epoch: usize,
    /// 0-based step within the epoch.
    pub step: usize,
}

impl Batch {
    /// Buffers for up to `capacity` rows of `dataset`, allocated once.
    pub fn with_capacity(dataset: &Dataset, capacity: usize) -> Self {
        let (values, labels) = match dataset.kind() {
            TargetKind::Regression { outputs } => (capacity * outputs, 0),
            TargetKind::Classification { .. } => (0, capacity),
        };
        Batch {
            x: Vec::with_capacity(capacity * dataset.features()),
            values: Vec::with_capacity(values),
            labels: Vec::with_capacity(labels),
            ..Batch::default()
        }
    }

    /// Copies the rows `indices` of `dataset` into the buffers (no allocation when the
    /// capacity suffices).
    pub fn gather(&mut self, dataset: &Dataset, indices: &[u32]) {
        self.x.clear();
        self.values.clear();
        self.labels.clear();
        self.rows = indices.len();
        match dataset.kind() {
            TargetKind::Regression { outputs } => {
                let y = dataset.y_values().expect("regression targets");
                for &r in indices {
                    let r = r as usize;
                    self.x.extend_from_slice(dataset.x_row(r));
                    self.values
                        .extend_from_slice(&y[r * outputs..(r + 1) * outputs]);
                }
            }
            TargetKind::Classification { .. } => {
                for &r in indices {
                    let r = r as usize;
                    self.x.extend_from_slice(dataset.x_row(r));
                    self.labels.push(dataset.label(r).expect("class labels"));
                }
            }
        }
    }

    /// The targets, as the loss wants them.
    pub fn targets(&self) -> Targets<'_> {
        if self.labels.is_empty() && !self.values.is_empty() {
            Targets::Values(&self.values)
        } else {
            Targets::Labels(&self.labels)
        }
    }
}
