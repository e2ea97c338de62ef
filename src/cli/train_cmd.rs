//! `dptrain train`: flags (and `--config FILE.toml`) → a validated run → the library's trainer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Args;
use serde::{Deserialize, Serialize};

use dptrain::checkpoint::CheckpointStore;
use dptrain::data::{Dataset, SyntheticSpec};
use dptrain::loss::Loss;
use dptrain::model::Activation;
use dptrain::model::weights::{self, ModelMeta};
use dptrain::optim::{LrScaling, OptimizerKind};
use dptrain::parallel::{default_threads, thread_warnings};
use dptrain::run_dir::{CheckpointPolicy, RunDir, RunRecorder};
use dptrain::train::{BatchSize, EpochMetrics, Observer, Outcome, Schedule, TrainConfig, Trainer};
use dptrain::{Error, Result};

use super::console::Console;

/// Hidden layer widths: `50` or `512,256` on the command line, a number, string or list in TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Hidden {
    /// `[512, 256]`.
    List(Vec<usize>),
    /// `50`.
    One(usize),
    /// `"512,256"`.
    Text(String),
}

impl Hidden {
    fn widths(&self) -> Result<Vec<usize>> {
        match self {
            Hidden::List(v) => Ok(v.clone()),
            Hidden::One(n) => Ok(vec![*n]),
            Hidden::Text(s) => s
                .split(',')
                .map(|p| {
                    p.trim().parse::<usize>().map_err(|_| {
                        Error::config(
                            "--hidden",
                            format!("expected comma-separated widths like 512,256, got {s:?}"),
                        )
                    })
                })
                .collect(),
        }
    }
}

impl std::str::FromStr for Hidden {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Hidden::Text(s.to_string()))
    }
}

