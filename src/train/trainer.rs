//! The training loop: batches from the pipeline, gradients from the engine, one SGD step each.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::checkpoint::{Boundary, Checkpoint, Tensors};
use crate::data::{Dataset, FileFingerprint, Split, Standardizer};
use crate::error::{Error, Result};
use crate::loss::{Loss, LossSum};
use crate::model::{DropoutKey, Mlp};
use crate::optim::Optimizer;
use crate::parallel::{
    BatchRef, Collective, GradientEngine, NoiseEstimate, NoiseScale, SingleProcess, StepTimes,
};
use crate::pipeline::{Blocks, Chunk, Prefetcher, Sampler, Span};
use crate::train::early_stop::Verdict;
use crate::train::{
    EpochMetrics, EvalPoint, NoiseMetrics, Observer, PhaseTimes, Progress, RunIdentity, RunInfo,
    Snapshot, TrainConfig, TrainState,
};

/// Per-step decay of the noise-scale averages: about the last hundred steps count.
const NOISE_EMA_DECAY: f64 = 0.99;

/// Shards per chunk of a large batch: one wave of the engine's parallel shard gradients, so a
/// chunk keeps every worker busy, and a batch of any size needs memory for a few chunks only.
pub const CHUNK_SHARDS: usize = crate::parallel::WAVE;

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
    collective: Arc<dyn Collective>,
    stop: Option<Arc<AtomicBool>>,
    eval_every: Option<u64>,
}

/// Where a run starts: its position, parameters and optimizer state.
struct Start {
    progress: Progress,
    params: Vec<f32>,
    first_moment: Vec<f32>,
    second_moment: Vec<f32>,
    best_params: Option<Vec<f32>>,
}

