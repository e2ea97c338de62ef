//! `--step-timeout`: a process that hangs without dying (a stuck file system, a lost message)
//! would keep every other process of the job waiting for its part of a step; the watchdog
//! ends the whole job instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::checkpoint::Boundary;
use crate::error::Result;
use crate::parallel::Collective;
use crate::train::{EpochMetrics, EvalPoint, Observer, RunInfo, Snapshot};

/// Exit code of a job ended by the watchdog (as `timeout(1)`'s).
pub const TIMEOUT_EXIT: i32 = 124;

/// An [`Observer`] that notes the time of every step, evaluation and checkpoint; a thread
/// aborts the job (every process, exit code 124) when none comes for the timeout.
#[derive(Debug)]
pub struct Watchdog {
    started: Instant,
    /// Milliseconds since `started` of the last sign of progress.
    last: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
}

impl Watchdog {
    /// Starts watching: `timeout` without progress ends the job through `collective`.
    pub fn start(timeout: Duration, collective: Arc<dyn Collective>) -> Watchdog {
        let started = Instant::now();
        let last = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (l, d) = (last.clone(), done.clone());
        let poll = (timeout / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let spawned = std::thread::Builder::new()
            .name("dptrain-watchdog".into())
            .spawn(move || {
                while !d.load(Ordering::Relaxed) {
                    std::thread::sleep(poll);
                    let since =
                        started.elapsed() - Duration::from_millis(l.load(Ordering::Relaxed));
                    if since > timeout && !d.load(Ordering::Relaxed) {
                        let prefix = if collective.world_size() > 1 {
                            format!("[rank {}] ", collective.rank())
                        } else {
                            String::new()
                        };
                        eprintln!(
                            "{prefix}dptrain: error: --step-timeout: no step finished for {:.0} s \
                             (a process hangs?): ending the job, exit code {TIMEOUT_EXIT}; \
                             continue from the last checkpoint with --resume",
                            since.as_secs_f64()
                        );
                        collective.abort(TIMEOUT_EXIT);
                    }
                }
            });
        if let Err(e) = spawned {
            eprintln!("dptrain: warning: --step-timeout: cannot start the watchdog: {e}");
        }
        Watchdog {
            started,
            last,
            done,
        }
    }

    fn beat(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

impl Observer for Watchdog {
    fn on_start(&mut self, _info: &RunInfo) -> Result<()> {
        self.beat();
        Ok(())
    }

    fn on_step(&mut self, _epoch: usize, _step: usize, _steps: usize) {
        self.beat();
    }

    fn on_epoch(&mut self, _metrics: &EpochMetrics) -> Result<()> {
        self.beat();
        Ok(())
    }

    fn on_eval(&mut self, _point: &EvalPoint) -> Result<()> {
        self.beat();
        Ok(())
    }

    fn wants_checkpoint(&mut self, _boundary: Boundary) -> bool {
        false
    }

    fn on_checkpoint(&mut self, _snapshot: &Snapshot<'_>) -> Result<()> {
        self.beat();
        Ok(())
    }
}
