//! The validated description of a training run: every setting, grouped by concern.
//!
//! Each group is defined once (with [`crate::setting::settings!`]) next to the code that uses
//! it: [`DataSettings`], [`ModelSettings`], [`BatchSettings`], [`OptimSettings`],
//! [`LrSettings`], [`RunSettings`] (here), [`CheckpointSettings`] and [`ParallelSettings`].
//! [`TrainConfig`] nests them with `serde(flatten)`, so a `config.toml` is one flat table whose
//! keys are the flags of `dptrain train`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkpoint::CheckpointSettings;
use crate::data::DataSettings;
use crate::error::{Error, Result};
use crate::model::ModelSettings;
use crate::optim::{LrSchedule, LrSettings, OptimSettings, OptimizerKind, Schedule};
use crate::parallel::{ParallelSettings, ThreadSettings};
use crate::pipeline::BatchSettings;
use crate::setting::{Difference, Effect, FlagGroup, SettingInfo, check, settings};

settings! {
    /// How long a run trains, when it stops early, and its seed.
    pub struct RunSettings, flags RunFlags, heading "Training" {
        /// Number of epochs.
        grows epochs: usize = 20;
        /// Stop after N epochs without validation improvement; restores the best weights.
        #[arg(value_name = "N")]
        numbers patience: usize;
        /// Smallest validation-loss decrease that counts as an improvement.
        #[arg(value_name = "D")]
        numbers min_delta: f64 = 0.0;
        /// Seed of initialisation, split, shuffling and dropout.
        numbers seed: u64 = 0;
        /// Estimate the gradient noise scale B_simple per epoch (batches of ≥ 2 shards).
        #[arg(num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        record noise_scale: bool = false;
    }
}

/// Everything that describes a training run: what decides its numbers, and what only decides
/// its speed or its records (see [`crate::setting::Effect`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Dataset, split, classes, standardisation.
    #[serde(flatten)]
    pub data: DataSettings,
    /// Layers, activation, dropout, loss, initial weights.
    #[serde(flatten)]
    pub model: ModelSettings,
    /// Rows per step, order, last batch.
    #[serde(flatten)]
    pub batch: BatchSettings,
    /// Update rule.
    #[serde(flatten)]
    pub optim: OptimSettings,
    /// Learning-rate scaling and schedule.
    #[serde(flatten)]
    pub lr: LrSettings,
    /// Epochs, early stopping, seed.
    #[serde(flatten)]
    pub run: RunSettings,
    /// Checkpoint frequency and retention.
    #[serde(flatten)]
    pub checkpoints: CheckpointSettings,
    /// Shards, prefetch.
    #[serde(flatten)]
    pub parallel: ParallelSettings,
    /// Worker threads.
    #[serde(flatten)]
    pub threads: ThreadSettings,
}

/// A setting that does nothing unless another one lets it: its field, whether it applies to a
/// configuration, and what it needs.
type Conditional = (&'static str, fn(&TrainConfig) -> bool, &'static str);

/// The settings that only act with another one (a value they cannot use is refused, a flag
/// given with its default value is warned about: never silently ignored).
const CONDITIONAL: &[Conditional] = &[
    (
        "momentum",
        |c| c.optim.optimizer == OptimizerKind::Sgd,
        "--optimizer sgd (Adam's momentum is --beta1)",
    ),
    (
        "dampening",
        |c| c.optim.optimizer == OptimizerKind::Sgd && c.optim.momentum > 0.0,
        "--optimizer sgd with --momentum > 0",
    ),
    (
        "beta1",
        |c| c.optim.optimizer != OptimizerKind::Sgd,
        "--optimizer adam or adamw",
    ),
    (
        "beta2",
        |c| c.optim.optimizer != OptimizerKind::Sgd,
        "--optimizer adam or adamw",
    ),
    (
        "eps",
        |c| c.optim.optimizer != OptimizerKind::Sgd,
        "--optimizer adam or adamw",
    ),
    (
        "decay_bias",
        |c| c.optim.weight_decay > 0.0,
        "--weight-decay above 0",
    ),
    (
        "base_batch",
        |c| c.lr.lr_scaling != crate::optim::LrScaling::None,
        "--lr-scaling linear or sqrt",
    ),
    (
        "min_lr",
        |c| c.lr.schedule == Schedule::Cosine,
        "--schedule cosine",
    ),
    (
        "lr_decay_epochs",
        |c| c.lr.schedule == Schedule::Step,
        "--schedule step",
    ),
    (
        "lr_gamma",
        |c| c.lr.schedule == Schedule::Step,
        "--schedule step",
    ),
    ("min_delta", |c| c.run.patience.is_some(), "--patience"),
];

