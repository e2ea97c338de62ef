//! How much memory a run needs and how much it may have: a run that would not fit is refused
//! before it allocates, because a failed allocation aborts the process where no error can be
//! reported.
//!
//! The need is counted from what a run really holds (see [`MemoryNeed::of`]); the limit is
//! `--max-memory` when given, else the memory cgroup's limit where one is set (v1
//! `memory.limit_in_bytes` or v2 `memory.max` of this process's cgroup and its ancestors), else
//! the physical memory (`MemTotal` of `/proc/meminfo`).

use crate::data::TargetKind;
use crate::error::{Error, Result};
use crate::optim::OptimizerKind;
pub use crate::resources::MemoryLimit;
use crate::setting::ByteSize;
use crate::train::Trainer;

/// Rows a validation pass gathers at a time (the trainer's `EVAL_CHUNK`).
const EVAL_ROWS: usize = 4096;

/// Shard gradients held at once (the engine's `WAVE`).
const WAVE: usize = crate::parallel::WAVE;

/// What the process needs besides the run's buffers: code, the thread pool, the matrix
/// kernels' packing buffers (per thread), the allocator's slack.
/// Measured (`scripts/memory_check.py --data D --hidden 8 --batch-size 256`, D 200,000 × 784): a
/// run of a 784→8→10 model peaks at 7.5 MB of
/// anonymous memory in all, buffers included; these allow for that with room to spare.
const BASE_BYTES: u64 = 12 << 20;
const PER_THREAD_BYTES: u64 = 2 << 20;

/// One buffer (or group of buffers) a run holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// What it is, e.g. `gradient` or `batch buffers (3 × 512 rows)`.
    pub what: String,
    /// Its size.
    pub bytes: u64,
    /// The flag that changes it most directly.
    pub flag: &'static str,
}

/// The memory a training run needs, part by part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryNeed {
    /// Layer widths, inputs first.
    pub sizes: Vec<usize>,
    /// Parameters of the model.
    pub params: u64,
    /// The buffers, largest first.
    pub parts: Vec<Part>,
}

/// Bytes of `count` f32 values.
fn floats(count: u64) -> u64 {
    count.saturating_mul(4)
}

