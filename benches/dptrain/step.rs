//! One training step (forward + backward over the shards, all-reduce, SGD) of the large MLP
//! 784→1024→1024→10 at batch 256, per thread count.

use criterion::{Criterion, Throughput};
use dptrain::loss::{Loss, Targets};
use dptrain::model::{Activation, DropoutKey, Mlp};
use dptrain::optim::{ParamGroup, Sgd, SgdConfig};
use dptrain::parallel::{BatchRef, GradientEngine, NoiseEstimate, StepTimes};

pub fn bench(c: &mut Criterion) {
    let mlp = Mlp::new(vec![784, 1024, 1024, 10], Activation::Relu, 0.0);
    let batch = 256;
    let x: Vec<f32> = (0..batch * 784)
        .map(|i| ((i * 7919) % 255) as f32 / 255.0)
        .collect();
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let view = BatchRef {
        x: &x,
        targets: Targets::Labels(&labels),
        rows: batch,
    };
    let key = DropoutKey {
        seed: 0,
        epoch: 0,
        step: 0,
    };
    let mut g = c.benchmark_group("step_784_1024_1024_10_batch_256");
    g.throughput(Throughput::Elements(batch as u64));
    g.sample_size(20);
    let threads_max = std::thread::available_parallelism().map_or(1, |n| n.get());
    for shard in [64, 128] {
        for threads in [1, 2, 4, 8, 16].into_iter().filter(|&t| t <= threads_max) {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let engine = GradientEngine::new(mlp.clone(), Loss::CrossEntropy, shard);
            let mut params = mlp.init_params(0);
            let mut grad = vec![0.0; params.len()];
            let mut sgd = Sgd::new(
                SgdConfig {
                    lr: 0.01,
                    momentum: 0.9,
                    dampening: 0.0,
                    nesterov: false,
                },
                vec![ParamGroup {
                    range: 0..params.len(),
                    weight_decay: 0.0,
                }],
            );
            g.bench_function(format!("shard_{shard}/threads_{threads}"), |b| {
                pool.install(|| {
                    b.iter(|| {
                        let mut t = StepTimes::default();
                        engine.gradient(
                            &params,
                            &view,
                            batch,
                            key,
                            &mut grad,
                            &mut t,
                            NoiseEstimate::Skip,
                        );
                        assert!(sgd.step(&mut params, &grad));
                    })
                })
            });
        }
    }
    g.finish();

    // The noise-scale estimate's cost: the same step with and without it (4 shards of 64).
    let mut g = c.benchmark_group("noise_scale_overhead");
    g.throughput(Throughput::Elements(batch as u64));
    g.sample_size(30);
    let engine = GradientEngine::new(mlp.clone(), Loss::CrossEntropy, 64);
    let params = mlp.init_params(0);
    let mut grad = vec![0.0; params.len()];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2.min(threads_max))
        .build()
        .unwrap();
    for (name, noise) in [
        ("without", NoiseEstimate::Skip),
        ("with_estimate", NoiseEstimate::Measure),
    ] {
        g.bench_function(name, |b| {
            pool.install(|| {
                b.iter(|| {
                    let mut t = StepTimes::default();
                    engine.gradient(&params, &view, batch, key, &mut grad, &mut t, noise)
                })
            })
        });
    }
    g.finish();
}
