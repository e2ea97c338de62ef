//! The `dptrain` command line: a thin layer over the library (see `src/cli/`).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dptrain: error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
