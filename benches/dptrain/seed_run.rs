//! The seed article's whole run: MLP 20→50→1, MSE, SGD lr 0.01 momentum 0.9, batch 32
//! shuffled, 20 epochs over 1000 generated rows (what `dptrain train` does with no flags).

use std::sync::Arc;

use criterion::{Criterion, Throughput};
use dptrain::data::SyntheticSpec;
use dptrain::train::{Silent, TrainConfig, Trainer};

pub fn bench(c: &mut Criterion) {
    let data = Arc::new(SyntheticSpec::seed_example(0).dataset());
    let config = TrainConfig::default();
    let samples = (data.rows() * config.run.epochs) as u64;
    let mut g = c.benchmark_group("seed_run");
    g.throughput(Throughput::Elements(samples));
    g.sample_size(30);
    for threads in [1, 2] {
        g.bench_function(format!("20_epochs/threads_{threads}"), |b| {
            b.iter(|| {
                Trainer::new(data.clone(), config.clone(), threads)
                    .unwrap()
                    .run(None, &mut Silent)
                    .unwrap()
            })
        });
    }
    g.finish();
}