impl MemoryNeed {
    /// What `trainer` holds while it trains with batches of `batch_rows` rows:
    ///
    /// - the parameters, the gradient and the optimizer's state (SGD's momentum buffer when
    ///   `--momentum` > 0, Adam's two moments);
    /// - the best epoch's weights, with a validation split;
    /// - the shard gradients reduced in waves (up to 16 at once, for batches of two shards or
    ///   more) and the per-thread workspaces of activations and deltas, one per shard in flight;
    /// - the loader's chunk buffers (prefetch depth + 1, each of one chunk: the batch, or 16 whole
    ///   shards of a larger one) and the validation pass's buffer;
    /// - with `writes_files`, the bytes of a checkpoint (or of the final weights) while it is
    ///   serialised; with `reads_weights`, an `--init` file or checkpoint read whole.
    ///
    /// The dataset itself is memory-mapped: the kernel pages it in and out, so it is not counted.
    pub fn of(
        trainer: &Trainer,
        batch_rows: usize,
        writes_files: bool,
        reads_weights: bool,
    ) -> Self {
        let cfg = trainer.config();
        let mlp = trainer.mlp();
        let p = mlp.num_params() as u64;
        let mut parts = Vec::new();
        let mut part = |what: String, bytes: u64, flag: &'static str| {
            if bytes > 0 {
                parts.push(Part { what, bytes, flag });
            }
        };
        part("parameters".into(), floats(p), "--hidden");
        part("gradient".into(), floats(p), "--hidden");
        let moments: u64 = match cfg.optim.optimizer {
            OptimizerKind::Sgd if cfg.optim.momentum > 0.0 => 1,
            OptimizerKind::Sgd => 0,
            OptimizerKind::Adam | OptimizerKind::Adamw => 2,
        };
        let state = match moments {
            1 => "momentum buffer",
            _ => "Adam's two moments",
        };
        part(state.into(), floats(p.saturating_mul(moments)), "--hidden");
        let val_rows = trainer.split().val.len();
        let best = u64::from(val_rows > 0);
        part("best-epoch weights".into(), floats(p * best), "--hidden");
        let shard = cfg.parallel.shard_size.max(1);
        let shards = batch_rows.div_ceil(shard);
        let waves = if shards > 1 { shards.min(WAVE) } else { 0 };
        part(
            format!("shard gradients ({waves} at once)"),
            floats(p.saturating_mul(waves as u64)),
            "--hidden",
        );
        let threads = trainer.threads().max(1);
        let eval_shards = EVAL_ROWS.min(val_rows).div_ceil(shard);
        let workspaces = threads.min(shards.max(eval_shards)).max(1);
        let layers = mlp.layers();
        let outputs: usize = layers.iter().map(|l| l.outputs).sum();
        let hidden: usize = layers[..layers.len() - 1].iter().map(|l| l.outputs).sum();
        let dropout = if mlp.dropout() > 0.0 { 2 * hidden } else { 0 };
        let per_row = (outputs + dropout + 2 * mlp.max_width()) as u64;
        // Layers wider than a shard has rows make the widths, not the rows, the thing to change.
        let flag = if mlp.max_width() > shard {
            "--hidden"
        } else {
            "--shard-size"
        };
        part(
            format!(
                "activations ({workspaces} shard workspace{} of {shard} rows)",
                if workspaces == 1 { "" } else { "s" }
            ),
            floats(per_row.saturating_mul((shard * workspaces) as u64)),
            flag,
        );
        let dataset = trainer.dataset();
        let targets = match dataset.kind() {
            TargetKind::Regression { outputs } => outputs,
            TargetKind::Classification { .. } => 1,
        };
        let row_bytes = floats((dataset.features() + targets) as u64);
        let chunk_rows = batch_rows.min(crate::train::CHUNK_SHARDS * shard);
        let depth = cfg.parallel.prefetch_depth(chunk_rows) + 1;
        part(
            format!("chunk buffers ({depth} × {chunk_rows} rows)"),
            row_bytes.saturating_mul((depth * chunk_rows) as u64),
            if chunk_rows < batch_rows {
                "--shard-size"
            } else {
                "--batch-size"
            },
        );
        part(
            "validation buffer".into(),
            row_bytes.saturating_mul(EVAL_ROWS.min(val_rows) as u64),
            "--val-fraction",
        );
        if writes_files || reads_weights {
            let copies = if writes_files { 1 + moments + best } else { 1 };
            part(
                "a checkpoint or weights file being written or read".into(),
                floats(p.saturating_mul(copies)),
                "--hidden",
            );
        }
        part(
            format!("process, thread pool and kernel buffers ({threads} threads)"),
            BASE_BYTES + PER_THREAD_BYTES * threads as u64,
            "--max-memory",
        );
        parts.sort_by_key(|p| std::cmp::Reverse(p.bytes));
        MemoryNeed {
            sizes: mlp.sizes().to_vec(),
            params: p,
            parts,
        }
    }

    /// One line: the total and the parts of at least 1% of it.
    pub fn describe(&self) -> String {
        format!(
            "expected peak memory about {} ({}); the dataset is mapped, not copied",
            ByteSize(self.total()),
            self.parts_that_matter()
        )
    }

    /// The parts of at least 1% of the whole, with their sizes.
    fn parts_that_matter(&self) -> String {
        let total = self.total();
        let shown: Vec<String> = self
            .parts
            .iter()
            .filter(|p| p.bytes.saturating_mul(100) >= total)
            .map(|p| format!("{} {}", p.what, ByteSize(p.bytes)))
            .collect();
        shown.join(", ")
    }

    /// The whole need.
    pub fn total(&self) -> u64 {
        self.parts
            .iter()
            .fold(0u64, |a, p| a.saturating_add(p.bytes))
    }

    /// Refuses a run that needs more than `limit` (see [`MemoryLimit::find`]), naming the flag
    /// behind the largest part, the parameter count and both sizes.
    ///
    /// # Errors
    /// [`Error::Config`] as described.
    pub fn check(&self, limit: &MemoryLimit) -> Result<()> {
        let total = self.total();
        if total <= limit.bytes {
            return Ok(());
        }
        let flag = self.parts.first().map_or("--hidden", |p| p.flag);
        let advice = match flag {
            "--hidden" => "use narrower or fewer --hidden layers",
            "--batch-size" => "use a smaller --batch-size (or --prefetch)",
            "--shard-size" => "use a smaller --shard-size or fewer --threads",
            "--val-fraction" => "use a smaller --val-fraction",
            _ => "the limit is below what any run needs",
        };
        let sizes: Vec<String> = self.sizes.iter().map(usize::to_string).collect();
        Err(Error::config(
            flag,
            format!(
                "the model {} has {} parameters and training it needs about {} ({}), but {} is \
                 available ({}); {advice}, or set --max-memory if the run may use more",
                sizes.join("→"),
                self.params,
                ByteSize(total),
                self.parts_that_matter(),
                ByteSize(limit.bytes),
                limit.source
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::data::SyntheticSpec;
    use crate::train::TrainConfig;

    fn trainer(change: impl FnOnce(&mut TrainConfig)) -> Trainer {
        let data = Arc::new(SyntheticSpec::seed_example(0).dataset());
        let mut c = TrainConfig::default();
        change(&mut c);
        Trainer::new(data, c, 2).unwrap()
    }

    #[test]
    fn the_need_counts_parameters_gradient_state_and_buffers() {
        // 20 → 50 → 1: 1101 parameters; SGD with momentum; no validation split; batch 32 in
        // one shard of 128 rows.
        let t = trainer(|_| {});
        let need = MemoryNeed::of(&t, t.batch_rows(), false, false);
        let p = 1101 * 4;
        let part = |name: &str| {
            need.parts
                .iter()
                .find(|x| x.what.starts_with(name))
                .map(|x| x.bytes)
        };
        assert_eq!(need.params, 1101);
        assert_eq!(part("parameters"), Some(p));
        assert_eq!(part("gradient"), Some(p));
        assert_eq!(part("momentum"), Some(p));
        assert_eq!(part("best-epoch"), None);
        assert_eq!(part("shard gradients"), None, "one shard: no shard buffers");
        // One workspace of 128 rows: outputs (50 + 1) and two deltas of the widest layer (50).
        assert_eq!(part("activations"), Some(128 * (51 + 100) * 4));
        // A batch of 32 rows is one chunk. Prefetch depth: enough for 1024 rows = 32 chunks,
        // plus one; 21 floats a row.
        assert_eq!(part("chunk buffers"), Some(33 * 32 * 21 * 4));
        let adam = trainer(|c| {
            c.optim.optimizer = OptimizerKind::Adam;
            c.data.val_fraction = 0.2;
            c.batch.batch_size = crate::pipeline::BatchSize::Rows(512);
            c.parallel.shard_size = 64;
        });
        let need = MemoryNeed::of(&adam, adam.batch_rows(), true, false);
        let part = |name: &str| {
            need.parts
                .iter()
                .find(|x| x.what.starts_with(name))
                .map(|x| x.bytes)
        };
        assert_eq!(part("Adam"), Some(2 * p));
        assert_eq!(part("best-epoch"), Some(p));
        assert_eq!(
            part("shard gradients"),
            Some(8 * p),
            "512 rows: 8 shards of 64"
        );
        assert_eq!(
            part("a checkpoint"),
            Some(4 * p),
            "params, two moments, best"
        );
        // The chunks do not grow with the batch: a full batch of 800 rows in shards of 8 flows
        // as chunks of 16 shards (128 rows), 8 of them ahead (1024 rows), plus one.
        let full = trainer(|c| {
            c.batch.batch_size = crate::pipeline::BatchSize::Full;
            c.parallel.shard_size = 8;
            c.data.val_fraction = 0.2;
        });
        let need = MemoryNeed::of(&full, full.batch_rows(), false, false);
        let chunks = need
            .parts
            .iter()
            .find(|x| x.what.starts_with("chunk buffers"))
            .map(|x| x.bytes);
        assert_eq!(chunks, Some(9 * 128 * 21 * 4));
    }

    #[test]
    fn a_model_too_large_is_refused_naming_hidden_the_parameters_and_both_sizes() {
        let t = trainer(|c| c.model.hidden = vec![1_000_000].into());
        let need = MemoryNeed::of(&t, t.batch_rows(), false, false);
        let limit = MemoryLimit {
            bytes: 1 << 30,
            source: "physical memory".into(),
        };
        let e = need.check(&limit).unwrap_err().to_string();
        assert!(e.starts_with("--hidden: the model 20→1000000→1"), "{e}");
        assert!(e.contains("22000001 parameters"), "{e}");
        assert!(e.contains("1.0 GiB is available (physical memory)"), "{e}");
        assert!(e.contains("--max-memory"), "{e}");
        assert!(
            need.check(&MemoryLimit {
                bytes: 1 << 40,
                ..limit
            })
            .is_ok()
        );
    }

    #[test]
    fn a_run_that_fits_in_100_mib_is_not_refused() {
        // scripts/memory_starved.py trains 2048→512→10 at batch 256 in a 100 MiB cgroup, and
        // peaks at 34.8 MB of anonymous memory (`scripts/memory_check.py --data D --hidden 512
        // --batch-size 256 --epochs 1 --val-fraction 0.01`): the estimate must let it run.
        let data = Arc::new(
            SyntheticSpec {
                task: crate::data::Task::Classification,
                rows: 600,
                features: 2048,
                outputs: 10,
                noise: 0.1,
                seed: 1,
            }
            .dataset(),
        );
        let mut c = TrainConfig::default();
        c.model.hidden = vec![512].into();
        c.batch.batch_size = crate::pipeline::BatchSize::Rows(256);
        c.data.val_fraction = 0.01;
        let t = Trainer::new(data, c, 2).unwrap();
        let need = MemoryNeed::of(&t, t.batch_rows(), true, false);
        let limit = MemoryLimit {
            bytes: 100 << 20,
            source: "a test".into(),
        };
        assert!(need.check(&limit).is_ok(), "{}", need.describe());
    }
}
