//! Data parallelism: fixed-size shards, per-shard gradients on a rayon pool, and a fixed-order
//! all-reduce (in-process by [`GradientEngine`], across processes by a [`Collective`]).

pub mod collective;
mod engine;
mod local;
#[cfg(feature = "mpi")]
pub mod mpi;
mod noise;
mod process;
mod settings;
mod threads;

pub use collective::{Collective, Share, SingleProcess, Tag};
pub use engine::{
    BatchRef, GradientEngine, NoiseEstimate, StepAccumulator, StepResult, StepTimes, WAVE,
    reduce_in_order,
};
pub use local::{LocalRank, LocalWorld};
pub use noise::{NoiseSample, NoiseScale};
pub use process::Process;
pub use settings::{
    AUTO_PREFETCH_ROWS, ParallelFlags, ParallelSettings, ThreadFlags, ThreadSettings,
};
pub use threads::{default_threads, pool, thread_warnings};