impl Trainer {
    /// Validates `config` against `dataset` and prepares the run on `threads` worker threads;
    /// nothing is trained yet.
    ///
    /// # Errors
    /// [`Error::Config`] naming the flag that does not fit the data.
    pub fn new(dataset: Arc<Dataset>, config: TrainConfig, threads: usize) -> Result<Self> {
        config.validate()?;
        if threads == 0 {
            return Err(Error::config("--threads", "must be at least 1"));
        }
        let loss = config.model.resolve_loss(&dataset)?;
        let mlp = config.model.model(&dataset, config.data.classes)?;
        let split = Split::new(dataset.rows(), config.data.val_fraction, config.run.seed);
        if split.train.is_empty() {
            return Err(Error::config(
                "--val-fraction",
                format!(
                    "{} leaves no training rows out of {}",
                    config.data.val_fraction,
                    dataset.rows()
                ),
            ));
        }
        let batch_rows = config.batch.batch_rows(split.train.len())?;
        let standardizer = config
            .data
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
            collective: Arc::new(SingleProcess),
            stop: None,
            eval_every: None,
        })
    }

    /// The configuration this run trains with.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The dataset.
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
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

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.threads
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

    /// Trains together with the other processes of `collective`: every process computes its
    /// share of each batch and the gradient is summed along a chain in shard order, so every
    /// process ends on the bits one process would (see [`crate::parallel::collective`]).
    pub fn with_collective(mut self, collective: Arc<dyn Collective>) -> Self {
        self.collective = collective;
        self
    }

    /// The processes this run is shared with.
    pub fn collective(&self) -> &Arc<dyn Collective> {
        &self.collective
    }

    /// Also evaluates on the validation split every `samples` training samples (at least 1),
    /// reporting a learning curve to [`Observer::on_eval`] (the batch-size study's steps to a
    /// target). Never changes the weights.
    pub fn with_learning_curve(mut self, samples: usize) -> Self {
        self.eval_every = Some(samples.max(1) as u64);
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
            None => self.mlp.init_params(self.config.run.seed),
        };
        let start = Start {
            progress: Progress::start(&self.config),
            params,
            first_moment: Vec::new(),
            second_moment: Vec::new(),
            best_params: None,
        };
        self.in_pool(|| self.run_from(start, observer))
    }

    /// Continues the run saved in `checkpoint` and ends on the same bits as a run never
    /// stopped (a larger `epochs` in this trainer's config trains longer).
    ///
    /// # Errors
    /// [`Error::Config`] naming the first result-changing setting that differs from the
    /// checkpoint's, [`Error::Data`] when a data file changed; then as [`Trainer::run`].
    pub fn resume(
        &self,
        checkpoint: Checkpoint<TrainState>,
        observer: &mut (dyn Observer + Send),
    ) -> Result<Outcome> {
        self.check_resumable(&checkpoint.state.identity)?;
        let start = Start {
            progress: checkpoint.state.progress,
            params: checkpoint.params,
            first_moment: checkpoint.first_moment,
            second_moment: checkpoint.second_moment,
            best_params: checkpoint.best_params,
        };
        self.in_pool(|| self.run_from(start, observer))
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
        self.config.check_resumable(&saved.config)?;
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

    /// Rows per chunk of a batch in flight: the whole batch when it is at most
    /// [`CHUNK_SHARDS`] shards, else that many whole shards.
    pub fn chunk_rows(&self) -> usize {
        self.batch_rows
            .min(CHUNK_SHARDS * self.config.parallel.shard_size)
    }

    fn in_pool<T: Send>(&self, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        // The whole loop runs inside the pool: entering it once per step would cost more than a
        // small model's step.
        crate::parallel::pool(self.threads)?.install(f)
    }

    fn stop_requested(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }

    fn run_from(&self, start: Start, observer: &mut (dyn Observer + Send)) -> Result<Outcome> {
        let cfg = &self.config;
        let sampler = Sampler::new(
            self.split.train.clone(),
            self.batch_rows,
            cfg.batch.shuffle,
            cfg.batch.drop_last,
            cfg.run.seed,
        )
        .with_blocks(match cfg.batch.block_rows {
            Some(rows) => Blocks {
                rows,
                window: crate::pipeline::WINDOW_BLOCKS,
            },
            None => Blocks::for_row_bytes(self.dataset.features() * 4),
        })
        .with_share(self.collective.share(), cfg.parallel.shard_size);
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
        let end_epoch = if start.progress.stopped {
            start.progress.epoch
        } else {
            cfg.run.epochs
        };
        let span = Span {
            start_epoch: start.progress.epoch.min(end_epoch),
            start_step: start.progress.step,
            end_epoch,
        };
        let chunk_rows = self.chunk_rows();
        let loader = Prefetcher::spawn(
            self.dataset.clone(),
            sampler,
            span,
            chunk_rows,
            cfg.parallel.prefetch_depth(chunk_rows),
            self.standardizer.clone(),
        );
        let mut run = Run::new(self, start, loader, steps, observer)?;
        while run.progress.epoch < end_epoch {
            run.train_epoch(observer)?;
            let ended = run.end_epoch(observer)?;
            if run.progress.stopped {
                break;
            }
            if ended.stop && run.progress.epoch < end_epoch {
                return Err(self.interrupted(&run.progress));
            }
        }
        Ok(run.finish())
    }

    fn eval_point(&self, p: &Progress, samples: u64, train_s: f64, v: LossSum) -> EvalPoint {
        let n = self.split.val.len();
        EvalPoint {
            step: p.global_step,
            samples,
            train_s,
            val_loss: self.loss.mean(v, n, self.mlp.outputs()),
            val_accuracy: (self.loss == Loss::CrossEntropy).then(|| v.correct as f64 / n as f64),
            b_simple: p.noise.and_then(|n| n.b_simple()).filter(|b| b.is_finite()),
        }
    }

    fn interrupted(&self, progress: &Progress) -> Error {
        Error::Interrupted {
            epoch: progress.epoch + 1,
            step: progress.global_step,
        }
    }
}

