//! `dptrain sweep`: the batch-size study.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use dptrain::data::{Dataset, SyntheticSpec};
use dptrain::sweep::{self, RunRecord, SweepFlags, Target};
use dptrain::train::{TrainFlags, Trainer};
use dptrain::{Error, Result};

use super::train_cmd::TrainArgs;

/// Flags of `dptrain sweep` (plus every model, optimizer and data flag of `train`).
#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    sweep: SweepFlags,
    /// Merge the runs found in these sweep directories (array tasks) into one table and plots,
    /// written to --out.
    #[arg(long, num_args = 1.., value_name = "DIR", help_heading = "Sweep")]
    collect: Vec<PathBuf>,
    #[command(flatten)]
    train: TrainArgs,
}

fn finish(runs: Vec<RunRecord>, target: Target, budget: Option<u64>, out: &Path) -> Result<()> {
    let report = sweep::analyze(runs, target, budget);
    sweep::report::write(&report, out)?;
    sweep::plot::write_plots(&report, out)?;
    say!("{}", sweep::report::table(&report).trim_end());
    say!(
        "wrote {}/sweep.csv, sweep.json and plots (*.svg)",
        out.display()
    );
    Ok(())
}

pub fn run(a: SweepArgs) -> Result<()> {
    let (train, sweep_flags) = match a.train.config_file() {
        Some(path) => {
            let mut file_sweep = SweepFlags::default();
            let file_train = TrainFlags::from_file(path, &mut [&mut file_sweep])?;
            (
                a.train.settings().clone().or(file_train),
                a.sweep.clone().or(file_sweep),
            )
        }
        None => (a.train.settings().clone(), a.sweep.clone()),
    };
    let config = sweep_flags.resolve(Default::default());
    let Some(out) = a.train.out().map(Path::to_path_buf) else {
        return Err(Error::config("--out", "a sweep needs an output directory"));
    };
    if !a.collect.is_empty() {
        let runs = sweep::collect(&a.collect)?;
        std::fs::create_dir_all(&out).map_err(|e| Error::config("--out", e.to_string()))?;
        return finish(runs, config.target_loss, config.step_budget, &out);
    }
    if let Some(flag) = a.train.single_run_flag(&train) {
        let why = if flag == "--batch-size" {
            "a sweep trains at every --batch-sizes value; drop --batch-size"
        } else {
            "applies to a single training run, not to a sweep (each run starts fresh and \
             trains its whole epoch budget)"
        };
        return Err(Error::config(flag, why));
    }
    let base = train.resolve_over(sweep::train_defaults());
    base.validate()?;
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
    // Validate everything against the data before training anything.
    let train_rows = Trainer::new(dataset.clone(), base.clone(), threads)?
        .split()
        .train
        .len();
    config.validate(train_rows)?;
    let chosen = config.chosen();
    for &b in &chosen {
        let f = sweep::run_file(&out, b);
        if f.exists() {
            return Err(Error::config(
                "--out",
                format!("{} already exists; choose a new directory", f.display()),
            ));
        }
    }
    std::fs::create_dir_all(out.join("runs"))
        .map_err(|e| Error::config("--out", format!("cannot create {}: {e}", out.display())))?;
    let mut all = Vec::new();
    for b in chosen {
        let runs = sweep::run_batch_size(&dataset, &base, &config, b, threads, &mut |line| {
            say!("{line}")
        })?;
        sweep::write_runs(&out, b, &runs)?;
        all.extend(runs);
    }
    if config.task_index.is_some() {
        say!(
            "wrote {}; merge the tasks with: dptrain sweep --collect DIR… --out DIR",
            out.join("runs").display()
        );
        return Ok(());
    }
    finish(all, config.target_loss, config.step_budget, &out)
}
