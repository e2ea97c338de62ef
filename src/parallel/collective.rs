//! The second level of the all-reduce: joining processes.
//!
//! Inside a process, shard gradients are reduced by [`crate::parallel::GradientEngine`]. Across
//! processes (MPI, later), each process's reduced gradient is summed in rank order by a
//! [`Collective`]. The training loop only sees this trait, so a multi-machine level plugs in
//! without touching it.

use crate::error::Result;

/// Sums buffers across the processes of a run.
///
/// # Determinism
/// Implementations must add the ranks' buffers in rank order, never in arrival order, so that
/// the result does not depend on timing (guarantee 1 of the design).
pub trait Collective: Send + Sync + std::fmt::Debug {
    /// Number of processes taking part.
    fn world_size(&self) -> usize;

    /// This process's rank in `0..world_size()`.
    fn rank(&self) -> usize;

    /// Replaces `buf` on every process with the element-wise sum over processes.
    ///
    /// # Errors
    /// Whatever the transport reports.
    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()>;
}

/// The one-process case: the sum over one process is the buffer itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn world_size(&self) -> usize {
        1
    }

    fn rank(&self) -> usize {
        0
    }

    fn all_reduce_sum(&self, _buf: &mut [f32]) -> Result<()> {
        Ok(())
    }
}
