//! Data parallelism: fixed-size shards, per-shard gradients on a rayon pool, and a fixed-order
//! all-reduce (in-process by [`GradientEngine`], across processes by a [`Collective`]).

mod collective;
mod engine;
mod noise;

pub use collective::{Collective, SingleProcess};
pub use engine::{BatchRef, GradientEngine, StepResult, StepTimes, WAVE, reduce_in_order};
pub use noise::{NoiseSample, NoiseScale};

/// The thread count to use: `--threads`, else `SLURM_CPUS_PER_TASK`, else every core.
pub fn default_threads(flag: Option<usize>) -> usize {
    flag.or_else(|| {
        std::env::var("SLURM_CPUS_PER_TASK")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(|&n: &usize| n > 0)
    })
    .unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}
