//! Fitting the steps-to-result model `S(B) = S_min · (1 + B_crit / B)` (McCandlish et al.
//! 2018, eq. 2.11; the shape Shallue et al. 2018 measure).

use serde::{Deserialize, Serialize};

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

/// Fits `S = a + c / B` by least squares on relative errors (weights `1/S²`), so small and
/// large step counts count alike; `S_min = a`, `B_crit = c / a`.
///
/// `None` with fewer than two distinct batch sizes, or when the fitted `a` or `c` is not
/// positive (the data do not show the two regimes).
pub fn fit_steps(points: &[(f64, f64)]) -> Option<StepsFit> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|&(b, s)| b > 0.0 && s > 0.0 && s.is_finite())
        .collect();
    let distinct = {
        let mut b: Vec<f64> = pts.iter().map(|p| p.0).collect();
        b.sort_by(f64::total_cmp);
        b.dedup();
        b.len()
    };
    if distinct < 2 {
        return None;
    }
    // Weighted normal equations for S ≈ a + c·u, u = 1/B, weights w = 1/S².
    let (mut sw, mut su, mut suu, mut ss, mut sus) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(b, s) in &pts {
        let (u, w) = (1.0 / b, 1.0 / (s * s));
        sw += w;
        su += w * u;
        suu += w * u * u;
        ss += w * s;
        sus += w * u * s;
    }
    let det = sw * suu - su * su;
    if det.abs() < f64::MIN_POSITIVE {
        return None;
    }
    let a = (ss * suu - su * sus) / det;
    let c = (sw * sus - su * ss) / det;
    (a > 0.0 && c > 0.0).then(|| StepsFit {
        s_min: a,
        e_min: c,
        b_crit: c / a,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_parameters_of_exact_data() {
        let (s_min, b_crit) = (200.0, 512.0);
        let pts: Vec<(f64, f64)> = [16.0, 64.0, 256.0, 1024.0, 4096.0]
            .iter()
            .map(|&b| (b, s_min * (1.0 + b_crit / b)))
            .collect();
        let f = fit_steps(&pts).unwrap();
        assert!((f.s_min - s_min).abs() < 1e-6 * s_min);
        assert!((f.b_crit - b_crit).abs() < 1e-6 * b_crit);
        assert!((f.e_min - s_min * b_crit).abs() < 1e-3);
    }

    #[test]
    fn refuses_data_without_the_two_regimes() {
        assert!(fit_steps(&[(16.0, 100.0)]).is_none());
        // Steps that grow with the batch size: no positive B_crit.
        assert!(fit_steps(&[(16.0, 100.0), (64.0, 200.0), (256.0, 400.0)]).is_none());
    }
}
