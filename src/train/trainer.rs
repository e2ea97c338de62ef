//! The training loop: batches from the pipeline, gradients from the engine, one SGD step each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::data::{Dataset, Split, Standardizer};
use crate::error::{Error, Result};
use crate::loss::{Loss, LossSum};
use crate::model::{DropoutKey, Mlp};
use crate::optim::Sgd;
use crate::parallel::{BatchRef, Collective, GradientEngine, SingleProcess, StepTimes};
use crate::pipeline::{Batch, Prefetcher, Sampler, Span};
use crate::train::config::TrainConfig;
use crate::train::early_stop::{EarlyStopping, Verdict};
use crate::train::metrics::{EpochMetrics, Observer, PhaseTimes, RunInfo};

/// Rows evaluated at a time during validation: bounds the memory of a validation pass.
const EVAL_CHUNK: usize = 4096;

/// What a finished run hands back.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The model trained.
    pub mlp: Mlp,
    /// The loss used.
    pub loss: Loss,
    /// Final parameters: the best epoch's when early stopping restored them, else the last.
    pub params: Vec<f32>,
    /// The best validation epoch's parameters, when there is a validation split.
    pub best_params: Option<Vec<f32>>,
    /// 1-based best validation epoch (0 without validation).
    pub best_epoch: usize,
    /// Whether early stopping ended the run before `epochs`.
    pub stopped_early: bool,
    /// Whether `params` are the best epoch's, restored at the end (with `--patience`).
    pub restored_best: bool,
    /// One entry per epoch run.
    pub history: Vec<EpochMetrics>,
}

/// A training run over one dataset.
#[derive(Debug)]
pub struct Trainer {
    dataset: Arc<Dataset>,
    config: TrainConfig,
    mlp: Mlp,
    loss: Loss,
    split: Split,
    batch_rows: usize,
    threads: usize,
    standardizer: Option<Arc<Standardizer>>,
    collective: Box<dyn Collective>,
}

impl Trainer {
    /// Validates `config` against `dataset` and prepares the run; nothing is trained yet.
    ///
    /// # Errors
    /// [`Error::Config`] naming the flag that does not fit the data.
    pub fn new(dataset: Arc<Dataset>, config: TrainConfig, threads: usize) -> Result<Self> {
        config.validate()?;
        if threads == 0 {
            return Err(Error::config("--threads", "must be at least 1"));
        }
        let loss = config.resolve_loss(&dataset)?;
        let mlp = config.model(&dataset)?;
        let split = Split::new(dataset.rows(), config.val_fraction, config.seed);
        if split.train.is_empty() {
            return Err(Error::config(
                "--val-fraction",
                format!(
                    "{} leaves no training rows out of {}",
                    config.val_fraction,
                    dataset.rows()
                ),
            ));
        }
        let batch_rows = config.batch_rows(split.train.len())?;
        let standardizer = config
            .standardize
            .then(|| Arc::new(Standardizer::fit(&dataset, &split.train)));
        Ok(Trainer {
            dataset,
            config,
            mlp,
            loss,
            split,
            batch_rows,
            threads,
            standardizer,
            collective: Box::new(SingleProcess),
        })
    }

    /// The model this run trains.
    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    /// The loss this run minimises.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// The train/validation split.
    pub fn split(&self) -> &Split {
        &self.split
    }

    /// Rows per optimizer step.
    pub fn batch_rows(&self) -> usize {
        self.batch_rows
    }

    /// The feature standardisation fitted on the training split (with `standardize`).
    pub fn standardizer(&self) -> Option<&Standardizer> {
        self.standardizer.as_deref()
    }

