//! The order in which training rows are presented, epoch by epoch.
//!
//! Three orders ([`Shuffle`]), each a pure function of `(seed, epoch)`: a permutation of the
//! rows; a permutation of blocks of contiguous rows with the rows shuffled within each window of
//! a few blocks (FFCV's quasi-random order: storage is read a block at a time, so data larger
//! than memory streams from disk in large sequential reads instead of a page fault per row);
//! and file order.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::parallel::Share;
use crate::pipeline::Shuffle;
use crate::rng::{derive_seed, mix64};

/// Bytes of one block of contiguous rows in the block order: large enough for sequential reads
/// to reach the disk's bandwidth, small enough for a window of them to fit in a small share of
/// memory.
pub const BLOCK_BYTES: usize = 1 << 20;

/// Blocks whose rows are shuffled together (and read ahead together).
pub const WINDOW_BLOCKS: usize = 8;

/// How the block order cuts the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocks {
    /// Rows per block (the last block of the split may be shorter).
    pub rows: usize,
    /// Blocks per window.
    pub window: usize,
}

impl Blocks {
    /// Blocks of about [`BLOCK_BYTES`] for rows of `row_bytes` bytes, [`WINDOW_BLOCKS`] a window.
    pub fn for_row_bytes(row_bytes: usize) -> Self {
        Blocks {
            rows: (BLOCK_BYTES / row_bytes.max(1)).max(1),
            window: WINDOW_BLOCKS,
        }
    }
}

/// Decides each epoch's row order and how it is cut into batches, like PyTorch's `DataLoader`
/// (`shuffle=True` reshuffles every epoch; the last partial batch is kept unless `drop_last`).
///
/// The permutation of epoch `e` is a function of `(seed, e)` only, so any epoch can be
/// reproduced without replaying the ones before it (what exact resume needs).
#[derive(Debug, Clone)]
pub struct Sampler {
    rows: Vec<u32>,
    batch_size: usize,
    shuffle: Shuffle,
    blocks: Blocks,
    drop_last: bool,
    seed: u64,
    /// This process's part of each batch, and the shard size it is cut by.
    share: (Share, usize),
}

impl Sampler {
    /// A sampler over `rows` (the training split, in file order).
    ///
    /// # Panics
    /// If `batch_size` is zero (validated at the CLI).
    pub fn new(
        rows: Vec<u32>,
        batch_size: usize,
        shuffle: Shuffle,
        drop_last: bool,
        seed: u64,
    ) -> Self {
        assert!(batch_size > 0, "batch size must be positive");
        Sampler {
            rows,
            batch_size,
            shuffle,
            blocks: Blocks {
                rows: 1024,
                window: WINDOW_BLOCKS,
            },
            drop_last,
            share: (Share::ALL, 1),
            seed,
        }
    }

    /// The same sampler with `blocks` for [`Shuffle::Blocks`] (see [`Blocks::for_row_bytes`]).
    pub fn with_blocks(mut self, blocks: Blocks) -> Self {
        self.blocks = Blocks {
            rows: blocks.rows.max(1),
            window: blocks.window.max(1),
        };
        self
    }

    /// The same sampler for the process of `share` when batches are shared between processes
    /// cut into shards of `shard_size` rows: [`Sampler::part`] then gives its rows of a batch.
    pub fn with_share(mut self, share: Share, shard_size: usize) -> Self {
        self.share = (share, shard_size.max(1));
        self
    }

    /// The positions, in a batch of `batch_rows` rows, of the rows this process computes: the
    /// whole batch in one process.
    pub fn part(&self, batch_rows: usize) -> std::ops::Range<usize> {
        let (share, shard_size) = self.share;
        share.rows(batch_rows, shard_size)
    }

    /// The order.
    pub fn shuffle(&self) -> Shuffle {
        self.shuffle
    }

    /// The training rows of block `b` of the block order (a range of the split's row list).
    pub fn block(&self, b: usize) -> &[u32] {
        let start = (b * self.blocks.rows).min(self.rows.len());
        &self.rows[start..(start + self.blocks.rows).min(self.rows.len())]
    }

    /// The block geometry.
    pub fn blocks(&self) -> Blocks {
        self.blocks
    }

    /// The blocks of the split, in file order.
    pub fn block_count(&self) -> usize {
        self.rows.len().div_ceil(self.blocks.rows)
    }

    /// Block `i` of epoch `epoch`'s block order: a keyed permutation of `0..block_count()`.
    pub fn block_at(&self, epoch: usize, i: usize) -> usize {
        let key = derive_seed(self.seed, &[0xb10c, epoch as u64]);
        permute(i as u64, self.block_count() as u64, key) as usize
    }

