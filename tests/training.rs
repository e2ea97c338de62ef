//! End-to-end behaviour of the training loop through the library API.

use std::sync::Arc;

use dptrain::data::{Dataset, Split, SyntheticSpec, Task};
use dptrain::model::{DropoutKey, Mode, Workspace};
use dptrain::optim::Sgd;
use dptrain::pipeline::Sampler;
use dptrain::train::{BatchSize, Silent, TrainConfig, Trainer, evaluate_dataset};

fn regression(rows: usize, seed: u64) -> Arc<Dataset> {
    Arc::new(
        SyntheticSpec {
            task: Task::Regression,
            rows,
            features: 6,
            outputs: 1,
            noise: 0.5,
            seed,
        }
        .dataset(),
    )
}

fn classification(rows: usize) -> Arc<Dataset> {
    Arc::new(
        SyntheticSpec {
            task: Task::Classification,
            rows,
            features: 5,
            outputs: 3,
            noise: 0.3,
            seed: 2,
        }
        .dataset(),
    )
}

fn train(data: &Arc<Dataset>, config: TrainConfig, threads: usize) -> dptrain::train::Outcome {
    Trainer::new(data.clone(), config, threads)
        .unwrap()
        .run(None, &mut Silent)
        .unwrap()
}

#[test]
fn steps_per_epoch_are_ceil_of_rows_over_batch_or_floor_with_drop_last() {
    let data = regression(103, 1);
    for (batch, drop_last, want) in [
        (BatchSize::Rows(1), false, 103),
        (BatchSize::Rows(10), false, 11),
        (BatchSize::Rows(10), true, 10),
        (BatchSize::Rows(103), false, 1),
        (BatchSize::Full, false, 1),
        (BatchSize::Rows(500), false, 1),
    ] {
        let o = train(
            &data,
            {
                let mut c = TrainConfig::default();
                c.batch.batch_size = batch;
                c.batch.drop_last = drop_last;
                c.run.epochs = 2;
                c
            },
            2,
        );
        assert_eq!(
            o.history[0].steps, want,
            "batch {batch} drop_last {drop_last}"
        );
        assert_eq!(o.history[1].global_step, 2 * want as u64);
        let samples = if drop_last { want * 10 } else { 103 };
        assert_eq!(o.history[0].samples, samples);
    }
}

#[test]
fn training_lowers_the_loss_on_the_seed_example() {
    let data = Arc::new(SyntheticSpec::seed_example(0).dataset());
    let o = train(&data, TrainConfig::default(), 2);
    let first = o.history[0].train_loss;
    let last = o.history.last().unwrap().train_loss;
    assert!(last < 0.5 * first, "loss went from {first} to {last}");
}

#[test]
fn results_are_bit_identical_for_any_thread_count_and_prefetch_depth() {
    let data = classification(700);
    let config = {
        let mut c = TrainConfig::default();
        c.model.hidden = vec![32, 16].into();
        c.model.dropout = 0.2;
        c.batch.shuffle = dptrain::pipeline::Shuffle::Rows;
        c.batch.batch_size = BatchSize::Rows(100);
        c.parallel.shard_size = 16; // 7 shards per batch, the last one short
        c.run.epochs = 3;
        c.data.val_fraction = 0.1;
        c.optim.momentum = 0.9;
        c.optim.nesterov = true;
        c.optim.weight_decay = 1e-3;
        c.run.seed = 11;
        c
    };
    let reference = train(&data, config.clone(), 1);
    for threads in [2, 3, 8] {
        let o = train(&data, config.clone(), threads);
        assert!(
            o.params == reference.params,
            "{threads} threads changed the weights"
        );
        assert_eq!(o.history[2].train_loss, reference.history[2].train_loss);
        assert_eq!(o.history[2].val_loss, reference.history[2].val_loss);
    }
    for prefetch in [1, 4] {
        let o = train(
            &data,
            {
                let mut c = config.clone();
                c.parallel.prefetch = Some(prefetch);
                c
            },
            2,
        );
        assert!(
            o.params == reference.params,
            "prefetch {prefetch} changed the weights"
        );
    }
}

/// The plain loop a reader can check by eye: same sampler, one forward/backward over the whole
/// batch, one SGD step.
fn plain_loop(data: &Dataset, config: &TrainConfig) -> Vec<f32> {
    let mlp = config.model.model(data, config.data.classes).unwrap();
    let loss = config.model.resolve_loss(data).unwrap();
    let split = Split::new(data.rows(), config.data.val_fraction, config.run.seed);
    let batch_rows = config.batch.batch_rows(split.train.len()).unwrap();
    let sampler = Sampler::new(
        split.train,
        batch_rows,
        config.batch.shuffle,
        false,
        config.run.seed,
    );
    let mut params = mlp.init_params(config.run.seed);
    let mut sgd = Sgd::new(
        config.optim.sgd(config.optim.lr),
        config.optim.param_groups(&mlp),
    );
    let mut ws = Workspace::new(&mlp, batch_rows);
    let mut grad = vec![0.0; params.len()];
    let mut order = Vec::new();
    let mut b = dptrain::pipeline::Chunk::with_capacity(data, batch_rows);
    for epoch in 0..config.run.epochs {
        sampler.epoch_order(epoch, &mut order);
        for step in 0..sampler.steps_per_epoch() {
            b.gather(data, sampler.batch(&order, step));
            let key = DropoutKey {
                seed: config.run.seed,
                epoch: epoch as u64,
                step: step as u64,
            };
            let mode = Mode::Train { key, offset: 0 };
            mlp.forward(&params, &b.x, b.rows, &mut ws, mode);
            let (out, dout) = ws.output_grad(b.rows, mlp.outputs());
            loss.sum_over(out, mlp.outputs(), b.targets(), b.rows, Some(dout));
            mlp.backward(&params, &b.x, b.rows, &mut ws, mode, &mut grad);
            assert!(sgd.step(&mut params, &grad));
        }
    }
    params
}

