//! Forward and backward passes of an [`Mlp`] over one shard of rows, into reusable buffers.

use crate::model::matmul::{Accum, Epilogue, Mat, matmul, matmul_fused, matmul_prepacked};
use crate::model::mlp::{Activation, Mlp};
use crate::model::prepack::PackedWeights;
use crate::rng::{CounterRng, derive_seed};

/// Identifies the dropout masks of one training step.
///
/// The mask of a unit is a function of `(seed, epoch, step, sample-in-batch, layer, unit)` only,
/// so it does not depend on thread scheduling or shard boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropoutKey {
    /// The run's seed.
    pub seed: u64,
    /// 0-based epoch.
    pub epoch: u64,
    /// 0-based step within the epoch.
    pub step: u64,
}

impl DropoutKey {
    fn row(&self, sample: usize) -> CounterRng {
        CounterRng::new(derive_seed(
            self.seed,
            &[0xd209, self.epoch, self.step, sample as u64],
        ))
    }
}

/// Whether the pass trains (dropout on, key given) or evaluates (dropout is the identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Training: dropout active with masks from the key, first row of the shard at `offset` in
    /// the batch.
    Train {
        /// The step's dropout key.
        key: DropoutKey,
        /// Index in the batch of the shard's first row.
        offset: usize,
    },
    /// Evaluation: no dropout.
    Eval,
}

/// Scratch buffers for one shard of at most `capacity` rows, reused from step to step.
#[derive(Debug, Clone)]
pub struct Workspace {
    capacity: usize,
    /// Per layer: activations after the nonlinearity (hidden) or the raw output (last layer).
    h: Vec<Vec<f32>>,
    /// Per hidden layer: dropout multipliers (0 or 1/(1−p)) and the dropped-out activations.
    mask: Vec<Vec<f32>>,
    dropped: Vec<Vec<f32>>,
    delta: [Vec<f32>; 2],
}

impl Workspace {
    /// Buffers for shards of up to `capacity` rows of `mlp`.
    pub fn new(mlp: &Mlp, capacity: usize) -> Self {
        let layers = mlp.layers();
        let hidden = layers.len() - 1;
        let with_dropout = mlp.dropout() > 0.0;
        let sized = |n: usize| vec![0.0f32; capacity * n];
        Workspace {
            capacity,
            h: layers.iter().map(|l| sized(l.outputs)).collect(),
            mask: (0..hidden)
                .map(|i| {
                    if with_dropout {
                        sized(layers[i].outputs)
                    } else {
                        Vec::new()
                    }
                })
                .collect(),
            dropped: (0..hidden)
                .map(|i| {
                    if with_dropout {
                        sized(layers[i].outputs)
                    } else {
                        Vec::new()
                    }
                })
                .collect(),
            delta: [sized(mlp.max_width()), sized(mlp.max_width())],
        }
    }

    /// Maximum rows per shard.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The network output of the last forward pass, `rows × outputs`.
    pub fn output(&self, rows: usize, outputs: usize) -> &[f32] {
        &self.h.last().expect("at least one layer")[..rows * outputs]
    }

    /// Buffer for `∂loss/∂output` that [`Mlp::backward`] starts from, `rows × outputs`.
    pub fn output_grad(&mut self, rows: usize, outputs: usize) -> (&[f32], &mut [f32]) {
        let out = &self.h.last().expect("at least one layer")[..rows * outputs];
        (out, &mut self.delta[0][..rows * outputs])
    }
}

fn view(buf: &[f32], rows: usize, cols: usize) -> Mat<'_> {
    Mat::row_major(buf, rows, cols)
}

impl Mlp {
    /// Runs `rows` rows of `x` (`rows × inputs`) through the network; the output is then in
    /// [`Workspace::output`].
    ///
    /// # Panics
    /// If `rows` exceeds the workspace capacity or the buffers do not match the layout.
    pub fn forward(&self, params: &[f32], x: &[f32], rows: usize, ws: &mut Workspace, mode: Mode) {
        self.forward_packed(params, None, x, rows, ws, mode);
    }