/// Flags of `dptrain train`. Every flag can also be a key of the `--config` TOML file (same
/// name, kebab-case); flags given on the command line win.
#[derive(Debug, Default, Clone, Args, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TrainArgs {
    /// Read settings from this TOML file (keys mirror the flags; flags win).
    #[arg(long, value_name = "FILE.toml")]
    #[serde(skip)]
    config: Option<PathBuf>,

    // --- data and output ---
    /// Dataset directory with x.npy and y.npy [default: the seed's generated 1000 × 20 set].
    #[arg(long, value_name = "DIR", help_heading = "Data")]
    data: Option<PathBuf>,
    /// Fraction of rows held out for validation; 0 disables validation [default: 0].
    #[arg(long, value_name = "F", help_heading = "Data")]
    val_fraction: Option<f64>,
    /// Number of classes, when the labels do not show them all [default: largest label + 1].
    #[arg(long, value_name = "K", help_heading = "Data")]
    classes: Option<usize>,
    /// Standardise features with the training split's mean and deviation (stored with the model).
    #[arg(long, help_heading = "Data")]
    standardize: Option<Option<bool>>,
    /// Run directory: config, metrics.jsonl, final and best weights, summary [default: none].
    #[arg(long, value_name = "DIR", help_heading = "Data")]
    out: Option<PathBuf>,

    // --- model ---
    /// Hidden layer widths, e.g. 50 or 512,256 [default: 50].
    #[arg(long, value_name = "W[,W…]", help_heading = "Model")]
    hidden: Option<Hidden>,
    /// Hidden activation [default: relu].
    #[arg(long, value_enum, help_heading = "Model")]
    activation: Option<ActivationArg>,
    /// Dropout probability after every hidden activation (training only) [default: 0].
    #[arg(long, value_name = "P", help_heading = "Model")]
    dropout: Option<f32>,
    /// Loss [default: mse for float targets, cross-entropy for integer labels].
    #[arg(long, value_enum, help_heading = "Model")]
    loss: Option<LossArg>,
    /// Start from these weights (safetensors named fc1.weight, fc1.bias, …).
    #[arg(long, value_name = "FILE.safetensors", help_heading = "Model")]
    init: Option<PathBuf>,

    // --- batching ---
    /// Rows per step: N (1 = single-sample SGD) or "full" (whole training split) [default: 32].
    #[arg(long, value_name = "N|full", help_heading = "Batching")]
    batch_size: Option<BatchSize>,
    /// Reshuffle the training rows every epoch (the default).
    #[arg(
        long = "shuffle",
        overrides_with = "no_shuffle",
        help_heading = "Batching"
    )]
    #[serde(skip)]
    shuffle_flag: bool,
    /// Present rows in file order every epoch.
    #[arg(long, overrides_with = "shuffle_flag", help_heading = "Batching")]
    #[serde(skip)]
    no_shuffle: bool,
    /// `shuffle = true|false` in a config file.
    #[arg(skip)]
    shuffle: Option<bool>,
    /// Drop the last partial batch of each epoch.
    #[arg(long, help_heading = "Batching")]
    drop_last: Option<Option<bool>>,

    // --- optimizer ---
    /// Update rule [default: sgd].
    #[arg(long, value_enum, help_heading = "Optimizer")]
    optimizer: Option<OptimizerArg>,
    /// Adam/AdamW β₁ [default: 0.9].
    #[arg(long, help_heading = "Optimizer")]
    beta1: Option<f32>,
    /// Adam/AdamW β₂ [default: 0.999].
    #[arg(long, help_heading = "Optimizer")]
    beta2: Option<f32>,
    /// Adam/AdamW ε [default: 1e-8].
    #[arg(long, help_heading = "Optimizer")]
    eps: Option<f32>,
    /// Learning rate [default: 0.01].
    #[arg(long, help_heading = "Optimizer (SGD)")]
    lr: Option<f32>,
    /// Momentum [default: 0.9].
    #[arg(long, help_heading = "Optimizer (SGD)")]
    momentum: Option<f32>,
    /// Dampening [default: 0].
    #[arg(long, help_heading = "Optimizer (SGD)")]
    dampening: Option<f32>,
    /// Nesterov momentum.
    #[arg(long, help_heading = "Optimizer (SGD)")]
    nesterov: Option<Option<bool>>,
    /// L2 weight decay, applied to weights only [default: 0].
    #[arg(long, value_name = "WD", help_heading = "Optimizer (SGD)")]
    weight_decay: Option<f32>,
    /// Apply the weight decay to biases too.
    #[arg(long, help_heading = "Optimizer (SGD)")]
    decay_bias: Option<Option<bool>>,

    // --- learning-rate schedule ---
    /// Scale --lr with the batch size relative to --base-batch [default: none].
    #[arg(long, value_enum, help_heading = "Learning-rate schedule")]
    lr_scaling: Option<ScalingArg>,
    /// The batch size --lr is meant for, with --lr-scaling [default: 32].
    #[arg(long, value_name = "B", help_heading = "Learning-rate schedule")]
    base_batch: Option<usize>,
    /// Schedule after warmup [default: constant].
    #[arg(long, value_enum, help_heading = "Learning-rate schedule")]
    schedule: Option<ScheduleArg>,
    /// Linear warmup from 0 over N optimizer steps.
    #[arg(long, value_name = "N", help_heading = "Learning-rate schedule")]
    warmup_steps: Option<u64>,
    /// Linear warmup over N epochs.
    #[arg(long, value_name = "N", help_heading = "Learning-rate schedule")]
    warmup_epochs: Option<usize>,
    /// Cosine schedule: the final learning rate [default: 0].
    #[arg(long, help_heading = "Learning-rate schedule")]
    min_lr: Option<f32>,
    /// Step schedule: decay every N epochs [default: 30].
    #[arg(long, value_name = "N", help_heading = "Learning-rate schedule")]
    lr_decay_epochs: Option<usize>,
    /// Step schedule: the decay factor [default: 0.1].
    #[arg(long, value_name = "G", help_heading = "Learning-rate schedule")]
    lr_gamma: Option<f32>,

    // --- schedule ---
    /// Number of epochs [default: 20].
    #[arg(long, help_heading = "Schedule")]
    epochs: Option<usize>,
    /// Stop after N epochs without validation improvement; restores the best weights.
    #[arg(long, value_name = "N", help_heading = "Schedule")]
    patience: Option<usize>,
    /// Smallest validation-loss decrease that counts as an improvement [default: 0].
    #[arg(long, value_name = "D", help_heading = "Schedule")]
    min_delta: Option<f64>,
    /// Seed of initialisation, split, shuffling and dropout [default: 0].
    #[arg(long, help_heading = "Schedule")]
    seed: Option<u64>,

    /// Estimate the gradient noise scale B_simple per epoch (batches of ≥ 2 shards).
    #[arg(long, help_heading = "Schedule")]
    noise_scale: Option<Option<bool>>,

    // --- checkpoints ---
    /// Also checkpoint every N optimizer steps (epoch ends always are, with --out).
    #[arg(long, value_name = "N", help_heading = "Checkpoints")]
    checkpoint_every: Option<u64>,
    /// Checkpoints to keep in RUN/checkpoints [default: 3].
    #[arg(long = "keep", value_name = "N", help_heading = "Checkpoints")]
    keep_checkpoints: Option<usize>,
    /// Continue the run in --out from its newest readable checkpoint (same flags; --epochs may
    /// grow); start it when there is none yet.
    #[arg(long, help_heading = "Checkpoints")]
    #[serde(skip)]
    resume: bool,

    // --- parallelism ---
    /// Worker threads [default: SLURM_CPUS_PER_TASK, else all cores]. Changes speed, never results.
    #[arg(long, help_heading = "Parallelism")]
    threads: Option<usize>,
    /// Rows per shard, the unit of parallel work (part of the numerics) [default: 128].
    #[arg(long, value_name = "N", help_heading = "Parallelism")]
    shard_size: Option<usize>,
    /// Batches assembled ahead of the trainer [default: 2, more for small batches: enough for 1024 rows].
    #[arg(long, value_name = "N", help_heading = "Parallelism")]
    prefetch: Option<usize>,
}

