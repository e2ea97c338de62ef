//! The processes of a run, as the launcher (`mpirun`, `srun`) started them: joining them at
//! start, and ending them together.
//!
//! With the `mpi` feature, [`Process::start`] initialises MPI and the run is shared between the
//! ranks of `MPI_COMM_WORLD`; without it, a run is one process. Either way a launch that would
//! make several processes each train alone (Slurm says several tasks, the world has one) is
//! refused.
//!
//! # Ending together
//! A process that fails must not leave the others waiting for its part of a step: with more
//! than one process, an error (other than the agreed stop, exit code 75) or a panic on any rank
//! aborts the whole job (`MPI_Abort`), naming the rank. A plain return would run
//! `MPI_Finalize`, which waits for the peers, and the job would hang.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::parallel::Collective;
#[cfg(not(feature = "mpi"))]
use crate::parallel::SingleProcess;

/// The process's place in the run.
pub struct Process {
    collective: Arc<dyn Collective>,
    /// Keeps MPI initialised; dropping it finalises MPI.
    #[cfg(feature = "mpi")]
    _universe: Option<mpi::environment::Universe>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("collective", &self.collective)
            .finish_non_exhaustive()
    }
}

impl Process {
    /// Joins the run's processes (MPI, with the `mpi` feature), and installs a panic hook that
    /// aborts the job when there are several.
    ///
    /// # Errors
    /// [`Error::World`] when Slurm started several tasks but they do not form one world.
    pub fn start() -> Result<Process> {
        #[cfg(feature = "mpi")]
        let process = {
            let (universe, world) = crate::parallel::mpi::MpiWorld::init()?;
            let collective: Arc<dyn Collective> = Arc::new(world);
            Process {
                collective,
                _universe: Some(universe),
            }
        };
        #[cfg(not(feature = "mpi"))]
        let process = Process {
            collective: Arc::new(SingleProcess),
        };
        let world = process.collective.world_size();
        if let Some(tasks) = slurm_step_tasks()
            && tasks > 1
            && world == 1
        {
            let why = if cfg!(feature = "mpi") {
                "MPI sees a world of 1 (srun's MPI plugin does not match this MPI library: try \
                 `srun --mpi=pmix`, see `srun --mpi=list`, or launch with mpirun)"
            } else {
                "this dptrain was built without MPI (build it with `cargo build --release \
                 --features mpi`, or launch one task)"
            };
            return Err(Error::World {
                message: format!(
                    "Slurm started {tasks} tasks for this step but {why}: each would train \
                     alone and write the same run directory"
                ),
            });
        }
        if world > 1 {
            install_abort_on_panic(process.collective.clone());
        }
        Ok(process)
    }

    /// The processes, to share the run with.
    pub fn collective(&self) -> Arc<dyn Collective> {
        self.collective.clone()
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.collective.rank()
    }

    /// Number of processes.
    pub fn world_size(&self) -> usize {
        self.collective.world_size()
    }

    /// What each line this process prints starts with: `[rank r] ` with several processes.
    pub fn prefix(&self) -> String {
        if self.world_size() > 1 {
            format!("[rank {}] ", self.rank())
        } else {
            String::new()
        }
    }

    /// Ends the process's part of the run with `result`. With several processes: an agreed stop
    /// (every rank stopped after the same step) meets at a barrier and returns its error (exit
    /// code 75); any other error is printed, prefixed with the rank, and aborts the whole job
    /// with its exit code. With one process, or on success, `result` is returned (MPI is
    /// finalised when the [`Process`] is dropped).
    pub fn finish<T>(&self, result: Result<T>) -> Result<T> {
        if self.world_size() == 1 {
            return result;
        }
        match result {
            Ok(v) => {
                self.collective.barrier();
                Ok(v)
            }
            Err(e) if e.exit_code() == 75 => {
                self.collective.barrier();
                Err(e)
            }
            Err(e) => {
                eprintln!("{}dptrain: error: {e}", self.prefix());
                self.collective.abort(e.exit_code())
            }
        }
    }
}

/// Tasks of this Slurm job step (`SLURM_STEP_NUM_TASKS`, set by `srun`; a batch script's own
/// shell is a step of one task even in a job of many).
fn slurm_step_tasks() -> Option<usize> {
    std::env::var("SLURM_STEP_NUM_TASKS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

/// A panic on any thread prints its message, prefixed with the rank, and aborts the job (exit
/// code 70): unwinding would finalise MPI while the peers wait.
fn install_abort_on_panic(collective: Arc<dyn Collective>) {
    std::panic::set_hook(Box::new(move |info| {
        eprintln!(
            "[rank {}] dptrain: internal error (a bug, please report it): {info}; aborting \
             every process",
            collective.rank()
        );
        collective.abort(70)
    }));
}
