//! The multilayer perceptron: its shape, its flat parameter layout and PyTorch's initialisation.

use std::ops::Range;

use ndarray::{Array1, Array2};
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::Uniform;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::rng::derive_seed;

/// The nonlinearity after every hidden layer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// `max(0, z)`.
    Relu,
    /// `tanh(z)`.
    Tanh,
}

/// Where one `nn.Linear` layer lives in the flat parameter buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerLayout {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// Offset of the weight, stored `[outputs, inputs]` row-major like PyTorch.
    pub weight: usize,
    /// Offset of the bias, `[outputs]`.
    pub bias: usize,
}

impl LayerLayout {
    /// The weight's range in the flat buffer.
    pub fn weight_range(&self) -> Range<usize> {
        self.weight..self.weight + self.inputs * self.outputs
    }

    /// The bias's range in the flat buffer.
    pub fn bias_range(&self) -> Range<usize> {
        self.bias..self.bias + self.outputs
    }
}

/// An MLP `sizes[0] → sizes[1] → … → sizes[L]` with an activation (and optional dropout) after
/// every hidden layer and none after the last, like the seed article's `nn.Module`.
///
/// All parameters live in one flat `f32` buffer, layer by layer, weight then bias, so the
/// optimizer and the all-reduce work on one slice.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    sizes: Vec<usize>,
    activation: Activation,
    dropout: f32,
    layers: Vec<LayerLayout>,
    len: usize,
}

impl Mlp {
    /// Builds the layout.
    ///
    /// # Panics
    /// If there are fewer than two sizes, a size is zero, or `dropout` is outside `[0, 1)`:
    /// the CLI validates these with messages naming the flag.
    pub fn new(sizes: Vec<usize>, activation: Activation, dropout: f32) -> Self {
        assert!(sizes.len() >= 2, "an MLP needs an input and an output size");
        assert!(sizes.iter().all(|&s| s > 0), "layer sizes must be positive");
        assert!((0.0..1.0).contains(&dropout), "dropout must be in [0, 1)");
        let mut layers = Vec::with_capacity(sizes.len() - 1);
        let mut off = 0;
        for w in sizes.windows(2) {
            let (inputs, outputs) = (w[0], w[1]);
            layers.push(LayerLayout {
                inputs,
                outputs,
                weight: off,
                bias: off + inputs * outputs,
            });
            off += inputs * outputs + outputs;
        }
        Mlp {
            sizes,
            activation,
            dropout,
            layers,
            len: off,
        }
    }

    /// Layer widths, input first.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The hidden activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Dropout probability after each hidden activation.
    pub fn dropout(&self) -> f32 {
        self.dropout
    }

    /// The layers' places in the flat buffer.
    pub fn layers(&self) -> &[LayerLayout] {
        &self.layers
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.len
    }

    /// Input width.
    pub fn inputs(&self) -> usize {
        self.sizes[0]
    }

    /// Output width.
    pub fn outputs(&self) -> usize {
        *self.sizes.last().expect("at least two sizes")
    }

    /// Widest layer output (sizes the per-shard scratch buffers).
    pub fn max_width(&self) -> usize {
        self.sizes
            .iter()
            .copied()
            .max()
            .expect("at least two sizes")
    }

    /// PyTorch names and shapes, in buffer order: `fc1.weight [out, in]`, `fc1.bias [out]`, ….
    pub fn tensor_names(&self) -> Vec<(String, Vec<usize>, Range<usize>)> {
        let mut v = Vec::with_capacity(2 * self.layers.len());
        for (i, l) in self.layers.iter().enumerate() {
            v.push((
                format!("fc{}.weight", i + 1),
                vec![l.outputs, l.inputs],
                l.weight_range(),
            ));
            v.push((format!("fc{}.bias", i + 1), vec![l.outputs], l.bias_range()));
        }
        v
    }

    /// Fresh parameters with `nn.Linear`'s default initialisation.
    ///
    /// PyTorch initialises the weight with `kaiming_uniform_(a=√5)`, which is
    /// `U(-1/√in, 1/√in)`, and the bias with `U(-1/√in, 1/√in)` as well. The distribution is
    /// PyTorch's; the random stream is ours (ChaCha8 from `seed`), so use `--init` to start from
    /// PyTorch's exact numbers.
    pub fn init_params(&self, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, &[0x1417]));
        let mut params = vec![0.0f32; self.len];
        for l in &self.layers {
            let bound = 1.0 / (l.inputs as f32).sqrt();
            let dist = Uniform::new(-bound, bound).expect("finite, ordered bounds");
            let w = Array2::random_using((l.outputs, l.inputs), dist, &mut rng);
            let b = Array1::random_using(l.outputs, dist, &mut rng);
            params[l.weight_range()].copy_from_slice(w.as_slice().expect("standard layout"));
            params[l.bias_range()].copy_from_slice(b.as_slice().expect("standard layout"));
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_packs_weight_then_bias_per_layer() {
        let m = Mlp::new(vec![3, 4, 2], Activation::Relu, 0.0);
        assert_eq!(m.num_params(), 3 * 4 + 4 + 4 * 2 + 2);
        assert_eq!(m.layers()[1].weight, 16);
        assert_eq!(m.layers()[1].bias, 24);
        let names: Vec<String> = m.tensor_names().into_iter().map(|t| t.0).collect();
        assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
    }

    #[test]
    fn init_stays_within_pytorch_bounds() {
        let m = Mlp::new(vec![25, 10, 1], Activation::Relu, 0.0);
        let p = m.init_params(1);
        let b1 = 1.0 / 5.0;
        assert!(
            p[m.layers()[0].weight_range()]
                .iter()
                .all(|v| v.abs() <= b1)
        );
        let b2 = 1.0 / 10f32.sqrt();
        assert!(p[m.layers()[1].bias_range()].iter().all(|v| v.abs() <= b2));
        // Not degenerate: the spread fills most of the interval.
        let max = p[m.layers()[0].weight_range()]
            .iter()
            .fold(0f32, |a, v| a.max(v.abs()));
        assert!(max > 0.9 * b1);
    }
}
