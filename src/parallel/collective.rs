//! The second level of the all-reduce: joining processes.
//!
//! Inside a process, shard gradients are summed by [`crate::parallel::GradientEngine`]. Across
//! processes, the same sum continues along a chain (see [`crate::parallel::GradientEngine::finish_step`]): rank 0 adds
//! its shards, passes the running sum to rank 1, which adds its own in order and passes it on;
//! the last rank holds the batch's sum and broadcasts it. A [`Collective`] provides the few
//! messages that chain needs; the engine decides what is sent and in which order.
//!
//! # Determinism
//! Nothing here adds numbers: a transport only moves them. So the result does not depend on
//! the transport, on timing or on the number of processes (guarantee 1 of the design).
//!
//! # Failure
//! The operations are infallible: a transport that fails ends the whole job (MPI's default
//! error handler aborts every process), since a step half-reduced cannot be recovered; the run
//! continues from its last checkpoint.

use std::fmt::Debug;
use std::ops::Range;

/// Message tags, so that a header is never taken for a chunk of a gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// A step's scalars (loss sums, noise terms, the stop flag).
    Header = 1,
    /// A chunk of a running gradient sum.
    Chunk = 2,
}

/// Moves buffers between the processes of a run.
pub trait Collective: Send + Sync + Debug {
    /// Number of processes taking part.
    fn world_size(&self) -> usize;

    /// This process's rank in `0..world_size()`.
    fn rank(&self) -> usize;

    /// Sends `buf` to rank `to` (returns once `buf` may be reused).
    fn send_f32(&self, to: usize, tag: Tag, buf: &[f32]);

    /// Receives exactly `buf.len()` values from rank `from`.
    fn recv_f32(&self, from: usize, tag: Tag, buf: &mut [f32]);

    /// Sends `buf` to rank `to`.
    fn send_f64(&self, to: usize, tag: Tag, buf: &[f64]);

    /// Receives exactly `buf.len()` values from rank `from`.
    fn recv_f64(&self, from: usize, tag: Tag, buf: &mut [f64]);

    /// Replaces `buf` on every rank with `root`'s.
    fn broadcast_f32(&self, root: usize, buf: &mut [f32]);

    /// Replaces `buf` on every rank with `root`'s.
    fn broadcast_f64(&self, root: usize, buf: &mut [f64]);

    /// Replaces `buf` on every rank with `root`'s bytes (resized to them).
    fn broadcast_bytes(&self, root: usize, buf: &mut Vec<u8>);

    /// Whether `flag` is true on any rank (the same answer on every rank).
    fn any(&self, flag: bool) -> bool;

    /// Waits until every rank has called it.
    fn barrier(&self);

    /// Ends every process of the job with `code` (one process's failure must not leave the
    /// others waiting for it).
    fn abort(&self, code: i32) -> !;

    /// The part of every batch this process computes.
    fn share(&self) -> Share {
        Share {
            rank: self.rank(),
            world: self.world_size(),
        }
    }
}

/// Which shards of a batch a process computes: rank `r` of `P` takes shards
/// `⌊rS/P⌋ … ⌊(r+1)S/P⌋ − 1` of a batch's `S`, a contiguous run, so that the chain adds every
/// shard in shard order. With more processes than shards, some take none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// This process's rank.
    pub rank: usize,
    /// Number of processes.
    pub world: usize,
}

impl Share {
    /// The whole batch: one process.
    pub const ALL: Share = Share { rank: 0, world: 1 };

    /// The shards, of `total`, that this process computes.
    pub fn shards(&self, total: usize) -> Range<usize> {
        self.shards_of(self.rank, total)
    }

    /// The shards, of `total`, that rank `rank` computes.
    pub fn shards_of(&self, rank: usize, total: usize) -> Range<usize> {
        let (r, p) = (rank as u128, self.world as u128);
        let t = total as u128;
        (r * t / p) as usize..((r + 1) * t / p) as usize
    }

    /// The rows, of a batch of `rows` rows cut into shards of `shard_size`, that this process
    /// computes.
    pub fn rows(&self, rows: usize, shard_size: usize) -> Range<usize> {
        let s = self.shards(rows.div_ceil(shard_size));
        (s.start * shard_size).min(rows)..(s.end * shard_size).min(rows)
    }

    /// Whether this is the last rank (the one that holds the chain's sum).
    pub fn is_last(&self) -> bool {
        self.rank + 1 == self.world
    }
}

/// The one-process case: no peers, nothing to move.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn world_size(&self) -> usize {
        1
    }

    fn rank(&self) -> usize {
        0
    }

    fn send_f32(&self, to: usize, _: Tag, _: &[f32]) {
        unreachable!("one process has no rank {to} to send to")
    }

    fn recv_f32(&self, from: usize, _: Tag, _: &mut [f32]) {
        unreachable!("one process has no rank {from} to receive from")
    }

    fn send_f64(&self, to: usize, _: Tag, _: &[f64]) {
        unreachable!("one process has no rank {to} to send to")
    }

    fn recv_f64(&self, from: usize, _: Tag, _: &mut [f64]) {
        unreachable!("one process has no rank {from} to receive from")
    }

    fn broadcast_f32(&self, _: usize, _: &mut [f32]) {}

    fn broadcast_f64(&self, _: usize, _: &mut [f64]) {}

    fn broadcast_bytes(&self, _: usize, _: &mut Vec<u8>) {}

    fn any(&self, flag: bool) -> bool {
        flag
    }

    fn barrier(&self) {}

    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_shard_once_in_rank_order() {
        for world in 1..=7 {
            for total in 0..=20 {
                let mut next = 0;
                for rank in 0..world {
                    let s = Share { rank, world }.shards(total);
                    assert_eq!(s.start, next, "world {world}, total {total}, rank {rank}");
                    assert!(s.end >= s.start);
                    next = s.end;
                }
                assert_eq!(next, total);
            }
        }
        // More ranks than shards: some take none.
        let s: Vec<_> = (0..3)
            .map(|r| Share { rank: r, world: 3 }.shards(2))
            .collect();
        assert_eq!(s, vec![0..0, 0..1, 1..2]);
        // The last, short shard's rows.
        assert_eq!(Share { rank: 1, world: 2 }.rows(10, 4), 4..10);
        assert_eq!(Share { rank: 2, world: 3 }.rows(3, 4), 0..3);
        assert_eq!(Share { rank: 0, world: 3 }.rows(3, 4), 0..0);
    }
}
