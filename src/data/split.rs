//! Deterministic train/validation split.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::rng::derive_seed;

/// Row indices of the training and validation parts of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Training rows, ascending (file order).
    pub train: Vec<u32>,
    /// Validation rows, ascending.
    pub val: Vec<u32>,
}

impl Split {
    /// Holds out `round(rows × fraction)` rows chosen by a permutation seeded from `seed`.
    ///
    /// Both parts are sorted, so `--no-shuffle` presents training rows in file order, and a
    /// fraction of 0 keeps every row for training in file order (what PyTorch parity needs).
    ///
    /// # Panics
    /// If `fraction` is outside `[0, 1)` (validated at the CLI).
    pub fn new(rows: usize, fraction: f64, seed: u64) -> Self {
        assert!((0.0..1.0).contains(&fraction), "fraction must be in [0, 1)");
        let n_val = ((rows as f64) * fraction).round() as usize;
        let mut perm: Vec<u32> = (0..rows as u32).collect();
        if n_val == 0 {
            return Split {
                train: perm,
                val: Vec::new(),
            };
        }
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, &[0x5917]));
        perm.shuffle(&mut rng);
        let mut val = perm[..n_val].to_vec();
        let mut train = perm[n_val..].to_vec();
        val.sort_unstable();
        train.sort_unstable();
        Split { train, val }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_a_deterministic_partition() {
        let a = Split::new(100, 0.2, 7);
        assert_eq!(a, Split::new(100, 0.2, 7));
        assert_eq!(a.val.len(), 20);
        let mut all: Vec<u32> = a.train.iter().chain(&a.val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_ne!(a.val, Split::new(100, 0.2, 8).val);
    }

    #[test]
    fn zero_fraction_keeps_file_order() {
        let s = Split::new(5, 0.0, 1);
        assert_eq!(s.train, vec![0, 1, 2, 3, 4]);
        assert!(s.val.is_empty());
    }
}
