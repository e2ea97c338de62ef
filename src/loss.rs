//! Losses with PyTorch's mean reduction, computed shard by shard.
//!
//! A batch of `B` rows is split into shards; each shard adds its part of the *sum* and writes the
//! gradient of the *batch mean* (scaled by `1/B`, or `1/(B·outputs)` for MSE), so that adding the
//! shards' gradients gives exactly the gradient of the batch-mean loss, whatever the shard sizes.

/// The training objective.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// `nn.MSELoss()`: mean of squared errors over every element.
    Mse,
    /// `nn.CrossEntropyLoss()`: mean over rows of `logsumexp(logits) − logits[label]`.
    CrossEntropy,
}

/// The targets of a shard.
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a> {
    /// `rows × outputs` regression values.
    Values(&'a [f32]),
    /// One class label per row.
    Labels(&'a [u32]),
}

/// A shard's contribution to the batch's loss.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossSum {
    /// Sum of per-element (MSE) or per-row (cross-entropy) losses.
    pub sum: f64,
    /// Rows whose arg-max output is the label (classification only).
    pub correct: usize,
}

impl LossSum {
    /// Adds another shard's sums (callers do this in shard order).
    pub fn add(&mut self, other: LossSum) {
        self.sum += other.sum;
        self.correct += other.correct;
    }
}

impl Loss {
    /// The mean loss of a batch of `rows` rows with `outputs` outputs, from its summed parts.
    pub fn mean(self, total: LossSum, rows: usize, outputs: usize) -> f64 {
        match self {
            Loss::Mse => total.sum / (rows * outputs) as f64,
            Loss::CrossEntropy => total.sum / rows as f64,
        }
    }

    /// Adds up a shard's loss and, when `grad` is given, writes `∂(batch-mean loss)/∂output`.
    ///
    /// `output` is `rows × outputs` row-major; `batch_rows` is the size of the whole batch the
    /// shard belongs to (the mean's denominator).
    ///
    /// # Panics
    /// If the lengths of `output`, `targets` and `grad` disagree with `outputs`.
    pub fn sum_over(
        self,
        output: &[f32],
        outputs: usize,
        targets: Targets<'_>,
        batch_rows: usize,
        grad: Option<&mut [f32]>,
    ) -> LossSum {
        match (self, targets) {
            (Loss::Mse, Targets::Values(t)) => mse(output, t, batch_rows * outputs, grad),
            (Loss::CrossEntropy, Targets::Labels(l)) => {
                cross_entropy(output, outputs, l, batch_rows, grad)
            }
            _ => panic!("loss and target kind disagree (validated when the run is configured)"),
        }
    }
}

fn mse(out: &[f32], t: &[f32], numel: usize, grad: Option<&mut [f32]>) -> LossSum {
    assert_eq!(out.len(), t.len(), "MSE: output and target lengths differ");
    let mut sum = 0.0f64;
    // PyTorch's mse_loss_backward: grad = (input − target) · (2 / numel).
    let norm = (2.0 / numel as f64) as f32;
    match grad {
        Some(g) => {
            assert_eq!(g.len(), out.len());
            for ((g, &o), &y) in g.iter_mut().zip(out).zip(t) {
                let d = o - y;
                sum += (d * d) as f64;
                *g = d * norm;
            }
        }
        None => {
            for (&o, &y) in out.iter().zip(t) {
                let d = o - y;
                sum += (d * d) as f64;
            }
        }
    }
    LossSum { sum, correct: 0 }
}

fn cross_entropy(
    logits: &[f32],
    classes: usize,
    labels: &[u32],
    batch_rows: usize,
    mut grad: Option<&mut [f32]>,
) -> LossSum {
    assert_eq!(
        logits.len(),
        labels.len() * classes,
        "cross-entropy: shape mismatch"
    );
    let inv = 1.0 / batch_rows as f32;
    let mut total = LossSum::default();
    for (r, (row, &label)) in logits.chunks_exact(classes).zip(labels).enumerate() {
        let label = label as usize;
        let (mut argmax, mut max) = (0, f32::NEG_INFINITY);
        for (c, &v) in row.iter().enumerate() {
            if v > max {
                (argmax, max) = (c, v);
            }
        }
        let sum_exp: f32 = row.iter().map(|&v| (v - max).exp()).sum();
        let lse = max + sum_exp.ln();
        total.sum += (lse - row[label]) as f64;
        total.correct += usize::from(argmax == label);
        if let Some(g) = grad.as_deref_mut() {
            let g = &mut g[r * classes..(r + 1) * classes];
            for (c, (g, &v)) in g.iter_mut().zip(row).enumerate() {
                let p = (v - lse).exp();
                *g = (p - f32::from(u8::from(c == label))) * inv;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central finite differences of the batch-mean loss against the analytic gradient.
    fn check_gradient(loss: Loss, out: &[f32], outputs: usize, targets: Targets<'_>) {
        let rows = out.len() / outputs;
        let mut grad = vec![0.0; out.len()];
        loss.sum_over(out, outputs, targets, rows, Some(&mut grad));
        let f = |o: &[f32]| {
            loss.mean(
                loss.sum_over(o, outputs, targets, rows, None),
                rows,
                outputs,
            )
        };
        for i in 0..out.len() {
            let h = 1e-2f32;
            let mut p = out.to_vec();
            p[i] += h;
            let up = f(&p);
            p[i] -= 2.0 * h;
            let down = f(&p);
            let numeric = (up - down) / (2.0 * h as f64);
            assert!(
                (numeric - grad[i] as f64).abs() < 1e-3 * (1.0 + numeric.abs()),
                "{loss:?} element {i}: numeric {numeric}, analytic {}",
                grad[i]
            );
        }
    }

    #[test]
    fn mse_gradient_matches_finite_differences() {
        let out = [0.5, -1.0, 2.0, 0.25, 1.5, -0.75];
        let t = [0.0, -0.5, 1.0, 1.0, 1.0, 0.0];
        check_gradient(Loss::Mse, &out, 2, Targets::Values(&t));
    }

    #[test]
    fn cross_entropy_gradient_matches_finite_differences() {
        let out = [0.5, -1.0, 2.0, 0.25, 1.5, -0.75];
        check_gradient(Loss::CrossEntropy, &out, 3, Targets::Labels(&[2, 0]));
    }

    #[test]
    fn cross_entropy_matches_pytorch_value() {
        // torch 2.15:
        // torch.nn.functional.cross_entropy(torch.tensor([[0.5,-1.,2.],[0.25,1.5,-0.75]]),
        //                                   torch.tensor([2,0])).item() == 0.9109919667243958
        let out = [0.5, -1.0, 2.0, 0.25, 1.5, -0.75];
        let s = Loss::CrossEntropy.sum_over(&out, 3, Targets::Labels(&[2, 0]), 2, None);
        let mean = Loss::CrossEntropy.mean(s, 2, 3);
        assert!((mean - 0.910_991_966_724_395_8).abs() < 1e-6, "{mean}");
        assert_eq!(s.correct, 1);
    }

    #[test]
    fn shard_gradients_add_up_to_the_batch_gradient() {
        let out = [0.5, -1.0, 2.0, 0.25, 1.5, -0.75];
        let t = [0.0, -0.5, 1.0, 1.0, 1.0, 0.0];
        let mut whole = vec![0.0; 6];
        Loss::Mse.sum_over(&out, 1, Targets::Values(&t), 6, Some(&mut whole));
        let mut parts = vec![0.0; 6];
        let (a, b) = parts.split_at_mut(4);
        Loss::Mse.sum_over(&out[..4], 1, Targets::Values(&t[..4]), 6, Some(a));
        Loss::Mse.sum_over(&out[4..], 1, Targets::Values(&t[4..]), 6, Some(b));
        assert_eq!(whole, parts);
    }
}
