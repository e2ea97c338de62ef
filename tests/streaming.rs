//! Steps fed shard run by shard run: the same bits as whole-batch steps, at every batch size.

use std::sync::Arc;

use dptrain::data::{Dataset, SyntheticSpec, Task};
use dptrain::train::{BatchSize, Silent, TrainConfig, Trainer};

/// FNV-1a over the parameters' bit patterns: a stable fingerprint of a run's final weights.
fn fingerprint(params: &[f32]) -> u64 {
    params.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
        v.to_bits().to_le_bytes().iter().fold(h, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        })
    })
}

fn data() -> Arc<Dataset> {
    Arc::new(
        SyntheticSpec {
            task: Task::Classification,
            rows: 2000,
            features: 12,
            outputs: 3,
            noise: 0.3,
            seed: 5,
        }
        .dataset(),
    )
}

fn run(batch: BatchSize, threads: usize) -> Vec<f32> {
    let mut c = TrainConfig::default();
    c.model.hidden = vec![24, 16].into();
    c.model.dropout = 0.1;
    c.parallel.shard_size = 16;
    c.run.epochs = 2;
    c.run.noise_scale = true;
    c.data.val_fraction = 0.1;
    c.batch.batch_size = batch;
    Trainer::new(data(), c, threads)
        .unwrap()
        .run(None, &mut Silent)
        .unwrap()
        .params
}

/// Final-weight fingerprints of the runs above, recorded with the whole-batch engine before
/// steps were streamed (commit f864d6b, whose engine computes the same bits as 54a66a9's;
/// `cargo test --release --test streaming -- --nocapture` printed them, on an Intel Xeon with
/// AVX-512: matrix kernels `avx512`). Kernels of another instruction set
/// sum in another order, so the check runs where the same kernels run and says it skipped
/// elsewhere. Every product here (shards of 16 rows, layers of 12 → 24 → 16 → 3: at most
/// 16 · 12 · 24 multiply-adds) is below `NATIVE_MIN_FMAS`, so these are gemm's AVX-512 kernels
/// also where ours run: the same fingerprints since (checked after our kernels came).
const RECORDED_ISA: &str = "avx512";
const RECORDED: [(BatchSize, u64); 5] = [
    (BatchSize::Rows(1), 0x751c_2be2_8728_98ae),
    (BatchSize::Rows(7), 0xb9e3_dd05_2a89_54ec),
    (BatchSize::Rows(128), 0x00b0_cf93_e089_a65d),
    (BatchSize::Rows(1000), 0x1438_aaaf_1263_31ad),
    (BatchSize::Full, 0xc195_e5b7_7639_6511),
];

#[test]
fn final_weights_are_the_whole_batch_engines_at_every_batch_size() {
    let got: Vec<(BatchSize, u64)> = RECORDED
        .iter()
        .map(|&(b, _)| (b, fingerprint(&run(b, 2))))
        .collect();
    println!("{got:?}");
    // Every product here runs on gemm's kernels, wherever ours run too.
    const { assert!(16 * 12 * 24 < dptrain::model::matmul::NATIVE_MIN_FMAS) };
    let isa = dptrain::model::matmul::gemm_kernel_isa();
    if isa != RECORDED_ISA {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "test final_weights_are_the_whole_batch_engines_at_every_batch_size SKIPPED: \
             recorded with gemm's {RECORDED_ISA} kernels, this CPU runs gemm's {isa}"
        );
        return;
    }
    for ((b, want), (_, have)) in RECORDED.iter().zip(&got) {
        assert_eq!(
            *have, *want,
            "batch {b}: other weights than the whole-batch engine's"
        );
    }
}

#[test]
fn the_block_order_with_multi_chunk_batches_is_the_same_for_any_thread_count() {
    let mut c = TrainConfig::default();
    c.model.hidden = vec![24].into();
    c.model.dropout = 0.1;
    c.parallel.shard_size = 8;
    c.batch.batch_size = BatchSize::Rows(300); // 38 shards: chunks of 16, 16 and 6
    c.batch.shuffle = dptrain::pipeline::Shuffle::Blocks;
    c.batch.block_rows = Some(37);
    c.run.epochs = 3;
    c.run.noise_scale = true;
    c.data.val_fraction = 0.1;
    let train = |threads| {
        Trainer::new(data(), c.clone(), threads)
            .unwrap()
            .run(None, &mut Silent)
            .unwrap()
    };
    let one = train(1);
    assert!(
        one.params == train(2).params,
        "2 threads changed the weights"
    );
    assert!(
        one.params == train(3).params,
        "3 threads changed the weights"
    );
    let mut rows = c.clone();
    rows.batch.shuffle = dptrain::pipeline::Shuffle::Rows;
    let by_rows = Trainer::new(data(), rows, 2)
        .unwrap()
        .run(None, &mut Silent)
        .unwrap();
    assert!(
        one.params != by_rows.params,
        "the block order is an order of its own"
    );
}
