//! A step's weights, packed once for every shard's products (see [`PackedB`]).

use crate::model::matmul::{Mat, PackedB, PanelWriter, runs_native};
use crate::model::mlp::{LayerLayout, Mlp};

/// Every layer's weights packed for the forward product (`X · Wᵀ`) and, from the second layer
/// on, for the input-gradient product (`dZ · W`). Allocated once; refreshed after each update,
/// by [`PackedWeights::pack`] or by the update pass itself as it computes the new weights
/// ([`PackedWeights::begin_update`]).
#[derive(Debug)]
pub struct PackedWeights {
    forward: Vec<PackedB>,
    input_grad: Vec<PackedB>,
    /// The shard rows the weights were last packed (or written) for.
    rows: usize,
    /// The parameter buffer (address and length) whose values an update pass wrote here since
    /// the last [`PackedWeights::pack`] (see [`PackedWeights::begin_update`]).
    written_from: Option<(usize, usize)>,
    /// Each layer's writers during an update pass: forward, input gradient (room kept between
    /// steps: no allocation).
    writers: Vec<[Option<PanelWriter>; 2]>,
}

/// Writes each chunk of an update pass's new weights into the packed panels (see
/// [`PackedWeights::begin_update`]).
#[derive(Debug)]
pub struct WeightWriter<'a> {
    layers: &'a [LayerLayout],
    writers: &'a [[Option<PanelWriter>; 2]],
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
            rows,
            written_from: None,
            writers: Vec::with_capacity(layers.len()),
        }
    }

    /// Starts writing the weights an update pass computes straight into the panels, for shards
    /// of as many rows as the last [`PackedWeights::pack`]: the layers that pack packed are
    /// marked fresh, the others stale. Every weight of `mlp` must then be written through the
    /// returned writer (each once, chunks from any thread) before the panels are read, and
    /// [`PackedWeights::written_from`] called. Allocates nothing.
    pub fn begin_update<'a>(&'a mut self, mlp: &'a Mlp) -> WeightWriter<'a> {
        self.writers.clear();
        self.written_from = None;
        for (i, l) in mlp.layers().iter().enumerate() {
            let (forward, input_grad) = (&mut self.forward[i], &mut self.input_grad[i]);
            forward.mark_stale();
            input_grad.mark_stale();
            let [f, g] = packed_here(self.rows, i, l);
            self.writers.push([
                f.then(|| forward.writer()).flatten(),
                g.then(|| input_grad.writer()).flatten(),
            ]);
        }
        WeightWriter {
            layers: mlp.layers(),
            writers: &self.writers,
        }
    }

    /// Records that an update pass wrote every weight of `params` here (after
    /// [`PackedWeights::begin_update`]).
    pub fn written_from(&mut self, params: &[f32]) {
        self.written_from = Some((params.as_ptr() as usize, params.len()));
    }

    /// Whether the panels hold `params` for shards of `rows` rows as an update pass wrote
    /// them, with nothing packed since; either way, forgets the update pass.
    pub fn take_written(&mut self, params: &[f32], rows: usize) -> bool {
        let at = (params.as_ptr() as usize, params.len());
        self.written_from.take() == Some(at) && self.rows == rows
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
        self.rows = rows;
        self.written_from = None;
        for (i, l) in mlp.layers().iter().enumerate() {
            let w = Mat::row_major(&params[l.weight_range()], l.outputs, l.inputs);
            let (forward, input_grad) = (&mut self.forward[i], &mut self.input_grad[i]);
            forward.mark_stale();
            input_grad.mark_stale();
            let [f, g] = packed_here(rows, i, l);
            if f {
                forward.pack(w.t());
            }
            if g {
                input_grad.pack(w);
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

/// Whether layer `i` (`l`) has its weights packed for shards of `rows` rows: for the forward
/// product, and for the input-gradient product (from the second layer on), where our kernels
/// take those products ([`runs_native`]).
fn packed_here(rows: usize, i: usize, l: &LayerLayout) -> [bool; 2] {
    let native = runs_native(rows, l.inputs, l.outputs);
    [native, native && i > 0]
}

impl WeightWriter<'_> {
    /// Writes `values`, the new parameters `start..start + values.len()` of the flat buffer
    /// (biases and all: only the weights are packed), into the panels.
    ///
    /// # Safety
    /// The range inside the parameter buffer; no other thread writes an overlapping range
    /// meanwhile.
    pub unsafe fn write(&self, start: usize, values: &[f32]) {
        let end = start + values.len();
        for (l, [forward, input_grad]) in self.layers.iter().zip(self.writers) {
            let w = l.weight_range();
            let (a, b) = (start.max(w.start), end.min(w.end));
            if a >= b || (forward.is_none() && input_grad.is_none()) {
                continue;
            }
            let inputs = l.inputs;
            // Weights a..b of the flat buffer, as offsets into the layer's `outputs × inputs`.
            let (a, b) = (a - w.start, b - w.start);
            let value = |at: usize| &values[at + w.start - start..];
            let mut o = a / inputs;
            while o * inputs < b {
                let (lo, hi) = ((o * inputs).max(a), ((o + 1) * inputs).min(b));
                // Eight whole rows in one forward panel: one 8 × 8 transpose per 8 inputs;
                // other rows one value at a time.
                let eight = lo == o * inputs
                    && (o + 8) * inputs <= b
                    && forward.is_none_or(|f| f.cols_in_panel(o, 8) == 8);
                let rows = if eight { 8 } else { 1 };
                if let Some(f) = forward {
                    // SAFETY: rows o..o + rows of this layer, inside `values` and the operand
                    // bᵀ = W (b is inputs × outputs); only this call writes them.
                    unsafe {
                        if eight {
                            f.write_cols8(o, value(lo).as_ptr(), inputs);
                        } else {
                            f.write_col(o, lo - o * inputs, &value(lo)[..hi - lo]);
                        }
                    }
                }
                if let Some(g) = input_grad {
                    for r in 0..rows {
                        let (lo, hi) = (lo + r * inputs, hi + r * inputs);
                        // SAFETY: row o + r of W (b = W, outputs × inputs), as above.
                        unsafe { g.write_row(o + r, lo - (o + r) * inputs, &value(lo)[..hi - lo]) };
                    }
                }
                o += rows;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, DropoutKey, Mode, Workspace};

    #[test]
    fn weights_written_chunk_by_chunk_in_any_order_are_the_panels_pack_makes() {
        // Layers of widths that are and are not multiples of 8 and of the tiles, 700 and 400
        // deep (several depth blocks, the last not a multiple of 8 deep), with enough
        // rows that our kernels take every layer's products.
        let mlp = Mlp::new(vec![700, 400, 67, 20], Activation::Relu, 0.0);
        let params = mlp.init_params(5);
        let rows = 128;
        if !crate::model::matmul::runs_native(rows, 67, 20) {
            eprintln!("SKIPPED: our kernels do not run on this CPU, so nothing is packed");
            return;
        }
        let mut want = PackedWeights::new(&mlp, rows);
        want.pack(&mlp, &params, rows);
        // Chunks cutting rows and groups of 8 rows anywhere, written last to first.
        for chunk in [1, 7, 300, 1000, 2403, 1 << 14, params.len()] {
            let mut got = PackedWeights::new(&mlp, rows);
            got.pack(&mlp, &vec![0.5; params.len()], rows);
            let writer = got.begin_update(&mlp);
            let starts: Vec<usize> = (0..params.len()).step_by(chunk).collect();
            for &s in starts.iter().rev() {
                let e = (s + chunk).min(params.len());
                // SAFETY: one thread, each range once.
                unsafe { writer.write(s, &params[s..e]) };
            }
            got.written_from(&params);
            for i in 0..mlp.layers().len() {
                let pairs = [
                    (want.forward(i), got.forward(i)),
                    (want.input_grad(i), got.input_grad(i)),
                ];
                for (w, g) in pairs {
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    let ((wd, wf), (gd, gf)) = (w.contents(), g.contents());
                    assert_eq!(wf, gf, "layer {i}, chunks of {chunk}");
                    let differ = bits(wd).iter().zip(bits(gd)).position(|(a, b)| *a != b);
                    assert_eq!(wd.len(), gd.len());
                    assert_eq!(
                        differ, None,
                        "layer {i}, chunks of {chunk}: first value apart"
                    );
                }
            }
            assert!(got.take_written(&params, rows));
            assert!(
                !got.take_written(&params, rows),
                "an update pass is used once"
            );
        }
    }

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
