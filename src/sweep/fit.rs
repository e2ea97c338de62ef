//! Fitting the steps-to-result model `S(B) = S_min · (1 + B_crit / B)` (McCandlish et al.
//! 2018, eq. 2.11; the shape Shallue et al. 2018 measure), saying which case it is when it
//! cannot be fitted, and a bootstrap interval for `B_crit`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Batch sizes that must reach the target for a fit: two points fit two parameters exactly
/// and say nothing about whether the model holds.
pub const MIN_POINTS: usize = 3;

/// Bootstrap replicates for the `B_crit` interval.
const REPLICATES: usize = 400;

/// The fitted model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepsFit {
    /// Steps needed with an infinite batch.
    pub s_min: f64,
    /// Samples needed with a batch of one: `S_min · B_crit`.
    pub e_min: f64,
    /// The critical batch size: below it, doubling the batch halves the steps; above it, the
    /// steps hardly fall.
    pub b_crit: f64,
}

impl StepsFit {
    /// The model's steps at batch size `b`.
    pub fn steps(&self, b: f64) -> f64 {
        self.s_min * (1.0 + self.b_crit / b)
    }
}

/// Why the model could not be fitted, each case with what to run next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "case", rename_all = "snake_case")]
pub enum FitFailure {
    /// Fewer than `MIN_POINTS` batch sizes reached the target.
    TooFewReached {
        /// Batch sizes that reached it.
        reached: usize,
        /// Batch sizes tried.
        tried: usize,
    },
    /// The steps still fall as fast as `1/B` (or faster) up to the largest batch: no positive
    /// `S_min`, `B_crit` lies above the largest batch tried.
    BCritAboveLargest {
        /// The largest batch size that reached the target.
        largest: usize,
    },
    /// The steps do not fall with the batch size: `B_crit` is at or below the smallest batch.
    StepsDoNotFall {
        /// The smallest batch size that reached the target.
        smallest: usize,
    },
}

impl FitFailure {
    /// What happened, in a sentence.
    pub fn message(&self) -> String {
        match self {
            FitFailure::TooFewReached { reached, tried } => format!(
                "only {reached} of {tried} batch sizes reached the target; the fit needs \
                 {MIN_POINTS}"
            ),
            FitFailure::BCritAboveLargest { largest } => format!(
                "the steps still fall as fast as 1/B up to the largest batch ({largest}): \
                 B_crit lies above it"
            ),
            FitFailure::StepsDoNotFall { smallest } => format!(
                "the steps do not fall as the batch grows: B_crit is at or below the smallest \
                 batch ({smallest})"
            ),
        }
    }

    /// What to run next.
    pub fn next(&self) -> String {
        match self {
            FitFailure::TooFewReached { tried, .. } if *tried < MIN_POINTS => {
                format!("give at least {MIN_POINTS} --batch-sizes")
            }
            FitFailure::TooFewReached { .. } => "raise --target-loss (or use auto), or train \
                                                  longer (--epochs), so more batch sizes reach \
                                                  it"
            .into(),
            FitFailure::BCritAboveLargest { largest } => format!(
                "add larger batch sizes ({}, {} or full) to --batch-sizes",
                largest * 4,
                largest * 16
            ),
            FitFailure::StepsDoNotFall { smallest } => format!(
                "add smaller batch sizes (below {smallest}) to --batch-sizes, and check the \
                 learning rate is tuned at each (a best rate on the grid's edge: widen \
                 --lr-grid)"
            ),
        }
    }
}

/// Least squares of `S = a + c / B` on relative errors (weights `1/S²`), so small and large
/// step counts count alike: `(a, c)`, or `None` when the points do not determine them.
fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let (mut sw, mut su, mut suu, mut ss, mut sus) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(b, s) in points {
        let (u, w) = (1.0 / b, 1.0 / (s * s));
        sw += w;
        su += w * u;
        suu += w * u * u;
        ss += w * s;
        sus += w * u * s;
    }
    let det = sw * suu - su * su;
    if det.is_nan() || det.abs() < f64::MIN_POSITIVE {
        return None;
    }
    Some(((ss * suu - su * sus) / det, (sw * sus - su * ss) / det))
}