impl TrainArgs {
    fn keep(&self) -> usize {
        self.keep_checkpoints.unwrap_or(3)
    }

    /// `--data`.
    pub(super) fn data(&self) -> Option<&Path> {
        self.data.as_deref()
    }

    /// `--out`.
    pub(super) fn out(&self) -> Option<&Path> {
        self.out.as_deref()
    }

    /// `--threads`.
    pub(super) fn threads(&self) -> Option<usize> {
        self.threads
    }

    /// Whether `--batch-size` was given (a sweep chooses its own).
    pub(super) fn has_batch_size(&self) -> bool {
        self.batch_size.is_some()
    }

    /// The first flag given that only makes sense for a single run (a sweep refuses it).
    pub(super) fn single_run_flag(&self) -> Option<&'static str> {
        if self.init.is_some() {
            Some("--init")
        } else if self.resume {
            Some("--resume")
        } else if self.checkpoint_every.is_some() {
            Some("--checkpoint-every")
        } else if self.patience.is_some() {
            Some("--patience")
        } else {
            None
        }
    }

    /// Whether `--lr-scaling` was given (a sweep defaults to linear).
    pub(super) fn has_lr_scaling(&self) -> bool {
        self.lr_scaling.is_some()
    }

    /// Whether `--val-fraction` was given.
    pub(super) fn has_val_fraction(&self) -> bool {
        self.val_fraction.is_some()
    }
}

/// `--nesterov` alone means true; `--nesterov=false` is accepted too.
fn flag(v: Option<Option<bool>>) -> Option<bool> {
    v.map(|inner| inner.unwrap_or(true))
}

