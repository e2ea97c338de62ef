//! `dptrain sweep`: the batch-size study.

use std::path::{Path, PathBuf};

use clap::Args;

use dptrain::setting::show;
use dptrain::sweep::{self, Study, SweepConfig, SweepFlags, SweepReport};
use dptrain::train::{TrainConfig, TrainFlags};
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

/// `dptrain sweep --help` as the sweep runs: the defaults it changes ([`sweep::train_defaults`]),
/// its `--out`, and without the single-run flags it refuses.
pub fn with_sweep_help(cli: clap::Command) -> clap::Command {
    cli.mut_subcommand("sweep", |mut c| {
        for (field, value) in sweep::changed_defaults() {
            c = c.mut_arg(field.as_str(), |a| {
                let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                let text = help.split(" [default: ").next().unwrap_or("").to_string();
                a.help(format!("{text} [default: {value}]"))
            });
        }
        for single_run in [
            "resume",
            "init",
            "checkpoint_every",
            "patience",
            "batch_size",
        ] {
            c = c.mut_arg(single_run, |a| a.hide(true));
        }
        c.mut_arg("out", |a| {
            a.help(
                "Sweep directory: runs/b<B>.json per batch size (array tasks add theirs), then \
                 report.html, sweep.csv, sweep.json and the plots (*.svg)",
            )
        })
    })
}

/// A line of the settings that shaped the study, for the head of `report.html`.
fn settings_line(
    train: Option<&TrainConfig>,
    sweep: &SweepConfig,
    collected: &[PathBuf],
) -> String {
    let mut parts = Vec::new();
    if let Some(t) = train {
        parts.push(match &t.data.data {
            Some(d) => format!("data {}", d.display()),
            None => "generated data".to_string(),
        });
        parts.push(format!("--hidden {}", show(&t.model.hidden)));
        parts.push(format!("--optimizer {}", show(&t.optim.optimizer)));
        parts.push(format!(
            "--lr {} scaled {}",
            t.optim.lr,
            show(&t.lr.lr_scaling)
        ));
        parts.push(format!("--epochs {}", t.run.epochs));
    }
    if !collected.is_empty() {
        let dirs: Vec<String> = collected.iter().map(|d| d.display().to_string()).collect();
        parts.push(format!("collected from {}", dirs.join(" ")));
    }
    parts.push(format!("--lr-grid {}", show(&sweep.lr_grid)));
    if let Some(m) = &sweep.momentum_grid {
        parts.push(format!("--momentum-grid {}", show(m)));
    }
    if let Some(o) = &sweep.optimizers {
        parts.push(format!("--optimizers {}", show(o)));
    }
    parts.push(format!("--seeds {}", sweep.seeds));
    parts.push(format!("--prune {}", sweep.prune));
    parts.join("; ")
}

/// Writes the report, plots and `report.html` into `out` and prints the table.
fn show_report(report: &SweepReport, out: &Path, settings: &str) -> Result<()> {
    sweep::report::write(report, out)?;
    let skipped = sweep::plot::write_plots(report, out)?;
    sweep::html::write(report, out, &out.display().to_string(), settings)?;
    say!("{}", sweep::report::table(report).trim_end());
    for line in &skipped {
        say!("{line}");
    }
    say!(
        "wrote {}/report.html, sweep.csv, sweep.json and plots (*.svg)",
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
        dptrain::fsutil::create_out_dir("--out", &out)?;
        let report = sweep::analyze(runs, config.target_loss, config.step_budget);
        return show_report(&report, &out, &settings_line(None, &config, &a.collect));
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
    let study = Study::prepare(train.resolve_over(sweep::train_defaults()), config, &out)?;
    for warning in a.train.settings().no_effect_warnings(study.train_config()) {
        eprintln!("dptrain: warning: {warning}");
    }
    let runs = study.run(&out, &mut |line| say!("{line}"))?;
    if study.config().task_index.is_some() {
        say!(
            "wrote {}; merge the tasks with: dptrain sweep --collect DIR… --out DIR",
            out.join("runs").display()
        );
        return Ok(());
    }
    let settings = settings_line(Some(study.train_config()), study.config(), &[]);
    show_report(&study.analyze(runs), &out, &settings)
}