    /// Runs every epoch (or until early stopping), starting from `init` parameters or from
    /// the seeded `nn.Linear` initialisation.
    ///
    /// # Errors
    /// [`Error::Diverged`] when the loss stops being finite; whatever the observer returns.
    ///
    /// # Determinism
    /// The result depends on the data, the config and `init` only: not on the thread count,
    /// the prefetch depth or timing (see [`GradientEngine`]).
    pub fn run(
        &self,
        init: Option<Vec<f32>>,
        observer: &mut (dyn Observer + Send),
    ) -> Result<Outcome> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .thread_name(|i| format!("dptrain-worker-{i}"))
            .build()
            .map_err(|e| Error::config("--threads", format!("cannot start the pool: {e}")))?;
        // The whole loop runs inside the pool: entering it once per step would cost more than a
        // small model's step.
        pool.install(|| self.run_in_pool(init, observer))
    }

    fn run_in_pool(
        &self,
        init: Option<Vec<f32>>,
        observer: &mut (dyn Observer + Send),
    ) -> Result<Outcome> {
        let cfg = &self.config;
        let mut params = match init {
            Some(p) => {
                assert_eq!(
                    p.len(),
                    self.mlp.num_params(),
                    "init length checked by the loader"
                );
                p
            }
            None => self.mlp.init_params(cfg.seed),
        };
        let engine = GradientEngine::new(self.mlp.clone(), self.loss, cfg.shard_size);
        let mut sgd = Sgd::new(cfg.sgd(), cfg.param_groups(&self.mlp));
        let sampler = Sampler::new(
            self.split.train.clone(),
            self.batch_rows,
            cfg.shuffle,
            cfg.drop_last,
            cfg.seed,
        );
        let steps = sampler.steps_per_epoch();
        observer.on_start(&RunInfo {
            sizes: self.mlp.sizes().to_vec(),
            params: self.mlp.num_params(),
            train_rows: self.split.train.len(),
            val_rows: self.split.val.len(),
            batch_rows: self.batch_rows,
            steps_per_epoch: steps,
            threads: self.threads,
            loss: self.loss,
        })?;
        let span = Span {
            start_epoch: 0,
            start_step: 0,
            end_epoch: cfg.epochs,
        };
        let mut loader = Prefetcher::spawn(
            self.dataset.clone(),
            sampler,
            span,
            cfg.prefetch_depth(self.batch_rows),
            self.standardizer.clone(),
        );
        let mut grad = vec![0.0f32; params.len()];
        let mut stopper = EarlyStopping::new(cfg.patience, cfg.min_delta);
        let mut best_params: Option<Vec<f32>> = None;
        let mut history = Vec::with_capacity(cfg.epochs);
        let mut global_step = 0u64;
        let mut stopped_early = false;
        let outputs = self.mlp.outputs();
        let mut eval_batch = (!self.split.val.is_empty())
            .then(|| Batch::with_capacity(&self.dataset, EVAL_CHUNK.min(self.split.val.len())));

        for epoch in 0..cfg.epochs {
            let mut epoch_loss = 0.0f64;
            let mut correct = 0usize;
            let mut samples = 0usize;
            let mut times = StepTimes::default();
            let mut optimizer = Duration::ZERO;
            let started = Instant::now();
            for _ in 0..steps {
                let batch = loader
                    .next_batch()
                    .expect("the loader yields every step of every epoch");
                debug_assert_eq!(batch.epoch, epoch);
                let key = DropoutKey {
                    seed: cfg.seed,
                    epoch: epoch as u64,
                    step: batch.step as u64,
                };
                let view = BatchRef {
                    x: &batch.x,
                    targets: batch.targets(),
                    rows: batch.rows,
                };
                let sum = engine.gradient(&params, &view, batch.rows, key, &mut grad, &mut times);
                let t = Instant::now();
                self.collective.all_reduce_sum(&mut grad)?;
                times.reduce += t.elapsed();
                global_step += 1;
                let mean = self.loss.mean(sum, batch.rows, outputs);
                if !mean.is_finite() {
                    return Err(Error::Diverged {
                        epoch: epoch + 1,
                        step: global_step,
                        what: "loss",
                        lr: sgd.config().lr,
                    });
                }
                let t = Instant::now();
                sgd.step(&mut params, &grad);
                optimizer += t.elapsed();
                epoch_loss += mean * batch.rows as f64;
                correct += sum.correct;
                samples += batch.rows;
                observer.on_step(epoch + 1, batch.step + 1, steps);
                loader.recycle(batch);
            }
            let train_s = started.elapsed().as_secs_f64();
            let data_wait = loader.take_wait();

            let val_started = Instant::now();
            let val = eval_batch
                .as_mut()
                .map(|b| self.evaluate(&engine, &params, &self.split.val, b));
            let val_s = val_started.elapsed().as_secs_f64();
            let classification = self.loss == Loss::CrossEntropy;
            let metrics = EpochMetrics {
                epoch: epoch + 1,
                train_loss: epoch_loss / samples.max(1) as f64,
                train_accuracy: classification.then(|| correct as f64 / samples.max(1) as f64),
                val_loss: val.map(|v| self.loss.mean(v, self.split.val.len(), outputs)),
                val_accuracy: val
                    .filter(|_| classification)
                    .map(|v| v.correct as f64 / self.split.val.len() as f64),
                steps,
                global_step,
                samples,
                train_s,
                val_s,
                samples_per_s: samples as f64 / train_s.max(1e-12),
                time: PhaseTimes {
                    data_wait_s: data_wait.as_secs_f64(),
                    compute_s: times.compute.as_secs_f64(),
                    all_reduce_s: times.reduce.as_secs_f64(),
                    optimizer_s: optimizer.as_secs_f64(),
                },
            };
            observer.on_epoch(&metrics)?;
            let verdict = metrics.val_loss.map(|v| stopper.update(epoch + 1, v));
            history.push(metrics);
            match verdict {
                Some(Verdict::Improved) => {
                    match &mut best_params {
                        Some(b) => b.copy_from_slice(&params),
                        None => best_params = Some(params.clone()),
                    }
                    observer.on_best(epoch + 1, &params)?;
                }
                Some(Verdict::Stop) => {
                    stopped_early = epoch + 1 < cfg.epochs;
                    break;
                }
                Some(Verdict::Wait) | None => {}
            }
        }
        drop(loader);
        let restored_best = cfg.patience.is_some() && best_params.is_some();
        if restored_best && let Some(best) = &best_params {
            params.copy_from_slice(best);
        }
        Ok(Outcome {
            mlp: self.mlp.clone(),
            loss: self.loss,
            params,
            best_params,
            best_epoch: stopper.best_epoch(),
            stopped_early,
            restored_best,
            history,
        })
    }

    /// Summed loss of `rows` in evaluation mode, gathered `EVAL_CHUNK` rows at a time.
    fn evaluate(
        &self,
        engine: &GradientEngine,
        params: &[f32],
        rows: &[u32],
        buf: &mut Batch,
    ) -> LossSum {
        let mut total = LossSum::default();
        for chunk in rows.chunks(EVAL_CHUNK) {
            buf.gather(&self.dataset, chunk);
            if let Some(s) = &self.standardizer {
                s.apply(&mut buf.x);
            }
            let view = BatchRef {
                x: &buf.x,
                targets: buf.targets(),
                rows: buf.rows,
            };
            total.add(engine.evaluate(params, &view));
        }
        total
    }
}