    /// [`Mlp::forward`] reading the weights from `packed` (which must hold `params`' weights,
    /// [`PackedWeights::pack`]) where our kernels run: the same bits, without packing them.
    ///
    /// # Panics
    /// As for [`Mlp::forward`].
    pub fn forward_packed(
        &self,
        params: &[f32],
        packed: Option<&PackedWeights>,
        x: &[f32],
        rows: usize,
        ws: &mut Workspace,
        mode: Mode,
    ) {
        assert!(rows <= ws.capacity, "shard larger than its workspace");
        assert_eq!(params.len(), self.num_params(), "parameter buffer length");
        let last = self.layers().len() - 1;
        let keep = 1.0 - self.dropout();
        let scale = 1.0 / keep;
        for (i, l) in self.layers().iter().enumerate() {
            let w = view(&params[l.weight_range()], l.outputs, l.inputs);
            let bias = &params[l.bias_range()];
            let (before, rest) = ws.h.split_at_mut(i);
            let z = &mut rest[0][..rows * l.outputs];
            let input = if i == 0 {
                view(x, rows, l.inputs)
            } else if self.dropout() > 0.0 && matches!(mode, Mode::Train { .. }) {
                view(&ws.dropped[i - 1], rows, l.inputs)
            } else {
                view(&before[i - 1], rows, l.inputs)
            };
            // The bias and a ReLU are applied as the product's tiles are written.
            let epilogue = match (i == last, self.activation()) {
                (false, Activation::Relu) => Epilogue::BiasRelu(bias),
                _ => Epilogue::Bias(bias),
            };
            match packed {
                Some(p) => matmul_prepacked(z, input, w.t(), p.forward(i), epilogue),
                None => matmul_fused(z, input, w.t(), epilogue),
            }
            if i == last {
                break;
            }
            if self.activation() == Activation::Tanh {
                z.iter_mut().for_each(|v| *v = v.tanh());
            }
            if let (Mode::Train { key, offset }, true) = (mode, self.dropout() > 0.0) {
                let mask = &mut ws.mask[i][..rows * l.outputs];
                let dropped = &mut ws.dropped[i][..rows * l.outputs];
                let counter_base = (i as u64) << 32;
                for r in 0..rows {
                    let rng = key.row(offset + r);
                    let span = r * l.outputs..(r + 1) * l.outputs;
                    for (u, ((m, d), &h)) in mask[span.clone()]
                        .iter_mut()
                        .zip(&mut dropped[span.clone()])
                        .zip(&z[span])
                        .enumerate()
                    {
                        *m = if rng.uniform(counter_base | u as u64) < keep {
                            scale
                        } else {
                            0.0
                        };
                        *d = h * *m;
                    }
                }
            }
        }
    }

    /// Back-propagates `∂loss/∂output` (left in [`Workspace::output_grad`]) through the network
    /// of the last [`Mlp::forward`], writing every parameter's gradient into `grad`
    /// (overwritten, not accumulated).
    ///
    /// # Panics
    /// If the buffers do not match the layout.
    pub fn backward(
        &self,
        params: &[f32],
        x: &[f32],
        rows: usize,
        ws: &mut Workspace,
        mode: Mode,
        grad: &mut [f32],
    ) {
        self.backward_packed(params, None, x, rows, ws, mode, grad);
    }