/// What an epoch's end decided.
struct EpochEnd {
    /// A stop was requested during or at the end of the epoch.
    stop: bool,
}

/// The working state of one run: the loop's variables, kept together so each phase of the loop
/// (a step, an evaluation, an epoch's end) is a method of its own.
struct Run<'t> {
    trainer: &'t Trainer,
    engine: GradientEngine,
    opt: Optimizer,
    loader: Prefetcher,
    schedule: crate::optim::LrSchedule,
    steps: usize,
    progress: Progress,
    params: Vec<f32>,
    grad: Vec<f32>,
    best_params: Option<Vec<f32>>,
    /// Gathers validation rows, when there is a validation split.
    eval_batch: Option<Chunk>,
    /// Samples between learning-curve points (with a validation split).
    curve: Option<u64>,
    next_eval: u64,
    /// Samples and training seconds of the epochs before this one.
    samples_before: u64,
    time_before: f64,
    /// This epoch's timings.
    times: StepTimes,
    optimizer_time: Duration,
    eval_time: Duration,
    epoch_started: Instant,
    /// Whether a process asked to stop, as agreed at the last step.
    stop_agreed: bool,
}

impl<'t> Run<'t> {
    fn new(
        trainer: &'t Trainer,
        start: Start,
        loader: Prefetcher,
        steps: usize,
        observer: &mut (dyn Observer + Send),
    ) -> Result<Self> {
        let cfg = &trainer.config;
        let engine =
            GradientEngine::new(trainer.mlp.clone(), trainer.loss, cfg.parallel.shard_size)
                .with_collective(trainer.collective.clone());
        let mut opt = Optimizer::new(&cfg.optim, cfg.optim.param_groups(&trainer.mlp));
        let Start {
            mut progress,
            params,
            first_moment,
            second_moment,
            best_params,
        } = start;
        opt.restore(first_moment, second_moment, progress.global_step);
        progress
            .history
            .reserve(cfg.run.epochs.saturating_sub(progress.history.len()));
        let val = &trainer.split.val;
        let eval_batch = (!val.is_empty())
            .then(|| Chunk::with_capacity(&trainer.dataset, EVAL_CHUNK.min(val.len())));
        // The learning curve: cumulative samples and training time (evaluations excluded).
        let samples_before: u64 = progress.history.iter().map(|m| m.samples as u64).sum();
        let time_before: f64 = progress.history.iter().map(|m| m.train_s).sum();
        let curve = trainer.eval_every.filter(|_| eval_batch.is_some());
        let mut run = Run {
            trainer,
            engine,
            opt,
            loader,
            schedule: cfg.lr_schedule(trainer.batch_rows, steps),
            steps,
            grad: vec![0.0f32; params.len()],
            progress,
            params,
            best_params,
            eval_batch,
            curve,
            next_eval: curve.map_or(u64::MAX, |e| (samples_before / e + 1) * e),
            samples_before,
            time_before,
            times: StepTimes::default(),
            optimizer_time: Duration::ZERO,
            eval_time: Duration::ZERO,
            epoch_started: Instant::now(),
            stop_agreed: false,
        };
        // Start-up, not the first epoch: allocate and touch what the steps use.
        run.engine.warm_up(&run.params, trainer.batch_rows);
        if curve.is_some() && run.progress.global_step == 0 {
            let v = run.validate();
            observer.on_eval(&trainer.eval_point(&run.progress, 0, 0.0, v))?;
        }
        Ok(run)
    }

    /// Summed validation loss of the current parameters.
    fn validate(&mut self) -> LossSum {
        let t = self.trainer;
        let buf = self
            .eval_batch
            .as_mut()
            .expect("validation needs a validation split");
        evaluate_rows(
            &self.engine,
            &t.dataset,
            &self.params,
            &t.split.val,
            t.standardizer.as_deref(),
            buf,
        )
    }

