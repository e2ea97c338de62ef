//! `dptrain train`: flags (and `--config FILE.toml`) → a checked session → the library's run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

use dptrain::parallel::Process;
use dptrain::run::{Output, Session, Watchdog};
use dptrain::train::{Both, Silent, TrainConfig, TrainFlags};
use dptrain::{Error, Result};

use super::console::Console;

/// Flags of `dptrain train`. Every setting can also be a key of the `--config` TOML file (the
/// flag's name without `--`); flags given on the command line win.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Read settings from this TOML file (keys are the flags' names; flags win; relative paths
    /// are resolved against the file's directory). A run's config.toml reproduces it.
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: TrainFlags,
    /// Run directory: config, metrics.jsonl, final and best weights, summary [default: none].
    #[arg(long, value_name = "DIR", help_heading = "Data")]
    out: Option<PathBuf>,
    /// Continue the run in --out from its newest readable checkpoint (same flags; --epochs may
    /// grow); start it when there is none yet.
    #[arg(long, help_heading = "Checkpoints")]
    resume: bool,
    /// Say more at start: the expected peak memory, by part.
    #[arg(long, short = 'v')]
    verbose: bool,
}

impl TrainArgs {
    /// `--out`.
    pub(super) fn out(&self) -> Option<&std::path::Path> {
        self.out.as_deref()
    }

    /// `--config`.
    pub(super) fn config_file(&self) -> Option<&std::path::Path> {
        self.config.as_deref()
    }

    /// The setting flags given on the command line.
    pub(super) fn settings(&self) -> &TrainFlags {
        &self.settings
    }

    /// The flags given, with the `--config` file's keys under them.
    pub(super) fn flags(&self) -> Result<TrainFlags> {
        match &self.config {
            Some(path) => self.settings.clone().with_file(path),
            None => Ok(self.settings.clone()),
        }
    }

    /// The first flag given that only makes sense for a single run (a sweep refuses it).
    pub(super) fn single_run_flag(&self, flags: &TrainFlags) -> Option<String> {
        if self.resume {
            return Some("--resume".into());
        }
        flags.first_given(&["init", "checkpoint_every", "patience", "batch_size"])
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    let process = Process::start()?;
    let result = train(args, &process);
    process.finish(result)
}

/// One process's part of the run: rank 0 writes the run directory and prints the progress;
/// the others print only warnings (and errors), prefixed with their rank.
fn train(args: TrainArgs, process: &Process) -> Result<()> {
    let config: TrainConfig = args.flags()?.resolve()?;
    let epochs = config.run.epochs;
    let output = match (&args.out, args.resume) {
        (None, true) => {
            return Err(Error::config(
                "--resume",
                "needs --out DIR, the run directory to continue",
            ));
        }
        (None, false) => Output::None,
        (Some(out), false) => Output::New(out.clone()),
        (Some(out), true) => Output::Resume(out.clone()),
    };
    let threads_given = config.threads.threads.is_some();
    let stop = Arc::new(AtomicBool::new(false));
    let session = Session::prepare_shared(config, output, stop.clone(), process.collective())?;
    install_stop_signals(&stop, args.out.is_some())?;
    let prefix = process.prefix();
    let no_effect = args
        .settings()
        .no_effect_warnings(session.trainer().config());
    let mut warnings: Vec<String> = no_effect
        .iter()
        .chain(session.warnings())
        .cloned()
        .collect();
    if process.world_size() > 1
        && session.trainer().threads() == 1
        && !threads_given
        && std::env::var_os("SLURM_CPUS_PER_TASK").is_none()
    {
        warnings.push(
            "this process may run on one core only (its CPU affinity: OpenMPI binds each rank              to one core by default), so it has 1 worker thread: launch with `mpirun              --bind-to none` or `--map-by ppr:N:node:PE=C`, or give --threads"
                .into(),
        );
    }
    for warning in &warnings {
        eprintln!("{prefix}dptrain: warning: {warning}");
    }
    if args.verbose {
        eprintln!("{prefix}dptrain: {}", session.memory_need().describe());
    }
    let mut watchdog = session
        .trainer()
        .config()
        .parallel
        .step_timeout
        .map(|s| Watchdog::start(std::time::Duration::from_secs_f64(s), process.collective()));
    inject_fault(process.rank());
    if process.rank() != 0 {
        let mut quiet = Both(Silent, watchdog.as_mut());
        session.run(&mut quiet)?;
        return Ok(());
    }
    let mut console = Console::new(epochs);
    if let Some(p) = session.resumed() {
        console.resumed(p, session.finished_already());
    }
    let finished = {
        let mut observer = Both(&mut console, watchdog.as_mut());
        session.run(&mut observer)?
    };
    console.finish(&finished.outcome, finished.summary.wall_s);
    Ok(())
}

/// Failures on purpose, for the tests of a job's failure handling (`tests/mpi.rs`):
/// `DPTRAIN_FAULT=panic@R` panics on rank R, `hang@R` makes it hang without dying, just before
/// training starts.
fn inject_fault(rank: usize) {
    let Ok(fault) = std::env::var("DPTRAIN_FAULT") else {
        return;
    };
    let (what, on) = fault.split_once('@').unwrap_or((&fault, "0"));
    if on.parse::<usize>().ok() != Some(rank) {
        return;
    }
    match what {
        "panic" => panic!("DPTRAIN_FAULT={fault}: a panic on purpose"),
        "hang" => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        _ => eprintln!("dptrain: warning: DPTRAIN_FAULT={fault}: unknown fault, ignored"),
    }
}

/// SIGTERM (Slurm's end of time, `kill`), SIGINT (Ctrl-C) and SIGUSR1 (Slurm's `--signal`
/// warning) raise `stop`: the loop checkpoints at the next step boundary and exits with 75. A
/// second signal while the flag is up ends the process at once with 130, saying so. The signals
/// are received on a thread of their own (signal-hook's iterator), so saying so is ordinary
/// code, not a signal handler's.
fn install_stop_signals(stop: &Arc<AtomicBool>, saves: bool) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGUSR1])
        .map_err(|e| Error::io("signal handler", e))?;
    let stop = stop.clone();
    std::thread::Builder::new()
        .name("dptrain-signals".into())
        .spawn(move || {
            for _ in signals.forever() {
                if stop.swap(true, Ordering::SeqCst) {
                    let kept = if saves {
                        "the run directory keeps its last checkpoint: continue with --resume"
                    } else {
                        "nothing was saved (the run had no --out)"
                    };
                    eprintln!("dptrain: a second signal: stopped at once, exit code 130; {kept}");
                    std::process::exit(130);
                }
            }
        })
        .map_err(|e| Error::io("signal handler", e))?;
    Ok(())
}
