//! The validated description of a training run.

use serde::{Deserialize, Serialize};

use crate::data::{Dataset, TargetKind};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::model::{Activation, Mlp};
use crate::optim::{
    AdamConfig, LrScaling, LrSchedule, OptimizerKind, ParamGroup, ScheduleKind, SgdConfig,
};

/// The learning-rate schedule after warmup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// The same learning rate throughout.
    #[default]
    Constant,
    /// Cosine decay to `min_lr` at the end of the last epoch.
    Cosine,
    /// Multiply by `lr_gamma` every `lr_decay_epochs` epochs.
    Step,
}

/// Rows per optimizer step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BatchSize {
    /// A fixed number of rows (1 = single-sample SGD).
    Rows(usize),
    /// The whole training split per step (full-batch gradient descent).
    #[serde(with = "full")]
    Full,
}

mod full {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("full")
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        let s = String::deserialize(d)?;
        if s == "full" {
            Ok(())
        } else {
            Err(serde::de::Error::custom(format!(
                "expected a positive integer or \"full\", got {s:?}"
            )))
        }
    }
}

impl std::str::FromStr for BatchSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("full") {
            return Ok(BatchSize::Full);
        }
        match s.parse::<usize>() {
            Ok(0) => Err("must be at least 1 (or \"full\")".into()),
            Ok(n) => Ok(BatchSize::Rows(n)),
            Err(_) => Err(format!(
                "expected a positive integer or \"full\", got {s:?}"
            )),
        }
    }
}

impl std::fmt::Display for BatchSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchSize::Rows(n) => write!(f, "{n}"),
            BatchSize::Full => f.write_str("full"),
        }
    }
}

/// Everything that decides a run's numbers (and a few things that only decide its speed).
///
/// Field names are the CLI's long flags with `_` for `-`; a `--config` TOML file uses the
/// kebab-case spelling of the same names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Dropout probability after each hidden activation.
    pub dropout: f32,
    /// Loss; `None` picks MSE for float targets and cross-entropy for integer labels.
    pub loss: Option<Loss>,
    /// Rows per step.
    pub batch_size: BatchSize,
    /// Reshuffle the training rows every epoch.
    pub shuffle: bool,
    /// Drop the last partial batch of each epoch.
    pub drop_last: bool,
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor.
    pub momentum: f32,
    /// Dampening.
    pub dampening: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// The update rule.
    pub optimizer: OptimizerKind,
    /// Adam's β₁.
    pub beta1: f32,
    /// Adam's β₂.
    pub beta2: f32,
    /// Adam's ε.
    pub eps: f32,
    /// L2 weight decay for weights (decoupled for AdamW).
    pub weight_decay: f32,
    /// Apply the weight decay to biases too (one parameter group instead of two).
    pub decay_bias: bool,
    /// Fraction of rows held out for validation (0 disables validation).
    pub val_fraction: f64,
    /// Stop after this many epochs without a validation improvement.
    pub patience: Option<usize>,
    /// Smallest decrease of the validation loss that counts as an improvement.
    pub min_delta: f64,
    /// Number of epochs.
    pub epochs: usize,
    /// How `lr` follows the batch size, relative to `base_batch`.
    pub lr_scaling: LrScaling,
    /// The batch size `lr` is meant for (with `lr_scaling`).
    pub base_batch: usize,
    /// Learning-rate schedule after warmup.
    pub schedule: Schedule,
    /// Linear warmup over this many optimizer steps.
    pub warmup_steps: Option<u64>,
    /// Linear warmup over this many epochs (instead of `warmup_steps`).
    pub warmup_epochs: Option<usize>,
    /// Cosine schedule: the learning rate reached at the end.
    pub min_lr: f32,
    /// Step schedule: multiply the learning rate by `lr_gamma` every this many epochs.
    pub lr_decay_epochs: usize,
    /// Step schedule: the factor.
    pub lr_gamma: f32,
    /// Seed of the initialisation, split, shuffling and dropout.
    pub seed: u64,
    /// Rows per shard (the unit of parallel work; part of the numerics, not of the speed only).
    pub shard_size: usize,
    /// Batches assembled ahead of the trainer; `None` picks [`TrainConfig::prefetch_depth`]'s
    /// automatic depth.
    pub prefetch: Option<usize>,
    /// Number of classes when the labels do not show them all (default: largest label + 1).
    pub classes: Option<usize>,
    /// Standardise features with the training split's per-feature mean and deviation.
    pub standardize: bool,
    /// Estimate the gradient noise scale `B_simple` from the shard gradients (reported per
    /// epoch; needs batches of two shards or more; never changes the weights).
    pub noise_scale: bool,
    /// Also evaluate on the validation split every this many training samples, reporting a
    /// learning curve to the observer (the batch-size study's steps-to-target). Never changes
    /// the weights.
    pub eval_every: Option<usize>,
}

