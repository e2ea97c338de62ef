//! The batch pipeline: sampler → chunk assembly on a producer thread → bounded prefetch queue.
//!
//! A batch flows as chunks: the whole batch when it is small, else runs of whole shards, so the
//! memory in flight is the prefetch depth times one chunk whatever the batch size.

mod chunk;
mod prefetch;
mod sampler;
mod settings;

pub use chunk::Chunk;
pub use prefetch::{Prefetcher, Span};
pub use sampler::{BLOCK_BYTES, Blocks, Sampler, WINDOW_BLOCKS};
pub use settings::{BatchFlags, BatchSettings, BatchSize, Shuffle};
