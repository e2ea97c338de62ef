//! dptrain: a data-parallel neural-network trainer for CPUs.
//!
//! The modules follow the data flow of a run:
//!
//! ```text
//! data (mmap .npy) → pipeline (sampler, prefetch) → parallel (shards, all-reduce)
//!      → model (MLP passes) + loss → optim (SGD) → train (loop, metrics) → run directory
//! ```
//!
//! Everything the `dptrain` binary does is available here; the binary only parses flags.

pub mod checkpoint;
pub mod data;
pub mod error;
pub mod eval;
pub mod fsutil;
pub mod loss;
pub mod model;
pub mod optim;
pub mod parallel;
pub mod pipeline;
pub mod resources;
pub mod rng;
pub mod run;
pub mod setting;
pub mod sweep;
pub mod train;

pub use error::{Error, Result};
