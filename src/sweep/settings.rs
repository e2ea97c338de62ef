//! The batch-size study's own settings (it takes every training setting too), and the
//! training defaults a study changes.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::optim::{LrScaling, OptimizerKind};
use crate::pipeline::BatchSize;
use crate::setting::{List, check, settings};
use crate::train::TrainConfig;

/// The loss every batch size must reach.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// A validation loss given by the user.
    Loss(f64),
    /// 2% above the worst of the batch sizes' best validation losses, so every batch size that
    /// trained at all reaches it.
    Auto,
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "auto" {
            return Ok(Target::Auto);
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(Target::Loss(v)),
            _ => Err(format!("expected a loss ≥ 0 or \"auto\", got {s:?}")),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Target::Loss(v) => s.serialize_f64(*v),
            Target::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Number(f64),
            Text(String),
        }
        let text = match Form::deserialize(d)? {
            Form::Number(v) => v.to_string(),
            Form::Text(s) => s,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One optimizer of `--optimizers`: `sgd`, `adam` or `adamw`, as `--optimizer` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OptimizerChoice(pub OptimizerKind);

impl std::str::FromStr for OptimizerChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        <OptimizerKind as clap::ValueEnum>::from_str(s, true)
            .map(OptimizerChoice)
            .map_err(|_| format!("unknown optimizer {s:?}; expected sgd, adam or adamw"))
    }
}

/// An optimizer's name as `--optimizer` takes it (`sgd`, `adam`, `adamw`).
pub fn optimizer_name(kind: OptimizerKind) -> &'static str {
    match kind {
        OptimizerKind::Sgd => "sgd",
        OptimizerKind::Adam => "adam",
        OptimizerKind::Adamw => "adamw",
    }
}

settings! {
    /// What a batch-size study sweeps, and how it reads the result.
    pub struct SweepConfig, flags SweepFlags, heading "Sweep" {
        /// Batch sizes to train at, e.g. 16,64,256,1024,full.
        #[arg(value_name = "B,B,…")]
        numbers batch_sizes: List<BatchSize> = List(Vec::<BatchSize>::new());
        /// Target validation loss, or "auto" (2% above the worst batch size's best loss).
        #[arg(value_name = "X|auto")]
        numbers target_loss: Target = Target::Auto;
        /// Factors on the scaled learning rate, tried at every batch size; the fastest to the target is kept per batch size (a best factor on the grid's edge is flagged "widen --lr-grid").
        #[arg(value_name = "F,F,…")]
        numbers lr_grid: List<f32> = List(vec![0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0]);
        /// Stop a run early once it is clearly behind the best finished run of the same batch size, optimizer and seed at the same sample count (see the README); `--prune false` trains every run to the end.
        #[arg(num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        numbers prune: bool = true;
        /// Momentum values to try at every batch size (SGD's --momentum, Adam's --beta1) [default: the --momentum / --beta1 given].
        #[arg(value_name = "M,M,…")]
        numbers momentum_grid: List<f32>;
        /// Optimizers to compare, each trained at every batch size, e.g. sgd,adam [default: the --optimizer given].
        #[arg(value_name = "O,O,…")]
        numbers optimizers: List<OptimizerChoice>;
        /// Seeds per (batch size, learning rate); steps to target are their median.
        numbers seeds: usize = 1;
        /// Step budget for "best validation loss at a fixed step budget" [default: the largest batch size's steps].
        #[arg(value_name = "N")]
        numbers step_budget: u64;
        /// Validation evaluations per epoch (resolution of steps to target).
        #[arg(value_name = "N")]
        numbers evals_per_epoch: usize = 8;
        /// Train only the batch size at this 0-based index of --batch-sizes (one Slurm array task), writing its runs into --out/runs/ for a later --collect.
        #[arg(value_name = "I")]
        record task_index: usize;
    }
}

/// The training settings a study starts from where the user gave none: a validation split of
/// 0.2 (steps to a target need a held-out loss) and linear learning-rate scaling (the study
/// compares batch sizes at their scaled rates, Goyal et al.).
pub fn train_defaults() -> TrainConfig {
    let mut c = TrainConfig::default();
    c.data.val_fraction = 0.2;
    c.lr.lr_scaling = LrScaling::Linear;
    c
}

/// The settings whose default a study changes ([`train_defaults`]), as `(field, value)` with the
/// value as a user writes it: what `dptrain sweep --help` shows as their defaults.
pub fn changed_defaults() -> Vec<(String, String)> {
    let table = |c: &TrainConfig| toml::Table::try_from(c).unwrap_or_default();
    let (train, sweep) = (table(&TrainConfig::default()), table(&train_defaults()));
    sweep
        .iter()
        .filter(|(k, v)| train.get(*k) != Some(*v))
        .map(|(k, v)| {
            let shown = match v {
                toml::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            (k.replace('-', "_"), shown)
        })
        .collect()
}

impl SweepConfig {
    /// Checks the sweep's own settings against `train_rows` training rows.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming the flag.
    pub fn validate(&self, train_rows: usize) -> Result<()> {
        check(!self.batch_sizes.is_empty(), "--batch-sizes", || {
            "give the batch sizes to compare, e.g. 16,64,256,1024,full".into()
        })?;
        for b in self.batch_sizes.iter() {
            if let BatchSize::Rows(n) = b {
                check(*n <= train_rows, "--batch-sizes", || {
                    format!(
                        "{n} is larger than the {train_rows} training rows (use \"full\" for \
                         full-batch training)"
                    )
                })?;
            }
        }
        check(
            !self.lr_grid.is_empty() && self.lr_grid.iter().all(|f| f.is_finite() && *f > 0.0),
            "--lr-grid",
            || "give positive factors, e.g. 0.5,1,2".into(),
        )?;
        if let Some(m) = &self.momentum_grid {
            check(
                !m.is_empty() && m.iter().all(|v| (0.0..1.0).contains(v)),
                "--momentum-grid",
                || "give momentum values in [0, 1), e.g. 0,0.9,0.99".into(),
            )?;
        }
        if let Some(o) = &self.optimizers {
            check(!o.is_empty(), "--optimizers", || {
                "give one or more of sgd, adam, adamw".into()
            })?;
        }
        check(self.seeds > 0, "--seeds", || "must be at least 1".into())?;
        check(self.evals_per_epoch > 0, "--evals-per-epoch", || {
            "must be at least 1".into()
        })?;
        if let Some(i) = self.task_index {
            check(i < self.batch_sizes.len(), "--task-index", || {
                format!(
                    "{i} is past the {} batch sizes (0-based)",
                    self.batch_sizes.len()
                )
            })?;
        }
        Ok(())
    }

    /// The batch sizes this invocation trains: all, or the one of `--task-index`.
    pub fn chosen(&self) -> Vec<BatchSize> {
        match self.task_index {
            Some(i) => self.batch_sizes.get(i).copied().into_iter().collect(),
            None => self.batch_sizes.0.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_study_changes_the_validation_split_and_the_lr_scaling() {
        let mut changed = changed_defaults();
        changed.sort();
        assert_eq!(
            changed,
            [
                ("lr_scaling".to_string(), "linear".to_string()),
                ("val_fraction".to_string(), "0.2".to_string()),
            ]
        );
    }
}