/// The flags of `dptrain train` that describe a run, every one optional: a config file and then
/// the defaults fill what is not given.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TrainFlags {
    #[command(flatten)]
    data: crate::data::DataFlags,
    #[command(flatten)]
    model: crate::model::ModelFlags,
    #[command(flatten)]
    batch: crate::pipeline::BatchFlags,
    /// Present rows in file order every epoch (the same as --shuffle none).
    #[arg(long, help_heading = "Batching", overrides_with = "shuffle")]
    no_shuffle: bool,
    #[command(flatten)]
    optim: crate::optim::OptimFlags,
    #[command(flatten)]
    lr: crate::optim::LrFlags,
    #[command(flatten)]
    run: RunFlags,
    #[command(flatten)]
    checkpoints: crate::checkpoint::CheckpointFlags,
    #[command(flatten)]
    parallel: crate::parallel::ParallelFlags,
    #[command(flatten)]
    threads: crate::parallel::ThreadFlags,
}

impl TrainFlags {
    /// The groups, for a config file to fill.
    pub fn groups_mut(&mut self) -> [&mut dyn FlagGroup; 9] {
        [
            &mut self.data,
            &mut self.model,
            &mut self.batch,
            &mut self.optim,
            &mut self.lr,
            &mut self.run,
            &mut self.checkpoints,
            &mut self.parallel,
            &mut self.threads,
        ]
    }

    /// Each flag given here, else the one given in `file`.
    pub fn or(self, file: TrainFlags) -> TrainFlags {
        TrainFlags {
            data: self.data.or(file.data),
            model: self.model.or(file.model),
            batch: self.batch.or(file.batch),
            no_shuffle: self.no_shuffle || file.no_shuffle,
            optim: self.optim.or(file.optim),
            lr: self.lr.or(file.lr),
            run: self.run.or(file.run),
            checkpoints: self.checkpoints.or(file.checkpoints),
            parallel: self.parallel.or(file.parallel),
            threads: self.threads.or(file.threads),
        }
    }

    /// These flags, under which the keys of the TOML file at `path` fill what is not given
    /// (relative paths in the file are resolved against its directory).
    ///
    /// # Errors
    /// [`Error::Config`] on `--config` naming the file, line and key.
    pub fn with_file(self, path: &Path) -> Result<TrainFlags> {
        Ok(self.or(TrainFlags::from_file(path, &mut [])?))
    }

