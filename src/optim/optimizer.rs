//! The optimizer a run uses, chosen by name, with its state for checkpoints.

use serde::{Deserialize, Serialize};

use crate::optim::{Adam, AdamUpdate, OptimSettings, ParamGroup, Sgd, SgdUpdate};

/// Which update rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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

/// One of the optimizers, behind one interface for the training loop, with gradient clipping.
#[derive(Debug, Clone)]
pub struct Optimizer {
    rule: Rule,
    /// `--clip-grad-norm`: the maximum global norm, and each parameter tensor's range.
    clip: Option<(f32, Vec<std::ops::Range<usize>>)>,
}

/// The update rule.
#[derive(Debug, Clone)]
enum Rule {
    Sgd(Sgd),
    Adam(Adam),
}

/// The optimizer's state vectors, borrowed for a checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct OptimizerState<'a> {
    /// The first moment: SGD's momentum buffer or Adam's `exp_avg` (empty before the first
    /// step, or without momentum).
    pub first_moment: &'a [f32],
    /// The second moment: Adam's `exp_avg_sq` (empty for SGD).
    pub second_moment: &'a [f32],
}

impl Optimizer {
    /// The optimizer `settings` describe, over `groups`, starting at `settings.lr`.
    ///
    /// Each group is one parameter tensor (its range of the flat buffer), which is what
    /// clipping by global norm takes the per-tensor norms of.
    pub fn new(settings: &OptimSettings, groups: Vec<ParamGroup>) -> Self {
        let clip = settings
            .clip_grad_norm
            .map(|max| (max, groups.iter().map(|g| g.range.clone()).collect()));
        let rule = match settings.optimizer {
            OptimizerKind::Sgd => Rule::Sgd(Sgd::new(settings.sgd(settings.lr), groups)),
            OptimizerKind::Adam | OptimizerKind::Adamw => {
                Rule::Adam(Adam::new(settings.adam(settings.lr), groups))
            }
        };
        Optimizer { rule, clip }
    }

    /// One update with the batch gradient `grad` (which the optimizer may change in place);
    /// returns whether every updated parameter is finite.
    pub fn step(&mut self, params: &mut [f32], grad: &mut [f32]) -> bool {
        if let Some((max, tensors)) = &self.clip {
            // Before weight decay and momentum, as with clip_grad_norm_ before opt.step().
            crate::optim::clip_grad_norm(grad, tensors, *max);
        }
        match &mut self.rule {
            Rule::Sgd(o) => o.step(params, grad),
            Rule::Adam(o) => o.step(params, grad),
        }
    }

    /// Whether [`Optimizer::begin_step`] can start a step (not with `--clip-grad-norm`).
    pub fn fusable(&self) -> bool {
        self.clip.is_none()
    }

    /// Starts a step over `len` parameters whose update then runs range by range, inside
    /// another pass over the parameters (the gradient's last reduction, see
    /// [`crate::parallel::GradientEngine::finish_step_and_update`]): the same arithmetic as
    /// [`Optimizer::step`], one pass fewer. `None` with `--clip-grad-norm`, whose global norm
    /// must be known before any parameter moves.
    pub fn begin_step(&mut self, len: usize) -> Option<StepUpdate<'_>> {
        if self.clip.is_some() {
            return None;
        }
        Some(match &mut self.rule {
            Rule::Sgd(o) => {
                let (update, m) = o.begin(len);
                StepUpdate {
                    rule: Update::Sgd(update),
                    first_moment: m,
                    second_moment: &mut [],
                }
            }
            Rule::Adam(o) => {
                let (update, m, v) = o.begin(len);
                StepUpdate {
                    rule: Update::Adam(update),
                    first_moment: m,
                    second_moment: v,
                }
            }
        })
    }

    /// The learning rate in force.
    pub fn lr(&self) -> f32 {
        match &self.rule {
            Rule::Sgd(o) => o.config().lr,
            Rule::Adam(o) => o.config().lr,
        }
    }

    /// Sets the learning rate for the next step (schedules).
    pub fn set_lr(&mut self, lr: f32) {
        match &mut self.rule {
            Rule::Sgd(o) => o.set_lr(lr),
            Rule::Adam(o) => o.set_lr(lr),
        }
    }

    /// The state vectors to checkpoint.
    pub fn state(&self) -> OptimizerState<'_> {
        match &self.rule {
            Rule::Sgd(o) => OptimizerState {
                first_moment: o.first_moment(),
                second_moment: &[],
            },
            Rule::Adam(o) => OptimizerState {
                first_moment: o.first_moment(),
                second_moment: o.second_moment(),
            },
        }
    }

    /// Restores the state saved by [`Optimizer::state`] after `steps` optimizer steps.
    ///
    /// # Panics
    /// If the vectors do not fit the optimizer (checked when the checkpoint is read).
    pub fn restore(&mut self, first_moment: Vec<f32>, second_moment: Vec<f32>, steps: u64) {
        match &mut self.rule {
            Rule::Sgd(o) => o.set_first_moment(first_moment),
            Rule::Adam(o) => {
                if !first_moment.is_empty() {
                    o.restore(first_moment, second_moment, steps);
                }
            }
        }
    }
}

/// A step's update, fixed once and applied range by range (see [`Optimizer::begin_step`]).
#[derive(Debug, Clone, Copy)]
pub enum Update<'a> {
    /// SGD's.
    Sgd(SgdUpdate<'a>),
    /// Adam's or AdamW's.
    Adam(AdamUpdate<'a>),
}

impl Update<'_> {
    /// Updates the parameters `start..start + p.len()` from their gradient `g` and their
    /// moments `m`, `v` (empty where the rule has none); returns whether every updated
    /// parameter is finite.
    pub fn apply(
        &self,
        start: usize,
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
    ) -> bool {
        match self {
            Update::Sgd(u) => u.apply(start, p, g, m),
            Update::Adam(u) => u.apply(start, p, g, m, v),
        }
    }
}

/// A step's update with the moment buffers it writes.
#[derive(Debug)]
pub struct StepUpdate<'a> {
    /// The update.
    pub rule: Update<'a>,
    /// SGD's momentum buffer or Adam's `exp_avg` (empty without momentum).
    pub first_moment: &'a mut [f32],
    /// Adam's `exp_avg_sq` (empty for SGD).
    pub second_moment: &'a mut [f32],
}
