//! A producer thread that assembles batches ahead of the trainer.
//!
//! ```text
//! producer thread ──(full batches, bounded: depth)──▶ trainer
//!        ▲                                               │
//!        └──────────(empty batches, recycled)────────────┘
//! ```
//!
//! `depth + 1` batch buffers circulate, so once they exist the steady state allocates nothing.
//! The producer lives outside the rayon pool, so gathering rows never takes a core's turn at the
//! matrix products. Dropping the [`Prefetcher`] closes both channels and joins the thread, so an
//! early stop never hangs.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::data::{Dataset, Standardizer};
use crate::pipeline::{Batch, Sampler};

/// Where in the run the producer starts and stops: epochs `[start_epoch, end_epoch)`, the first
/// one from step `start_step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First epoch (0-based).
    pub start_epoch: usize,
    /// First step within `start_epoch`.
    pub start_step: usize,
    /// One past the last epoch.
    pub end_epoch: usize,
}

/// The trainer's end of the pipeline.
#[derive(Debug)]
pub struct Prefetcher {
    full: Option<Receiver<Batch>>,
    empty: Option<Sender<Batch>>,
    producer: Option<JoinHandle<()>>,
    waited: Duration,
    /// Consumed batches not yet handed back (see [`Prefetcher::recycle`]).
    pending: Vec<Batch>,
    /// How many consumed batches are handed back together.
    group: usize,
}

impl Prefetcher {
    /// Starts the producer over `span`, keeping up to `depth` batches ready.
    ///
    /// # Panics
    /// If `depth` is zero or the thread cannot be spawned.
    /// With a `standardizer`, every batch's features are standardised on the producer thread.
    pub fn spawn(
        dataset: Arc<Dataset>,
        sampler: Sampler,
        span: Span,
        depth: usize,
        standardizer: Option<Arc<Standardizer>>,
    ) -> Self {
        assert!(depth > 0, "prefetch depth must be positive");
        let (full_tx, full_rx) = bounded::<Batch>(depth);
        // One more buffer than the queue holds: the trainer works on one while `depth` wait.
        let (empty_tx, empty_rx) = bounded::<Batch>(depth + 1);
        // Register (and time out) once as a waiting receiver on both channels while they are
        // empty: crossbeam allocates its waiter lists and this thread's wait context on the first
        // wait, which would otherwise happen at some random step of the steady state.
        let _ = full_rx.recv_timeout(WARM_UP_WAIT);
        let _ = empty_rx.recv_timeout(WARM_UP_WAIT);
        for _ in 0..=depth {
            empty_tx
                .send(Batch::with_capacity(&dataset, sampler.batch_size()))
                .expect("receiver alive");
        }
        let producer = std::thread::Builder::new()
            .name("dptrain-loader".into())
            .spawn(move || {
                let std = standardizer.as_deref();
                produce(&dataset, &sampler, span, std, &full_tx, &empty_rx)
            })
            .expect("spawn the loader thread");
        Prefetcher {
            full: Some(full_rx),
            empty: Some(empty_tx),
            producer: Some(producer),
            waited: Duration::ZERO,
            pending: Vec::with_capacity(depth + 1),
            group: (depth / 2).max(1),
        }
    }

    /// The next batch, or `None` after the last one; the time spent blocked is added to
    /// [`Prefetcher::take_wait`].
    pub fn next_batch(&mut self) -> Option<Batch> {
        if let Ok(b) = self.full.as_ref()?.try_recv() {
            return Some(b);
        }
        // About to wait: the producer must have every free buffer.
        self.flush();
        let rx = self.full.as_ref()?;
        let t = Instant::now();
        let b = rx.recv().ok();
        self.waited += t.elapsed();
        b
    }

