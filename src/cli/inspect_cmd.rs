//! `dptrain inspect`.

use std::path::PathBuf;

use clap::Args;

use dptrain::Result;
use dptrain::data::DatasetStats;

/// Flags of `dptrain inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Dataset directory: x.npy, and y.npy and labels.json when present.
    dir: PathBuf,
    /// Print JSON instead of tables (the warnings are in it too).
    #[arg(long)]
    json: bool,
}

pub fn run(a: InspectArgs) -> Result<()> {
    let stats = DatasetStats::compute(&a.dir)?;
    for w in &stats.warnings {
        eprintln!("dptrain: warning: {w}");
    }
    if a.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&stats).expect("stats serialise")
        );
    } else {
        say!("{}", stats.to_string().trim_end());
    }
    Ok(())
}