/// Fits the model to `(batch, steps)` points of the batch sizes that reached the target, of
/// `tried` batch sizes in all; `S_min = a`, `B_crit = c / a`.
///
/// # Errors
/// The [`FitFailure`] case: too few points, no positive `S_min`, or no positive `c`.
pub fn fit_steps(points: &[(f64, f64)], tried: usize) -> Result<StepsFit, FitFailure> {
    let mut pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|&(b, s)| b > 0.0 && s > 0.0 && s.is_finite())
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let distinct = {
        let mut b: Vec<f64> = pts.iter().map(|p| p.0).collect();
        b.dedup();
        b.len()
    };
    let too_few = FitFailure::TooFewReached {
        reached: distinct,
        tried: tried.max(distinct),
    };
    if distinct < MIN_POINTS {
        return Err(too_few);
    }
    let (a, c) = least_squares(&pts).ok_or(too_few)?;
    if c <= 0.0 {
        return Err(FitFailure::StepsDoNotFall {
            smallest: pts[0].0 as usize,
        });
    }
    if a <= 0.0 {
        return Err(FitFailure::BCritAboveLargest {
            largest: pts[pts.len() - 1].0 as usize,
        });
    }
    Ok(StepsFit {
        s_min: a,
        e_min: c,
        b_crit: c / a,
    })
}

/// What the points say beside the fit: steps that fell faster than `1/B` between neighbouring
/// batch sizes (a sign the smaller one's learning rate was too small), and a `B_crit` outside
/// the batch sizes tried (an extrapolation).
pub fn notes(points: &[(f64, f64)], fit: Option<&StepsFit>) -> Vec<String> {
    let mut pts: Vec<(f64, f64)> = points.to_vec();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = Vec::new();
    for w in pts.windows(2) {
        let ((b1, s1), (b2, s2)) = (w[0], w[1]);
        // Samples to target that fall by a quarter or more: faster than perfect scaling.
        if s1 * b1 > 1.25 * s2 * b2 {
            out.push(format!(
                "from batch {b1} to {b2} the steps fell faster than 1/B ({s1:.0} → {s2:.0}): \
                 the smaller batch's learning rate was likely too small (widen --lr-grid)"
            ));
        }
    }
    if let (Some(f), Some(first), Some(last)) = (fit, pts.first(), pts.last()) {
        if f.b_crit > last.0 {
            out.push(format!(
                "B_crit {:.0} lies above the largest batch that reached the target ({}): an \
                 extrapolation; add larger batch sizes",
                f.b_crit, last.0
            ));
        } else if f.b_crit < first.0 {
            out.push(format!(
                "B_crit {:.0} lies below the smallest batch ({}): an extrapolation; add \
                 smaller batch sizes",
                f.b_crit, first.0
            ));
        }
    }
    out
}

/// The measured steps to target of one batch size, for the bootstrap: each seed's crossing,
/// as `(interpolated, low, high)` steps (the evaluations that bracket it).
#[derive(Debug, Clone)]
pub struct Measured {
    /// Rows per step.
    pub batch: f64,
    /// One entry per seed that reached the target.
    pub crossings: Vec<(f64, f64, f64)>,
}