    /// The training flags in the TOML file at `path`; the keys of the `extra` groups (a
    /// command's own settings, such as the sweep's) fill those.
    ///
    /// # Errors
    /// [`Error::Config`] on `--config` naming the file, line and key.
    pub fn from_file(path: &Path, extra: &mut [&mut dyn FlagGroup]) -> Result<TrainFlags> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config("--config", format!("cannot read {}: {e}", path.display()))
        })?;
        TrainFlags::from_toml(&text, path, extra)
    }

    /// [`TrainFlags::from_file`] on the `text` of the file at `path`.
    ///
    /// # Errors
    /// As [`TrainFlags::from_file`].
    pub fn from_toml(
        text: &str,
        path: &Path,
        extra: &mut [&mut dyn FlagGroup],
    ) -> Result<TrainFlags> {
        let mut file = TrainFlags::default();
        {
            let mut groups: Vec<&mut dyn FlagGroup> = Vec::new();
            for g in file.groups_mut() {
                groups.push(g);
            }
            for g in extra.iter_mut() {
                groups.push(&mut **g);
            }
            crate::setting::read_config_text(text, path, &mut groups)?;
        }
        Ok(file)
    }

    /// Warnings for flags given here (on the command line) that do nothing in `config` though
    /// their value is the default (a value other than the default is refused by
    /// [`TrainConfig::validate`]).
    pub fn no_effect_warnings(&self, config: &TrainConfig) -> Vec<String> {
        CONDITIONAL
            .iter()
            .filter(|(field, applies, _)| !applies(config) && self.first_given(&[field]).is_some())
            .map(|(field, _, needs)| {
                format!(
                    "--{} has no effect without {needs}",
                    crate::setting::key_of(field)
                )
            })
            .collect()
    }

    /// The first of `fields` given as a flag (as `--flag`).
    pub fn first_given(&self, fields: &[&str]) -> Option<String> {
        None.or_else(|| self.data.first_given(fields))
            .or_else(|| self.model.first_given(fields))
            .or_else(|| self.batch.first_given(fields))
            .or_else(|| self.optim.first_given(fields))
            .or_else(|| self.lr.first_given(fields))
            .or_else(|| self.run.first_given(fields))
            .or_else(|| self.checkpoints.first_given(fields))
            .or_else(|| self.parallel.first_given(fields))
            .or_else(|| self.threads.first_given(fields))
    }

    /// The configuration: the flags given, the rest from `defaults`; not yet validated.
    pub fn resolve_over(self, defaults: TrainConfig) -> TrainConfig {
        let mut c = TrainConfig {
            data: self.data.resolve(defaults.data),
            model: self.model.resolve(defaults.model),
            batch: self.batch.resolve(defaults.batch),
            optim: self.optim.resolve(defaults.optim),
            lr: self.lr.resolve(defaults.lr),
            run: self.run.resolve(defaults.run),
            checkpoints: self.checkpoints.resolve(defaults.checkpoints),
            parallel: self.parallel.resolve(defaults.parallel),
            threads: self.threads.resolve(defaults.threads),
        };
        if self.no_shuffle {
            c.batch.shuffle = crate::pipeline::Shuffle::None;
        }
        c
    }

    /// The validated configuration: the flags given, the rest from [`TrainConfig::default`] —
    /// or, with `--init` of a file that records them, from that file: its activation and
    /// whether its inputs were standardised (a flag given still wins, and the run then refuses
    /// the conflict; see [`crate::run::Session::prepare`]).
    ///
    /// # Errors
    /// As [`TrainConfig::validate`].
    pub fn resolve(self) -> Result<TrainConfig> {
        let mut c = self.clone().resolve_over(TrainConfig::default());
        // A file that cannot be read is reported when the run loads it (a resumed run does not).
        if let Some(path) = &c.model.init
            && let Ok(Some(meta)) = crate::model::weights::read_meta(path)
        {
            let mut defaults = TrainConfig::default();
            defaults.model.activation = meta.activation;
            defaults.data.standardize = meta.standardize.is_some();
            c = self.resolve_over(defaults);
        }
        c.validate()?;
        Ok(c)
    }
}

