//! What a run prints: one line per epoch on stdout; a progress bar on stderr when stderr is a
//! terminal, nothing more when it is not (cluster logs stay sparse).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use dptrain::Result;
use dptrain::train::{EpochMetrics, Observer, Outcome, RunInfo};

pub struct Console {
    epochs: usize,
    bar: Option<ProgressBar>,
}

impl Console {
    pub fn new(epochs: usize) -> Self {
        Console { epochs, bar: None }
    }

    /// Says where a resumed run picks up.
    pub fn resumed(&self, p: &dptrain::train::Progress) {
        say!(
            "Resuming at epoch {}, step {} ({} steps done)",
            p.epoch + 1,
            p.step + 1,
            p.global_step
        );
    }

    pub fn finish(&mut self, o: &Outcome, wall_s: f64) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if o.best_epoch > 0 {
            let best = o.history[o.best_epoch - 1].val_loss.unwrap_or(f64::NAN);
            if o.stopped_early {
                say!(
                    "Early stopping after epoch {}: best epoch {} (val_loss: {best:.6}); \
                     restored its weights",
                    o.history.len(),
                    o.best_epoch
                );
            } else if o.restored_best {
                say!(
                    "Best epoch {} (val_loss: {best:.6}); restored its weights",
                    o.best_epoch
                );
            } else {
                say!("Best epoch {} (val_loss: {best:.6})", o.best_epoch);
            }
        }
        let samples: usize = o.history.iter().map(|m| m.samples).sum();
        let train_s: f64 = o.history.iter().map(|m| m.train_s).sum();
        say!(
            "Trained {} epochs, {} samples in {:.3} s ({:.0} samples/s)",
            o.history.len(),
            samples,
            wall_s,
            samples as f64 / train_s.max(1e-12)
        );
    }
}

impl Observer for Console {
    fn on_start(&mut self, info: &RunInfo) -> Result<()> {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new((info.steps_per_epoch * self.epochs) as u64);
            bar.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} steps  {per_sec}  eta {eta}")
                    .expect("valid template"),
            );
            self.bar = Some(bar);
        }
        Ok(())
    }

    fn on_step(&mut self, _epoch: usize, _step: usize, _steps: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn on_epoch(&mut self, m: &EpochMetrics) -> Result<()> {
        let mut line = format!(
            "Epoch {}/{}, loss: {:.6}",
            m.epoch, self.epochs, m.train_loss
        );
        if let Some(a) = m.train_accuracy {
            line.push_str(&format!(", accuracy: {a:.4}"));
        }
        if let Some(v) = m.val_loss {
            line.push_str(&format!(", val_loss: {v:.6}"));
        }
        if let Some(a) = m.val_accuracy {
            line.push_str(&format!(", val_accuracy: {a:.4}"));
        }
        match &self.bar {
            Some(bar) => bar.println(line),
            None => say!("{line}"),
        }
        Ok(())
    }
}
