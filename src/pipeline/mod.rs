//! The batch pipeline: sampler → batch assembly on a producer thread → bounded prefetch queue.

mod batch;
mod prefetch;
mod sampler;
mod settings;

pub use batch::Batch;
pub use prefetch::{Prefetcher, Span};
pub use sampler::Sampler;
pub use settings::{BatchFlags, BatchSettings, BatchSize};
