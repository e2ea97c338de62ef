//! The gradient-noise-scale estimate lands on the true value where the per-sample gradient
//! covariance is known exactly.
//!
//! Linear regression `y = w*·x + ε`, `x ~ N(0, I)`, `ε ~ N(0, σ²)`, evaluated at fixed
//! parameters `θ = (w, b)`: the per-sample gradient of the squared error is
//! `g_i = 2 (θ·[x_i, 1] − y_i) [x_i, 1]`. Its mean `G` and covariance trace `tr Σ` are computed
//! in `f64` over a large sample (the "true" values); the engine's estimate from shard gradients,
//! averaged over many batches at the same `θ` (ratio of averages), must land within 10%.

use dptrain::loss::{Loss, Targets};
use dptrain::model::{Activation, DropoutKey, Mlp};
use dptrain::parallel::{BatchRef, GradientEngine, NoiseEstimate, StepTimes};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn b_simple_lands_within_ten_percent_of_the_true_noise_scale() {
    let (d, n, sigma) = (8usize, 200_000usize, 0.5f64);
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let normal = |rng: &mut ChaCha8Rng| {
        // Box–Muller: enough for a test, no extra dependency.
        let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    let w_star: Vec<f64> = (0..d).map(|i| 1.0 - 0.25 * i as f64).collect();
    let mut x = vec![0f32; n * d];
    let mut y = vec![0f32; n];
    for i in 0..n {
        let mut t = 0.0;
        for j in 0..d {
            let v = normal(&mut rng);
            x[i * d + j] = v as f32;
            t += w_star[j] * v;
        }
        y[i] = (t + sigma * normal(&mut rng)) as f32;
    }
    // θ: all weights 0.3, bias 0.1 (far enough from w* that the gradient is not all noise).
    let mlp = Mlp::new(vec![d, 1], Activation::Relu, 0.0);
    let mut params = vec![0.3f32; mlp.num_params()];
    *params.last_mut().unwrap() = 0.1;

    // True G and tr Σ from every sample.
    let mut g_mean = vec![0f64; d + 1];
    let mut sq_sum = 0f64;
    for i in 0..n {
        let xi = &x[i * d..(i + 1) * d];
        let r: f64 = xi.iter().map(|&v| 0.3 * v as f64).sum::<f64>() + 0.1 - y[i] as f64;
        for j in 0..d {
            let g = 2.0 * r * xi[j] as f64;
            g_mean[j] += g / n as f64;
            sq_sum += g * g;
        }
        g_mean[d] += 2.0 * r / n as f64;
        sq_sum += 4.0 * r * r;
    }
    let g2_true: f64 = g_mean.iter().map(|g| g * g).sum();
    let trace_true = sq_sum / n as f64 - g2_true;
    let b_true = trace_true / g2_true;

    // The engine's estimate: batches of 256 rows in 8 shards, parameters held fixed.
    let (batch, shard) = (256usize, 32usize);
    let engine = GradientEngine::new(mlp.clone(), Loss::Mse, shard);
    let mut grad = vec![0f32; params.len()];
    let key = DropoutKey {
        seed: 0,
        epoch: 0,
        step: 0,
    };
    let (mut g2, mut trace, mut steps) = (0f64, 0f64, 0usize);
    for start in (0..n - batch).step_by(batch) {
        let view = BatchRef {
            x: &x[start * d..(start + batch) * d],
            targets: Targets::Values(&y[start..start + batch]),
            rows: batch,
        };
        let r = engine.gradient(
            &params,
            &view,
            batch,
            key,
            &mut grad,
            &mut StepTimes::default(),
            NoiseEstimate::Measure,
        );
        let s = r.noise.expect("8 shards give an estimate");
        g2 += s.g2;
        trace += s.trace;
        steps += 1;
    }
    let b_est = trace / g2;
    println!("B_simple: true {b_true:.2}, estimated {b_est:.2} over {steps} batches");
    assert!(
        ((b_est - b_true) / b_true).abs() < 0.10,
        "estimated {b_est}, true {b_true}"
    );
    // The two halves separately, too.
    assert!(((g2 / steps as f64 - g2_true) / g2_true).abs() < 0.10);
    assert!(((trace / steps as f64 - trace_true) / trace_true).abs() < 0.10);
}
