//! The batch-size study on a problem whose noise scale is known in closed form: the fitted
//! `B_crit` lands within a factor of 3 of the exact `B_noise` at the target loss (McCandlish et
//! al. 2018: `B_crit ≈ B_noise`).
//!
//! Noisy linear regression, `y = w*·x + ε`, `x ~ N(0, I_d)`, `ε ~ N(0, σ²)`, trained as a linear
//! model `θ = (w, b)` on the mean squared error (`nn.MSELoss`, mean over rows). With
//! `x̃ = (x, 1)`, `E[x̃ x̃ᵀ] = I`, so the Hessian is `H = 2I` and `B_noise = tr(HΣ)/(GᵀHG)`
//! equals `B_simple = tr(Σ)/|G|²`. Writing `δ = w − w*`, `e = |δ|² + b²` (the excess loss):
//!
//! ```text
//! G     = 2 (δ, b),                 |G|² = 4e
//! tr Σ  = 4 [(d+2)|δ|² + d b² + (d+1)σ²]      (Gaussian fourth moments)
//! B_noise(e) = [(d+2)|δ|² + d b² + (d+1)σ²] / e  ∈  [d, d+2] + (d+1)σ²/e
//! ```
//!
//! so at the target excess `e_T` it is known to within `2` whatever the split of `e` between
//! `w` and `b`: with `d = 4`, `σ = 1`, `e_T = 0.1`, `B_noise ∈ [54, 56]`. The target validation
//! loss is the validation set's own floor `mean((y − w*·x)²)` plus `e_T`.

use std::sync::Arc;

use dptrain::data::{Dataset, Split};
use dptrain::optim::LrScaling;
use dptrain::pipeline::BatchSize;
use dptrain::setting::List;
use dptrain::sweep::{self, StudyRuns, SweepConfig, Target};
use dptrain::train::TrainConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn fitted_b_crit_is_within_a_factor_of_three_of_the_exact_noise_scale_at_the_target() {
    let (d, rows, sigma, e_t) = (4usize, 8000usize, 1.0f64, 0.1f64);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut normal = || {
        // Box–Muller: enough for a test, no extra dependency.
        let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    // |w*|² = 4: the run starts about 4 above the floor.
    let w_star = [1.0f64; 4];
    let mut x = vec![0f32; rows * d];
    let mut y = vec![0f32; rows];
    for i in 0..rows {
        let mut t = 0.0;
        for j in 0..d {
            let v = normal();
            x[i * d + j] = v as f32;
            t += w_star[j] * v;
        }
        y[i] = (t + sigma * normal()) as f32;
    }

    let mut base = TrainConfig::default();
    // Half the rows held out: the validation loss at the target is read to a few percent.
    base.data.val_fraction = 0.5;
    base.model.hidden = List(vec![]);
    base.optim.momentum = 0.0;
    base.optim.lr = 0.2;
    base.lr.lr_scaling = LrScaling::None;
    base.run.epochs = 2;
    base.run.seed = 1;
    // Shards of 4 rows: B_simple is measured at every batch size here.
    base.parallel.shard_size = 4;

    let split = Split::new(rows, base.data.val_fraction, base.run.seed);
    let floor = split
        .val
        .iter()
        .map(|&r| {
            let r = r as usize;
            let pred: f64 = (0..d).map(|j| w_star[j] * x[r * d + j] as f64).sum();
            (y[r] as f64 - pred).powi(2)
        })
        .sum::<f64>()
        / split.val.len() as f64;
    let target = floor + e_t;
    let b_noise = [
        d as f64 + (d as f64 + 1.0) * sigma * sigma / e_t,
        d as f64 + 2.0 + (d as f64 + 1.0) * sigma * sigma / e_t,
    ];

    let dataset = Arc::new(Dataset::from_vecs(x, d, y, 1));
    let sizes = [8usize, 32, 128, 512, 2048];
    let sweep_config = SweepConfig {
        batch_sizes: List(sizes.iter().map(|&b| BatchSize::Rows(b)).collect()),
        target_loss: Target::Loss(target),
        // An evaluation every 8 samples: every step at every batch size.
        evals_per_epoch: 500,
        ..SweepConfig::default()
    };
    let mut study = StudyRuns::default();
    for &b in &sizes {
        let runs = sweep::run_batch_size(
            &dataset,
            &base,
            &sweep_config,
            BatchSize::Rows(b),
            Some(target),
            2,
            &mut |_| {},
        )
        .unwrap();
        study.runs.extend(runs.runs);
        study.throughput.extend(runs.throughput);
    }
    let report = sweep::analyze(study, Target::Loss(target), None);
    let table = sweep::report::table(&report);
    let fit = report.fits[0]
        .fit
        .unwrap_or_else(|| panic!("no fit:\n{table}"));
    let (lo, hi) = (b_noise[0] / 3.0, b_noise[1] * 3.0);
    assert!(
        lo < fit.b_crit && fit.b_crit < hi,
        "B_crit {:.1} is not within a factor 3 of B_noise {:.0}–{:.0}:\n{table}",
        fit.b_crit,
        b_noise[0],
        b_noise[1]
    );
    eprintln!(
        "B_noise at the target {:.0}–{:.0}; fitted B_crit {:.1}; measured B_simple there {:?}\n{table}",
        b_noise[0], b_noise[1], fit.b_crit, report.b_simple_at_target
    );
}
