//! A producer thread that assembles chunks ahead of the trainer.
//!
//! ```text
//! producer thread ──(full chunks, bounded: depth)──▶ trainer
//!        ▲                                              │
//!        └──────────(empty chunks, recycled)────────────┘
//! ```
//!
//! `depth + 1` chunk buffers of at most `chunk_rows` rows circulate, so once they exist the
//! steady state allocates nothing, and the memory does not grow with the batch size: a batch
//! larger than a chunk is sent as several chunks of whole shards, in row order.
//!
//! With the block order the producer also tells the kernel which blocks it reads next and which
//! it is done with (`madvise`), and with file order that it reads sequentially.
//! The producer lives outside the rayon pool, so gathering rows never takes a core's turn at the
//! matrix products. Dropping the [`Prefetcher`] closes both channels and joins the thread, so an
//! early stop never hangs.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::data::npy::ReadAhead;
use crate::data::{Dataset, Standardizer};
use crate::pipeline::{Chunk, Sampler, Shuffle};

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
    full: Option<Receiver<Chunk>>,
    empty: Option<Sender<Chunk>>,
    producer: Option<JoinHandle<()>>,
    waited: Duration,
    /// Consumed chunks not yet handed back (see [`Prefetcher::recycle`]).
    pending: Vec<Chunk>,
    /// How many consumed chunks are handed back together.
    group: usize,
}

