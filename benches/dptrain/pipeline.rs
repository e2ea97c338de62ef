//! Batch assembly: gathering rows in random order from a memory-mapped `.npy` file (in the page
//! cache) into a pooled batch buffer. The file is far larger than the buffers.

use std::path::Path;

use criterion::{Criterion, Throughput};
use dptrain::data::{Dataset, SyntheticSpec, Task};
use dptrain::pipeline::{Chunk, Sampler, Shuffle};

fn dataset(dir: &Path, rows: usize, features: usize) -> Dataset {
    let sub = dir.join(format!("{rows}x{features}"));
    if !sub.join("y.npy").exists() {
        SyntheticSpec {
            task: Task::Regression,
            rows,
            features,
            outputs: 1,
            noise: 0.1,
            seed: 0,
        }
        .write(&sub)
        .unwrap();
    }
    Dataset::open(&sub).unwrap()
}

pub fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join("dptrain-bench-data");
    let mut g = c.benchmark_group("batch_assembly");
    // 80-byte rows (16 MB file) and 3136-byte rows (MNIST-like, 157 MB file).
    for (rows, features) in [(200_000, 20), (50_000, 784)] {
        let data = dataset(&dir, rows, features);
        let batch = 256;
        let sampler = Sampler::new((0..rows as u32).collect(), batch, Shuffle::Rows, false, 1);
        let mut order = Vec::new();
        sampler.epoch_order(0, &mut order);
        let mut buf = Chunk::with_capacity(&data, batch);
        let mut step = 0;
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_function(format!("random_rows/{}_bytes_per_row", features * 4), |b| {
            b.iter(|| {
                buf.gather(&data, sampler.batch(&order, step));
                step = (step + 1) % sampler.steps_per_epoch();
                buf.rows
            })
        });
    }
    g.finish();
}
