//! Gradient clipping by global norm, as `torch.nn.utils.clip_grad_norm_` does it.

use std::ops::Range;

/// Scales `grad` so that its global L2 norm is at most `max_norm`, and returns the norm it had.
///
/// As PyTorch: the global norm is the L2 norm of the per-tensor L2 norms (`tensors` are the
/// ranges of the flat buffer holding each parameter tensor, e.g. `fc1.weight`, `fc1.bias`); the
/// coefficient is `max_norm / (norm + 1e-6)`, clamped to 1, and multiplies every gradient
/// element (a coefficient of 1 leaves the gradient as it is).
///
/// # Determinism
/// Each tensor's sum of squares is accumulated in `f64` in element order, on one thread; the
/// result does not depend on the thread count. PyTorch sums in `f32` in its own vectorised
/// order, so the norm can differ from PyTorch's in the last bit (the golden tests allow that).
pub fn clip_grad_norm(grad: &mut [f32], tensors: &[Range<usize>], max_norm: f32) -> f32 {
    let norm_sq: f64 = tensors
        .iter()
        .map(|r| {
            let sq: f64 = grad[r.clone()].iter().map(|&g| g as f64 * g as f64).sum();
            // Each tensor's norm is an f32 in PyTorch before the norm of the norms is taken.
            let n = sq.sqrt() as f32 as f64;
            n * n
        })
        .sum();
    let norm = norm_sq.sqrt() as f32;
    // PyTorch computes `max_norm / t` for a tensor `t` as `t.reciprocal() * max_norm`.
    let coef = ((1.0 / (norm + 1e-6)) * max_norm).min(1.0);
    if coef < 1.0 {
        grad.iter_mut().for_each(|g| *g *= coef);
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_gradient_is_left_alone_and_a_large_one_scaled_to_the_max() {
        let mut g = vec![0.3f32, 0.4];
        assert_eq!(clip_grad_norm(&mut g, &[0..1, 1..2], 1.0), 0.5);
        assert_eq!(g, [0.3, 0.4]);
        let mut g = vec![3.0f32, 4.0, 12.0];
        let norm = clip_grad_norm(&mut g, &[0..2, 2..3], 1.0);
        assert_eq!(norm, 13.0);
        let after: f32 = g.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((after - 1.0).abs() < 1e-6, "{after}");
    }
}
