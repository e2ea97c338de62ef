//! Flags, subcommands and console output. Parsing only: the work is done by the library.

/// `println!` that never panics: when stdout is closed (`dptrain train | head -1`, a log
/// collector gone), the line is dropped and the work goes on.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod console;
mod eval_cmd;
mod gen_cmd;
mod import_cmd;
mod inspect_cmd;
mod predict_cmd;
mod sweep_cmd;
mod train_cmd;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use dptrain::{Error, Result};

/// Data-parallel neural-network trainer for CPUs.
#[derive(Debug, Parser)]
// A flag given twice takes its last value, so scripts can append overrides.
// With no subcommand, the command list (on stderr, exit code 2) rather than a one-line error.
#[command(
    name = "dptrain",
    version,
    about,
    long_about = None,
    args_override_self = true,
    arg_required_else_help = true
)]
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
    /// Batch-size study: throughput and convergence per batch size, critical batch size.
    Sweep(Box<sweep_cmd::SweepArgs>),
    /// Show shapes, dtypes and per-column statistics of a dataset directory.
    Inspect(inspect_cmd::InspectArgs),
    /// Import a CSV file as a dataset directory (x.npy, y.npy, labels.json).
    Import(import_cmd::ImportArgs),
    /// Evaluate a trained model on a dataset: loss, accuracy, per-class scores, confusion matrix.
    Eval(eval_cmd::EvalArgs),
    /// Write one prediction per row of a dataset's x.npy to a .csv or .npy file.
    Predict(predict_cmd::PredictArgs),
}

/// Parses the command line and runs the subcommand.
///
/// Usage errors are reported like every other error: one line naming the flag, exit code 2.
pub fn run() -> Result<()> {
    let parsed = sweep_cmd::with_sweep_help(Cli::command())
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version: print and exit 0
        // `dptrain` alone: the help, with the command list.
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        Err(e) => {
            // clap's message, folded onto one line: its first line, plus the indented lines
            // that follow (e.g. the names of missing required flags), without the usage block.
            let text = e.render().to_string();
            let mut lines = text.lines();
            let first = lines.next().unwrap_or("invalid arguments");
            let mut msg = first.strip_prefix("error: ").unwrap_or(first).to_string();
            for more in lines.take_while(|l| l.starts_with("  ")) {
                msg.push(' ');
                msg.push_str(more.trim());
            }
            return Err(Error::config(
                "usage",
                format!("{msg} (see dptrain --help)"),
            ));
        }
    };
    match cli.command {
        Command::Train(args) => train_cmd::run(*args),
        Command::Gen(args) => gen_cmd::run(args),
        Command::Inspect(args) => inspect_cmd::run(args),
        Command::Sweep(args) => sweep_cmd::run(*args),
        Command::Import(args) => import_cmd::run(args),
        Command::Eval(args) => eval_cmd::run(args),
        Command::Predict(args) => predict_cmd::run(args),
    }
}