impl TrainConfig {
    /// Every setting, group by group, with its effect.
    pub fn settings() -> impl Iterator<Item = &'static SettingInfo> {
        [
            DataSettings::SETTINGS,
            ModelSettings::SETTINGS,
            BatchSettings::SETTINGS,
            OptimSettings::SETTINGS,
            LrSettings::SETTINGS,
            RunSettings::SETTINGS,
            CheckpointSettings::SETTINGS,
            ParallelSettings::SETTINGS,
            ThreadSettings::SETTINGS,
        ]
        .into_iter()
        .flatten()
    }

    /// Checks every value, naming the flag of the first bad one.
    ///
    /// # Errors
    /// [`Error::Config`] naming the flag and the accepted range.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.batch_size_is_positive()?;
        self.optim.validate()?;
        self.data.validate()?;
        check(self.run.patience != Some(0), "--patience", || {
            "must be at least 1".into()
        })?;
        check(
            self.run.patience.is_none() || self.data.val_fraction > 0.0,
            "--patience",
            || "early stopping needs a validation split: add --val-fraction (e.g. 0.2)".into(),
        )?;
        check(
            self.run.min_delta.is_finite() && self.run.min_delta >= 0.0,
            "--min-delta",
            || format!("must be ≥ 0, got {}", self.run.min_delta),
        )?;
        check(self.run.epochs > 0, "--epochs", || {
            "must be at least 1".into()
        })?;
        self.lr.validate(self.optim.lr)?;
        check(self.checkpoints.keep > 0, "--keep", || {
            "must be at least 1 (the newest checkpoint is what --resume continues from)".into()
        })?;
        self.parallel.validate()?;
        check(self.threads.threads != Some(0), "--threads", || {
            "must be at least 1".into()
        })?;
        self.no_effect_is_refused()
    }

    /// The value of `field` as a user writes it, and whether it differs from the default.
    fn value_of(&self, field: &str) -> (String, bool) {
        let key = crate::setting::key_of(field);
        let table = |c: &TrainConfig| toml::Table::try_from(c).unwrap_or_default();
        let now = table(self).get(&key).cloned();
        let default = table(&TrainConfig::default()).get(&key).cloned();
        let shown = now.as_ref().map_or("unset".into(), |v| match v {
            toml::Value::String(s) => s.clone(),
            // An f32 setting, widened: shown as the user wrote it (0.8, not 0.800000011920929).
            toml::Value::Float(x) if (*x as f32) as f64 == *x => (*x as f32).to_string(),
            v => v.to_string(),
        });
        (shown, now != default)
    }

    /// Refuses a setting given a value it cannot use with the others (`--momentum 0.5` with
    /// Adam, `--min-lr` without the cosine schedule, …): the user asked for something that would
    /// not happen.
    fn no_effect_is_refused(&self) -> Result<()> {
        for (field, applies, needs) in CONDITIONAL {
            if applies(self) {
                continue;
            }
            let (value, changed) = self.value_of(field);
            check(
                !changed,
                &format!("--{}", crate::setting::key_of(field)),
                || format!("{value} has no effect without {needs}; drop it"),
            )?;
        }
        Ok(())
    }

    fn batch_size_is_positive(&self) -> Result<()> {
        check(
            self.batch.batch_size != crate::pipeline::BatchSize::Rows(0),
            "--batch-size",
            || "must be at least 1 (or \"full\")".into(),
        )?;
        check(self.batch.block_rows != Some(0), "--block-rows", || {
            "must be at least 1".into()
        })
    }

    /// The learning rate at every step, for batches of `batch_rows` and `steps_per_epoch`.
    pub fn lr_schedule(&self, batch_rows: usize, steps_per_epoch: usize) -> LrSchedule {
        self.lr
            .lr_schedule(self.optim.lr, batch_rows, steps_per_epoch, self.run.epochs)
    }

    /// The learning rate for the first step after warmup: `lr` scaled for `batch_rows`.
    pub fn scaled_lr(&self, batch_rows: usize) -> f32 {
        self.lr.scaled_lr(self.optim.lr, batch_rows)
    }

    /// Every result-affecting setting of `saved` (the run being resumed) that this
    /// configuration breaks: `numbers` settings must be equal, `grows` ones may only grow;
    /// with a cosine schedule the epochs fix the schedule and must be equal too.
    pub fn resume_differences(&self, saved: &TrainConfig) -> Vec<Difference> {
        let mut out = Vec::new();
        self.data.differences(&saved.data, &mut out);
        self.model.differences(&saved.model, &mut out);
        self.batch.differences(&saved.batch, &mut out);
        self.optim.differences(&saved.optim, &mut out);
        self.lr.differences(&saved.lr, &mut out);
        self.run.differences(&saved.run, &mut out);
        self.checkpoints.differences(&saved.checkpoints, &mut out);
        self.parallel.differences(&saved.parallel, &mut out);
        self.threads.differences(&saved.threads, &mut out);
        if self.lr.schedule == Schedule::Cosine && self.run.epochs != saved.run.epochs {
            out.push(Difference::new(
                "epochs",
                &saved.run.epochs,
                &self.run.epochs,
                Effect::Numbers,
            ));
        }
        out
    }

    /// Refuses to resume `saved` with this configuration, naming the first setting that differs.
    ///
    /// # Errors
    /// [`Error::Config`] naming the flag, both values and the rule.
    pub fn check_resumable(&self, saved: &TrainConfig) -> Result<()> {
        let Some(d) = self.resume_differences(saved).into_iter().next() else {
            return Ok(());
        };
        let rule = match d.rule {
            Effect::Grows => "may grow on resume, never shrink",
            _ if d.key == "epochs" => "fix the cosine schedule, so they cannot change on resume",
            _ => {
                "changes the numbers, so a resumed run must keep it (only --epochs may grow; \
                 --threads, --prefetch, --checkpoint-every, --keep and --noise-scale may change)"
            }
        };
        Err(Error::config(
            format!("--{}", d.key),
            format!(
                "was {} when the run started, now {}: it {rule}",
                d.was, d.now
            ),
        ))
    }

    /// The text of `RUN/config.toml`: every setting but the thread count and the memory limit
    /// (which belong to the machine, not the run), with paths made absolute so the file works from any directory.
    ///
    /// # Errors
    /// [`Error::Config`] on `--data` or `--init` when a path cannot be made absolute.
    pub fn to_toml(&self) -> Result<String> {
        let mut c = self.clone();
        // Both describe the machine, not the run.
        c.threads.threads = None;
        c.parallel.max_memory = None;
        for (flag, path) in [("--data", &mut c.data.data), ("--init", &mut c.model.init)] {
            if let Some(p) = path {
                *p = absolute(p).map_err(|e| {
                    Error::config(flag, format!("cannot resolve {}: {e}", p.display()))
                })?;
            }
        }
        toml::to_string(&c).map_err(|e| Error::config("--out", format!("config.toml: {e}")))
    }
}

