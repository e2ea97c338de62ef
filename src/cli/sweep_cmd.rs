//! `dptrain sweep`: the batch-size study.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use dptrain::data::{Dataset, SyntheticSpec};
use dptrain::optim::LrScaling;
use dptrain::parallel::default_threads;
use dptrain::sweep::{self, RunRecord, SweepConfig, Target};
use dptrain::train::{BatchSize, Trainer};
use dptrain::{Error, Result};

use super::train_cmd::TrainArgs;

/// Flags of `dptrain sweep` (plus every model, optimizer and data flag of `train`).
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Batch sizes to train at, e.g. 16,64,256,1024,full.
    #[arg(long, value_name = "B,B,…", help_heading = "Sweep")]
    batch_sizes: Option<String>,
    /// Target validation loss, or "auto" (2% above the worst batch size's best loss).
    #[arg(
        long,
        default_value = "auto",
        value_name = "X|auto",
        help_heading = "Sweep"
    )]
    target_loss: String,
    /// Factors on the scaled learning rate; the fastest to the target is kept per batch size.
    #[arg(
        long,
        default_value = "1",
        value_name = "F,F,…",
        help_heading = "Sweep"
    )]
    lr_grid: String,
    /// Seeds per (batch size, learning rate); steps to target are their median.
    #[arg(long, default_value_t = 1, help_heading = "Sweep")]
    seeds: usize,
    /// Step budget for "best validation loss at a fixed step budget" [default: the largest
    /// batch size's steps].
    #[arg(long, value_name = "N", help_heading = "Sweep")]
    step_budget: Option<u64>,
    /// Validation evaluations per epoch (resolution of steps to target).
    #[arg(long, default_value_t = 8, value_name = "N", help_heading = "Sweep")]
    evals_per_epoch: usize,
    /// Train only the batch size at this 0-based index of --batch-sizes (one Slurm array
    /// task), writing its runs into --out/runs/ for a later --collect.
    #[arg(long, value_name = "I", help_heading = "Sweep")]
    task_index: Option<usize>,
    /// Merge the runs found in these sweep directories (array tasks) into one table and plots,
    /// written to --out.
    #[arg(long, num_args = 1.., value_name = "DIR", help_heading = "Sweep")]
    collect: Vec<PathBuf>,
    #[command(flatten)]
    train: TrainArgs,
}

fn parse_list<T: std::str::FromStr>(flag: &str, text: &str) -> Result<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    if items.iter().all(|s| s.is_empty()) {
        return Err(Error::config(flag, "is empty; give a comma-separated list"));
    }
    items
        .iter()
        .map(|s| {
            s.parse::<T>()
                .map_err(|e| Error::config(flag, format!("item {s:?}: {e}")))
        })
        .collect()
}

fn run_file(out: &Path, label: &str) -> PathBuf {
    out.join("runs").join(format!("b{label}.json"))
}

fn read_runs(dir: &Path) -> Result<Vec<RunRecord>> {
    let runs_dir = dir.join("runs");
    let entries = std::fs::read_dir(&runs_dir).map_err(|e| {
        Error::config(
            "--collect",
            format!("{}: no sweep runs here ({e})", runs_dir.display()),
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut runs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| Error::data(&f, e.to_string()))?;
        let mut r: Vec<RunRecord> = serde_json::from_str(&text)
            .map_err(|e| Error::data(&f, format!("not a sweep run file: {e}")))?;
        runs.append(&mut r);
    }
    Ok(runs)
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
    let target: Target = a
        .target_loss
        .parse()
        .map_err(|e: String| Error::config("--target-loss", e))?;
    let train = a.train.merge_file()?;
    let Some(out) = train.out().map(Path::to_path_buf) else {
        return Err(Error::config("--out", "a sweep needs an output directory"));
    };
    if !a.collect.is_empty() {
        let mut runs = Vec::new();
        for dir in &a.collect {
            runs.append(&mut read_runs(dir)?);
        }
        if runs.is_empty() {
            return Err(Error::config("--collect", "the directories hold no runs"));
        }
        std::fs::create_dir_all(&out).map_err(|e| Error::config("--out", e.to_string()))?;
        return finish(runs, target, a.step_budget, &out);
    }
    if let Some(flag) = train.single_run_flag() {
        return Err(Error::config(
            flag,
            "applies to a single training run, not to a sweep (each run starts fresh and \
             trains its whole epoch budget)",
        ));
    }
    if train.has_batch_size() {
        return Err(Error::config(
            "--batch-size",
            "a sweep trains at every --batch-sizes value; drop --batch-size",
        ));
    }
    let Some(sizes) = a.batch_sizes.as_deref() else {
        return Err(Error::config(
            "--batch-sizes",
            "give the batch sizes to compare, e.g. 16,64,256,1024,full",
        ));
    };
    let batch_sizes: Vec<BatchSize> = parse_list("--batch-sizes", sizes)?;
    let mut base = train.config()?;
    if !train.has_lr_scaling() {
        // The study compares batch sizes at their scaled learning rates (Goyal et al.).
        base.lr_scaling = LrScaling::Linear;
    }
    if !train.has_val_fraction() {
        base.val_fraction = 0.2; // steps to a target need a held-out loss
    }
    if base.val_fraction == 0.0 {
        return Err(Error::config(
            "--val-fraction",
            "a sweep measures validation loss: give a fraction above 0",
        ));
    }
    let config = SweepConfig {
        batch_sizes,
        target,
        lr_grid: parse_list("--lr-grid", &a.lr_grid)?,
        seeds: a.seeds,
        step_budget: a.step_budget,
        evals_per_epoch: a.evals_per_epoch.max(1),
    };
    let threads = default_threads(train.threads());
    let dataset = Arc::new(match train.data() {
        Some(dir) => Dataset::open(dir)?,
        None => SyntheticSpec::seed_example(base.seed).dataset(),
    });
    // Validate everything against the data before training anything.
    let train_rows = Trainer::new(dataset.clone(), base.clone(), threads)?
        .split()
        .train
        .len();
    config.validate(train_rows)?;
    let chosen: Vec<BatchSize> = match a.task_index {
        Some(i) => vec![*config.batch_sizes.get(i).ok_or_else(|| {
            Error::config(
                "--task-index",
                format!(
                    "{i} is past the {} batch sizes (0-based)",
                    config.batch_sizes.len()
                ),
            )
        })?],
        None => config.batch_sizes.clone(),
    };
    for b in &chosen {
        let f = run_file(&out, &b.to_string());
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
        let json = serde_json::to_vec(&runs).expect("runs serialise");
        dptrain::fsutil::write_atomic(&run_file(&out, &b.to_string()), |w| {
            std::io::Write::write_all(w, &json)
        })?;
        all.extend(runs);
    }
    if a.task_index.is_some() {
        say!(
            "wrote {}; merge the tasks with: dptrain sweep --collect DIR… --out DIR",
            out.join("runs").display()
        );
        return Ok(());
    }
    finish(all, config.target, config.step_budget, &out)
}
