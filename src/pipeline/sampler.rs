//! The order in which training rows are presented, epoch by epoch.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::rng::derive_seed;

/// Decides each epoch's row order and how it is cut into batches, like PyTorch's `DataLoader`
/// (`shuffle=True` reshuffles every epoch; the last partial batch is kept unless `drop_last`).
///
/// The permutation of epoch `e` is a function of `(seed, e)` only, so any epoch can be
/// reproduced without replaying the ones before it (what exact resume needs).
#[derive(Debug, Clone)]
pub struct Sampler {
    rows: Vec<u32>,
    batch_size: usize,
    shuffle: bool,
    drop_last: bool,
    seed: u64,
}

impl Sampler {
    /// A sampler over `rows` (the training split, in file order).
    ///
    /// # Panics
    /// If `batch_size` is zero (validated at the CLI).
    pub fn new(
        rows: Vec<u32>,
        batch_size: usize,
        shuffle: bool,
        drop_last: bool,
        seed: u64,
    ) -> Self {
        assert!(batch_size > 0, "batch size must be positive");
        Sampler {
            rows,
            batch_size,
            shuffle,
            drop_last,
            seed,
        }
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

    /// Writes epoch `epoch`'s row order into `order` (reusing its allocation).
    pub fn epoch_order(&self, epoch: usize, order: &mut Vec<u32>) {
        order.clear();
        order.extend_from_slice(&self.rows);
        if self.shuffle {
            let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(self.seed, &[0x5a3, epoch as u64]));
            order.shuffle(&mut rng);
        }
    }

    /// The rows of step `step` within an order from [`Sampler::epoch_order`].
    pub fn batch<'a>(&self, order: &'a [u32], step: usize) -> &'a [u32] {
        let start = step * self.batch_size;
        &order[start..(start + self.batch_size).min(order.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_per_epoch_follow_dataloader() {
        let s = |b, drop| Sampler::new((0..10).collect(), b, true, drop, 0).steps_per_epoch();
        assert_eq!(s(1, false), 10);
        assert_eq!(s(3, false), 4);
        assert_eq!(s(3, true), 3);
        assert_eq!(s(10, false), 1);
        assert_eq!(s(16, false), 1);
        assert_eq!(s(16, true), 0);
    }

    #[test]
    fn shuffled_orders_are_permutations_that_change_per_epoch() {
        let s = Sampler::new((0..50).collect(), 8, true, false, 3);
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
        let s = Sampler::new(vec![2, 5, 7], 2, false, false, 3);
        let mut o = Vec::new();
        s.epoch_order(4, &mut o);
        assert_eq!(o, vec![2, 5, 7]);
    }
}
