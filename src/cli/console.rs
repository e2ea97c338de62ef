//! What a run prints: one line per epoch on stdout; a progress bar on stderr when stderr is a
//! terminal, nothing more when it is not (cluster logs stay sparse).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use dptrain::Result;
use dptrain::train::{EpochMetrics, Observer, Outcome, RunInfo};

pub struct Console {
    epochs: usize,
    bar: Option<ProgressBar>,
    /// What this process trained: epochs, samples, training-step and validation seconds.
    trained: (usize, usize, f64, f64),
}

impl Console {
    pub fn new(epochs: usize) -> Self {
        Console {
            epochs,
            bar: None,
            trained: (0, 0, 0.0, 0.0),
        }
    }

    /// Says where a resumed run picks up, or that it has nothing left to train.
    pub fn resumed(&self, p: &dptrain::train::Progress, finished: bool) {
        if finished {
            let why = if p.stopped && p.epoch < self.epochs {
                "early stopping ended it"
            } else {
                "it finished its epochs"
            };
            say!(
                "Nothing to train: the run has trained {} epoch{} and {why} (its files are \
                 kept as they are; a larger --epochs trains longer)",
                p.epoch,
                plural(p.epoch)
            );
            return;
        }
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
        let (epochs, samples, train_s, val_s) = self.trained;
        if epochs == 0 {
            return;
        }
        // Every figure covers this process's epochs; the wall time also holds start-up,
        // validation, checkpoints and learning-curve evaluations, the rate only training steps.
        let more = if o.history.len() > epochs {
            " more"
        } else {
            ""
        };
        say!(
            "Trained {epochs}{more} epoch{} in {} s: {samples} samples in {} s of training steps \
             ({:.0} samples/s), validation {} s, start-up, checkpoints and the rest {} s",
            plural(epochs),
            seconds(wall_s),
            seconds(train_s),
            samples as f64 / train_s.max(1e-12),
            seconds(val_s),
            seconds((wall_s - train_s - val_s).max(0.0))
        );
    }
}

/// Seconds to the millisecond, and to three significant digits between a microsecond and a
/// second (a short run's 0.000412 s, not 0.000, so the printed time and rate agree).
fn seconds(s: f64) -> String {
    if !(1e-6..1.0).contains(&s) {
        return format!("{s:.3}");
    }
    let decimals = (2 - s.log10().floor() as i64).clamp(3, 8) as usize;
    format!("{s:.decimals$}")
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl Observer for Console {
    fn on_start(&mut self, info: &RunInfo) -> Result<()> {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new((info.steps_per_epoch * self.epochs) as u64);
            // Whole steps per second: indicatif's {per_sec} shows "2,043.1749/s".
            let style =
                ProgressStyle::with_template("{bar:40} {pos}/{len} steps  {rate}  eta {eta}")
                    .expect("valid template")
                    .with_key(
                        "rate",
                        |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.0} steps/s", s.per_sec());
                        },
                    );
            bar.set_style(style);
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
        if let Some(b) = m
            .noise_scale
            .and_then(|n| n.b_simple)
            .filter(|b| b.is_finite())
        {
            line.push_str(&format!(", B_simple: {b:.1}"));
        }
        self.trained.0 += 1;
        self.trained.1 += m.samples;
        self.trained.2 += m.train_s;
        self.trained.3 += m.val_s;
        match &self.bar {
            Some(bar) => bar.println(line),
            None => say!("{line}"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::seconds;

    #[test]
    fn seconds_keep_three_significant_digits_below_one_second() {
        assert_eq!(seconds(12.34567), "12.346");
        assert_eq!(seconds(0.5), "0.500");
        assert_eq!(seconds(0.0412), "0.0412");
        assert_eq!(seconds(0.000412), "0.000412");
        assert_eq!(seconds(0.0), "0.000");
        assert_eq!(
            seconds(0.000000491),
            "0.000",
            "below a microsecond: nothing to read"
        );
    }
}
