//! What a run holds in memory (anonymous memory: the dataset is mapped, and its pages belong to
//! the page cache), computed from its shapes before it starts.
//!
//! ```text
//! parameters    P × 4 B × (params, gradient, optimizer moments, best params)
//! shard grads   min(16, shards per batch) × P × 4 B          (one wave of shard gradients)
//! chunks        (prefetch depth + 1) × chunk rows × (features + outputs) × 4 B
//! workspaces    (threads + 1) × shard size × Σ layer widths × 4 B × (1, or 3 with dropout)
//! validation    min(4096, validation rows) × (features + outputs) × 4 B
//! row lists     training rows × 4 B × 2 (the split and the epoch's order)
//! ```
//!
//! None of these grows with the batch size: a batch larger than a chunk streams through the
//! chunks, and its shard gradients are folded in waves.

use crate::optim::OptimizerKind;
use crate::train::{CHUNK_SHARDS, Trainer};

/// Rows gathered at a time during validation (the same as the loop's).
const EVAL_ROWS: usize = 4096;

/// A run's expected peak of anonymous memory, by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Parameters, gradient, optimizer moments and best parameters.
    pub parameters: u64,
    /// Shard gradients of one wave.
    pub shard_gradients: u64,
    /// Chunk buffers in flight between the loader and the engine.
    pub chunks: u64,
    /// Per-thread forward/backward workspaces.
    pub workspaces: u64,
    /// The validation gather buffer.
    pub validation: u64,
    /// The training split's row list and the epoch's order.
    pub row_lists: u64,
}

impl MemoryPlan {
    /// The plan of `trainer`'s run.
    pub fn of(trainer: &Trainer) -> Self {
        let c = trainer.config();
        let mlp = trainer.mlp();
        let p = mlp.num_params() as u64 * 4;
        let moments: u64 = match c.optim.optimizer {
            OptimizerKind::Sgd if c.optim.momentum == 0.0 => 0,
            OptimizerKind::Sgd => 1,
            OptimizerKind::Adam | OptimizerKind::Adamw => 2,
        };
        let best = u64::from(!trainer.split().val.is_empty());
        let shard = c.parallel.shard_size;
        let shards = trainer.batch_rows().div_ceil(shard);
        let row_floats = (mlp.inputs() + mlp.outputs()) as u64 * 4;
        let chunk_rows = trainer.chunk_rows();
        let depth = c.parallel.prefetch_depth(chunk_rows) as u64;
        let widths: usize = mlp.sizes()[1..].iter().sum();
        let per_ws = (shard.min(trainer.batch_rows()) * widths) as u64
            * 4
            * if mlp.dropout() > 0.0 { 3 } else { 1 };
        MemoryPlan {
            parameters: p * (2 + moments + best),
            shard_gradients: if shards > 1 {
                shards.min(CHUNK_SHARDS) as u64 * p
            } else {
                0
            },
            chunks: (depth + 1) * chunk_rows as u64 * row_floats,
            workspaces: (trainer.threads() as u64 + 1) * per_ws,
            validation: EVAL_ROWS.min(trainer.split().val.len()) as u64 * row_floats,
            row_lists: trainer.split().train.len() as u64 * 4 * 2,
        }
    }

    /// The total.
    pub fn total(&self) -> u64 {
        self.parameters
            + self.shard_gradients
            + self.chunks
            + self.workspaces
            + self.validation
            + self.row_lists
    }
}

impl std::fmt::Display for MemoryPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |b: u64| b as f64 / (1 << 20) as f64;
        write!(
            f,
            "expected peak memory {:.1} MiB (parameters and optimizer {:.1}, shard gradients \
             {:.1}, chunks {:.1}, workspaces {:.1}, validation {:.1}, row lists {:.1}); the \
             dataset is mapped, not copied",
            mb(self.total()),
            mb(self.parameters),
            mb(self.shard_gradients),
            mb(self.chunks),
            mb(self.workspaces),
            mb(self.validation),
            mb(self.row_lists)
        )
    }
}
