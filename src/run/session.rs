//! A training run as the `dptrain train` command does it, for any caller: open the data, start
//! or resume, record into the run directory, write the final weights and the summary.
//!
//! [`Session::prepare`] checks everything that can be refused before any file appears;
//! [`Session::run`] then creates (or reopens) the run directory and trains.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::checkpoint::{Checkpoint, CheckpointPolicy, CheckpointSettings, CheckpointStore};
use crate::data::{Dataset, SyntheticSpec, read_labels};
use crate::error::{Error, Result};
use crate::model::weights::{self, ModelMeta};
use crate::parallel::{Collective, SingleProcess, thread_warnings};
use crate::run::init::check_init_meta;
use crate::run::{Holds, MemoryLimit, MemoryNeed, RunDir, RunRecorder, Summary};
use crate::train::{Both, Observer, Outcome, Progress, TrainConfig, TrainState, Trainer};

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
    /// Whether this process writes the run directory (rank 0 of a shared run).
    writer: bool,
    init: Option<Vec<f32>>,
    meta: ModelMeta,
    resume_from: Option<Checkpoint<TrainState>>,
    warnings: Vec<String>,
    need: MemoryNeed,
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
    /// for an `--init` file that does not fit; [`Error::Config`] naming `--hidden` (or the flag
    /// behind the largest buffer) when the run needs more memory than it may use (see
    /// [`MemoryNeed`]).
    pub fn prepare(config: TrainConfig, output: Output, stop: Arc<AtomicBool>) -> Result<Self> {
        Session::prepare_shared(config, output, stop, Arc::new(SingleProcess))
    }

    /// [`Session::prepare`] for one of the processes of `collective`, which share every batch
    /// (see [`Trainer::with_collective`]). Rank 0 is the one writer: it checks and later writes
    /// the run directory; the others only read the checkpoint to resume from. Every process
    /// then compares what it is about to train with rank 0's ([`crate::run::agree`]).
    ///
    /// # Errors
    /// As [`Session::prepare`]; [`Error::World`] when the processes disagree.
    pub fn prepare_shared(
        config: TrainConfig,
        output: Output,
        stop: Arc<AtomicBool>,
        collective: Arc<dyn Collective>,
    ) -> Result<Self> {
        let writer = collective.rank() == 0;
        let threads = config.threads.count()?;
        let dataset = Arc::new(match &config.data.data {
            Some(dir) => Dataset::open(dir)?,
            None => SyntheticSpec::seed_example(config.run.seed).dataset(),
        });
        let data_dir = config.data.data.clone();
        let init_path = config.model.init.clone();
        let labels = match &data_dir {
            Some(dir) if dir.join("labels.json").exists() => {
                Some(read_labels(&dir.join("labels.json"))?)
            }
            _ => None,
        };
        // The class count comes from the dataset's own names when it names more classes than
        // its labels show (a split without the last classes) and --classes is not given.
        let mut config = config;
        if let (Some(names), None, crate::data::TargetKind::Classification { classes }) =
            (&labels, config.data.classes, dataset.kind())
            && names.len() > classes
        {
            config.data.classes = Some(names.len());
        }
        let trainer = Trainer::new(dataset, config, threads)?
            .with_stop_flag(stop)
            .with_collective(collective);
        // Before anything proportional to the model is allocated.
        let reads_weights = init_path.is_some() || matches!(output, Output::Resume(_));
        let need = MemoryNeed::of(
            &trainer,
            trainer.batch_rows(),
            output.path().is_some(),
            reads_weights,
        );
        if let Some(limit) = MemoryLimit::find(trainer.config().parallel.max_memory) {
            need.check(&limit)?;
        }
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
        let mut warnings = Vec::new();
        let resume_from = match &output {
            Output::Resume(out) => match CheckpointStore::new(out).newest::<TrainState>()? {
                Some((checkpoint, skipped)) => {
                    warnings.extend(
                        skipped
                            .into_iter()
                            .map(|why| format!("skipped a checkpoint: {why}")),
                    );
                    let done = checkpoint.state.progress.history.len();
                    let epochs = trainer.config().run.epochs;
                    if done > epochs {
                        return Err(Error::config(
                            "--epochs",
                            format!(
                                "the run in {} has already trained {done} epochs; --epochs \
                                 {epochs} is fewer: give --epochs {done} or more",
                                out.display()
                            ),
                        ));
                    }
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
        // What the --init file records is used or refused (also on resume: the run's model
        // keeps the file's class names).
        let labels = match &init_path {
            Some(path) => match weights::read_meta(path) {
                // A resumed run has its weights: the file may be gone.
                Err(_) if resume_from.is_some() => labels,
                Err(e) => return Err(e),
                Ok(Some(m)) => check_init_meta(
                    path,
                    &m,
                    &trainer,
                    labels.as_deref(),
                    data_dir.as_ref().map(|d| d.join("labels.json")).as_deref(),
                )?,
                Ok(None) => labels,
            },
            None => labels,
        };
        let meta = ModelMeta {
            activation: trainer.config().model.activation,
            loss: trainer.loss(),
            standardize: trainer.standardizer().cloned(),
            labels,
        };
        match &output {
            Output::Resume(out) if resume_from.is_none() && writer => {
                crate::fsutil::check_out("--out", out, crate::fsutil::OutKind::Dir)?;
                if let Holds::Run(f) = Holds::of(out) {
                    return Err(Error::config(
                        "--resume",
                        format!(
                            "{} holds a run ({f} exists) but no checkpoint that reads back \
                             whole, so there is nothing to continue from and starting again \
                             would replace it: choose a new --out",
                            out.display()
                        ),
                    ));
                }
            }
            _ => {}
        }
        match &output {
            Output::New(out) | Output::Resume(out) if resume_from.is_none() && writer => {
                RunDir::check(out)?;
                if Holds::of(out) == Holds::Unstarted {
                    warnings.push(match output {
                        Output::New(_) => format!(
                            "replacing the run in {}, which stopped before its first checkpoint",
                            out.display()
                        ),
                        _ => format!(
                            "the run in {} stopped before its first checkpoint: starting it \
                             from the beginning",
                            out.display()
                        ),
                    });
                }
            }
            _ => {}
        }
        let c = trainer.config();
        if output == Output::None {
            let unused = [
                (
                    "--checkpoint-every",
                    c.checkpoints.checkpoint_every.is_some(),
                ),
                (
                    "--keep",
                    c.checkpoints.keep != CheckpointSettings::default().keep,
                ),
            ];
            if let Some((flag, _)) = unused.iter().find(|(_, set)| *set) {
                return Err(Error::config(
                    *flag,
                    "has no effect without --out (a run without a directory writes no \
                     checkpoints): add --out DIR or drop it",
                ));
            }
        }
        let train_rows = trainer.split().train.len();
        if let crate::pipeline::BatchSize::Rows(b) = c.batch.batch_size
            && b > train_rows
        {
            warnings.push(format!(
                "--batch-size {b} is larger than the {train_rows} training rows: every step \
                 takes all of them, as --batch-size full would"
            ));
        }
        if c.run.noise_scale && trainer.batch_rows() <= c.parallel.shard_size {
            warnings.push(format!(
                "--noise-scale needs batches of two shards or more: a batch of {} rows is one \
                 shard of --shard-size {}, so no estimate is made",
                trainer.batch_rows(),
                c.parallel.shard_size
            ));
        }
        warnings.extend(thread_warnings(
            threads,
            trainer.batch_rows(),
            c.parallel.shard_size,
            trainer.mlp().num_params(),
            None,
        ));
        crate::run::agree(&trainer, resume_from.as_ref().map(|c| &c.state.progress))?;
        Ok(Session {
            trainer,
            output,
            writer,
            init,
            meta,
            resume_from,
            warnings,
            need,
        })
    }

    /// The memory the run is expected to need, part by part (what `--verbose` prints).
    pub fn memory_need(&self) -> &MemoryNeed {
        &self.need
    }

    /// The trainer (model, split, batch rows, threads).
    pub fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    /// Where a resumed run picks up (`None` for a run from the start).
    pub fn resumed(&self) -> Option<&Progress> {
        self.resume_from.as_ref().map(|c| &c.state.progress)
    }

    /// Whether the run resumed has nothing left to train: it finished its epochs, or early
    /// stopping ended it. [`Session::run`] then leaves its files as they are.
    pub fn finished_already(&self) -> bool {
        self.resume_from.as_ref().is_some_and(|c| {
            let p = &c.state.progress;
            p.stopped || p.epoch >= self.trainer.config().run.epochs
        })
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
        let finished_already = self.finished_already();
        let Session {
            trainer,
            output,
            writer,
            init,
            meta,
            resume_from,
            ..
        } = self;
        // A finished run resumed again keeps its files as they are: there is nothing to add.
        let kept = output
            .path()
            .filter(|out| {
                finished_already
                    && out.join("final.safetensors").is_file()
                    && out.join("summary.json").is_file()
            })
            .map(Path::to_path_buf);
        let mut recorder = match output.path() {
            None => None,
            Some(_) if kept.is_some() || !writer => None,
            Some(out) => {
                let dir = match (&output, &resume_from) {
                    (_, Some(c)) => RunDir::reopen(out, &c.state.progress.history)?,
                    // Nothing, or a run that never checkpointed (which is replaced).
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
            let wrote_checkpoint = resume_from.is_some();
            let result = match resume_from {
                Some(c) => trainer.resume(c, &mut both),
                None => trainer.run(init, &mut both),
            };
            let dir = output.path();
            result.map_err(|e| explain(e, dir, wrote_checkpoint))?
        };
        let summary = match &kept {
            Some(out) => std::fs::read_to_string(out.join("summary.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_else(|| Summary::of(&outcome, 0.0)),
            None => Summary {
                processes: trainer.collective().world_size(),
                ..Summary::of(&outcome, started.elapsed().as_secs_f64())
            },
        };
        if let Some(r) = &recorder {
            r.dir()
                .write_weights("final", &outcome.mlp, &outcome.params, Some(&meta))?;
            r.dir().write_summary(&summary)?;
        }
        Ok(Finished { outcome, summary })
    }
}

/// The trainer's error `e` as the user of a run directory `dir` (`None`: nothing written) needs
/// it: an interrupted run without a directory saved nothing; a diverged run whose directory
/// holds checkpoints (`wrote_checkpoint`, or written since) cannot be rerun in place.
fn explain(e: Error, dir: Option<&Path>, wrote_checkpoint: bool) -> Error {
    match (e, dir) {
        (Error::Interrupted { epoch, step }, None) => Error::InterruptedUnsaved { epoch, step },
        (
            Error::Diverged {
                epoch,
                step,
                what,
                lr,
            },
            Some(dir),
        ) if wrote_checkpoint || Holds::of(dir) != Holds::Unstarted => Error::DivergedRun {
            dir: dir.to_path_buf(),
            epoch,
            step,
            what,
            lr,
        },
        (e, _) => e,
    }
}
