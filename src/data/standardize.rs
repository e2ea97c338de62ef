//! Per-feature standardisation: `(x − mean) / std`, fitted on the training rows only.

use serde::{Deserialize, Serialize};

use crate::data::Dataset;

/// Mean and standard deviation of every feature.
///
/// A constant feature (standard deviation 0, or not finite) gets a divisor of 1, so it maps to 0
/// instead of NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// Per-feature mean.
    pub mean: Vec<f32>,
    /// Per-feature divisor (the population standard deviation, or 1 for constant features).
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fits on `rows` of `dataset` in one streaming pass over the mapped file (Welford's
    /// algorithm in `f64`, so a large dataset loses no precision).
    ///
    /// # Panics
    /// If `rows` is empty (the trainer refuses an empty training split first).
    pub fn fit(dataset: &Dataset, rows: &[u32]) -> Self {
        assert!(!rows.is_empty(), "cannot standardise zero rows");
        let f = dataset.features();
        let mut mean = vec![0.0f64; f];
        let mut m2 = vec![0.0f64; f];
        for (n, &r) in rows.iter().enumerate() {
            let n = (n + 1) as f64;
            for ((m, s), &x) in mean.iter_mut().zip(&mut m2).zip(dataset.x_row(r as usize)) {
                let x = x as f64;
                let d = x - *m;
                *m += d / n;
                *s += d * (x - *m);
            }
        }
        let n = rows.len() as f64;
        let std = m2
            .iter()
            .map(|&s| {
                let sd = (s / n).sqrt();
                if sd.is_finite() && sd > 1e-12 {
                    sd as f32
                } else {
                    1.0
                }
            })
            .collect();
        Standardizer {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            std,
        }
    }

    /// Number of features.
    pub fn features(&self) -> usize {
        self.mean.len()
    }

    /// Standardises `x` (`rows × features`, row-major) in place.
    pub fn apply(&self, x: &mut [f32]) {
        for row in x.chunks_exact_mut(self.mean.len()) {
            for ((v, &m), &s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardised_training_rows_have_zero_mean_and_unit_variance() {
        let x: Vec<f32> = (0..300)
            .map(|i| {
                if i % 3 == 2 {
                    5.0
                } else {
                    (i as f32).sin() * 10.0 + 3.0
                }
            })
            .collect();
        let data = Dataset::from_vecs(x.clone(), 3, vec![0.0; 100], 1);
        let rows: Vec<u32> = (0..100).collect();
        let s = Standardizer::fit(&data, &rows);
        let mut z = x;
        s.apply(&mut z);
        for c in 0..2 {
            let col: Vec<f64> = z.iter().skip(c).step_by(3).map(|&v| v as f64).collect();
            let mean = col.iter().sum::<f64>() / 100.0;
            let var = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 100.0;
            assert!(
                mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
                "column {c}: {mean} {var}"
            );
        }
        // The constant third feature maps to 0, not NaN.
        assert!(z.iter().skip(2).step_by(3).all(|&v| v == 0.0));
    }

    #[test]
    fn only_the_given_rows_are_used() {
        let data = Dataset::from_vecs(vec![1.0, 2.0, 3.0, 100.0], 1, vec![0.0; 4], 1);
        let s = Standardizer::fit(&data, &[0, 1, 2]);
        assert_eq!(s.mean, vec![2.0]);
    }
}