/// A 90% bootstrap interval for `B_crit` and the share of replicates that could not be fitted.
///
/// Each replicate resamples, per batch size, the seeds that reached the target (with
/// replacement), draws each crossing uniformly between the two evaluations that bracket it
/// (the evaluation resolution), takes the median, and multiplies it by a resampled residual of
/// the fit (its log ratio, with a random sign: what the model does not explain); then refits.
/// Seeded, so the same runs give the same interval.
pub fn bootstrap(measured: &[Measured], fit: &StepsFit) -> Option<([f64; 2], f64)> {
    let points: Vec<(f64, f64)> = measured
        .iter()
        .filter_map(|m| Some((m.batch, median(m.crossings.iter().map(|c| c.0).collect())?)))
        .collect();
    let residuals: Vec<f64> = points
        .iter()
        .map(|&(b, s)| (s / fit.steps(b)).ln())
        .collect();
    if points.len() < MIN_POINTS {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut b_crit = Vec::with_capacity(REPLICATES);
    for _ in 0..REPLICATES {
        let mut replicate = Vec::with_capacity(measured.len());
        for m in measured.iter().filter(|m| !m.crossings.is_empty()) {
            let draws: Vec<f64> = (0..m.crossings.len())
                .map(|_| {
                    let (s, lo, hi) = m.crossings[rng.random_range(0..m.crossings.len())];
                    if hi > lo {
                        rng.random_range(lo..=hi)
                    } else {
                        s
                    }
                })
                .collect();
            let r = residuals[rng.random_range(0..residuals.len())];
            let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
            let s = median(draws).unwrap_or(f64::NAN) * (sign * r).exp();
            replicate.push((m.batch, s));
        }
        if let Ok(f) = fit_steps(&replicate, replicate.len()) {
            b_crit.push(f.b_crit);
        }
    }
    if b_crit.is_empty() {
        return None;
    }
    b_crit.sort_by(f64::total_cmp);
    let at = |q: f64| b_crit[((b_crit.len() - 1) as f64 * q).round() as usize];
    let failed = 1.0 - b_crit.len() as f64 / REPLICATES as f64;
    Some(([at(0.05), at(0.95)], failed))
}

/// The median of `v`, `None` when empty.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(s_min: f64, b_crit: f64, batches: &[f64]) -> Vec<(f64, f64)> {
        batches
            .iter()
            .map(|&b| (b, s_min * (1.0 + b_crit / b)))
            .collect()
    }

    #[test]
    fn recovers_the_parameters_of_exact_data() {
        let (s_min, b_crit) = (200.0, 512.0);
        let pts = model(s_min, b_crit, &[16.0, 64.0, 256.0, 1024.0, 4096.0]);
        let f = fit_steps(&pts, 5).unwrap();
        assert!((f.s_min - s_min).abs() < 1e-6 * s_min);
        assert!((f.b_crit - b_crit).abs() < 1e-6 * b_crit);
        assert!((f.e_min - s_min * b_crit).abs() < 1e-3);
        assert!(notes(&pts, Some(&f)).is_empty(), "nothing to say");
    }

    #[test]
    fn too_few_batch_sizes_at_the_target_is_its_own_case() {
        let pts = model(100.0, 50.0, &[16.0, 64.0]);
        let e = fit_steps(&pts, 4).unwrap_err();
        assert_eq!(
            e,
            FitFailure::TooFewReached {
                reached: 2,
                tried: 4
            }
        );
        assert!(e.message().contains("2 of 4") && e.next().contains("--target-loss"));
        let e = fit_steps(&pts, 2).unwrap_err();
        assert!(
            e.next().contains("at least 3 --batch-sizes"),
            "{}",
            e.next()
        );
    }

    #[test]
    fn steps_falling_as_fast_as_one_over_b_put_b_crit_above_the_largest_batch() {
        // The example: 256 → 1024 fell faster than 1/B (1259 → 242).
        let pts = [
            (16.0, 21000.0),
            (64.0, 5100.0),
            (256.0, 1259.0),
            (1024.0, 242.0),
        ];
        let e = fit_steps(&pts, 4).unwrap_err();
        assert_eq!(e, FitFailure::BCritAboveLargest { largest: 1024 });
        assert!(e.next().contains("4096"), "{}", e.next());
        let n = notes(&pts, None);
        assert!(
            n.iter().any(|s| s.contains("from batch 256 to 1024")),
            "{n:?}"
        );
    }

    #[test]
    fn steps_that_do_not_fall_put_b_crit_below_the_smallest_batch() {
        let flat = [(16.0, 100.0), (64.0, 101.0), (256.0, 99.0), (1024.0, 102.0)];
        assert_eq!(
            fit_steps(&flat, 4),
            Err(FitFailure::StepsDoNotFall { smallest: 16 })
        );
        let growing = [(16.0, 100.0), (64.0, 200.0), (256.0, 400.0)];
        let e = fit_steps(&growing, 3).unwrap_err();
        assert!(matches!(e, FitFailure::StepsDoNotFall { .. }));
        assert!(e.next().contains("smaller batch sizes"));
    }

    #[test]
    fn the_bootstrap_interval_holds_the_fitted_b_crit() {
        let truth = StepsFit {
            s_min: 100.0,
            e_min: 100.0 * 300.0,
            b_crit: 300.0,
        };
        // Three seeds a batch size, scattered ±5% around the model, evaluations 10% apart.
        let measured: Vec<Measured> = [16.0, 64.0, 256.0, 1024.0, 4096.0]
            .iter()
            .map(|&b| Measured {
                batch: b,
                crossings: [0.95, 1.0, 1.05]
                    .iter()
                    .map(|k| {
                        let s = truth.steps(b) * k;
                        (s, s * 0.95, s * 1.05)
                    })
                    .collect(),
            })
            .collect();
        let pts: Vec<(f64, f64)> = measured
            .iter()
            .map(|m| (m.batch, m.crossings[1].0))
            .collect();
        let f = fit_steps(&pts, 5).unwrap();
        let ([lo, hi], failed) = bootstrap(&measured, &f).unwrap();
        assert!(lo < f.b_crit && f.b_crit < hi, "{lo} {} {hi}", f.b_crit);
        assert!(
            lo > 150.0 && hi < 600.0,
            "±5% noise: a narrow interval, {lo}..{hi}"
        );
        assert_eq!(failed, 0.0);
    }
}
