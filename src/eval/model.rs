//! [`Model`]: a trained network loaded from its weights file, and its forward pass over rows.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::model::weights::{ModelMeta, load_model};
use crate::model::{Mlp, Mode, Workspace};

/// Rows per forward pass: the unit of parallel work, fixed so results do not depend on threads.
pub(super) const CHUNK: usize = 256;

/// A trained model loaded from one safetensors file.
#[derive(Debug, Clone)]
pub struct Model {
    path: PathBuf,
    mlp: Mlp,
    params: Vec<f32>,
    meta: ModelMeta,
}

impl Model {
    /// Loads `path`: a weights file, or a run directory (then its `final.safetensors`).
    /// A file without dptrain's metadata is taken as a ReLU network trained with
    /// `default_loss` and no standardisation.
    ///
    /// # Errors
    /// [`Error::Weights`] naming the file when it is missing or not a usable model.
    pub fn load(path: &Path, default_loss: Loss) -> Result<Self> {
        let path = if path.is_dir() {
            let dir = path;
            let path = dir.join("final.safetensors");
            if !path.exists() && dir.join("config.toml").is_file() {
                return Err(unfinished(dir));
            }
            path
        } else {
            path.to_path_buf()
        };
        let (mlp, params, meta) = load_model(&path, default_loss)?;
        Ok(Model {
            path,
            mlp,
            params,
            meta,
        })
    }

    /// The weights file read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The network's shape.
    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    /// Activation, loss, standardisation and class names.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// Whether the model is a classifier (trained with cross-entropy).
    pub fn is_classifier(&self) -> bool {
        self.meta.loss == Loss::CrossEntropy
    }

    /// Class names by id: the stored names when they cover every output, else `"0"`, `"1"`, ….
    pub fn class_names(&self) -> Vec<String> {
        match &self.meta.labels {
            Some(names) if names.len() == self.mlp.outputs() => names.clone(),
            _ => (0..self.mlp.outputs()).map(|c| c.to_string()).collect(),
        }
    }

    /// Checks that data with `features` columns, read from `file`, fits the model's input.
    ///
    /// # Errors
    /// [`Error::Data`] naming `file`, both feature counts and the model file.
    pub fn check_features(&self, file: &Path, features: usize) -> Result<()> {
        if features == self.mlp.inputs() {
            return Ok(());
        }
        Err(Error::data(
            file,
            format!(
                "has {features} features but the model {} takes {} (fc1.weight is [{}, {}]); \
                 use data with the columns the model was trained on",
                self.path.display(),
                self.mlp.inputs(),
                self.mlp.sizes()[1],
                self.mlp.inputs()
            ),
        ))
    }

    /// The raw network outputs (`rows × outputs`, row-major) for features `x`
    /// (`rows × inputs`), standardised first when the model stores a standardisation.
    ///
    /// # Determinism
    /// Rows are processed in fixed chunks of 256, each on its own; the thread count changes
    /// the speed, never the numbers. (The matrix products may round a row differently when it
    /// sits in a chunk of another size, so the same row in another file can differ in the last
    /// bits.)
    ///
    /// # Errors
    /// [`Error::Config`] on `--threads` when the pool cannot start.
    ///
    /// # Panics
    /// If `x.len()` is not a multiple of the model's input width (check with
    /// [`Model::check_features`] first).
    pub fn outputs(&self, x: &[f32], threads: usize) -> Result<Vec<f32>> {
        let (f, k) = (self.mlp.inputs(), self.mlp.outputs());
        assert_eq!(x.len() % f, 0, "x is not rows × {f}");
        let rows = x.len() / f;
        let mut out = vec![0.0f32; rows * k];
        let pool = crate::parallel::pool(threads.max(1))?;
        pool.install(|| {
            out.par_chunks_mut(CHUNK * k)
                .zip(x.par_chunks(CHUNK * f))
                .for_each_init(
                    || (Workspace::new(&self.mlp, CHUNK), Vec::new()),
                    |(ws, buf), (o, xs)| {
                        let n = xs.len() / f;
                        let input: &[f32] = match &self.meta.standardize {
                            Some(s) => {
                                buf.clear();
                                buf.extend_from_slice(xs);
                                s.apply(buf);
                                buf
                            }
                            None => xs,
                        };
                        self.mlp.forward(&self.params, input, n, ws, Mode::Eval);
                        o.copy_from_slice(ws.output(n, k));
                    },
                );
        });
        Ok(out)
    }

    /// The flat parameter buffer, for tests that check against training's own evaluation.
    #[cfg(test)]
    pub(super) fn params(&self) -> &[f32] {
        &self.params
    }
}

/// The error for a run directory without its final weights: the run is unfinished (interrupted,
/// or still training), and how to finish it or what to evaluate instead.
fn unfinished(dir: &Path) -> Error {
    let best = dir.join("best.safetensors");
    let instead = if best.is_file() {
        format!(
            ", or evaluate its best epoch so far: --model {}",
            best.display()
        )
    } else {
        String::new()
    };
    Error::weights(
        dir,
        format!(
            "holds an unfinished run (no final.safetensors yet: it was interrupted, or is still \
             training); finish it with `dptrain train --config {} --out {} --resume`{instead}",
            dir.join("config.toml").display(),
            dir.display()
        ),
    )
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::Activation;
    use crate::model::weights::save;

    /// A 3-8-4 tanh classifier with seeded weights, saved as `dir/final.safetensors` and loaded
    /// back through the run-directory path.
    pub(in crate::eval) fn classifier(dir: &Path) -> Model {
        let mlp = Mlp::new(vec![3, 8, 4], Activation::Tanh, 0.0);
        let params = mlp.init_params(5);
        let meta = ModelMeta {
            activation: Activation::Tanh,
            loss: Loss::CrossEntropy,
            standardize: None,
            labels: None,
        };
        let path = dir.join("final.safetensors");
        save(&mlp, &params, Some(&meta), &path).unwrap();
        Model::load(dir, Loss::Mse).unwrap()
    }

    #[test]
    fn outputs_do_not_depend_on_the_thread_count() {
        let tmp = tempfile::tempdir().unwrap();
        let m = classifier(tmp.path());
        let x: Vec<f32> = (0..3 * 1000).map(|i| (i as f32 * 0.37).sin()).collect();
        let one = m.outputs(&x, 1).unwrap();
        assert_eq!(one, m.outputs(&x, 3).unwrap());
        // A row run alone takes another matrix-product path: equal to rounding, not to the bit.
        let alone = m.outputs(&x[3 * 700..3 * 701], 1).unwrap();
        for (a, b) in one[4 * 700..4 * 701].iter().zip(&alone) {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
        }
    }
}
