//! How many worker threads a run uses, and what to tell the user when some of them cannot help.

/// The thread count to use: `--threads`, else `SLURM_CPUS_PER_TASK`, else every core.
pub fn default_threads(flag: Option<usize>) -> usize {
    flag.or_else(|| {
        std::env::var("SLURM_CPUS_PER_TASK")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(|&n: &usize| n > 0)
    })
    .unwrap_or_else(available_cores)
}

/// The one way dptrain builds a worker pool: `threads` workers named `dptrain-worker-N`.
///
/// # Errors
/// [`crate::Error::Config`] on `--threads` when the pool cannot start.
pub fn pool(threads: usize) -> crate::Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("dptrain-worker-{i}"))
        .build()
        .map_err(|e| crate::Error::config("--threads", format!("cannot start the pool: {e}")))
}

/// The cores this process may run on (its CPU affinity and cgroup quota included).
fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Below this much arithmetic per step (about a third of a millisecond on one core) per-step
/// overhead, not compute, sets the speed, and more shards would not make a step faster.
const MIN_PARALLEL_STEP_FLOPS: f64 = 5e7;

/// Warnings (one line each, without the `dptrain: warning:` prefix) for a run of `threads`
/// workers on batches of `batch_rows` rows cut into shards of `shard_size`, for a model of
/// `params` parameters, on a machine with `cores` cores (`None`: this one's): threads beyond
/// the cores only compete for them, and, when a step is big enough for parallelism to pay,
/// threads beyond the shards of a batch have nothing to do. Neither changes the numbers.
pub fn thread_warnings(
    threads: usize,
    batch_rows: usize,
    shard_size: usize,
    params: usize,
    cores: Option<usize>,
) -> Vec<String> {
    let cores = cores.unwrap_or_else(available_cores);
    let mut warnings = Vec::new();
    if threads > cores {
        warnings.push(format!(
            "{threads} worker threads are more than the {cores} cores available: the extra \
             threads compete for the same cores"
        ));
    }
    let shards = batch_rows.div_ceil(shard_size.max(1));
    let busy = threads.min(cores);
    // Forward and backward: about 6 floating-point operations per parameter per row.
    let step_flops = 6.0 * batch_rows as f64 * params as f64;
    // The shard size that spreads a batch most evenly: no thread gets more than `fit` rows.
    let fit = batch_rows.div_ceil(busy);
    if busy > shards && fit < shard_size && step_flops >= MIN_PARALLEL_STEP_FLOPS {
        let more = batch_rows.div_ceil(fit);
        warnings.push(format!(
            "a batch of {batch_rows} rows makes {shards} shard{} of at most {shard_size} rows, \
             so each step keeps only {shards} of {busy} threads busy; --shard-size {fit} would \
             make {more} shards (the shard size sets the summation order, so the numbers would \
             differ from this run's)",
            if shards == 1 { "" } else { "s" },
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MLP 784→1024→1024→10.
    const LARGE: usize = 1_863_690;

    #[test]
    fn a_batch_with_a_shard_per_thread_gets_no_warning() {
        assert!(thread_warnings(8, 1024, 128, LARGE, Some(8)).is_empty());
        assert!(thread_warnings(16, 1024, 64, LARGE, Some(16)).is_empty());
        assert!(thread_warnings(1, 1, 128, LARGE, Some(1)).is_empty());
    }

    #[test]
    fn a_step_too_small_to_share_gets_no_shard_advice() {
        // The seed example: MLP 20→50→1 (1,101 parameters), batch 32, on 2 cores.
        assert!(thread_warnings(2, 32, 128, 1_101, Some(2)).is_empty());
    }

    #[test]
    fn threads_without_a_shard_are_named_with_the_shard_size_that_fits() {
        let w = thread_warnings(16, 1024, 128, LARGE, Some(16));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("makes 8 shards"), "{}", w[0]);
        assert!(w[0].contains("only 8 of 16 threads busy"), "{}", w[0]);
        assert!(
            w[0].contains("--shard-size 64 would make 16 shards"),
            "{}",
            w[0]
        );
        let w = thread_warnings(4, 32, 128, LARGE, Some(4));
        assert!(w[0].contains("makes 1 shard of"), "{}", w[0]);
        assert!(
            w[0].contains("--shard-size 8 would make 4 shards"),
            "{}",
            w[0]
        );
        // 100 rows over 16 threads: shards of 7 (15 of them) keep the most rows any thread
        // gets to 7, the least possible.
        let w = thread_warnings(16, 100, 16, LARGE, Some(16));
        assert!(
            w[0].contains("--shard-size 7 would make 15 shards"),
            "{}",
            w[0]
        );
    }

    #[test]
    fn no_advice_when_no_shard_size_would_spread_the_batch_better() {
        // 9 rows, 6 threads: shards of 2 already give no thread more than 2 rows.
        assert!(thread_warnings(6, 9, 2, LARGE, Some(6)).is_empty());
    }

    #[test]
    fn more_threads_than_cores_is_told_and_only_the_cores_count_for_shards() {
        let w = thread_warnings(8, 256, 128, LARGE, Some(2));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("8 worker threads are more than the 2 cores"),
            "{}",
            w[0]
        );
        let w = thread_warnings(8, 256, 128, LARGE, Some(4));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[1].contains("only 2 of 4 threads busy"), "{}", w[1]);
    }
}