    /// Hands a consumed batch's buffers back to the producer.
    ///
    /// Buffers go back in groups of half the prefetch depth: waking a parked producer is a
    /// system call of a few microseconds, as long as a small model's whole step, so it should
    /// happen once per group, not once per step. The queue still holds at least half its depth
    /// when a group goes back, and [`Prefetcher::next_batch`] hands back everything before it
    /// would wait, so the producer never starves for buffers.
    pub fn recycle(&mut self, batch: Batch) {
        self.pending.push(batch);
        if self.pending.len() >= self.group {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if let Some(tx) = &self.empty {
            for b in self.pending.drain(..) {
                // The producer may have finished; then the buffer is simply dropped.
                let _ = tx.send(b);
            }
        } else {
            self.pending.clear();
        }
    }

    /// Time spent waiting for data since the last call.
    pub fn take_wait(&mut self) -> Duration {
        std::mem::take(&mut self.waited)
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Closing both channels wakes a producer blocked on either of them.
        self.full.take();
        self.empty.take();
        if let Some(h) = self.producer.take() {
            // A panic in the producer has already been reported by the panic hook.
            let _ = h.join();
        }
    }
}

/// Long enough that a wait really starts (crossbeam returns before waiting when the deadline
/// has already passed), short enough to cost nothing at start-up.
const WARM_UP_WAIT: Duration = Duration::from_micros(200);

/// Makes crossbeam allocate its per-thread wait context now rather than at this thread's first
/// blocking operation, which may come deep into training (the steady state allocates nothing).
pub(crate) fn warm_up_blocking() {
    let (_tx, rx) = bounded::<()>(0);
    let _ = rx.recv_timeout(WARM_UP_WAIT);
}

fn produce(
    dataset: &Dataset,
    sampler: &Sampler,
    span: Span,
    standardizer: Option<&Standardizer>,
    full: &Sender<Batch>,
    empty: &Receiver<Batch>,
) {
    warm_up_blocking();
    let mut order = Vec::with_capacity(sampler.rows());
    for epoch in span.start_epoch..span.end_epoch {
        sampler.epoch_order(epoch, &mut order);
        let first = if epoch == span.start_epoch {
            span.start_step
        } else {
            0
        };
        for step in first..sampler.steps_per_epoch() {
            let Ok(mut batch) = empty.recv() else {
                return; // trainer gone
            };
            batch.gather(dataset, sampler.batch(&order, step));
            if let Some(s) = standardizer {
                s.apply(&mut batch.x);
            }
            batch.epoch = epoch;
            batch.step = step;
            if full.send(batch).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(rows: usize) -> Arc<Dataset> {
        let x: Vec<f32> = (0..rows * 2).map(|i| i as f32).collect();
        let y: Vec<f32> = (0..rows).map(|i| i as f32).collect();
        Arc::new(Dataset::from_vecs(x, 2, y, 1))
    }

    #[test]
    fn batches_arrive_in_sampler_order_with_gathered_rows() {
        let d = dataset(10);
        let sampler = Sampler::new((0..10).collect(), 4, true, false, 1);
        let span = Span {
            start_epoch: 0,
            start_step: 0,
            end_epoch: 2,
        };
        let mut pf = Prefetcher::spawn(d.clone(), sampler.clone(), span, 2, None);
        let mut order = Vec::new();
        let mut n = 0;
        while let Some(b) = pf.next_batch() {
            sampler.epoch_order(b.epoch, &mut order);
            let rows = sampler.batch(&order, b.step);
            assert_eq!(b.rows, rows.len());
            let want: Vec<f32> = rows.iter().map(|&r| r as f32).collect();
            assert_eq!(b.values, want);
            assert_eq!(&b.x[..2], d.x_row(rows[0] as usize));
            n += 1;
            pf.recycle(b);
        }
        assert_eq!(n, 6);
    }

    #[test]
    fn dropping_mid_epoch_does_not_hang() {
        let sampler = Sampler::new((0..1000).collect(), 1, true, false, 1);
        let span = Span {
            start_epoch: 0,
            start_step: 0,
            end_epoch: 100,
        };
        let mut pf = Prefetcher::spawn(dataset(1000), sampler, span, 3, None);
        let b = pf.next_batch().unwrap();
        drop(b); // not recycled: the producer must still be released
        drop(pf);
    }

    #[test]
    fn a_span_can_start_mid_epoch() {
        let sampler = Sampler::new((0..10).collect(), 3, false, false, 1);
        let span = Span {
            start_epoch: 1,
            start_step: 2,
            end_epoch: 2,
        };
        let mut pf = Prefetcher::spawn(dataset(10), sampler, span, 1, None);
        let b = pf.next_batch().unwrap();
        assert_eq!(
            (b.epoch, b.step, b.values.clone()),
            (1, 2, vec![6.0, 7.0, 8.0])
        );
    }
}