#[test]
fn one_shard_per_batch_is_bit_identical_to_the_plain_loop() {
    let data = regression(300, 3);
    let config = {
        let mut c = TrainConfig::default();
        c.model.hidden = vec![20].into();
        c.model.dropout = 0.1;
        c.batch.batch_size = BatchSize::Rows(64);
        c.parallel.shard_size = 64;
        c.run.epochs = 3;
        c
    };
    let o = train(&data, config.clone(), 2);
    assert!(o.params == plain_loop(&data, &config));
}

#[test]
fn early_stopping_stops_after_patience_epochs_and_restores_the_best_weights() {
    // A wide net, a high learning rate and few noisy rows overfit quickly: the validation loss
    // turns up within a few dozen epochs.
    let data = regression(80, 4);
    let patience = 3;
    let config = {
        let mut c = TrainConfig::default();
        c.model.hidden = vec![128].into();
        c.optim.lr = 0.05;
        c.batch.batch_size = BatchSize::Rows(8);
        c.data.val_fraction = 0.25;
        c.run.patience = Some(patience);
        c.run.epochs = 500;
        c
    };
    let trainer = Trainer::new(data.clone(), config, 2).unwrap();
    let o = trainer.run(None, &mut Silent).unwrap();
    assert!(o.stopped_early, "ran all {} epochs", o.history.len());
    assert_eq!(o.history.len(), o.best_epoch + patience);
    let best = o.history[o.best_epoch - 1].val_loss.unwrap();
    for m in &o.history[o.best_epoch..] {
        assert!(m.val_loss.unwrap() >= best, "epoch {} improved", m.epoch);
    }
    assert!(o.restored_best);
    assert!(Some(&o.params) == o.best_params.as_ref());
    // The restored weights really are the best epoch's: re-evaluating them on the validation
    // rows gives that epoch's validation loss.
    let val = trainer.split().val.clone();
    let mut x = Vec::new();
    let mut y = Vec::new();
    for &r in &val {
        x.extend_from_slice(data.x_row(r as usize));
        y.push(data.y_values().unwrap()[r as usize]);
    }
    let val_data = Dataset::from_vecs(x, data.features(), y, 1);
    let (loss, _) = evaluate_dataset(&val_data, &o.mlp, o.loss, &o.params, None, 1).unwrap();
    assert!(
        (loss - best).abs() < 1e-9 * best.max(1.0),
        "{loss} vs {best}"
    );
}

#[test]
fn classification_reports_accuracy_in_evaluation_mode() {
    let data = classification(600);
    let o = train(
        &data,
        {
            let mut c = TrainConfig::default();
            c.model.hidden = vec![32].into();
            c.model.dropout = 0.5;
            c.data.val_fraction = 0.2;
            c.optim.lr = 0.1;
            c.run.epochs = 15;
            c
        },
        2,
    );
    let last = o.history.last().unwrap();
    let acc = last.val_accuracy.unwrap();
    assert!(acc > 0.6, "val accuracy {acc}");
    assert!(last.train_accuracy.is_some());
}

/// The thread-identity test above has ~800 parameters: every parallel pass over the parameter
/// vector (the shard reduction, in chunks of 16 Ki elements; SGD's update, parallel from 64 Ki
/// elements per tensor; Adam's) then runs on one chunk. Here fc2.weight alone has 80,000, so
/// threads split every one of those passes.
#[test]
fn bit_identical_for_any_thread_count_with_more_parameters_than_one_reduction_chunk() {
    use dptrain::optim::OptimizerKind;
    let data = classification(300);
    let base = {
        let mut c = TrainConfig::default();
        c.model.hidden = vec![400, 200].into();
        c.model.dropout = 0.1;
        c.batch.batch_size = BatchSize::Rows(100);
        c.parallel.shard_size = 16; // 7 shards per batch, the last one short
        c.run.epochs = 2;
        c.optim.weight_decay = 1e-3;
        c.optim.clip_grad_norm = Some(1.0);
        c
    };
    let params = base.model.model(&data, None).unwrap().num_params();
    assert!(params > 80_000, "{params} parameters");
    for optimizer in [OptimizerKind::Sgd, OptimizerKind::Adam] {
        let mut config = base.clone();
        config.optim.optimizer = optimizer;
        config.optim.nesterov = optimizer == OptimizerKind::Sgd;
        config.optim.lr = if optimizer == OptimizerKind::Sgd {
            0.05
        } else {
            1e-3
        };
        let reference = train(&data, config.clone(), 1);
        for threads in [2, 3] {
            let o = train(&data, config.clone(), threads);
            assert!(
                o.params == reference.params,
                "{optimizer:?}: {threads} threads changed the weights"
            );
        }
    }
}
