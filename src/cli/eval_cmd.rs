//! `dptrain eval`.

use std::path::PathBuf;

use clap::Args;

use dptrain::Result;
use dptrain::data::{Dataset, LabelBound, TargetKind};
use dptrain::eval::{Model, evaluate_model};
use dptrain::loss::Loss;
use dptrain::parallel::ThreadFlags;

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
    #[command(flatten)]
    threads: ThreadFlags,
}

pub fn run(a: EvalArgs) -> Result<()> {
    let threads = a.threads.count()?;
    // The model's classes bound the labels: a small test split may hold labels above its rows.
    let data = Dataset::open_with(&a.data, LabelBound::Model)?;
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
