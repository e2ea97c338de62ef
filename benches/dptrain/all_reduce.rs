//! The in-process all-reduce: summing per-shard gradients in shard order, parallel over the
//! parameter vector. Throughput counts the bytes of shard gradients read.

use criterion::{Criterion, Throughput};
use dptrain::model::matmul::Accum;
use dptrain::parallel::reduce_in_order;

pub fn bench(c: &mut Criterion) {
    // The large MLP's 1.86 M parameters, 4 and 16 shards.
    let params = 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10;
    let mut g = c.benchmark_group("all_reduce");
    let threads_max = std::thread::available_parallelism().map_or(1, |n| n.get());
    for shards in [4, 16] {
        let bufs: Vec<Vec<f32>> = (0..shards)
            .map(|k| (0..params).map(|i| (i + k) as f32 * 1e-6).collect())
            .collect();
        let mut out = vec![0.0f32; params];
        g.throughput(Throughput::Bytes((shards * params * 4) as u64));
        for threads in [1, 2, 4, 8, 16].into_iter().filter(|&t| t <= threads_max) {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            g.bench_function(format!("{shards}_shards/threads_{threads}"), |b| {
                pool.install(|| b.iter(|| reduce_in_order(&mut out, &bufs, Accum::Replace)))
            });
        }
    }
    g.finish();
}