impl Default for TrainConfig {
    /// The seed article's run: 50 hidden ReLU units, MSE, SGD lr 0.01 momentum 0.9, batch 32,
    /// shuffled, 20 epochs.
    fn default() -> Self {
        TrainConfig {
            hidden: vec![50],
            activation: Activation::Relu,
            dropout: 0.0,
            loss: None,
            batch_size: BatchSize::Rows(32),
            shuffle: true,
            drop_last: false,
            lr: 0.01,
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
            optimizer: OptimizerKind::Sgd,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decay_bias: false,
            val_fraction: 0.0,
            patience: None,
            min_delta: 0.0,
            epochs: 20,
            lr_scaling: LrScaling::None,
            base_batch: 32,
            schedule: Schedule::Constant,
            warmup_steps: None,
            warmup_epochs: None,
            min_lr: 0.0,
            lr_decay_epochs: 30,
            lr_gamma: 0.1,
            seed: 0,
            shard_size: 128,
            prefetch: None,
            classes: None,
            standardize: false,
            noise_scale: false,
            eval_every: None,
        }
    }
}

/// Rows the automatic prefetch depth keeps assembled ahead (see [`TrainConfig::prefetch_depth`]).
pub const AUTO_PREFETCH_ROWS: usize = 1024;

fn check(ok: bool, flag: &str, message: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::config(flag, message()))
    }
}

impl TrainConfig {
    /// Checks every value on its own, naming the flag of the first bad one.
    ///
    /// # Errors
    /// [`Error::Config`] naming the flag and the accepted range.
    pub fn validate(&self) -> Result<()> {
        check(
            !self.hidden.is_empty() && self.hidden.iter().all(|&h| h > 0),
            "--hidden",
            || {
                format!(
                    "layer widths must be positive integers, got {:?}",
                    self.hidden
                )
            },
        )?;
        check((0.0..1.0).contains(&self.dropout), "--dropout", || {
            format!("must be in [0, 1), got {}", self.dropout)
        })?;
        check(
            self.batch_size != BatchSize::Rows(0),
            "--batch-size",
            || "must be at least 1 (or \"full\")".into(),
        )?;
        check(self.lr.is_finite() && self.lr > 0.0, "--lr", || {
            format!("must be a positive number, got {}", self.lr)
        })?;
        check((0.0..=1.0).contains(&self.momentum), "--momentum", || {
            format!("must be in [0, 1], got {}", self.momentum)
        })?;
        check((0.0..=1.0).contains(&self.dampening), "--dampening", || {
            format!("must be in [0, 1], got {}", self.dampening)
        })?;
        check(
            !self.nesterov || (self.momentum > 0.0 && self.dampening == 0.0),
            "--nesterov",
            || "needs --momentum > 0 and --dampening 0 (as in torch.optim.SGD)".into(),
        )?;
        check(
            self.weight_decay.is_finite() && self.weight_decay >= 0.0,
            "--weight-decay",
            || format!("must be ≥ 0, got {}", self.weight_decay),
        )?;
        check(
            (0.0..1.0).contains(&self.val_fraction),
            "--val-fraction",
            || format!("must be in [0, 1), got {}", self.val_fraction),
        )?;
        check(self.patience != Some(0), "--patience", || {
            "must be at least 1".into()
        })?;
        check(
            self.patience.is_none() || self.val_fraction > 0.0,
            "--patience",
            || "early stopping needs a validation split: add --val-fraction (e.g. 0.2)".into(),
        )?;
        check(
            self.min_delta.is_finite() && self.min_delta >= 0.0,
            "--min-delta",
            || format!("must be ≥ 0, got {}", self.min_delta),
        )?;
        check(self.epochs > 0, "--epochs", || "must be at least 1".into())?;
        check(
            (0.0..1.0).contains(&self.beta1) && (0.0..1.0).contains(&self.beta2),
            "--beta1",
            || {
                format!(
                    "Adam's betas must be in [0, 1), got {} and {}",
                    self.beta1, self.beta2
                )
            },
        )?;
        check(self.eps.is_finite() && self.eps > 0.0, "--eps", || {
            format!("must be a positive number, got {}", self.eps)
        })?;
        check(
            self.optimizer == OptimizerKind::Sgd || !self.nesterov,
            "--nesterov",
            || "applies to SGD only (Adam has its own momentum: --beta1)".into(),
        )?;
        check(self.base_batch > 0, "--base-batch", || {
            "must be at least 1".into()
        })?;
        check(
            self.warmup_steps.is_none() || self.warmup_epochs.is_none(),
            "--warmup-steps",
            || "give --warmup-steps or --warmup-epochs, not both".into(),
        )?;
        check(
            self.min_lr.is_finite() && self.min_lr >= 0.0 && self.min_lr <= self.lr,
            "--min-lr",
            || format!("must be in [0, --lr], got {}", self.min_lr),
        )?;
        check(self.lr_decay_epochs > 0, "--lr-decay-epochs", || {
            "must be at least 1".into()
        })?;
        check(
            self.lr_gamma.is_finite() && self.lr_gamma > 0.0,
            "--lr-gamma",
            || format!("must be a positive number, got {}", self.lr_gamma),
        )?;
        check(self.eval_every != Some(0), "--eval-every", || {
            "must be at least 1 sample".into()
        })?;
        check(self.shard_size > 0, "--shard-size", || {
            "must be at least 1".into()
        })?;
        check(self.prefetch != Some(0), "--prefetch", || {
            "must be at least 1".into()
        })?;
        check(self.classes.is_none_or(|c| c >= 2), "--classes", || {
            "must be at least 2".into()
        })?;
        Ok(())
    }

