//! `dptrain gen`.

use std::path::PathBuf;

use clap::Args;

use dptrain::data::{SyntheticSpec, Task};
use dptrain::{Error, Result};

/// Flags of `dptrain gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Kind of targets: float values or integer class labels.
    #[arg(long, value_enum, default_value = "regression")]
    task: TaskArg,
    /// Number of rows.
    #[arg(long, default_value_t = 1000)]
    rows: usize,
    /// Features per row.
    #[arg(long, default_value_t = 20)]
    features: usize,
    /// Number of classes (classification).
    #[arg(long, default_value_t = 2)]
    classes: usize,
    /// Outputs per row (regression).
    #[arg(long, default_value_t = 1)]
    outputs: usize,
    /// Standard deviation of the noise on the teacher's outputs.
    #[arg(long, default_value_t = 0.1)]
    noise: f32,
    /// Seed of the teacher network, the inputs and the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Directory to write x.npy and y.npy into (created; existing files are never replaced).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TaskArg {
    Regression,
    Classification,
}

pub fn run(a: GenArgs) -> Result<()> {
    let bad = |flag: &str, msg: &str| Err(Error::config(flag, msg));
    if a.rows == 0 {
        return bad("--rows", "must be at least 1");
    }
    if a.features == 0 {
        return bad("--features", "must be at least 1");
    }
    if !(a.noise.is_finite() && a.noise >= 0.0) {
        return bad("--noise", "must be a finite number ≥ 0");
    }
    let (task, outputs) = match a.task {
        TaskArg::Regression if a.outputs == 0 => return bad("--outputs", "must be at least 1"),
        TaskArg::Regression => (Task::Regression, a.outputs),
        TaskArg::Classification if a.classes < 2 => return bad("--classes", "must be at least 2"),
        TaskArg::Classification => (Task::Classification, a.classes),
    };
    let spec = SyntheticSpec {
        task,
        rows: a.rows,
        features: a.features,
        outputs,
        noise: a.noise,
        seed: a.seed,
    };
    dptrain::fsutil::check_out("--out", &a.out, dptrain::fsutil::OutKind::Dir)?;
    spec.write(&a.out)?;
    say!(
        "wrote {} and {} ({} rows × {} features, {:?})",
        a.out.join("x.npy").display(),
        a.out.join("y.npy").display(),
        a.rows,
        a.features,
        task
    );
    Ok(())
}