#[derive(Debug, Clone, Copy, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ActivationArg {
    Relu,
    Tanh,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum OptimizerArg {
    Sgd,
    Adam,
    Adamw,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ScalingArg {
    None,
    Linear,
    Sqrt,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ScheduleArg {
    Constant,
    Cosine,
    Step,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum LossArg {
    Mse,
    CrossEntropy,
}

/// The effective settings of a run, written to `RUN/config.toml`; it can be passed back with
/// `--config` (its keys are the flags').
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
struct Effective<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    init: Option<&'a Path>,
    threads: usize,
    #[serde(flatten)]
    train: &'a TrainConfig,
}

impl TrainArgs {
    /// Fills what the command line left out from the config file.
    pub(super) fn merge_file(mut self) -> Result<Self> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::config("--config", format!("cannot read {}: {e}", path.display()))
        })?;
        let file: TrainArgs = toml::from_str(&text).map_err(|e| {
            let msg = e.message().to_string();
            Error::config("--config", format!("{}: {msg}", path.display()))
        })?;
        macro_rules! fill {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = file.$f; } )* };
        }
        fill!(
            data,
            val_fraction,
            classes,
            standardize,
            out,
            hidden,
            activation,
            dropout,
            loss,
            init,
            batch_size,
            drop_last,
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
            decay_bias,
            epochs,
            patience,
            min_delta,
            seed,
            threads,
            shard_size,
            prefetch,
            checkpoint_every,
            noise_scale,
            optimizer,
            beta1,
            beta2,
            eps,
            lr_scaling,
            base_batch,
            schedule,
            warmup_steps,
            warmup_epochs,
            min_lr,
            lr_decay_epochs,
            lr_gamma,
            keep_checkpoints
        );
        if !self.shuffle_flag && !self.no_shuffle {
            self.shuffle = file.shuffle;
        }
        Ok(self)
    }

    /// The validated training configuration.
    pub(super) fn config(&self) -> Result<TrainConfig> {
        let d = TrainConfig::default();
        let shuffle = if self.no_shuffle {
            false
        } else if self.shuffle_flag {
            true
        } else {
            self.shuffle.unwrap_or(d.shuffle)
        };
        let c = TrainConfig {
            hidden: match &self.hidden {
                Some(h) => h.widths()?,
                None => d.hidden,
            },
            activation: match self.activation {
                Some(ActivationArg::Relu) | None => Activation::Relu,
                Some(ActivationArg::Tanh) => Activation::Tanh,
            },
            dropout: self.dropout.unwrap_or(d.dropout),
            loss: self.loss.map(|l| match l {
                LossArg::Mse => Loss::Mse,
                LossArg::CrossEntropy => Loss::CrossEntropy,
            }),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            shuffle,
            drop_last: flag(self.drop_last).unwrap_or(d.drop_last),
            lr: self.lr.unwrap_or(d.lr),
            momentum: self.momentum.unwrap_or(d.momentum),
            dampening: self.dampening.unwrap_or(d.dampening),
            nesterov: flag(self.nesterov).unwrap_or(d.nesterov),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            decay_bias: flag(self.decay_bias).unwrap_or(d.decay_bias),
            val_fraction: self.val_fraction.unwrap_or(d.val_fraction),
            patience: self.patience.or(d.patience),
            min_delta: self.min_delta.unwrap_or(d.min_delta),
            epochs: self.epochs.unwrap_or(d.epochs),
            seed: self.seed.unwrap_or(d.seed),
            shard_size: self.shard_size.unwrap_or(d.shard_size),
            prefetch: self.prefetch.or(d.prefetch),
            classes: self.classes.or(d.classes),
            standardize: flag(self.standardize).unwrap_or(d.standardize),
            noise_scale: flag(self.noise_scale).unwrap_or(d.noise_scale),
            eval_every: d.eval_every,
            optimizer: match self.optimizer {
                None => d.optimizer,
                Some(OptimizerArg::Sgd) => OptimizerKind::Sgd,
                Some(OptimizerArg::Adam) => OptimizerKind::Adam,
                Some(OptimizerArg::Adamw) => OptimizerKind::Adamw,
            },
            beta1: self.beta1.unwrap_or(d.beta1),
            beta2: self.beta2.unwrap_or(d.beta2),
            eps: self.eps.unwrap_or(d.eps),
            lr_scaling: match self.lr_scaling {
                None => d.lr_scaling,
                Some(ScalingArg::None) => LrScaling::None,
                Some(ScalingArg::Linear) => LrScaling::Linear,
                Some(ScalingArg::Sqrt) => LrScaling::Sqrt,
            },
            base_batch: self.base_batch.unwrap_or(d.base_batch),
            schedule: match self.schedule {
                None => d.schedule,
                Some(ScheduleArg::Constant) => Schedule::Constant,
                Some(ScheduleArg::Cosine) => Schedule::Cosine,
                Some(ScheduleArg::Step) => Schedule::Step,
            },
            warmup_steps: self.warmup_steps.or(d.warmup_steps),
            warmup_epochs: self.warmup_epochs.or(d.warmup_epochs),
            min_lr: self.min_lr.unwrap_or(d.min_lr),
            lr_decay_epochs: self.lr_decay_epochs.unwrap_or(d.lr_decay_epochs),
            lr_gamma: self.lr_gamma.unwrap_or(d.lr_gamma),
        };
        c.validate()?;
        Ok(c)
    }
}