    /// The loss for `dataset`, checking it fits the targets.
    ///
    /// # Errors
    /// [`Error::Config`] on `--loss` when the loss and the target dtype disagree.
    pub fn resolve_loss(&self, dataset: &Dataset) -> Result<Loss> {
        match (self.loss, dataset.kind()) {
            (None | Some(Loss::Mse), TargetKind::Regression { .. }) => Ok(Loss::Mse),
            (None | Some(Loss::CrossEntropy), TargetKind::Classification { .. }) => {
                Ok(Loss::CrossEntropy)
            }
            (Some(Loss::CrossEntropy), TargetKind::Regression { .. }) => Err(Error::config(
                "--loss",
                "cross-entropy needs integer class labels in y.npy, but y is float32 \
                 (save labels with y.astype(np.int64), or use --loss mse)",
            )),
            (Some(Loss::Mse), TargetKind::Classification { .. }) => Err(Error::config(
                "--loss",
                "mse needs float targets, but y.npy holds integer class labels \
                 (use --loss cross-entropy)",
            )),
        }
    }

    /// The network for `dataset`: features → hidden… → outputs (or classes).
    ///
    /// # Errors
    /// [`Error::Config`] on `--classes` when a label is out of its range.
    pub fn model(&self, dataset: &Dataset) -> Result<Mlp> {
        let outputs = match (dataset.kind(), self.classes) {
            (TargetKind::Classification { classes }, Some(k)) => {
                if classes > k {
                    let row = (0..dataset.rows())
                        .find(|&r| dataset.label(r).is_some_and(|l| l as usize >= k))
                        .expect("a label ≥ k exists");
                    return Err(Error::config(
                        "--classes",
                        format!(
                            "row {row} of y.npy has label {} but --classes is {k} \
                             (labels must be in 0..{k})",
                            dataset.label(row).expect("labels")
                        ),
                    ));
                }
                k
            }
            (kind, _) => kind.outputs(),
        };
        let mut sizes = Vec::with_capacity(self.hidden.len() + 2);
        sizes.push(dataset.features());
        sizes.extend_from_slice(&self.hidden);
        sizes.push(outputs);
        Ok(Mlp::new(sizes, self.activation, self.dropout))
    }

    /// The rows per step for a training split of `rows` rows.
    ///
    /// # Errors
    /// [`Error::Config`] on `--batch-size` when `--drop-last` would leave no step.
    pub fn batch_rows(&self, rows: usize) -> Result<usize> {
        match self.batch_size {
            BatchSize::Full => Ok(rows),
            BatchSize::Rows(b) if self.drop_last && b > rows => Err(Error::config(
                "--batch-size",
                format!(
                    "{b} is larger than the {rows} training rows, and --drop-last would drop \
                     every batch"
                ),
            )),
            BatchSize::Rows(b) => Ok(b.min(rows)),
        }
    }

