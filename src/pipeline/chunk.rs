//! Chunk buffers, the unit that flows from the loader to the engine, and the gathering of rows
//! into them.

use crate::data::{Dataset, TargetKind};
use crate::loss::Targets;

/// Rows gathered into contiguous, reusable buffers: a whole batch, or a run of whole shards of
/// a larger one (so that a batch of any size flows through memory of a fixed size).
#[derive(Debug, Clone, Default)]
pub struct Chunk {
    /// Features, `rows × features` row-major.
    pub x: Vec<f32>,
    /// Regression targets, `rows × outputs` (empty for classification).
    pub values: Vec<f32>,
    /// Class labels, one per row (empty for regression).
    pub labels: Vec<u32>,
    /// Rows in this chunk.
    pub rows: usize,
    /// Row of the batch this chunk starts at (a multiple of the shard size).
    pub offset: usize,
    /// Rows of the whole batch (the last batch of an epoch may be short).
    pub batch_rows: usize,
    /// One past the last row of the batch this process computes (`batch_rows` in one
    /// process; see [`crate::pipeline::Sampler::part`]).
    pub end: usize,
    /// 0-based epoch the batch belongs to.
    pub epoch: usize,
    /// 0-based step within the epoch.
    pub step: usize,
}

impl Chunk {
    /// Buffers for up to `capacity` rows of `dataset`, allocated once.
    pub fn with_capacity(dataset: &Dataset, capacity: usize) -> Self {
        let (values, labels) = match dataset.kind() {
            TargetKind::Regression { outputs } => (capacity * outputs, 0),
            TargetKind::Classification { .. } => (0, capacity),
        };
        Chunk {
            x: Vec::with_capacity(capacity * dataset.features()),
            values: Vec::with_capacity(values),
            labels: Vec::with_capacity(labels),
            ..Chunk::default()
        }
    }

    /// Whether this chunk ends its batch (this process's part of it).
    pub fn ends_batch(&self) -> bool {
        self.offset + self.rows == self.end
    }

    /// Copies the rows `indices` of `dataset` into the buffers (no allocation when the
    /// capacity suffices), as a whole batch.
    pub fn gather(&mut self, dataset: &Dataset, indices: &[u32]) {
        self.x.clear();
        self.values.clear();
        self.labels.clear();
        self.rows = indices.len();
        self.offset = 0;
        self.batch_rows = indices.len();
        self.end = indices.len();
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
