//! Seeds and the counter-based random numbers used where scheduling must not matter.
//!
//! Sequential streams (initialisation, permutations, the split) use `ChaCha8Rng` seeded through
//! [`derive_seed`]. Dropout masks instead come from [`CounterRng`]: a pure function of
//! `(seed, epoch, step, sample, layer, unit)`, so a mask never depends on which thread computed
//! which shard, nor on how many shards there are.

/// SplitMix64's finaliser: a bijective 64-bit mixer with full avalanche.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Combines a seed with a path of integers (e.g. `[purpose, epoch]`) into a new seed.
pub fn derive_seed(seed: u64, path: &[u64]) -> u64 {
    path.iter()
        .fold(mix64(seed ^ 0x9e37_79b9_7f4a_7c15), |h, &p| {
            mix64(h ^ mix64(p.wrapping_add(0x9e37_79b9_7f4a_7c15)))
        })
}

/// A counter-based generator: the `i`-th number of a stream is `mix64(key + i·γ)`.
#[derive(Debug, Clone, Copy)]
pub struct CounterRng {
    key: u64,
}

impl CounterRng {
    /// The stream for one key (see [`derive_seed`]).
    pub fn new(key: u64) -> Self {
        CounterRng { key }
    }

    /// A uniform number in `[0, 1)` with 24 bits of resolution (exact in `f32`).
    #[inline]
    pub fn uniform(&self, counter: u64) -> f32 {
        let bits = mix64(
            self.key
                .wrapping_add(counter.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        );
        (bits >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_uniforms_are_uniform_enough() {
        let r = CounterRng::new(derive_seed(3, &[1, 2]));
        let n = 100_000;
        let mean: f64 = (0..n).map(|i| r.uniform(i) as f64).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
        let below: usize = (0..n).filter(|&i| r.uniform(i) < 0.3).count();
        assert!((below as f64 / n as f64 - 0.3).abs() < 0.01);
    }

    #[test]
    fn derived_seeds_differ_by_path() {
        assert_ne!(derive_seed(1, &[0, 1]), derive_seed(1, &[1, 0]));
        assert_ne!(derive_seed(1, &[0]), derive_seed(2, &[0]));
    }
}
