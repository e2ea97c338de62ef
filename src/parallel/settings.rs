//! The parallelism settings of a run: threads, shard size, prefetch depth.

use crate::error::Result;
use crate::setting::{check, settings};

use crate::error::Error;

settings! {
    /// How many worker threads a command uses (every command that computes takes `--threads`).
    pub struct ThreadSettings, flags ThreadFlags, heading "Parallelism" {
        /// Worker threads [default: SLURM_CPUS_PER_TASK, else all cores]. Changes speed, never results.
        #[arg(value_name = "N")]
        speed threads: usize;
    }
}

impl ThreadSettings {
    /// The worker threads: `--threads`, else `SLURM_CPUS_PER_TASK`, else the cores this process
    /// may run on.
    ///
    /// # Errors
    /// [`Error::Config`] on `--threads` for 0.
    pub fn count(&self) -> Result<usize> {
        match crate::parallel::default_threads(self.threads) {
            0 => Err(Error::config("--threads", "must be at least 1")),
            n => Ok(n),
        }
    }
}

impl ThreadFlags {
    /// The worker threads these flags ask for (see [`ThreadSettings::count`]).
    ///
    /// # Errors
    /// As [`ThreadSettings::count`].
    pub fn count(&self) -> Result<usize> {
        self.clone().resolve(ThreadSettings::default()).count()
    }
}

settings! {
    /// How the work is cut and fed; `shard_size` is part of the numerics.
    pub struct ParallelSettings, flags ParallelFlags, heading "Parallelism" {
        /// Rows per shard, the unit of parallel work (part of the numerics).
        #[arg(value_name = "N")]
        numbers shard_size: usize = 128;
        /// Chunks (a batch, or 16 shards of a larger one) assembled ahead of the trainer [default: 2, more for small batches: enough for 1024 rows].
        #[arg(value_name = "N")]
        speed prefetch: usize;
        /// Memory the run may use, e.g. 64G (K, M, G, T: powers of 1024); a run that needs more is refused before it allocates [default: the cgroup's memory limit where one is set, else physical memory].
        #[arg(value_name = "SIZE")]
        speed max_memory: crate::setting::ByteSize;
        /// Abort the whole job when no step, validation or checkpoint finishes for this many seconds: a process that hangs without dying (multi-process runs) [default: none].
        #[arg(value_name = "SECONDS")]
        speed step_timeout: f64;
    }
}

/// Rows the automatic prefetch depth keeps assembled ahead (see
/// [`ParallelSettings::prefetch_depth`]).
pub const AUTO_PREFETCH_ROWS: usize = 1024;

impl ParallelSettings {
    /// Checks each value on its own, naming the flag of the first bad one.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming the flag.
    pub fn validate(&self) -> Result<()> {
        check(self.shard_size > 0, "--shard-size", || {
            "must be at least 1".into()
        })?;
        check(self.prefetch != Some(0), "--prefetch", || {
            "must be at least 1".into()
        })?;
        check(
            self.step_timeout.is_none_or(|t| t.is_finite() && t > 0.0),
            "--step-timeout",
            || "must be a positive number of seconds".into(),
        )
    }

    /// Batches the loader keeps ready: `--prefetch`, else at least 2 and enough to hold
    /// [`AUTO_PREFETCH_ROWS`] rows.
    ///
    /// A parked loader thread takes about 40 µs to wake (measured on the reference machine),
    /// ten times a small model's step: two batches of 32 rows are not enough slack, and the
    /// seed's run then spends a third of its time waiting for data. A row-based depth keeps small
    /// batches well ahead and large ones at 2.
    pub fn prefetch_depth(&self, batch_rows: usize) -> usize {
        self.prefetch
            .unwrap_or_else(|| AUTO_PREFETCH_ROWS.div_ceil(batch_rows.max(1)).clamp(2, 256))
    }
}
