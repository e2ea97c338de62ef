//! A training run as the `dptrain train` command does it, for any caller: open the data, start
//! or resume, record into the run directory, write the final weights and the summary.
//!
//! [`Session::prepare`] checks everything that can be refused before any file appears;
//! [`Session::run`] then creates (or reopens) the run directory and trains.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::checkpoint::{Checkpoint, CheckpointPolicy, CheckpointStore};
use crate::data::{Dataset, SyntheticSpec, read_labels};
use crate::error::{Error, Result};
use crate::model::weights::{self, ModelMeta};
use crate::parallel::thread_warnings;
use crate::run::{RunDir, RunRecorder, Summary};
use crate::train::{
    Both, EpochMetrics, Observer, Outcome, Progress, TrainConfig, TrainState, Trainer,
};

/// Where a session writes, and whether it continues what is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Nothing is written (the console shows the run).
    None,
    /// A new run directory, which must not hold a run yet.
    New(PathBuf),
    /// Continue the run in this directory from its newest readable checkpoint; start it when
    /// there is none yet (so a requeued batch job can always pass `--resume`).
    Resume(PathBuf),
}

impl Output {
    fn path(&self) -> Option<&Path> {
        match self {
            Output::None => None,
            Output::New(p) | Output::Resume(p) => Some(p),
        }
    }
}

/// A checked, ready-to-train run.
#[derive(Debug)]
pub struct Session {
    trainer: Trainer,
    output: Output,
    init: Option<Vec<f32>>,
    meta: ModelMeta,
    resume_from: Option<Checkpoint<TrainState>>,
    warnings: Vec<String>,
}

/// What a finished session hands back.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The run's outcome.
    pub outcome: Outcome,
    /// What `summary.json` says (also when nothing was written).
    pub summary: Summary,
}

impl Session {
    /// Opens the data, builds the trainer on `config.parallel.threads()` threads, reads the
    /// initial weights or the checkpoint to resume from, and checks that the run directory can
    /// be written; nothing is written yet. `stop`, once raised, ends the run at the next step
    /// boundary with a checkpoint.
    ///
    /// # Errors
    /// [`Error::Config`] naming the flag, [`Error::Data`] naming the file, [`Error::Weights`]
    /// for an `--init` file that does not fit.
    pub fn prepare(config: TrainConfig, output: Output, stop: Arc<AtomicBool>) -> Result<Self> {
        let threads = config.threads.count()?;
        let dataset = Arc::new(match &config.data.data {
            Some(dir) => Dataset::open(dir)?,
            None => SyntheticSpec::seed_example(config.run.seed).dataset(),
        });
        let data_dir = config.data.data.clone();
        let init_path = config.model.init.clone();
        let trainer = Trainer::new(dataset, config, threads)?.with_stop_flag(stop);
        let labels = match &data_dir {
            Some(dir) if dir.join("labels.json").exists() => {
                Some(read_labels(&dir.join("labels.json"))?)
            }
            _ => None,
        };
        if let (Some(labels), Some(dir)) = (&labels, &data_dir)
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
        let meta = ModelMeta {
            activation: trainer.config().model.activation,
            loss: trainer.loss(),
            standardize: trainer.standardizer().cloned(),
            labels,
        };
        let mut warnings = Vec::new();
        let resume_from = match &output {
            Output::Resume(out) => match CheckpointStore::new(out).newest::<TrainState>()? {
                Some((checkpoint, skipped)) => {
                    warnings.extend(
                        skipped
                            .into_iter()
                            .map(|why| format!("skipped a checkpoint: {why}")),
                    );
                    trainer.check_resumable(&checkpoint.state.identity)?;
                    Some(checkpoint)
                }
                None => None,
            },
            _ => None,
        };
        let init = match (&init_path, &resume_from) {
            (Some(path), None) => Some(weights::load(trainer.mlp(), path)?),
            _ => None,
        };
        match &output {
            Output::New(out) => RunDir::check(out)?,
            Output::Resume(out) if resume_from.is_none() && !out.join("config.toml").is_file() => {
                RunDir::check(out)?
            }
            _ => {}
        }
        let c = trainer.config();
        warnings.extend(thread_warnings(
            threads,
            trainer.batch_rows(),
            c.parallel.shard_size,
            trainer.mlp().num_params(),
            None,
        ));
        Ok(Session {
            trainer,
            output,
            init,
            meta,
            resume_from,
            warnings,
        })
    }

    /// The trainer (model, split, batch rows, threads).
    pub fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    /// Where a resumed run picks up (`None` for a run from the start).
    pub fn resumed(&self) -> Option<&Progress> {
        self.resume_from.as_ref().map(|c| &c.state.progress)
    }

    /// Warnings for the user (one line each): skipped checkpoints, threads that cannot help.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Creates or reopens the run directory (with an output), writes `config.toml`, trains
    /// with `observer` and the directory's recorder, then writes `final.safetensors` and
    /// `summary.json`.
    ///
    /// # Errors
    /// As [`Trainer::run`] and [`Trainer::resume`]; [`Error::Io`] writing the directory.
    pub fn run(self, observer: &mut (dyn Observer + Send)) -> Result<Finished> {
        let Session {
            trainer,
            output,
            init,
            meta,
            resume_from,
            ..
        } = self;
        let mut recorder = match output.path() {
            None => None,
            Some(out) => {
                let dir = match (&output, &resume_from) {
                    (_, Some(c)) => RunDir::reopen(out, &c.state.progress.history)?,
                    (Output::Resume(_), None) if out.join("config.toml").is_file() => {
                        RunDir::reopen::<EpochMetrics>(out, &[])?
                    }
                    _ => RunDir::create(out)?,
                };
                dir.write_config(&trainer.config().to_toml()?)?;
                Some(RunRecorder::new(
                    dir,
                    trainer.mlp().clone(),
                    meta.clone(),
                    CheckpointPolicy::new(&trainer.config().checkpoints),
                    trainer.identity()?,
                ))
            }
        };
        let started = Instant::now();
        let outcome = {
            let mut both = Both(&mut *observer, recorder.as_mut());
            match resume_from {
                Some(c) => trainer.resume(c, &mut both)?,
                None => trainer.run(init, &mut both)?,
            }
        };
        let summary = Summary::of(&outcome, started.elapsed().as_secs_f64());
        if let Some(r) = &recorder {
            r.dir()
                .write_weights("final", &outcome.mlp, &outcome.params, Some(&meta))?;
            r.dir().write_summary(&summary)?;
        }
        Ok(Finished { outcome, summary })
    }
}