/// Evaluates `params` of `mlp` on every row of `dataset` (evaluation mode, features
/// standardised first when a `standardizer` is given), in parallel on `threads` threads;
/// returns the mean loss and, for classification, the accuracy.
///
/// # Errors
/// [`Error::Config`] on `--threads` when the pool cannot start.
pub fn evaluate_dataset(
    dataset: &Dataset,
    mlp: &Mlp,
    loss: Loss,
    params: &[f32],
    standardizer: Option<&Standardizer>,
    threads: usize,
) -> Result<(f64, Option<f64>)> {
    let engine = GradientEngine::new(mlp.clone(), loss, 256);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| Error::config("--threads", format!("cannot start the pool: {e}")))?;
    let rows: Vec<u32> = (0..dataset.rows() as u32).collect();
    let mut buf = Batch::with_capacity(dataset, EVAL_CHUNK.min(rows.len()));
    let total = pool.install(|| {
        let mut total = LossSum::default();
        for chunk in rows.chunks(EVAL_CHUNK) {
            buf.gather(dataset, chunk);
            if let Some(s) = standardizer {
                s.apply(&mut buf.x);
            }
            let view = BatchRef {
                x: &buf.x,
                targets: buf.targets(),
                rows: buf.rows,
            };
            total.add(engine.evaluate(params, &view));
        }
        total
    });
    let n = dataset.rows();
    Ok((
        loss.mean(total, n, mlp.outputs()),
        (loss == Loss::CrossEntropy).then(|| total.correct as f64 / n as f64),
    ))
}
