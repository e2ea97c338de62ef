//! A step's weights, packed once for every shard's products (see [`PackedB`]).

use crate::model::matmul::{Mat, PackedB, runs_native};
use crate::model::mlp::Mlp;

/// Every layer's weights packed for the forward product (`X · Wᵀ`) and, from the second layer
/// on, for the input-gradient product (`dZ · W`). Allocated once; [`PackedWeights::pack`]
/// refreshes it after each update.
#[derive(Debug)]
pub struct PackedWeights {
    forward: Vec<PackedB>,
    input_grad: Vec<PackedB>,
}

impl PackedWeights {
    /// Room for `mlp`'s weights, for shards of `rows` rows: a layer whose products with that
    /// many rows go to gemm's kernels ([`runs_native`]) is not packed at all, so
    /// the seed's tiny layers cost nothing here.
    pub fn new(mlp: &Mlp, rows: usize) -> Self {
        let room = |k: usize, n: usize| {
            if runs_native(rows, k, n) {
                PackedB::new(k, n)
            } else {
                PackedB::unused(k, n)
            }
        };
        let layers = mlp.layers();
        PackedWeights {
            forward: layers.iter().map(|l| room(l.inputs, l.outputs)).collect(),
            input_grad: layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    if i == 0 {
                        PackedB::unused(l.outputs, l.inputs)
                    } else {
                        room(l.outputs, l.inputs)
                    }
                })
                .collect(),
        }
    }

    /// Packs the weights in `params` for products of shards of `rows` rows, each layer in
    /// parallel on the current rayon pool ([`PackedB::pack`]); a layer whose products of that
    /// many rows go to gemm's kernels ([`runs_native`]) is skipped and marked stale. Allocates
    /// nothing.
    ///
    /// # Panics
    /// If `params` does not match `mlp`, the network this was made for.
    pub fn pack(&mut self, mlp: &Mlp, params: &[f32], rows: usize) {
        assert_eq!(params.len(), mlp.num_params(), "parameter buffer length");
        for (i, l) in mlp.layers().iter().enumerate() {
            let w = Mat::row_major(&params[l.weight_range()], l.outputs, l.inputs);
            let (forward, input_grad) = (&mut self.forward[i], &mut self.input_grad[i]);
            forward.mark_stale();
            input_grad.mark_stale();
            if runs_native(rows, l.inputs, l.outputs) {
                forward.pack(w.t());
                if i > 0 {
                    input_grad.pack(w);
                }
            }
        }
    }

    /// Layer `i`'s weights packed for the forward product.
    pub(crate) fn forward(&self, i: usize) -> &PackedB {
        &self.forward[i]
    }

    /// Layer `i`'s weights packed for the input-gradient product.
    pub(crate) fn input_grad(&self, i: usize) -> &PackedB {
        &self.input_grad[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, DropoutKey, Mode, Workspace};

    #[test]
    fn passes_reading_packed_weights_give_the_same_bits_as_packing_per_product() {
        for activation in [Activation::Relu, Activation::Tanh] {
            let mlp = Mlp::new(vec![300, 100, 64, 3], activation, 0.25);
            let params = mlp.init_params(3);
            let rows = 70;
            let x: Vec<f32> = (0..rows * 300)
                .map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.6)
                .collect();
            let mode = Mode::Train {
                key: DropoutKey {
                    seed: 9,
                    epoch: 0,
                    step: 1,
                },
                offset: 0,
            };
            let mut packed = PackedWeights::new(&mlp, rows);
            packed.pack(&mlp, &params, rows);
            let mut grads = Vec::new();
            for weights in [None, Some(&packed)] {
                let mut ws = Workspace::new(&mlp, rows);
                mlp.forward_packed(&params, weights, &x, rows, &mut ws, mode);
                let (out, dout) = ws.output_grad(rows, 3);
                for (d, o) in dout.iter_mut().zip(out) {
                    *d = o * 0.5;
                }
                let mut grad = vec![0f32; mlp.num_params()];
                mlp.backward_packed(&params, weights, &x, rows, &mut ws, mode, &mut grad);
                grads.push(grad);
            }
            let bits = |g: &[f32]| g.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&grads[0]), bits(&grads[1]), "{activation:?}");
            assert!(grads[0].iter().any(|&g| g != 0.0));
        }
    }
}