    /// Rows per full batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Training rows per epoch.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Optimizer steps per epoch: `ceil(n / B)`, or `floor(n / B)` with `drop_last`.
    pub fn steps_per_epoch(&self) -> usize {
        let n = self.rows.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// Samples presented per epoch (less than `rows()` with `drop_last`).
    pub fn samples_per_epoch(&self) -> usize {
        if self.drop_last {
            self.steps_per_epoch() * self.batch_size
        } else {
            self.rows.len()
        }
    }

    /// Writes epoch `epoch`'s row order into `order` (reusing its allocation; nothing else is
    /// allocated).
    pub fn epoch_order(&self, epoch: usize, order: &mut Vec<u32>) {
        order.clear();
        match self.shuffle {
            Shuffle::None => order.extend_from_slice(&self.rows),
            Shuffle::Rows => {
                order.extend_from_slice(&self.rows);
                let mut rng =
                    ChaCha8Rng::seed_from_u64(derive_seed(self.seed, &[0x5a3, epoch as u64]));
                order.shuffle(&mut rng);
            }
            Shuffle::Blocks => {
                let n = self.block_count();
                for (w, first) in (0..n).step_by(self.blocks.window).enumerate() {
                    let start = order.len();
                    for i in first..(first + self.blocks.window).min(n) {
                        order.extend_from_slice(self.block(self.block_at(epoch, i)));
                    }
                    let key = derive_seed(self.seed, &[0xb10c, epoch as u64, w as u64]);
                    order[start..].shuffle(&mut ChaCha8Rng::seed_from_u64(key));
                }
            }
        }
    }

    /// The rows of step `step` within an order from [`Sampler::epoch_order`].
    pub fn batch<'a>(&self, order: &'a [u32], step: usize) -> &'a [u32] {
        let start = step * self.batch_size;
        &order[start..(start + self.batch_size).min(order.len())]
    }
}

/// A keyed permutation of `0..n` without a table: a four-round Feistel network on the smallest
/// even number of bits that holds `n`, walked until it lands below `n` (at most four tries on
/// average, as the domain is under `4n`).
fn permute(i: u64, n: u64, key: u64) -> u64 {
    debug_assert!(i < n);
    let bits = (64 - n.saturating_sub(1).leading_zeros()).max(2);
    let half = bits.div_ceil(2);
    let mask = (1u64 << half) - 1;
    let mut x = i;
    loop {
        let (mut l, mut r) = (x >> half, x & mask);
        for round in 0..4u64 {
            let f = mix64(r ^ key ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15)) & mask;
            (l, r) = (r, l ^ f);
        }
        x = (l << half) | r;
        if x < n {
            return x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_per_epoch_follow_dataloader() {
        let s =
            |b, drop| Sampler::new((0..10).collect(), b, Shuffle::Rows, drop, 0).steps_per_epoch();
        assert_eq!(s(1, false), 10);
        assert_eq!(s(3, false), 4);
        assert_eq!(s(3, true), 3);
        assert_eq!(s(10, false), 1);
        assert_eq!(s(16, false), 1);
        assert_eq!(s(16, true), 0);
    }

    #[test]
    fn shuffled_orders_are_permutations_that_change_per_epoch() {
        let s = Sampler::new((0..50).collect(), 8, Shuffle::Rows, false, 3);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        s.epoch_order(0, &mut a);
        s.epoch_order(1, &mut b);
        assert_ne!(a, b);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        let mut again = Vec::new();
        s.epoch_order(0, &mut again);
        assert_eq!(a, again, "an epoch's order depends on (seed, epoch) only");
        assert_eq!(s.batch(&a, 6).len(), 2, "last partial batch kept");
    }

    #[test]
    fn no_shuffle_keeps_file_order() {
        let s = Sampler::new(vec![2, 5, 7], 2, Shuffle::None, false, 3);
        let mut o = Vec::new();
        s.epoch_order(4, &mut o);
        assert_eq!(o, vec![2, 5, 7]);
    }

    #[test]
    fn the_keyed_permutation_is_a_permutation_for_any_size() {
        for n in [1u64, 2, 3, 5, 16, 17, 100, 1000] {
            let mut seen: Vec<u64> = (0..n).map(|i| permute(i, n, 42)).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n = {n}");
        }
        let a: Vec<u64> = (0..100).map(|i| permute(i, 100, 1)).collect();
        let b: Vec<u64> = (0..100).map(|i| permute(i, 100, 2)).collect();
        assert_ne!(a, b, "the key changes the permutation");
    }

    #[test]
    fn block_order_is_a_permutation_read_a_block_at_a_time() {
        let rows: Vec<u32> = (0..1000).filter(|r| r % 7 != 0).collect(); // a split with holes
        let s = Sampler::new(rows.clone(), 32, Shuffle::Blocks, false, 9).with_blocks(Blocks {
            rows: 50,
            window: 3,
        });
        let (mut a, mut b) = (Vec::new(), Vec::new());
        s.epoch_order(0, &mut a);
        s.epoch_order(1, &mut b);
        assert_ne!(a, b, "each epoch has its own order");
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, rows, "every training row once");
        let mut again = Vec::new();
        s.epoch_order(0, &mut again);
        assert_eq!(a, again, "an epoch's order depends on (seed, epoch) only");
        // Each window holds exactly the rows of its 3 whole blocks (one of them may be the
        // split's short last block).
        let mut at = 0;
        for w in 0..s.block_count().div_ceil(3) {
            let mut want: Vec<u32> = (w * 3..(w * 3 + 3).min(s.block_count()))
                .flat_map(|i| s.block(s.block_at(0, i)).to_vec())
                .collect();
            let mut got = a[at..at + want.len()].to_vec();
            at += want.len();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "window {w}");
        }
        assert_eq!(at, a.len());
        assert_ne!(
            &a[..50],
            s.block(s.block_at(0, 0)),
            "rows are shuffled within a window"
        );
    }
}
