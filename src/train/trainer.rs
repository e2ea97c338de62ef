//! The training loop: batches from the pipeline, gradients from the engine, one SGD step each.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::checkpoint::{Checkpoint, FileFingerprint, Progress, RunIdentity, Snapshot};
use crate::data::{Dataset, Split, Standardizer};
use crate::error::{Error, Result};
use crate::loss::{Loss, LossSum};
use crate::model::{DropoutKey, Mlp};
use crate::optim::Optimizer;
use crate::parallel::{BatchRef, Collective, GradientEngine, NoiseScale, SingleProcess, StepTimes};
use crate::pipeline::{Batch, Prefetcher, Sampler, Span};
use crate::train::config::TrainConfig;
use crate::train::early_stop::Verdict;
use crate::train::metrics::{EpochMetrics, EvalPoint, NoiseMetrics, Observer, PhaseTimes, RunInfo};

/// Per-step decay of the noise-scale averages: about the last hundred steps count.
const NOISE_EMA_DECAY: f64 = 0.99;

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
    stop: Option<Arc<AtomicBool>>,
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
            stop: None,
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

    /// Sets a flag that, once raised (e.g. by a signal handler), makes the run stop at the next
    /// step boundary: the observer is offered a checkpoint, then [`Error::Interrupted`] returns.
    pub fn with_stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    /// What identifies this run for a later resume: the configuration, the data files'
    /// fingerprints and the parameter count.
    ///
    /// # Errors
    /// [`Error::Data`] when a data file cannot be read.
    pub fn identity(&self) -> Result<RunIdentity> {
        Ok(RunIdentity {
            config: self.config.clone(),
            data: match self.dataset.source() {
                Some(dir) => FileFingerprint::of_dataset(dir)?,
                None => Vec::new(),
            },
            params: self.mlp.num_params(),
        })
    }

    /// Runs every epoch (or until early stopping), starting from `init` parameters or from
    /// the seeded `nn.Linear` initialisation.
    ///
    /// # Errors
    /// [`Error::Diverged`] when the loss or the gradient stops being finite;
    /// [`Error::Interrupted`] when the stop flag was raised; whatever the observer returns.
    ///
    /// # Determinism
    /// The result depends on the data, the config and `init` only: not on the thread count,
    /// the prefetch depth or timing (see [`GradientEngine`]).
    pub fn run(
        &self,
        init: Option<Vec<f32>>,
        observer: &mut (dyn Observer + Send),
    ) -> Result<Outcome> {
        let params = match init {
            Some(p) => {
                assert_eq!(
                    p.len(),
                    self.mlp.num_params(),
                    "init length checked by the loader"
                );
                p
            }
            None => self.mlp.init_params(self.config.seed),
        };
        self.in_pool(|| {
            self.run_from(
                Progress::start(&self.config),
                params,
                (Vec::new(), Vec::new()),
                None,
                observer,
            )
        })
    }

    /// Continues the run saved in `checkpoint` and ends on the same bits as a run never
    /// stopped (a larger `epochs` in this trainer's config trains longer).
    ///
    /// # Errors
    /// [`Error::Config`] naming the first result-changing setting that differs from the
    /// checkpoint's, [`Error::Data`] when a data file changed; then as [`Trainer::run`].
    pub fn resume(
        &self,
        checkpoint: Checkpoint,
        observer: &mut (dyn Observer + Send),
    ) -> Result<Outcome> {
        self.check_resumable(&checkpoint.identity)?;
        let Checkpoint {
            progress,
            params,
            momentum,
            second_moment,
            best_params,
            ..
        } = checkpoint;
        let state = (momentum, second_moment);
        self.in_pool(|| self.run_from(progress, params, state, best_params, observer))
    }

    /// Refuses a checkpoint made with other data or other result-changing settings.
    ///
    /// # Errors
    /// [`Error::Data`] naming a changed data file, [`Error::Config`] naming a changed flag.
    pub fn check_resumable(&self, saved: &RunIdentity) -> Result<()> {
        let now = self.identity()?;
        for (was, is) in saved.data.iter().zip(&now.data) {
            if let Some(why) = was.difference(is) {
                let dir = self.dataset.source().unwrap_or(std::path::Path::new("."));
                return Err(Error::data(
                    dir.join(&is.file),
                    format!("{why}; cannot resume onto different data"),
                ));
            }
        }
        if saved.data.len() != now.data.len() {
            return Err(Error::config(
                "--data",
                "the run was started on generated data and is resumed on files (or the reverse)",
            ));
        }
        let was = serde_json::to_value(&saved.config).expect("config serialises");
        let is = serde_json::to_value(&self.config).expect("config serialises");
        // Speed-only settings and a longer schedule may change on resume.
        for key in [
            "hidden",
            "activation",
            "dropout",
            "loss",
            "batch-size",
            "shuffle",
            "drop-last",
            "lr",
            "momentum",
            "dampening",
            "nesterov",
            "optimizer",
            "beta1",
            "beta2",
            "eps",
            "lr-scaling",
            "base-batch",
            "schedule",
            "warmup-steps",
            "warmup-epochs",
            "min-lr",
            "lr-decay-epochs",
            "lr-gamma",
            "weight-decay",
            "decay-bias",
            "val-fraction",
            "patience",
            "min-delta",
            "seed",
            "shard-size",
            "classes",
            "standardize",
        ] {
            if was.get(key) != is.get(key) {
                let show = |v: Option<&serde_json::Value>| {
                    v.map_or("unset".to_string(), |v| v.to_string())
                };
                return Err(Error::config(
                    format!("--{key}"),
                    format!(
                        "was {} when the run started, now {}: a resumed run must keep every \
                         setting that changes its numbers (only --epochs, --threads and \
                         --prefetch may change)",
                        show(was.get(key)),
                        show(is.get(key))
                    ),
                ));
            }
        }
        if self.config.schedule == crate::train::Schedule::Cosine
            && saved.config.epochs != self.config.epochs
        {
            return Err(Error::config(
                "--epochs",
                format!(
                    "was {} when the run started, now {}: with --schedule cosine the epochs \
                     fix the schedule, so they cannot change on resume",
                    saved.config.epochs, self.config.epochs
                ),
            ));
        }
        if saved.params != now.params {
            return Err(Error::config(
                "--hidden",
                format!(
                    "the checkpoint has {} parameters, this model {}",
                    saved.params, now.params
                ),
            ));
        }
        Ok(())
    }

    fn in_pool<T: Send>(&self, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .thread_name(|i| format!("dptrain-worker-{i}"))
            .build()
            .map_err(|e| Error::config("--threads", format!("cannot start the pool: {e}")))?;
        // The whole loop runs inside the pool: entering it once per step would cost more than a
        // small model's step.
        pool.install(f)
    }

    fn stop_requested(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }

    fn run_from(
        &self,
        mut progress: Progress,
        mut params: Vec<f32>,
        (first_moment, second_moment): (Vec<f32>, Vec<f32>),
        mut best_params: Option<Vec<f32>>,
        observer: &mut (dyn Observer + Send),
    ) -> Result<Outcome> {
        let cfg = &self.config;
        let engine = GradientEngine::new(self.mlp.clone(), self.loss, cfg.shard_size);
        let mut opt = Optimizer::new(
            cfg.optimizer,
            cfg.sgd(),
            cfg.adam(),
            cfg.param_groups(&self.mlp),
        );
        opt.restore(first_moment, second_moment, progress.global_step);
        let sampler = Sampler::new(
            self.split.train.clone(),
            self.batch_rows,
            cfg.shuffle,
            cfg.drop_last,
            cfg.seed,
        );
        let steps = sampler.steps_per_epoch();
        let schedule = cfg.lr_schedule(self.batch_rows, steps);
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
        let end_epoch = if progress.stopped {
            progress.epoch
        } else {
            cfg.epochs
        };
        let span = Span {
            start_epoch: progress.epoch.min(end_epoch),
            start_step: progress.step,
            end_epoch,
        };
        let mut loader = Prefetcher::spawn(
            self.dataset.clone(),
            sampler,
            span,
            cfg.prefetch_depth(self.batch_rows),
            self.standardizer.clone(),
        );
        let mut grad = vec![0.0f32; params.len()];
        progress
            .history
            .reserve(cfg.epochs.saturating_sub(progress.history.len()));
        let outputs = self.mlp.outputs();
        let mut eval_batch = (!self.split.val.is_empty())
            .then(|| Batch::with_capacity(&self.dataset, EVAL_CHUNK.min(self.split.val.len())));
        let classification = self.loss == Loss::CrossEntropy;

        // The learning curve: cumulative samples and training time (evaluations excluded).
        let mut samples_before: u64 = progress.history.iter().map(|m| m.samples as u64).sum();
        let mut time_before: f64 = progress.history.iter().map(|m| m.train_s).sum();
        let curve = cfg
            .eval_every
            .filter(|_| eval_batch.is_some())
            .map(|e| e as u64);
        let mut next_eval = curve.map_or(u64::MAX, |e| (samples_before / e + 1) * e);
        if curve.is_some() && progress.global_step == 0 {
            let b = eval_batch.as_mut().expect("curve needs a validation split");
            let v = self.evaluate(&engine, &params, &self.split.val, b);
            observer.on_eval(&self.eval_point(&progress, 0, 0.0, v))?;
        }

        while progress.epoch < end_epoch {
            let epoch = progress.epoch;
            let mut times = StepTimes::default();
            let mut optimizer = Duration::ZERO;
            let mut eval_time = Duration::ZERO;
            let started = Instant::now();
            while progress.step < steps {
                let batch = loader
                    .next_batch()
                    .expect("the loader yields every step of every epoch");
                debug_assert_eq!((batch.epoch, batch.step), (epoch, progress.step));
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
                let step = engine.gradient(
                    &params,
                    &view,
                    batch.rows,
                    key,
                    &mut grad,
                    &mut times,
                    cfg.noise_scale,
                );
                let sum = step.loss;
                if let Some(n) = step.noise {
                    progress
                        .noise
                        .get_or_insert_with(|| NoiseScale::new(NOISE_EMA_DECAY))
                        .update(n);
                }
                let t = Instant::now();
                self.collective.all_reduce_sum(&mut grad)?;
                times.reduce += t.elapsed();
                let mean = self.loss.mean(sum, batch.rows, outputs);
                let lr = schedule.lr_at(progress.global_step);
                opt.set_lr(lr);
                let diverged = |what| Error::Diverged {
                    epoch: epoch + 1,
                    step: progress.global_step + 1,
                    what,
                    lr,
                };
                if !mean.is_finite() {
                    return Err(diverged("loss"));
                }
                let t = Instant::now();
                if !opt.step(&mut params, &grad) {
                    return Err(diverged("gradient"));
                }
                optimizer += t.elapsed();
                progress.global_step += 1;
                progress.step += 1;
                progress.epoch_loss_sum += mean * batch.rows as f64;
                progress.epoch_correct += sum.correct;
                progress.epoch_samples += batch.rows;
                observer.on_step(epoch + 1, progress.step, steps);
                loader.recycle(batch);
                let seen = samples_before + progress.epoch_samples as u64;
                if seen >= next_eval && progress.step < steps {
                    let t = Instant::now();
                    let train_s = time_before + (t - started - eval_time).as_secs_f64();
                    let b = eval_batch.as_mut().expect("curve needs a validation split");
                    let v = self.evaluate(&engine, &params, &self.split.val, b);
                    observer.on_eval(&self.eval_point(&progress, seen, train_s, v))?;
                    next_eval = curve.map_or(u64::MAX, |e| (seen / e + 1) * e);
                    eval_time += t.elapsed();
                }
                // Mid-epoch boundary: a checkpoint here resumes at the next step. The epoch's
                // last step is checkpointed after validation, below.
                if progress.step < steps {
                    let stop = self.stop_requested();
                    if stop || observer.checkpoint_due(progress.global_step) {
                        observer.on_checkpoint(&Snapshot {
                            progress: &progress,
                            params: &params,
                            momentum: opt.state().first,
                            second_moment: opt.state().second,
                            best_params: best_params.as_deref(),
                        })?;
                    }
                    if stop {
                        return Err(self.interrupted(&progress));
                    }
                }
            }
            let train_s = (started.elapsed() - eval_time).as_secs_f64();
            let data_wait = loader.take_wait();

            let val_started = Instant::now();
            let val = eval_batch
                .as_mut()
                .map(|b| self.evaluate(&engine, &params, &self.split.val, b));
            let val_s = val_started.elapsed().as_secs_f64();
            let samples = progress.epoch_samples;
            let metrics = EpochMetrics {
                epoch: epoch + 1,
                train_loss: progress.epoch_loss_sum / samples.max(1) as f64,
                train_accuracy: classification
                    .then(|| progress.epoch_correct as f64 / samples.max(1) as f64),
                val_loss: val.map(|v| self.loss.mean(v, self.split.val.len(), outputs)),
                val_accuracy: val
                    .filter(|_| classification)
                    .map(|v| v.correct as f64 / self.split.val.len() as f64),
                steps,
                global_step: progress.global_step,
                samples,
                train_s,
                val_s,
                samples_per_s: samples as f64 / train_s.max(1e-12),
                noise_scale: progress.noise.and_then(|n| {
                    let (g2, trace) = n.averages()?;
                    Some(NoiseMetrics {
                        b_simple: n.b_simple(),
                        g2,
                        trace,
                    })
                }),
                time: PhaseTimes {
                    data_wait_s: data_wait.as_secs_f64(),
                    compute_s: times.compute.as_secs_f64(),
                    all_reduce_s: times.reduce.as_secs_f64(),
                    optimizer_s: optimizer.as_secs_f64(),
                },
            };
            observer.on_epoch(&metrics)?;
            samples_before += samples as u64;
            time_before += train_s;
            if let (Some(e), Some(v)) = (curve, val) {
                let point = self.eval_point(&progress, samples_before, time_before, v);
                observer.on_eval(&point)?;
                next_eval = (samples_before / e + 1) * e;
            }
            let verdict = metrics
                .val_loss
                .map(|v| progress.stopper.update(epoch + 1, v));
            progress.history.push(metrics);
            progress.epoch += 1;
            progress.step = 0;
            progress.epoch_loss_sum = 0.0;
            progress.epoch_correct = 0;
            progress.epoch_samples = 0;
            match verdict {
                Some(Verdict::Improved) => {
                    match &mut best_params {
                        Some(b) => b.copy_from_slice(&params),
                        None => best_params = Some(params.clone()),
                    }
                    observer.on_best(epoch + 1, &params)?;
                }
                Some(Verdict::Stop) => progress.stopped = true,
                Some(Verdict::Wait) | None => {}
            }
            let stop = self.stop_requested();
            observer.on_checkpoint(&Snapshot {
                progress: &progress,
                params: &params,
                momentum: opt.state().first,
                second_moment: opt.state().second,
                best_params: best_params.as_deref(),
            })?;
            if progress.stopped {
                break;
            }
            if stop && progress.epoch < end_epoch {
                return Err(self.interrupted(&progress));
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
            best_epoch: progress.stopper.best_epoch(),
            stopped_early: progress.stopped && progress.epoch < cfg.epochs,
            restored_best,
            history: progress.history,
        })
    }

    fn eval_point(&self, p: &Progress, samples: u64, train_s: f64, v: LossSum) -> EvalPoint {
        let n = self.split.val.len();
        EvalPoint {
            step: p.global_step,
            samples,
            train_s,
            val_loss: self.loss.mean(v, n, self.mlp.outputs()),
            val_accuracy: (self.loss == Loss::CrossEntropy).then(|| v.correct as f64 / n as f64),
        }
    }

    fn interrupted(&self, progress: &Progress) -> Error {
        Error::Interrupted {
            epoch: progress.epoch + 1,
            step: progress.global_step,
        }
    }

    /// Summed loss of `rows` in evaluation mode.
    fn evaluate(
        &self,
        engine: &GradientEngine,
        params: &[f32],
        rows: &[u32],
        buf: &mut Batch,
    ) -> LossSum {
        evaluate_rows(
            engine,
            &self.dataset,
            params,
            rows,
            self.standardizer.as_deref(),
            buf,
        )
    }
}

/// Summed loss of `rows` of `dataset` in evaluation mode, gathered `EVAL_CHUNK` rows at a time
/// into `buf` (so a validation pass needs bounded memory, whatever the dataset's size).
fn evaluate_rows(
    engine: &GradientEngine,
    dataset: &Dataset,
    params: &[f32],
    rows: &[u32],
    standardizer: Option<&Standardizer>,
    buf: &mut Batch,
) -> LossSum {
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
    let total =
        pool.install(|| evaluate_rows(&engine, dataset, params, &rows, standardizer, &mut buf));
    let n = dataset.rows();
    Ok((
        loss.mean(total, n, mlp.outputs()),
        (loss == Loss::CrossEntropy).then(|| total.correct as f64 / n as f64),
    ))
}
