//! Flags, subcommands and console output. Parsing only: the work is done by the library.

mod console;
mod gen_cmd;
mod inspect_cmd;
mod train_cmd;

use clap::{Parser, Subcommand};

use dptrain::{Error, Result};

/// Data-parallel neural-network trainer for CPUs.
#[derive(Debug, Parser)]
#[command(name = "dptrain", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train an MLP (with no flags: the seed article's example on generated data).
    Train(Box<train_cmd::TrainArgs>),
    /// Generate a learnable synthetic dataset (x.npy, y.npy).
    Gen(gen_cmd::GenArgs),
    /// Show shapes, dtypes and per-column statistics of a dataset directory.
    Inspect(inspect_cmd::InspectArgs),
}

/// Parses the command line and runs the subcommand.
///
/// Usage errors are reported like every other error: one line naming the flag, exit code 2.
pub fn run() -> Result<()> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version: print and exit 0
        Err(e) => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            return Err(Error::config(
                "usage",
                format!("{first} (see dptrain --help)"),
            ));
        }
    };
    match cli.command {
        Command::Train(args) => train_cmd::run(*args),
        Command::Gen(args) => gen_cmd::run(args),
        Command::Inspect(args) => inspect_cmd::run(args),
    }
}
