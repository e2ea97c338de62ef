//! The chain all-reduce through the whole trainer, with ranks as threads ([`LocalWorld`]): every
//! rank must end on the bits one process ends on, for any number of ranks and threads. The same
//! protocol runs over MPI in `tests/mpi.rs` (with `--features mpi`).

use std::sync::Arc;

use dptrain::data::{Dataset, SyntheticSpec, Task};
use dptrain::optim::OptimizerKind;
use dptrain::parallel::{Collective, LocalWorld};
use dptrain::setting::List;
use dptrain::train::{BatchSize, Outcome, Silent, TrainConfig, Trainer};

fn data(task: Task, rows: usize) -> Arc<Dataset> {
    Arc::new(
        SyntheticSpec {
            task,
            rows,
            features: 7,
            outputs: if task == Task::Classification { 3 } else { 2 },
            noise: 0.3,
            seed: 5,
        }
        .dataset(),
    )
}

fn alone(data: &Arc<Dataset>, config: &TrainConfig, threads: usize) -> Outcome {
    Trainer::new(data.clone(), config.clone(), threads)
        .unwrap()
        .run(None, &mut Silent)
        .unwrap()
}

/// Every rank's outcome, each rank a thread with its own pool of `threads`.
fn shared(data: &Arc<Dataset>, config: &TrainConfig, ranks: usize, threads: usize) -> Vec<Outcome> {
    let world = LocalWorld::ranks(ranks);
    std::thread::scope(|s| {
        let handles: Vec<_> = world
            .into_iter()
            .map(|rank| {
                let (data, config) = (data.clone(), config.clone());
                s.spawn(move || {
                    let rank: Arc<dyn Collective> = rank;
                    Trainer::new(data, config, threads)
                        .unwrap()
                        .with_collective(rank)
                        .run(None, &mut Silent)
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn assert_same(want: &Outcome, got: &[Outcome], what: &str) {
    for (r, o) in got.iter().enumerate() {
        assert!(
            o.params == want.params,
            "{what}: rank {r} of {} differs from one process",
            got.len()
        );
        assert_eq!(o.history.len(), want.history.len(), "{what}: rank {r}");
        for (a, b) in o.history.iter().zip(&want.history) {
            assert_eq!(a.train_loss.to_bits(), b.train_loss.to_bits(), "{what}");
            assert_eq!(a.val_loss.map(f64::to_bits), b.val_loss.map(f64::to_bits));
            assert_eq!(a.train_accuracy, b.train_accuracy, "{what}");
            assert_eq!(a.val_accuracy, b.val_accuracy, "{what}");
            let noise = |m: &dptrain::train::EpochMetrics| m.noise_scale.map(|n| n.b_simple);
            assert_eq!(noise(a), noise(b), "{what}: noise scale");
        }
        assert_eq!(o.best_epoch, want.best_epoch, "{what}");
    }
}

fn config(optimizer: OptimizerKind, batch: usize, shard: usize) -> TrainConfig {
    let mut c = TrainConfig::default();
    c.model.hidden = List(vec![16, 8]);
    c.model.dropout = 0.2;
    c.optim.optimizer = optimizer;
    c.optim.lr = 0.01;
    c.optim.momentum = 0.9;
    c.optim.weight_decay = 1e-3;
    c.batch.batch_size = BatchSize::Rows(batch);
    c.parallel.shard_size = shard;
    c.data.val_fraction = 0.2;
    c.run.epochs = 3;
    c.run.noise_scale = true;
    c
}

#[test]
fn any_number_of_ranks_ends_on_one_process_bits() {
    // 250 training rows: batches of 24 (shards of 5: 5 shards, the last one short) and a short
    // last batch of 10 rows (2 shards, so 3 ranks leave one without a shard).
    let d = data(Task::Regression, 313);
    for optimizer in [OptimizerKind::Sgd, OptimizerKind::Adam] {
        let c = config(optimizer, 24, 5);
        let want = alone(&d, &c, 1);
        for (ranks, threads) in [(1, 2), (2, 1), (3, 1), (2, 2), (7, 1)] {
            let got = shared(&d, &c, ranks, threads);
            assert_same(&want, &got, &format!("{optimizer:?} {ranks}×{threads}"));
        }
    }
}

#[test]
fn ranks_with_many_waves_of_shards_and_classification_agree() {
    // Batches of 100 rows in shards of 3: 34 shards, so a rank holds more than one wave (16)
    // and joins the chain mid-step; the validation split is shared too.
    let d = data(Task::Classification, 500);
    let mut c = config(OptimizerKind::Sgd, 100, 3);
    c.model.dropout = 0.0;
    c.run.epochs = 2;
    let want = alone(&d, &c, 2);
    for ranks in [2, 3] {
        let got = shared(&d, &c, ranks, 1);
        assert_same(&want, &got, &format!("{ranks} ranks"));
    }
    // Full batch: one step per epoch, every rank a slice of it.
    c.batch.batch_size = BatchSize::Full;
    let want = alone(&d, &c, 2);
    assert_same(&want, &shared(&d, &c, 3, 1), "full batch");
}

#[test]
fn a_batch_of_one_shard_is_computed_by_the_last_rank_alone() {
    let d = data(Task::Regression, 60);
    let c = config(OptimizerKind::Sgd, 4, 8);
    let want = alone(&d, &c, 1);
    assert_same(&want, &shared(&d, &c, 3, 1), "one shard per batch");
}
