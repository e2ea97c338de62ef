//! The optimizer a run uses, chosen by name, with its state for checkpoints.

use serde::{Deserialize, Serialize};

use crate::optim::{Adam, AdamConfig, ParamGroup, Sgd, SgdConfig};

/// Which update rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// `torch.optim.SGD` (momentum, dampening, Nesterov).
    #[default]
    Sgd,
    /// `torch.optim.Adam` (L2 weight decay added to the gradient).
    Adam,
    /// `torch.optim.AdamW` (decoupled weight decay).
    Adamw,
}

/// One of the optimizers, behind one interface for the training loop.
#[derive(Debug, Clone)]
pub enum Optimizer {
    /// SGD.
    Sgd(Sgd),
    /// Adam or AdamW.
    Adam(Adam),
}

/// The optimizer's state vectors, borrowed for a checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct OptimizerState<'a> {
    /// SGD's momentum buffer, or Adam's first moment (empty before the first step).
    pub first: &'a [f32],
    /// Adam's second moment (empty for SGD).
    pub second: &'a [f32],
}

impl Optimizer {
    /// Builds `kind` over `groups`; SGD takes `sgd`, Adam and AdamW take `adam` (their `lr`
    /// fields are the starting learning rate).
    pub fn new(
        kind: OptimizerKind,
        sgd: SgdConfig,
        adam: AdamConfig,
        groups: Vec<ParamGroup>,
    ) -> Self {
        match kind {
            OptimizerKind::Sgd => Optimizer::Sgd(Sgd::new(sgd, groups)),
            OptimizerKind::Adam => Optimizer::Adam(Adam::new(
                AdamConfig {
                    decoupled: false,
                    ..adam
                },
                groups,
            )),
            OptimizerKind::Adamw => Optimizer::Adam(Adam::new(
                AdamConfig {
                    decoupled: true,
                    ..adam
                },
                groups,
            )),
        }
    }

    /// One update; returns whether every updated parameter is finite.
    pub fn step(&mut self, params: &mut [f32], grad: &[f32]) -> bool {
        match self {
            Optimizer::Sgd(o) => o.step(params, grad),
            Optimizer::Adam(o) => o.step(params, grad),
        }
    }

    /// The learning rate in force.
    pub fn lr(&self) -> f32 {
        match self {
            Optimizer::Sgd(o) => o.config().lr,
            Optimizer::Adam(o) => o.config().lr,
        }
    }

    /// Sets the learning rate for the next step (schedules).
    pub fn set_lr(&mut self, lr: f32) {
        match self {
            Optimizer::Sgd(o) => o.set_lr(lr),
            Optimizer::Adam(o) => o.set_lr(lr),
        }
    }

    /// The state vectors to checkpoint.
    pub fn state(&self) -> OptimizerState<'_> {
        match self {
            Optimizer::Sgd(o) => OptimizerState {
                first: o.momentum_buffer(),
                second: &[],
            },
            Optimizer::Adam(o) => OptimizerState {
                first: o.exp_avg(),
                second: o.exp_avg_sq(),
            },
        }
    }

    /// Restores the state saved by [`Optimizer::state`] after `steps` optimizer steps.
    ///
    /// # Panics
    /// If the vectors do not fit the optimizer (checked when the checkpoint is read).
    pub fn restore(&mut self, first: Vec<f32>, second: Vec<f32>, steps: u64) {
        match self {
            Optimizer::Sgd(o) => o.set_momentum_buffer(first),
            Optimizer::Adam(o) => {
                if !first.is_empty() {
                    o.restore(first, second, steps);
                }
            }
        }
    }
}
