//! The gradient noise scale (McCandlish et al. 2018, "An Empirical Model of Large-Batch
//! Training", appendix A), estimated for free from the shard gradients a step computes anyway.
//!
//! With `K` shards of `b` rows (batch `B = K·b`), `|G_big|²` the squared norm of the batch-mean
//! gradient and `|g_k|²` those of the shard-mean gradients, two unbiased estimates follow:
//!
//! ```text
//! |G|²   = (K·|G_big|² − mean_k |g_k|²) / (K − 1)
//! tr(Σ)  = b·K·(mean_k |g_k|² − |G_big|²) / (K − 1)
//! ```
//!
//! and the simple noise scale is `B_simple = tr(Σ) / |G|²`, the batch size around which the
//! benefit of larger batches turns from linear to flat. Single-step estimates are noisy (and
//! may be negative): [`NoiseScale`] keeps exponential moving averages of both and reports the
//! ratio of the averages, not the average of ratios.

use serde::{Deserialize, Serialize};

/// One step's unbiased estimates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct NoiseSample {
    /// Estimate of the squared norm of the true gradient, `|G|²`.
    pub g2: f64,
    /// Estimate of the trace of the per-sample gradient covariance, `tr(Σ)`.
    pub trace: f64,
}

impl NoiseSample {
    /// The estimates from `shards` shard-mean squared norms summing to `sum_small` (each shard's
    /// gradient taken as the mean over its own rows), the batch-mean squared norm `big`, and
    /// `rows` rows in the batch. `None` with fewer than two shards: one batch size alone says
    /// nothing about the noise.
    pub fn estimate(shards: usize, rows: usize, sum_small: f64, big: f64) -> Option<Self> {
        if shards < 2 {
            return None;
        }
        let k = shards as f64;
        let b = rows as f64 / k;
        let mean_small = sum_small / k;
        Some(NoiseSample {
            g2: (k * big - mean_small) / (k - 1.0),
            trace: b * k * (mean_small - big) / (k - 1.0),
        })
    }
}

/// Exponential moving averages of [`NoiseSample`]s.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseScale {
    decay: f64,
    g2: f64,
    trace: f64,
    weight: f64,
}

impl NoiseScale {
    /// Averages with `decay` per step (e.g. 0.99: about the last hundred steps count).
    pub fn new(decay: f64) -> Self {
        NoiseScale {
            decay,
            g2: 0.0,
            trace: 0.0,
            weight: 0.0,
        }
    }

    /// Adds one step's estimates.
    pub fn update(&mut self, s: NoiseSample) {
        let d = self.decay;
        self.g2 = d * self.g2 + (1.0 - d) * s.g2;
        self.trace = d * self.trace + (1.0 - d) * s.trace;
        self.weight = d * self.weight + (1.0 - d);
    }

    /// Bias-corrected averages `(|G|², tr Σ)`, or `None` before the first sample.
    pub fn averages(&self) -> Option<(f64, f64)> {
        (self.weight > 0.0).then(|| (self.g2 / self.weight, self.trace / self.weight))
    }

    /// `B_simple = EMA(tr Σ) / EMA(|G|²)`; `None` before the first sample or while the
    /// averaged `|G|²` is not positive (the gradient is then indistinguishable from noise).
    pub fn b_simple(&self) -> Option<f64> {
        let (g2, trace) = self.averages()?;
        (g2 > 0.0).then(|| trace / g2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_are_exact_for_a_noiseless_gradient() {
        // Every shard sees the same gradient: no noise, |G|² is that norm.
        let s = NoiseSample::estimate(4, 64, 4.0 * 9.0, 9.0).unwrap();
        assert!((s.g2 - 9.0).abs() < 1e-12 && s.trace.abs() < 1e-12);
        assert!(NoiseSample::estimate(1, 64, 9.0, 9.0).is_none());
    }

    #[test]
    fn the_ratio_of_averages_is_reported() {
        let mut n = NoiseScale::new(0.5);
        n.update(NoiseSample {
            g2: 1.0,
            trace: 10.0,
        });
        n.update(NoiseSample {
            g2: 3.0,
            trace: 10.0,
        });
        // Averages 2.33… and 10 (bias-corrected): 10 / 2.33…, not the mean of 10 and 3.33.
        let b = n.b_simple().unwrap();
        assert!((b - 10.0 / (7.0 / 3.0)).abs() < 1e-9, "{b}");
    }
}