/// Fans observer calls out to the console and, with `--out`, the run directory.
struct Observers<'a> {
    console: &'a mut Console,
    recorder: Option<&'a mut RunRecorder>,
}

impl Observer for Observers<'_> {
    fn on_start(&mut self, info: &dptrain::train::RunInfo) -> Result<()> {
        self.console.on_start(info)
    }

    fn on_step(&mut self, epoch: usize, step: usize, steps: usize) {
        self.console.on_step(epoch, step, steps);
    }

    fn on_epoch(&mut self, m: &dptrain::train::EpochMetrics) -> Result<()> {
        if let Some(r) = self.recorder.as_deref_mut() {
            r.on_epoch(m)?;
        }
        self.console.on_epoch(m)
    }

    fn on_best(&mut self, epoch: usize, params: &[f32]) -> Result<()> {
        match self.recorder.as_deref_mut() {
            Some(r) => r.on_best(epoch, params),
            None => Ok(()),
        }
    }

    fn checkpoint_due(&mut self, global_step: u64) -> bool {
        self.recorder
            .as_deref_mut()
            .is_some_and(|r| r.checkpoint_due(global_step))
    }

    fn on_checkpoint(&mut self, snapshot: &dptrain::checkpoint::Snapshot<'_>) -> Result<()> {
        match self.recorder.as_deref_mut() {
            Some(r) => r.on_checkpoint(snapshot),
            None => Ok(()),
        }
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    let args = args.merge_file()?;
    let config = args.config()?;
    let threads = default_threads(args.threads);
    if threads == 0 {
        return Err(Error::config("--threads", "must be at least 1"));
    }
    if args.resume && args.out.is_none() {
        return Err(Error::config(
            "--resume",
            "needs --out DIR, the run directory to continue",
        ));
    }
    let dataset = Arc::new(match &args.data {
        Some(dir) => Dataset::open(dir)?,
        None => SyntheticSpec::seed_example(config.seed).dataset(),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let trainer = Trainer::new(dataset, config.clone(), threads)?.with_stop_flag(stop.clone());
    let init = match &args.init {
        Some(path) if !args.resume => Some(weights::load(trainer.mlp(), path)?),
        _ => None,
    };
    let meta = ModelMeta {
        activation: config.activation,
        loss: trainer.loss(),
        standardize: trainer.standardizer().cloned(),
        labels: match &args.data {
            Some(dir) => read_labels(dir)?,
            None => None,
        },
    };
    if let (Some(labels), Some(dir)) = (&meta.labels, &args.data)
        && labels.len() != trainer.mlp().outputs()
    {
        return Err(Error::data(
            dir.join("labels.json"),
            format!(
                "names {} classes but the model has {} outputs (check --classes)",
                labels.len(),
                trainer.mlp().outputs()
            ),
        ));
    }
    // `--resume` continues from the newest readable checkpoint; with none yet (a job killed
    // before its first checkpoint, or never started) it starts from the beginning, so a
    // requeued batch job can always pass --resume.
    let resume_from = match (&args.out, args.resume) {
        (Some(out), true) => match CheckpointStore::new(out, args.keep()).newest()? {
            Some((checkpoint, skipped)) => {
                for why in skipped {
                    eprintln!("dptrain: warning: skipped a checkpoint: {why}");
                }
                Some(checkpoint)
            }
            None => None,
        },
        _ => None,
    };
    // Everything that can be refused has been checked: only now may files appear.
    let mut recorder = match &args.out {
        Some(out) => {
            let dir = match &resume_from {
                Some(c) => {
                    trainer.check_resumable(&c.identity)?;
                    RunDir::reopen(out, &c.progress.history)?
                }
                None if args.resume && out.join("config.toml").is_file() => {
                    RunDir::reopen::<EpochMetrics>(out, &[])?
                }
                None => {
                    RunDir::check(out)?;
                    RunDir::create(out)?
                }
            };
            dir.write_config(&Effective {
                data: args.data.as_deref(),
                init: args.init.as_deref(),
                threads,
                train: &config,
            })?;
            Some(RunRecorder {
                dir,
                mlp: trainer.mlp().clone(),
                meta: meta.clone(),
                checkpoints: Some(CheckpointPolicy {
                    store: CheckpointStore::new(out, args.keep()),
                    identity: trainer.identity()?,
                    every_steps: args.checkpoint_every.filter(|&n| n > 0),
                }),
            })
        }
        None => None,
    };
    install_stop_signals(&stop)?;
    let (rows, params) = (trainer.batch_rows(), trainer.mlp().num_params());
    for warning in thread_warnings(threads, rows, config.shard_size, params, None) {
        eprintln!("dptrain: warning: {warning}");
    }
    let mut console = Console::new(config.epochs);
    if let Some(c) = &resume_from {
        console.resumed(&c.progress);
    }
    let started = std::time::Instant::now();
    let mut observers = Observers {
        console: &mut console,
        recorder: recorder.as_mut(),
    };
    let outcome = match resume_from {
        Some(c) => trainer.resume(c, &mut observers)?,
        None => trainer.run(init, &mut observers)?,
    };
    let wall = started.elapsed().as_secs_f64();
    console.finish(&outcome, wall);
    if let Some(r) = &recorder {
        r.dir
            .write_weights("final", &outcome.mlp, &outcome.params, Some(&meta))?;
        r.dir.write_summary(&summary(&outcome, wall))?;
    }
    Ok(())
}

/// SIGTERM (Slurm's end of time, `kill`), SIGINT (Ctrl-C) and SIGUSR1 (Slurm's `--signal`
/// warning) raise `stop`: the loop checkpoints at the next step boundary and exits with 75. The
/// handler only sets the flag. A second signal while the flag is up ends the process at once.
fn install_stop_signals(stop: &Arc<AtomicBool>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    use signal_hook::flag;
    for sig in [SIGTERM, SIGINT, SIGUSR1] {
        flag::register_conditional_shutdown(sig, 130, stop.clone())
            .and_then(|_| flag::register(sig, stop.clone()))
            .map_err(|e| {
                Error::io(
                    "signal handler",
                    std::io::Error::other(format!("cannot install for signal {sig}: {e}")),
                )
            })?;
    }
    Ok(())
}

/// Class names saved by `dptrain import` as `DIR/labels.json` (a JSON list, index = class id).
fn read_labels(dir: &Path) -> Result<Option<Vec<String>>> {
    let path = dir.join("labels.json");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::data(&path, e.to_string()))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::data(&path, format!("expected a JSON list of class names: {e}")))
}

fn summary(o: &Outcome, wall: f64) -> serde_json::Value {
    let last = o.history.last();
    let samples: usize = o.history.iter().map(|m| m.samples).sum();
    let train_s: f64 = o.history.iter().map(|m| m.train_s).sum();
    serde_json::json!({
        "sizes": o.mlp.sizes(),
        "loss": o.loss,
        "epochs_run": o.history.len(),
        "stopped_early": o.stopped_early,
        "best_epoch": (o.best_epoch > 0).then_some(o.best_epoch),
        "restored_best": o.restored_best,
        "final_train_loss": last.map(|m| m.train_loss),
        "final_val_loss": last.and_then(|m| m.val_loss),
        "best_val_loss": o.history.iter().filter_map(|m| m.val_loss).reduce(f64::min),
        "samples_per_s": samples as f64 / train_s.max(1e-12),
        "wall_s": wall,
    })
}
