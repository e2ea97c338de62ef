//! A study as `dptrain sweep` runs it, for any caller: check everything against the data, train
//! the chosen batch sizes into `SWEEP/runs/`, and analyse.

use std::path::Path;
use std::sync::Arc;

use crate::data::{Dataset, SyntheticSpec};
use crate::error::{Error, Result};
use crate::pipeline::BatchSize;
use crate::run::{MemoryLimit, MemoryNeed};
use crate::sweep::{self, StudyIdentity, StudyRuns, SweepConfig, SweepReport};
use crate::train::{TrainConfig, Trainer};

/// A checked study, ready to train.
#[derive(Debug)]
pub struct Study {
    dataset: Arc<Dataset>,
    base: TrainConfig,
    config: SweepConfig,
    threads: usize,
    chosen: Vec<BatchSize>,
    identity: StudyIdentity,
    train_rows: usize,
}

impl Study {
    /// Opens the data and checks the training settings `base` and the study's `config`
    /// against it, and that `out` holds none of the run files this study would write; nothing
    /// is written yet.
    ///
    /// # Errors
    /// [`Error::Config`] naming the flag, [`Error::Data`] naming the file.
    pub fn prepare(base: TrainConfig, config: SweepConfig, out: &Path) -> Result<Self> {
        base.validate()?;
        crate::fsutil::check_out("--out", out, crate::fsutil::OutKind::Dir)?;
        if base.data.val_fraction == 0.0 {
            return Err(Error::config(
                "--val-fraction",
                "a sweep measures validation loss: give a fraction above 0",
            ));
        }
        let threads = base.threads.count()?;
        let dataset = Arc::new(match &base.data.data {
            Some(dir) => Dataset::open(dir)?,
            None => SyntheticSpec::seed_example(base.run.seed).dataset(),
        });
        let trainer = Trainer::new(dataset.clone(), base.clone(), threads)?;
        config.validate(trainer.split().train.len())?;
        // Every cell of the grid must be a valid run (a momentum of the grid with --nesterov,
        // say): refused now, not hours in.
        for spec in sweep::grid::runs(&base, &config) {
            sweep::grid::config(&base, BatchSize::Full, &spec)
                .validate()
                .map_err(|e| match e {
                    Error::Config { flag, message }
                        if config.momentum_grid.is_some()
                            && ["--momentum", "--beta1", "--nesterov"].contains(&flag.as_str()) =>
                    {
                        Error::config("--momentum-grid", format!("{flag}: {message}"))
                    }
                    e => e,
                })?;
        }
        let chosen = config.chosen();
        // The largest batch size needs the most memory: refuse before anything is allocated.
        let train_rows = trainer.split().train.len();
        let largest = chosen
            .iter()
            .map(|b| match b {
                BatchSize::Full => train_rows,
                BatchSize::Rows(n) => (*n).min(train_rows),
            })
            .max()
            .unwrap_or(1);
        if let Some(limit) = MemoryLimit::find(base.parallel.max_memory) {
            MemoryNeed::of(&trainer, largest, false, false).check(&limit)?;
        }
        for &b in &chosen {
            let f = sweep::run_file(out, b);
            if f.exists() {
                return Err(Error::config(
                    "--out",
                    format!("{} already exists; choose a new directory", f.display()),
                ));
            }
        }
        // What the run files record, so that `--collect` merges only comparable runs.
        let mut train = trainer.identity()?;
        train.config.threads.threads = None;
        train.config.parallel.max_memory = None;
        let mut sweep = config.clone();
        sweep.task_index = None;
        let identity = StudyIdentity { train, sweep };
        Ok(Study {
            dataset,
            base,
            config,
            threads,
            chosen,
            identity,
            train_rows,
        })
    }

    /// The training settings every run starts from (before its batch size, seed and
    /// learning-rate factor).
    pub fn train_config(&self) -> &TrainConfig {
        &self.base
    }

    /// The study's settings.
    pub fn config(&self) -> &SweepConfig {
        &self.config
    }

    /// Trains every chosen batch size, writing each one's runs to `out/runs/` as it finishes
    /// and calling `log` with a line per run; returns all the runs.
    ///
    /// # Errors
    /// As [`sweep::run_batch_size`]; [`Error::Io`] writing the run files.
    pub fn run(&self, out: &Path, log: &mut dyn FnMut(&str)) -> Result<StudyRuns> {
        std::fs::create_dir_all(out.join("runs")).map_err(|e| {
            Error::config(
                "--out",
                format!(
                    "cannot create {}: {}",
                    out.display(),
                    crate::fsutil::plain_reason(&e)
                ),
            )
        })?;
        let mut all = StudyRuns::default();
        // Largest first: its best loss is usually the worst, which sets the level the other
        // batch sizes are pruned against under an automatic target (`sweep::prune`).
        let mut order = self.chosen.clone();
        order.sort_by_key(|b| std::cmp::Reverse(self.rows_of(*b)));
        for &b in &order {
            let level = sweep::prune::level(self.config.target_loss, &all.runs);
            let runs = sweep::run_batch_size(
                &self.dataset,
                &self.base,
                &self.config,
                b,
                level,
                self.threads,
                log,
            )?;
            sweep::write_runs(out, b, &self.identity, &runs)?;
            all.runs.extend(runs.runs);
            all.throughput.extend(runs.throughput);
        }
        Ok(all)
    }

    /// Rows per step of batch size `b` here.
    fn rows_of(&self, b: BatchSize) -> usize {
        match b {
            BatchSize::Full => self.train_rows,
            BatchSize::Rows(n) => n.min(self.train_rows),
        }
    }

    /// The study's analysis of `runs` (these or collected ones).
    pub fn analyze(&self, runs: StudyRuns) -> SweepReport {
        sweep::analyze(runs, self.config.target_loss, self.config.step_budget)
    }
}