    fn snapshot(&self) -> Snapshot<'_> {
        let state = self.opt.state();
        Snapshot {
            progress: &self.progress,
            tensors: Tensors {
                params: &self.params,
                first_moment: state.first_moment,
                second_moment: state.second_moment,
                best_params: self.best_params.as_deref(),
            },
        }
    }

    /// The steps of the current epoch, from `progress.step` on.
    fn train_epoch(&mut self, observer: &mut (dyn Observer + Send)) -> Result<()> {
        self.times = StepTimes::default();
        self.optimizer_time = Duration::ZERO;
        self.eval_time = Duration::ZERO;
        self.epoch_started = Instant::now();
        while self.progress.step < self.steps {
            self.step(observer)?;
            let seen = self.samples_before + self.progress.epoch_samples as u64;
            if seen >= self.next_eval && self.progress.step < self.steps {
                self.curve_point(seen, observer)?;
            }
            // Mid-epoch boundary: a checkpoint here resumes at the next step. The epoch's last
            // step is checkpointed after validation, in `end_epoch`.
            if self.progress.step < self.steps {
                // Every process decides on the same flag: the one that came with the step.
                let stop = self.stop_agreed;
                let boundary = if stop {
                    Boundary::Stop
                } else {
                    Boundary::Step {
                        global_step: self.progress.global_step,
                    }
                };
                if observer.wants_checkpoint(boundary) {
                    observer.on_checkpoint(&self.snapshot())?;
                }
                if stop {
                    return Err(self.trainer.interrupted(&self.progress));
                }
            }
        }
        Ok(())
    }

    /// One optimizer step on the next batch, which arrives chunk by chunk: each chunk's shard
    /// gradients are folded into the gradient as it comes, and its buffers go straight back to
    /// the loader.
    fn step(&mut self, observer: &mut (dyn Observer + Send)) -> Result<()> {
        let t = self.trainer;
        let cfg = &t.config;
        let epoch = self.progress.epoch;
        let key = DropoutKey {
            seed: cfg.run.seed,
            epoch: epoch as u64,
            step: self.progress.step as u64,
        };
        let noise = if cfg.run.noise_scale {
            NoiseEstimate::Measure
        } else {
            NoiseEstimate::Skip
        };
        let mut chunk = self.next_chunk();
        let batch_rows = chunk.batch_rows;
        let lr = self.schedule.lr_at(self.progress.global_step);
        self.opt.set_lr(lr);
        let mut acc = self.engine.begin_step(batch_rows, batch_rows, noise);
        // In one process, the update runs in the pass that sums the last shards (unless
        // clipping needs the whole gradient's norm first).
        let fused = self.engine.share().world == 1 && self.opt.fusable();
        if fused {
            acc.defer_last_wave();
        }
        loop {
            let view = BatchRef {
                x: &chunk.x,
                targets: chunk.targets(),
                rows: chunk.rows,
            };
            if chunk.rows > 0 {
                self.engine.add_shards(
                    &mut acc,
                    &self.params,
                    &view,
                    chunk.offset,
                    key,
                    &mut self.grad,
                    &mut self.times,
                );
            }
            let last = chunk.ends_batch();
            self.loader.recycle(chunk);
            if last {
                break;
            }
            chunk = self.next_chunk();
        }
        let stop = t.stop_requested();
        // (`begin_step` starts the optimizer's step: only when it is taken here.)
        let update = if fused {
            self.opt.begin_step(self.params.len())
        } else {
            None
        };
        let (step, finite) = match update {
            Some(update) => self.engine.finish_step_and_update(
                acc,
                &mut self.grad,
                &mut self.params,
                update,
                stop,
                &mut self.times,
            ),
            None => {
                let step = self
                    .engine
                    .finish_step(acc, &mut self.grad, stop, &mut self.times);
                (step, true)
            }
        };
        self.stop_agreed = step.stop;
        let sum = step.loss;
        if let Some(n) = step.noise {
            self.progress
                .noise
                .get_or_insert_with(|| NoiseScale::new(NOISE_EMA_DECAY))
                .update(n);
        }
        let mean = t.loss.mean(sum, batch_rows, t.mlp.outputs());
        let diverged = |what| Error::Diverged {
            epoch: epoch + 1,
            step: self.progress.global_step + 1,
            what,
            lr,
        };
        if !mean.is_finite() {
            return Err(diverged("loss"));
        }
        if !fused {
            let started = Instant::now();
            if !self.opt.step(&mut self.params, &mut self.grad) {
                return Err(diverged("gradient"));
            }
            self.optimizer_time += started.elapsed();
        } else if !finite {
            return Err(diverged("gradient"));
        }
        let p = &mut self.progress;
        p.global_step += 1;
        p.step += 1;
        p.epoch_loss_sum += mean * batch_rows as f64;
        p.epoch_correct += sum.correct;
        p.epoch_samples += batch_rows;
        observer.on_step(epoch + 1, p.step, self.steps);
        Ok(())
    }

    /// The next chunk of the current step.
    fn next_chunk(&mut self) -> Chunk {
        let chunk = self
            .loader
            .next_chunk()
            .expect("the loader yields every chunk of every step");
        debug_assert_eq!(
            (chunk.epoch, chunk.step),
            (self.progress.epoch, self.progress.step)
        );
        chunk
    }

    /// A mid-epoch point of the learning curve, after `seen` samples.
    fn curve_point(&mut self, seen: u64, observer: &mut (dyn Observer + Send)) -> Result<()> {
        let started = Instant::now();
        let train_s =
            self.time_before + (started - self.epoch_started - self.eval_time).as_secs_f64();
        let v = self.validate();
        observer.on_eval(&self.trainer.eval_point(&self.progress, seen, train_s, v))?;
        self.next_eval = self.curve.map_or(u64::MAX, |e| (seen / e + 1) * e);
        self.eval_time += started.elapsed();
        Ok(())
    }

    /// Validation, metrics, early stopping and the epoch-end checkpoint.
    fn end_epoch(&mut self, observer: &mut (dyn Observer + Send)) -> Result<EpochEnd> {
        let t = self.trainer;
        let epoch = self.progress.epoch;
        let train_s = (self.epoch_started.elapsed() - self.eval_time).as_secs_f64();
        let data_wait = self.loader.take_wait();
        let val_started = Instant::now();
        let val = self.eval_batch.is_some().then(|| self.validate());
        let val_s = val_started.elapsed().as_secs_f64();
        let metrics = self.epoch_metrics(train_s, val_s, val, data_wait);
        observer.on_epoch(&metrics)?;
        self.samples_before += metrics.samples as u64;
        self.time_before += train_s;
        if let (Some(e), Some(v)) = (self.curve, val) {
            let point = t.eval_point(&self.progress, self.samples_before, self.time_before, v);
            observer.on_eval(&point)?;
            self.next_eval = (self.samples_before / e + 1) * e;
        }
        let verdict = metrics
            .val_loss
            .map(|v| self.progress.stopper.update(epoch + 1, v));
        let p = &mut self.progress;
        p.history.push(metrics);
        p.epoch += 1;
        p.step = 0;
        p.epoch_loss_sum = 0.0;
        p.epoch_correct = 0;
        p.epoch_samples = 0;
        match verdict {
            Some(Verdict::Improved) => {
                match &mut self.best_params {
                    Some(b) => b.copy_from_slice(&self.params),
                    None => self.best_params = Some(self.params.clone()),
                }
                observer.on_best(epoch + 1, &self.params)?;
            }
            Some(Verdict::Stop) => self.progress.stopped = true,
            Some(Verdict::Wait) | None => {}
        }
        let stop = t.collective.any(t.stop_requested());
        let boundary = if stop {
            Boundary::Stop
        } else {
            Boundary::EpochEnd
        };
        if observer.wants_checkpoint(boundary) {
            observer.on_checkpoint(&self.snapshot())?;
        }
        Ok(EpochEnd { stop })
    }

    fn epoch_metrics(
        &self,
        train_s: f64,
        val_s: f64,
        val: Option<LossSum>,
        data_wait: Duration,
    ) -> EpochMetrics {
        let t = self.trainer;
        let p = &self.progress;
        let classification = t.loss == Loss::CrossEntropy;
        let samples = p.epoch_samples;
        let val_rows = t.split.val.len();
        EpochMetrics {
            epoch: p.epoch + 1,
            train_loss: p.epoch_loss_sum / samples.max(1) as f64,
            train_accuracy: classification.then(|| p.epoch_correct as f64 / samples.max(1) as f64),
            val_loss: val.map(|v| t.loss.mean(v, val_rows, t.mlp.outputs())),
            val_accuracy: val
                .filter(|_| classification)
                .map(|v| v.correct as f64 / val_rows as f64),
            steps: self.steps,
            global_step: p.global_step,
            samples,
            train_s,
            val_s,
            samples_per_s: samples as f64 / train_s.max(1e-12),
            noise_scale: p.noise.and_then(|n| {
                let (g2, trace) = n.averages()?;
                Some(NoiseMetrics {
                    b_simple: n.b_simple(),
                    g2,
                    trace,
                })
            }),
            time: PhaseTimes {
                data_wait_s: data_wait.as_secs_f64(),
                compute_s: self.times.compute.as_secs_f64(),
                all_reduce_s: self.times.reduce.as_secs_f64(),
                optimizer_s: self.optimizer_time.as_secs_f64(),
            },
        }
    }

    /// The outcome: the best epoch's parameters restored when early stopping is on.
    fn finish(self) -> Outcome {
        let t = self.trainer;
        let Run {
            mut params,
            best_params,
            progress,
            loader,
            ..
        } = self;
        drop(loader);
        let restored_best = t.config.run.patience.is_some() && best_params.is_some();
        if restored_best && let Some(best) = &best_params {
            params.copy_from_slice(best);
        }
        Outcome {
            mlp: t.mlp.clone(),
            loss: t.loss,
            params,
            best_params,
            best_epoch: progress.stopper.best_epoch(),
            stopped_early: progress.stopped && progress.epoch < t.config.run.epochs,
            restored_best,
            history: progress.history,
        }
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
    buf: &mut Chunk,
) -> LossSum {
    let mut total = LossSum::default();
    let shared = engine.share().world > 1;
    for chunk in rows.chunks(EVAL_CHUNK) {
        // Shared between processes: each gathers and evaluates its shards of the chunk only.
        let mine = engine.share().rows(chunk.len(), engine.shard_size());
        buf.gather(dataset, &chunk[mine]);
        if let Some(s) = standardizer {
            s.apply(&mut buf.x);
        }
        let view = BatchRef {
            x: &buf.x,
            targets: buf.targets(),
            rows: buf.rows,
        };
        total.add(if shared {
            engine.eval_loss_shared(params, &view, chunk.len())
        } else {
            engine.eval_loss(params, &view)
        });
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
    let pool = crate::parallel::pool(threads.max(1))?;
    let rows: Vec<u32> = (0..dataset.rows() as u32).collect();
    let mut buf = Chunk::with_capacity(dataset, EVAL_CHUNK.min(rows.len()));
    let total =
        pool.install(|| evaluate_rows(&engine, dataset, params, &rows, standardizer, &mut buf));
    let n = dataset.rows();
    Ok((
        loss.mean(total, n, mlp.outputs()),
        (loss == Loss::CrossEntropy).then(|| total.correct as f64 / n as f64),
    ))
}