    /// [`Mlp::backward`] reading the weights from `packed` (as [`Mlp::forward_packed`]).
    ///
    /// # Panics
    /// As for [`Mlp::backward`].
    #[allow(clippy::too_many_arguments)] // backward's inputs and outputs, and the packed weights
    pub fn backward_packed(
        &self,
        params: &[f32],
        packed: Option<&PackedWeights>,
        x: &[f32],
        rows: usize,
        ws: &mut Workspace,
        mode: Mode,
        grad: &mut [f32],
    ) {
        assert_eq!(grad.len(), self.num_params(), "gradient buffer length");
        let dropout = self.dropout() > 0.0 && matches!(mode, Mode::Train { .. });
        let [d0, d1] = &mut ws.delta;
        let (mut cur, mut next) = (d0, d1);
        for (i, l) in self.layers().iter().enumerate().rev() {
            let dz = view(cur, rows, l.outputs);
            let input = if i == 0 {
                view(x, rows, l.inputs)
            } else if dropout {
                view(&ws.dropped[i - 1], rows, l.inputs)
            } else {
                view(&ws.h[i - 1], rows, l.inputs)
            };
            let (wg, bg) =
                grad[l.weight_range().start..l.bias_range().end].split_at_mut(l.inputs * l.outputs);
            matmul(wg, dz.t(), input, Accum::Replace);
            bg.fill(0.0);
            for row in cur[..rows * l.outputs].chunks_exact(l.outputs) {
                bg.iter_mut().zip(row).for_each(|(b, &d)| *b += d);
            }
            if i == 0 {
                break;
            }
            let w = view(&params[l.weight_range()], l.outputs, l.inputs);
            let da = &mut next[..rows * l.inputs];
            let h = &ws.h[i - 1][..rows * l.inputs];
            // The ReLU's gradient is applied as the product's tiles are written.
            match self.activation() {
                Activation::Relu => match packed {
                    Some(p) => matmul_prepacked(da, dz, w, p.input_grad(i), Epilogue::ReluGrad(h)),
                    None => matmul_fused(da, dz, w, Epilogue::ReluGrad(h)),
                },
                Activation::Tanh => {
                    match packed {
                        Some(p) => matmul_prepacked(da, dz, w, p.input_grad(i), Epilogue::None),
                        None => matmul(da, dz, w, Accum::Replace),
                    }
                    da.iter_mut().zip(h).for_each(|(d, &h)| *d *= 1.0 - h * h);
                }
            }
            if dropout {
                da.iter_mut()
                    .zip(&ws.mask[i - 1][..rows * l.inputs])
                    .for_each(|(d, &m)| *d *= m);
            }
            std::mem::swap(&mut cur, &mut next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::{Loss, Targets};

    fn shard_loss(mlp: &Mlp, p: &[f32], x: &[f32], t: Targets<'_>, rows: usize, mode: Mode) -> f64 {
        let mut ws = Workspace::new(mlp, rows);
        mlp.forward(p, x, rows, &mut ws, mode);
        let loss = match t {
            Targets::Values(_) => Loss::Mse,
            Targets::Labels(_) => Loss::CrossEntropy,
        };
        let s = loss.sum_over(ws.output(rows, mlp.outputs()), mlp.outputs(), t, rows, None);
        loss.mean(s, rows, mlp.outputs())
    }

    /// Every parameter's analytic gradient against central differences (in f64 terms of f32 runs).
    fn gradient_check(mlp: &Mlp, t: Targets<'_>, rows: usize, mode: Mode) {
        let p = mlp.init_params(11);
        let x: Vec<f32> = (0..rows * mlp.inputs())
            .map(|i| ((i * 37 % 19) as f32 - 9.0) / 7.0)
            .collect();
        let mut ws = Workspace::new(mlp, rows);
        mlp.forward(&p, &x, rows, &mut ws, mode);
        let loss = match t {
            Targets::Values(_) => Loss::Mse,
            Targets::Labels(_) => Loss::CrossEntropy,
        };
        let (out, dout) = ws.output_grad(rows, mlp.outputs());
        let out = out.to_vec();
        loss.sum_over(&out, mlp.outputs(), t, rows, Some(dout));
        let mut grad = vec![f32::NAN; p.len()];
        mlp.backward(&p, &x, rows, &mut ws, mode, &mut grad);
        let h = 1e-2f32;
        for i in 0..p.len() {
            let mut q = p.clone();
            q[i] += h;
            let up = shard_loss(mlp, &q, &x, t, rows, mode);
            q[i] -= 2.0 * h;
            let down = shard_loss(mlp, &q, &x, t, rows, mode);
            let numeric = (up - down) / (2.0 * h as f64);
            assert!(
                (numeric - grad[i] as f64).abs() < 2e-3 * (1.0 + numeric.abs()),
                "param {i}: numeric {numeric}, analytic {}",
                grad[i]
            );
        }
    }

    #[test]
    fn tanh_mlp_gradient_matches_finite_differences() {
        let mlp = Mlp::new(vec![3, 5, 4, 2], Activation::Tanh, 0.0);
        let t: Vec<f32> = (0..12).map(|i| (i as f32 - 6.0) / 4.0).collect();
        gradient_check(&mlp, Targets::Values(&t), 6, Mode::Eval);
    }

    #[test]
    fn relu_mlp_cross_entropy_gradient_matches_finite_differences() {
        // ReLU kinks make finite differences fragile; the inputs above keep units away from 0.
        let mlp = Mlp::new(vec![4, 6, 3], Activation::Relu, 0.0);
        gradient_check(&mlp, Targets::Labels(&[0, 2, 1, 1, 0]), 5, Mode::Eval);
    }

    #[test]
    fn dropout_gradient_matches_finite_differences_with_a_fixed_mask() {
        let mlp = Mlp::new(vec![3, 8, 1], Activation::Tanh, 0.3);
        let key = DropoutKey {
            seed: 5,
            epoch: 0,
            step: 3,
        };
        let t: Vec<f32> = (0..4).map(|i| i as f32 / 3.0).collect();
        gradient_check(&mlp, Targets::Values(&t), 4, Mode::Train { key, offset: 0 });
    }

    #[test]
    fn dropout_zeroes_about_p_and_scales_the_rest_in_training_only() {
        let p = 0.25f32;
        let mlp = Mlp::new(vec![2, 400, 1], Activation::Relu, p);
        let mut params = mlp.init_params(1);
        // Make every hidden unit output exactly 1 before dropout: zero weights, bias 1.
        let l0 = mlp.layers()[0].clone();
        params[l0.weight_range()].fill(0.0);
        params[l0.bias_range()].fill(1.0);
        let rows = 50;
        let x = vec![0.3f32; rows * 2];
        let mut ws = Workspace::new(&mlp, rows);
        let key = DropoutKey {
            seed: 9,
            epoch: 1,
            step: 2,
        };
        mlp.forward(&params, &x, rows, &mut ws, Mode::Train { key, offset: 0 });
        let dropped = &ws.dropped[0][..rows * 400];
        let zeros = dropped.iter().filter(|&&v| v == 0.0).count() as f64 / dropped.len() as f64;
        assert!((zeros - p as f64).abs() < 0.02, "zeroed fraction {zeros}");
        assert!(
            dropped
                .iter()
                .all(|&v| v == 0.0 || (v - 1.0 / (1.0 - p)).abs() < 1e-6)
        );
        mlp.forward(&params, &x, rows, &mut ws, Mode::Eval);
        let out_eval = ws.output(rows, 1).to_vec();
        let plain = Mlp::new(vec![2, 400, 1], Activation::Relu, 0.0);
        let mut ws2 = Workspace::new(&plain, rows);
        plain.forward(&params, &x, rows, &mut ws2, Mode::Eval);
        assert_eq!(
            out_eval,
            ws2.output(rows, 1),
            "evaluation mode is the identity"
        );
    }

    #[test]
    fn dropout_masks_do_not_depend_on_shard_boundaries() {
        let mlp = Mlp::new(vec![3, 16, 2], Activation::Relu, 0.5);
        let p = mlp.init_params(2);
        let x: Vec<f32> = (0..8 * 3).map(|i| i as f32 / 10.0).collect();
        let key = DropoutKey {
            seed: 1,
            epoch: 0,
            step: 0,
        };
        let mut whole = Workspace::new(&mlp, 8);
        mlp.forward(&p, &x, 8, &mut whole, Mode::Train { key, offset: 0 });
        let mut part = Workspace::new(&mlp, 3);
        mlp.forward(
            &p,
            &x[5 * 3..],
            3,
            &mut part,
            Mode::Train { key, offset: 5 },
        );
        assert_eq!(&whole.output(8, 2)[10..], part.output(3, 2));
    }
}
