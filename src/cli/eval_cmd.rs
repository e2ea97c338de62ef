//! `dptrain eval`.

use std::path::PathBuf;

use clap::Args;

use dptrain::data::{Dataset, TargetKind};
use dptrain::eval::{Model, evaluate_model};
use dptrain::loss::Loss;
use dptrain::parallel::default_threads;
use dptrain::{Error, Result};

/// Flags of `dptrain eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A run directory (its final.safetensors is used) or a weights file.
    #[arg(long, value_name = "RUN_DIR|FILE")]
    model: PathBuf,
    /// Dataset directory holding x.npy and y.npy.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Worker threads [default: SLURM_CPUS_PER_TASK, else all cores]. Changes speed, never results.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

pub fn run(a: EvalArgs) -> Result<()> {
    let threads = default_threads(a.threads);
    if threads == 0 {
        return Err(Error::config("--threads", "must be at least 1"));
    }
    let data = Dataset::open(&a.data)?;
    // Only a weights file without dptrain's metadata needs this guess.
    let default_loss = match data.kind() {
        TargetKind::Classification { .. } => Loss::CrossEntropy,
        TargetKind::Regression { .. } => Loss::Mse,
    };
    let model = Model::load(&a.model, default_loss)?;
    let report = evaluate_model(&model, &data, threads)?;
    if a.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        say!("{}", report.to_string().trim_end());
    }
    Ok(())
}