    /// Batches the loader keeps ready: `--prefetch`, else at least 2 and enough to hold
    /// [`AUTO_PREFETCH_ROWS`] rows.
    ///
    /// A parked loader thread takes about 40 µs to wake (measured on the reference machine),
    /// ten times a small model's step: two batches of 32 rows are not enough slack, and the
    /// seed's run then spends a third of its time waiting for data. A row-based depth keeps small
    /// batches well ahead and large ones at 2.
    pub fn prefetch_depth(&self, batch_rows: usize) -> usize {
        self.prefetch
            .unwrap_or_else(|| AUTO_PREFETCH_ROWS.div_ceil(batch_rows.max(1)).clamp(2, 256))
    }

    /// The learning rate for the first step after warmup: `lr` scaled for `batch_rows`.
    pub fn scaled_lr(&self, batch_rows: usize) -> f32 {
        self.lr_scaling.scale(self.lr, batch_rows, self.base_batch)
    }

    /// The learning rate at every step, for batches of `batch_rows` and `steps_per_epoch`.
    pub fn lr_schedule(&self, batch_rows: usize, steps_per_epoch: usize) -> LrSchedule {
        let per_epoch = steps_per_epoch as u64;
        let warmup = self
            .warmup_steps
            .or(self.warmup_epochs.map(|e| e as u64 * per_epoch))
            .unwrap_or(0);
        let total = self.epochs as u64 * per_epoch;
        LrSchedule {
            base_lr: self.scaled_lr(batch_rows),
            warmup_steps: warmup.min(total),
            kind: match self.schedule {
                Schedule::Constant => ScheduleKind::Constant,
                Schedule::Cosine => ScheduleKind::Cosine {
                    total_steps: total,
                    min_lr: self.min_lr.min(self.scaled_lr(batch_rows)),
                },
                Schedule::Step => ScheduleKind::Step {
                    step_size: (self.lr_decay_epochs as u64 * per_epoch).max(1),
                    gamma: self.lr_gamma,
                },
            },
        }
    }

    /// Adam's hyper-parameters (AdamW's decoupling is set by [`OptimizerKind`]).
    pub fn adam(&self) -> AdamConfig {
        AdamConfig {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            decoupled: self.optimizer == OptimizerKind::Adamw,
        }
    }

    /// The SGD hyper-parameters.
    pub fn sgd(&self) -> SgdConfig {
        SgdConfig {
            lr: self.lr,
            momentum: self.momentum,
            dampening: self.dampening,
            nesterov: self.nesterov,
        }
    }

    /// PyTorch-style parameter groups: weights decayed, biases not (unless `decay_bias`).
    pub fn param_groups(&self, mlp: &Mlp) -> Vec<ParamGroup> {
        let bias_decay = if self.decay_bias {
            self.weight_decay
        } else {
            0.0
        };
        mlp.layers()
            .iter()
            .flat_map(|l| {
                [
                    ParamGroup {
                        range: l.weight_range(),
                        weight_decay: self.weight_decay,
                    },
                    ParamGroup {
                        range: l.bias_range(),
                        weight_decay: bias_decay,
                    },
                ]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_size_parses_integers_and_full() {
        assert_eq!("32".parse::<BatchSize>(), Ok(BatchSize::Rows(32)));
        assert_eq!("full".parse::<BatchSize>(), Ok(BatchSize::Full));
        assert!("0".parse::<BatchSize>().is_err());
        assert!("x".parse::<BatchSize>().is_err());
    }

    #[test]
    fn config_round_trips_through_toml() {
        let c = TrainConfig {
            batch_size: BatchSize::Full,
            patience: Some(3),
            ..TrainConfig::default()
        };
        let s = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<TrainConfig>(&s).unwrap(), c);
    }

    #[test]
    fn bad_values_name_their_flag() {
        let bad = |c: TrainConfig| c.validate().unwrap_err().to_string();
        let d = TrainConfig::default;
        assert!(
            bad(TrainConfig {
                hidden: vec![0],
                ..d()
            })
            .starts_with("--hidden")
        );
        assert!(
            bad(TrainConfig {
                val_fraction: 1.5,
                ..d()
            })
            .starts_with("--val-fraction")
        );
        assert!(
            bad(TrainConfig {
                patience: Some(2),
                ..d()
            })
            .contains("--val-fraction")
        );
        assert!(
            bad(TrainConfig {
                dropout: 1.0,
                ..d()
            })
            .starts_with("--dropout")
        );
    }
}
