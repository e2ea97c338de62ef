//! The optimizer and learning-rate settings of a run.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::Mlp;
use crate::optim::{
    AdamConfig, LrScaling, LrSchedule, OptimizerKind, ParamGroup, ScheduleKind, SgdConfig,
};
use crate::setting::{check, settings};

settings! {
    /// The update rule and its hyper-parameters.
    pub struct OptimSettings, flags OptimFlags, heading "Optimizer" {
        /// Update rule.
        #[arg(value_enum)]
        numbers optimizer: OptimizerKind = OptimizerKind::Sgd;
        /// Learning rate.
        numbers lr: f32 = 0.01;
        /// SGD momentum.
        numbers momentum: f32 = 0.9;
        /// SGD dampening.
        numbers dampening: f32 = 0.0;
        /// SGD Nesterov momentum.
        #[arg(num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        numbers nesterov: bool = false;
        /// Adam/AdamW β₁.
        numbers beta1: f32 = 0.9;
        /// Adam/AdamW β₂.
        numbers beta2: f32 = 0.999;
        /// Adam/AdamW ε.
        numbers eps: f32 = 1e-8;
        /// Weight decay, applied to weights only (L2 for SGD and Adam, decoupled for AdamW).
        #[arg(value_name = "WD")]
        numbers weight_decay: f32 = 0.0;
        /// Apply the weight decay to biases too.
        #[arg(num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        numbers decay_bias: bool = false;
        /// Clip the gradient to this global L2 norm before weight decay and momentum (torch's clip_grad_norm_).
        #[arg(value_name = "MAX")]
        numbers clip_grad_norm: f32;
    }
}

/// The learning-rate schedule after warmup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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

settings! {
    /// How the learning rate follows the batch size and the steps.
    pub struct LrSettings, flags LrFlags, heading "Learning-rate schedule" {
        /// Scale --lr with the batch size relative to --base-batch.
        #[arg(value_enum)]
        numbers lr_scaling: LrScaling = LrScaling::None;
        /// The batch size --lr is meant for, with --lr-scaling.
        #[arg(value_name = "B")]
        numbers base_batch: usize = 32;
        /// Schedule after warmup.
        #[arg(value_enum)]
        numbers schedule: Schedule = Schedule::Constant;
        /// Linear warmup from 0 over N optimizer steps.
        #[arg(value_name = "N")]
        numbers warmup_steps: u64;
        /// Linear warmup over N epochs.
        #[arg(value_name = "N")]
        numbers warmup_epochs: usize;
        /// Cosine schedule: the final learning rate.
        numbers min_lr: f32 = 0.0;
        /// Step schedule: decay every N epochs.
        #[arg(value_name = "N")]
        numbers lr_decay_epochs: usize = 30;
        /// Step schedule: the decay factor.
        #[arg(value_name = "G")]
        numbers lr_gamma: f32 = 0.1;
    }
}

impl OptimSettings {
    /// Checks each value on its own, naming the flag of the first bad one.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming the flag and the accepted range.
    pub fn validate(&self) -> Result<()> {
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
            self.optimizer == OptimizerKind::Sgd || !self.nesterov,
            "--nesterov",
            || "applies to SGD only (Adam has its own momentum: --beta1)".into(),
        )?;
        check(
            self.weight_decay.is_finite() && self.weight_decay >= 0.0,
            "--weight-decay",
            || format!("must be ≥ 0, got {}", self.weight_decay),
        )?;
        check((0.0..1.0).contains(&self.beta1), "--beta1", || {
            format!("must be in [0, 1), got {}", self.beta1)
        })?;
        check((0.0..1.0).contains(&self.beta2), "--beta2", || {
            format!("must be in [0, 1), got {}", self.beta2)
        })?;
        check(self.eps.is_finite() && self.eps > 0.0, "--eps", || {
            format!("must be a positive number, got {}", self.eps)
        })?;
        check(
            self.clip_grad_norm.is_none_or(|m| m.is_finite() && m > 0.0),
            "--clip-grad-norm",
            || {
                format!(
                    "must be a positive number, got {}",
                    self.clip_grad_norm.unwrap_or(0.0)
                )
            },
        )
    }

    /// The SGD hyper-parameters, starting at learning rate `lr`.
    pub fn sgd(&self, lr: f32) -> SgdConfig {
        SgdConfig {
            lr,
            momentum: self.momentum,
            dampening: self.dampening,
            nesterov: self.nesterov,
        }
    }

    /// Adam's hyper-parameters, starting at learning rate `lr` (AdamW decouples the decay).
    pub fn adam(&self, lr: f32) -> AdamConfig {
        AdamConfig {
            lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            decoupled: self.optimizer == OptimizerKind::Adamw,
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

impl LrSettings {
    /// Checks each value on its own (and `min_lr` against the learning rate `lr`).
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming the flag and the accepted range.
    pub fn validate(&self, lr: f32) -> Result<()> {
        check(self.base_batch > 0, "--base-batch", || {
            "must be at least 1".into()
        })?;
        check(
            self.warmup_steps.is_none() || self.warmup_epochs.is_none(),
            "--warmup-steps",
            || "give --warmup-steps or --warmup-epochs, not both".into(),
        )?;
        check(
            self.min_lr.is_finite() && self.min_lr >= 0.0 && self.min_lr <= lr,
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
        )
    }

    /// The learning rate `lr` scaled for batches of `batch_rows`.
    pub fn scaled_lr(&self, lr: f32, batch_rows: usize) -> f32 {
        self.lr_scaling.scale(lr, batch_rows, self.base_batch)
    }

    /// The learning rate at every step, for `lr`, batches of `batch_rows`, `steps_per_epoch`
    /// and `epochs`.
    pub fn lr_schedule(
        &self,
        lr: f32,
        batch_rows: usize,
        steps_per_epoch: usize,
        epochs: usize,
    ) -> LrSchedule {
        let per_epoch = steps_per_epoch as u64;
        let warmup = self
            .warmup_steps
            .or(self.warmup_epochs.map(|e| e as u64 * per_epoch))
            .unwrap_or(0);
        let total = epochs as u64 * per_epoch;
        let base_lr = self.scaled_lr(lr, batch_rows);
        LrSchedule {
            base_lr,
            warmup_steps: warmup.min(total),
            kind: match self.schedule {
                Schedule::Constant => ScheduleKind::Constant,
                Schedule::Cosine => ScheduleKind::Cosine {
                    total_steps: total,
                    min_lr: self.min_lr.min(base_lr),
                },
                Schedule::Step => ScheduleKind::Step {
                    step_size: (self.lr_decay_epochs as u64 * per_epoch).max(1),
                    gamma: self.lr_gamma,
                },
            },
        }
    }
}