impl Prefetcher {
    /// Starts the producer over `span`, keeping up to `depth` chunks of at most `chunk_rows`
    /// rows ready (`chunk_rows` a multiple of the shard size, or at least the batch size).
    ///
    /// # Panics
    /// If `depth` or `chunk_rows` is zero or the thread cannot be spawned.
    /// With a `standardizer`, every chunk's features are standardised on the producer thread.
    pub fn spawn(
        dataset: Arc<Dataset>,
        sampler: Sampler,
        span: Span,
        chunk_rows: usize,
        depth: usize,
        standardizer: Option<Arc<Standardizer>>,
    ) -> Self {
        assert!(depth > 0, "prefetch depth must be positive");
        assert!(chunk_rows > 0, "chunks must hold rows");
        let chunk_rows = chunk_rows.min(sampler.batch_size());
        let (full_tx, full_rx) = bounded::<Chunk>(depth);
        // One more buffer than the queue holds: the trainer works on one while `depth` wait.
        let (empty_tx, empty_rx) = bounded::<Chunk>(depth + 1);
        // Register (and time out) once as a waiting receiver on both channels while they are
        // empty: crossbeam allocates its waiter lists and this thread's wait context on the first
        // wait, which would otherwise happen at some random step of the steady state.
        let _ = full_rx.recv_timeout(WARM_UP_WAIT);
        let _ = empty_rx.recv_timeout(WARM_UP_WAIT);
        for _ in 0..=depth {
            empty_tx
                .send(Chunk::with_capacity(&dataset, chunk_rows))
                .expect("receiver alive");
        }
        let producer = std::thread::Builder::new()
            .name("dptrain-loader".into())
            .spawn(move || {
                let std = standardizer.as_deref();
                let chunks = Chunks {
                    full: &full_tx,
                    empty: &empty_rx,
                    rows: chunk_rows,
                };
                produce(&dataset, &sampler, span, std, &chunks)
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

    /// The next chunk, or `None` after the last one; the time spent blocked is added to
    /// [`Prefetcher::take_wait`].
    pub fn next_chunk(&mut self) -> Option<Chunk> {
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

    /// Hands a consumed chunk's buffers back to the producer.
    ///
    /// Buffers go back in groups of half the prefetch depth: waking a parked producer is a
    /// system call of a few microseconds, as long as a small model's whole step, so it should
    /// happen once per group, not once per step. The queue still holds at least half its depth
    /// when a group goes back, and [`Prefetcher::next_chunk`] hands back everything before it
    /// would wait, so the producer never starves for buffers.
    pub fn recycle(&mut self, chunk: Chunk) {
        self.pending.push(chunk);
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

/// The producer's ends of the two channels, and the chunk size.
struct Chunks<'a> {
    full: &'a Sender<Chunk>,
    empty: &'a Receiver<Chunk>,
    rows: usize,
}

fn produce(
    dataset: &Dataset,
    sampler: &Sampler,
    span: Span,
    standardizer: Option<&Standardizer>,
    chunks: &Chunks<'_>,
) {
    warm_up_blocking();
    if sampler.shuffle() == Shuffle::None {
        dataset.advise_rows(0..dataset.rows(), ReadAhead::Sequential);
    }
    let mut order = Vec::with_capacity(sampler.rows());
    for epoch in span.start_epoch..span.end_epoch {
        sampler.epoch_order(epoch, &mut order);
        let first = if epoch == span.start_epoch {
            span.start_step
        } else {
            0
        };
        let mut ahead = ReadAheadPlan::start(dataset, sampler, epoch, first * sampler.batch_size());
        for step in first..sampler.steps_per_epoch() {
            let rows = sampler.batch(&order, step);
            let mine = sampler.part(rows.len());
            // A process with no shards in this batch still gets one (empty) chunk per step.
            let offsets = (mine.start..mine.end.max(mine.start + 1)).step_by(chunks.rows);
            for offset in offsets {
                let Ok(mut chunk) = chunks.empty.recv() else {
                    return; // trainer gone
                };
                let part = &rows[offset.min(mine.end)..(offset + chunks.rows).min(mine.end)];
                if let Some(plan) = ahead.as_mut() {
                    plan.reading_from(step * sampler.batch_size() + offset);
                }
                chunk.gather(dataset, part);
                if let Some(s) = standardizer {
                    s.apply(&mut chunk.x);
                }
                chunk.offset = offset.min(mine.end);
                chunk.batch_rows = rows.len();
                chunk.end = mine.end;
                chunk.epoch = epoch;
                chunk.step = step;
                if chunks.full.send(chunk).is_err() {
                    return;
                }
            }
        }
    }
}

/// With the block order: which window of blocks the producer reads, so that the next one is
/// asked for before it is needed and the last one let go when it is done.
struct ReadAheadPlan<'a> {
    dataset: &'a Dataset,
    sampler: &'a Sampler,
    epoch: usize,
    /// The window being read, and the position in the epoch's order where it ends.
    window: usize,
    window_end: usize,
    /// What to do with a window read: drop it from the page cache when the data is larger than
    /// half the memory this process can count on, else only unmap it.
    done: ReadAhead,
}

impl<'a> ReadAheadPlan<'a> {
    /// The plan for `epoch` read from position `from` of its order on (`None` unless the order
    /// is by blocks); the window holding `from` and the next one are asked for.
    fn start(
        dataset: &'a Dataset,
        sampler: &'a Sampler,
        epoch: usize,
        from: usize,
    ) -> Option<Self> {
        if sampler.shuffle() != Shuffle::Blocks {
            return None;
        }
        let fits =
            crate::resources::memory_available().is_none_or(|m| dataset.mapped_bytes() < m / 2);
        let mut plan = ReadAheadPlan {
            dataset,
            sampler,
            epoch,
            window: 0,
            window_end: 0,
            done: if fits {
                ReadAhead::Done
            } else {
                ReadAhead::Drop
            },
        };
        if plan.done == ReadAhead::Drop {
            // Whatever an earlier pass left in the page cache (the validation when the files
            // were opened, the last epoch's last window) would be reclaimed only after the
            // blocks read ahead for this epoch, which it then evicts before they are used.
            dataset.advise_rows(0..dataset.rows(), ReadAhead::Drop);
        }
        plan.window_end = plan.window_len(0);
        while plan.window_end <= from && plan.window_end < sampler.rows() {
            plan.window += 1;
            plan.window_end += plan.window_len(plan.window);
        }
        plan.advise(plan.window, ReadAhead::Soon);
        plan.advise(plan.window + 1, ReadAhead::Soon);
        Some(plan)
    }

    fn windows(&self) -> usize {
        self.sampler
            .block_count()
            .div_ceil(self.sampler.blocks().window)
    }

    fn blocks_of(&self, w: usize) -> std::ops::Range<usize> {
        let per = self.sampler.blocks().window;
        (w * per).min(self.sampler.block_count())..((w + 1) * per).min(self.sampler.block_count())
    }

    fn window_len(&self, w: usize) -> usize {
        self.blocks_of(w)
            .map(|i| {
                self.sampler
                    .block(self.sampler.block_at(self.epoch, i))
                    .len()
            })
            .sum()
    }

    fn advise(&self, w: usize, advice: ReadAhead) {
        if w >= self.windows() {
            return;
        }
        for i in self.blocks_of(w) {
            let rows = self.sampler.block(self.sampler.block_at(self.epoch, i));
            if let (Some(&first), Some(&last)) = (rows.first(), rows.last()) {
                self.dataset
                    .advise_rows(first as usize..last as usize + 1, advice);
            }
        }
    }

    /// The producer is about to gather the order from position `at` on: every window that ends
    /// at or before `at` is done (a chunk that straddles two windows still needs the first).
    fn reading_from(&mut self, at: usize) {
        while at >= self.window_end && self.window + 1 < self.windows() {
            self.advise(self.window, self.done);
            self.window += 1;
            self.window_end += self.window_len(self.window);
            self.advise(self.window + 1, ReadAhead::Soon);
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
        let sampler = Sampler::new((0..10).collect(), 4, Shuffle::Rows, false, 1);
        let span = Span {
            start_epoch: 0,
            start_step: 0,
            end_epoch: 2,
        };
        let mut pf = Prefetcher::spawn(d.clone(), sampler.clone(), span, 4, 2, None);
        let mut order = Vec::new();
        let mut n = 0;
        while let Some(b) = pf.next_chunk() {
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
        let sampler = Sampler::new((0..1000).collect(), 1, Shuffle::Rows, false, 1);
        let span = Span {
            start_epoch: 0,
            start_step: 0,
            end_epoch: 100,
        };
        let mut pf = Prefetcher::spawn(dataset(1000), sampler, span, 1, 3, None);
        let b = pf.next_chunk().unwrap();
        drop(b); // not recycled: the producer must still be released
        drop(pf);
    }

    #[test]
    fn a_span_can_start_mid_epoch() {
        let sampler = Sampler::new((0..10).collect(), 3, Shuffle::None, false, 1);
        let span = Span {
            start_epoch: 1,
            start_step: 2,
            end_epoch: 2,
        };
        let mut pf = Prefetcher::spawn(dataset(10), sampler, span, 3, 1, None);
        let b = pf.next_chunk().unwrap();
        assert_eq!(
            (b.epoch, b.step, b.values.clone()),
            (1, 2, vec![6.0, 7.0, 8.0])
        );
    }

    #[test]
    fn a_batch_larger_than_a_chunk_arrives_as_runs_of_rows_in_order() {
        let d = dataset(10);
        let sampler = Sampler::new((0..10).collect(), 7, Shuffle::Rows, false, 4);
        let span = Span {
            start_epoch: 0,
            start_step: 0,
            end_epoch: 1,
        };
        let mut pf = Prefetcher::spawn(d, sampler.clone(), span, 3, 2, None);
        let mut order = Vec::new();
        sampler.epoch_order(0, &mut order);
        let mut got = Vec::new();
        while let Some(c) = pf.next_chunk() {
            got.push((c.step, c.offset, c.rows, c.batch_rows, c.ends_batch()));
            let want: Vec<f32> = sampler.batch(&order, c.step)[c.offset..c.offset + c.rows]
                .iter()
                .map(|&r| r as f32)
                .collect();
            assert_eq!(c.values, want);
            pf.recycle(c);
        }
        assert_eq!(
            got,
            vec![
                (0, 0, 3, 7, false),
                (0, 3, 3, 7, false),
                (0, 6, 1, 7, true),
                (1, 0, 3, 3, true),
            ]
        );
    }
}