fn absolute(p: &Path) -> std::io::Result<PathBuf> {
    std::path::absolute(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::BatchSize;

    #[test]
    fn config_round_trips_through_toml() {
        let mut c = TrainConfig::default();
        c.batch.batch_size = BatchSize::Full;
        c.run.patience = Some(3);
        c.data.val_fraction = 0.2;
        let s = c.to_toml().unwrap();
        assert_eq!(toml::from_str::<TrainConfig>(&s).unwrap(), c);
    }

    #[test]
    fn every_setting_has_one_key_and_keys_are_unique() {
        let keys: Vec<String> = TrainConfig::settings().map(|s| s.key()).collect();
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "duplicate keys in {keys:?}");
        let table: toml::Table =
            toml::from_str(&TrainConfig::default().to_toml().unwrap()).unwrap();
        for k in table.keys() {
            assert!(keys.contains(k), "config.toml key {k} is no setting");
        }
    }

    /// Every refusal of [`TrainConfig::validate`], each from the default with one value changed,
    /// names the flag to change (and that flag is a setting's).
    #[test]
    fn every_refusal_names_its_flag() {
        type Case = (&'static str, fn(&mut TrainConfig), &'static str);
        let cases: &[Case] = &[
            ("--hidden", |c| c.model.hidden = vec![0].into(), "positive"),
            ("--dropout", |c| c.model.dropout = 1.0, "[0, 1)"),
            (
                "--batch-size",
                |c| c.batch.batch_size = BatchSize::Rows(0),
                "at least 1",
            ),
            (
                "--block-rows",
                |c| c.batch.block_rows = Some(0),
                "at least 1",
            ),
            ("--lr", |c| c.optim.lr = 0.0, "positive"),
            ("--lr", |c| c.optim.lr = f32::NAN, "positive"),
            ("--momentum", |c| c.optim.momentum = 1.5, "[0, 1]"),
            ("--dampening", |c| c.optim.dampening = -0.1, "[0, 1]"),
            (
                "--nesterov",
                |c| {
                    c.optim.nesterov = true;
                    c.optim.momentum = 0.0;
                },
                "--momentum > 0",
            ),
            (
                "--nesterov",
                |c| {
                    c.optim.nesterov = true;
                    c.optim.optimizer = crate::optim::OptimizerKind::Adam;
                },
                "SGD only",
            ),
            ("--weight-decay", |c| c.optim.weight_decay = -1.0, "≥ 0"),
            ("--beta1", |c| c.optim.beta1 = 1.0, "[0, 1)"),
            ("--beta2", |c| c.optim.beta2 = 1.5, "[0, 1)"),
            ("--eps", |c| c.optim.eps = 0.0, "positive"),
            (
                "--clip-grad-norm",
                |c| c.optim.clip_grad_norm = Some(0.0),
                "positive",
            ),
            (
                "--clip-grad-norm",
                |c| c.optim.clip_grad_norm = Some(f32::INFINITY),
                "positive",
            ),
            ("--val-fraction", |c| c.data.val_fraction = 1.5, "[0, 1)"),
            ("--classes", |c| c.data.classes = Some(1), "at least 2"),
            (
                "--patience",
                |c| {
                    c.run.patience = Some(0);
                    c.data.val_fraction = 0.2;
                },
                "at least 1",
            ),
            ("--patience", |c| c.run.patience = Some(2), "--val-fraction"),
            ("--min-delta", |c| c.run.min_delta = -1.0, "≥ 0"),
            ("--epochs", |c| c.run.epochs = 0, "at least 1"),
            ("--base-batch", |c| c.lr.base_batch = 0, "at least 1"),
            (
                "--warmup-steps",
                |c| {
                    c.lr.warmup_steps = Some(5);
                    c.lr.warmup_epochs = Some(1);
                },
                "not both",
            ),
            ("--min-lr", |c| c.lr.min_lr = 1.0, "[0, --lr]"),
            (
                "--lr-decay-epochs",
                |c| c.lr.lr_decay_epochs = 0,
                "at least 1",
            ),
            ("--lr-gamma", |c| c.lr.lr_gamma = 0.0, "positive"),
            ("--keep", |c| c.checkpoints.keep = 0, "at least 1"),
            ("--shard-size", |c| c.parallel.shard_size = 0, "at least 1"),
            (
                "--step-timeout",
                |c| c.parallel.step_timeout = Some(0.0),
                "positive",
            ),
            (
                "--prefetch",
                |c| c.parallel.prefetch = Some(0),
                "at least 1",
            ),
            ("--threads", |c| c.threads.threads = Some(0), "at least 1"),
        ];
        assert!(TrainConfig::default().validate().is_ok());
        let keys: Vec<String> = TrainConfig::settings().map(|s| s.key()).collect();
        for (flag, change, says) in cases {
            let mut c = TrainConfig::default();
            change(&mut c);
            let msg = c
                .validate()
                .expect_err(&format!("{flag}: not refused"))
                .to_string();
            assert!(msg.starts_with(&format!("{flag}: ")), "{flag}: {msg}");
            assert!(msg.contains(says), "{flag}: {msg} does not say {says:?}");
            assert!(
                keys.contains(&flag[2..].to_string()),
                "{flag} is no setting"
            );
        }
    }

    #[test]
    fn a_setting_that_would_do_nothing_is_refused_naming_what_it_needs() {
        type Case = (&'static str, fn(&mut TrainConfig), &'static str);
        let cases: &[Case] = &[
            (
                "--momentum",
                |c| {
                    c.optim.optimizer = OptimizerKind::Adam;
                    c.optim.momentum = 0.5;
                },
                "--optimizer sgd",
            ),
            ("--beta1", |c| c.optim.beta1 = 0.8, "--optimizer adam"),
            ("--eps", |c| c.optim.eps = 1e-6, "--optimizer adam"),
            ("--min-lr", |c| c.lr.min_lr = 0.001, "--schedule cosine"),
            ("--lr-gamma", |c| c.lr.lr_gamma = 0.5, "--schedule step"),
            ("--base-batch", |c| c.lr.base_batch = 64, "--lr-scaling"),
            (
                "--decay-bias",
                |c| c.optim.decay_bias = true,
                "--weight-decay",
            ),
            ("--min-delta", |c| c.run.min_delta = 0.1, "--patience"),
        ];
        for (flag, change, needs) in cases {
            let mut c = TrainConfig::default();
            change(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.starts_with(&format!("{flag}: ")), "{e}");
            assert!(e.contains("has no effect") && e.contains(needs), "{e}");
        }
        // The default values are no request: a config.toml holds every setting.
        let mut adam = TrainConfig::default();
        adam.optim.optimizer = OptimizerKind::Adam;
        assert!(adam.validate().is_ok());
    }

    #[test]
    fn the_thread_count_is_not_stored() {
        let mut c = TrainConfig::default();
        c.threads.threads = Some(7);
        assert!(!c.to_toml().unwrap().contains("threads"));
    }

    #[test]
    fn resume_keeps_numbers_and_lets_epochs_grow() {
        let saved = TrainConfig::default();
        let mut now = saved.clone();
        now.run.epochs = 30;
        now.threads.threads = Some(3);
        now.parallel.prefetch = Some(9);
        now.checkpoints.keep = 1;
        assert!(now.check_resumable(&saved).is_ok());
        now.run.epochs = 10;
        let e = now.check_resumable(&saved).unwrap_err().to_string();
        assert!(e.starts_with("--epochs: was 20"), "{e}");
        let mut now = saved.clone();
        now.optim.lr = 0.02;
        let e = now.check_resumable(&saved).unwrap_err().to_string();
        assert!(
            e.starts_with("--lr: was 0.01 when the run started, now 0.02"),
            "{e}"
        );
        let mut now = saved.clone();
        now.lr.schedule = Schedule::Cosine;
        let mut was = saved;
        was.lr.schedule = Schedule::Cosine;
        now.run.epochs = 25;
        assert!(
            now.check_resumable(&was)
                .unwrap_err()
                .to_string()
                .starts_with("--epochs")
        );
    }
}
