//! `dptrain inspect`.

use std::path::PathBuf;

use clap::Args;

use dptrain::Result;
use dptrain::data::DatasetStats;

/// Flags of `dptrain inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Dataset directory holding x.npy and y.npy.
    dir: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

pub fn run(a: InspectArgs) -> Result<()> {
    let stats = DatasetStats::compute(&a.dir)?;
    if a.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&stats).expect("stats serialise")
        );
    } else {
        print!("{stats}");
    }
    Ok(())
}
