//! `dptrain predict`.

use std::path::PathBuf;

use clap::Args;

use dptrain::Result;
use dptrain::data::FeatureMatrix;
use dptrain::eval::{Model, PredictionFormat, Predictions};
use dptrain::loss::Loss;
use dptrain::parallel::ThreadFlags;

/// Flags of `dptrain predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// A run directory (its final.safetensors is used) or a weights file.
    #[arg(long, value_name = "RUN_DIR|FILE")]
    model: PathBuf,
    /// Dataset directory holding x.npy (y.npy is not needed).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Output file: .csv (class names where the model has them) or .npy (int64 class ids, or
    /// float32 values); never overwritten.
    #[arg(long, value_name = "FILE.csv|FILE.npy")]
    out: PathBuf,
    /// Write the network's raw outputs (a classifier's logits, float32) instead of class ids.
    #[arg(long)]
    raw: bool,
    #[command(flatten)]
    threads: ThreadFlags,
}

pub fn run(a: PredictArgs) -> Result<()> {
    let threads = a.threads.count()?;
    // Refuse a bad --out before any work is done.
    PredictionFormat::for_path(&a.out)?;
    let x = FeatureMatrix::open(&a.data)?;
    // A weights file without dptrain's metadata: raw outputs.
    let model = Model::load(&a.model, Loss::Mse)?;
    model.check_features(&x.path(), x.features())?;
    let predictions = if a.raw {
        Predictions::Values {
            outputs: model.mlp().outputs(),
            values: model.outputs(x.x(), threads)?,
        }
    } else {
        model.predict(x.x(), threads)?
    };
    let names = model.meta().labels.is_some().then(|| model.class_names());
    predictions.write(&a.out, names.as_deref())?;
    say!(
        "wrote {} predictions to {}",
        predictions.rows(),
        a.out.display()
    );
    Ok(())
}
