//! dptrain's criterion benchmarks, one entry point over grouped modules.
//!
//! `cargo bench` runs them all; `cargo bench -- seed_run` one group. See the README's
//! "Benchmarks" section for what each measures and how to read it.

use criterion::{criterion_group, criterion_main};

mod all_reduce;
mod batch_size;
mod matmul;
mod peak;
mod pipeline;
mod seed_run;
mod step;

criterion_group!(
    benches,
    seed_run::bench,
    pipeline::bench,
    step::bench,
    all_reduce::bench,
    matmul::bench,
    peak::bench,
    batch_size::bench
);
criterion_main!(benches);
