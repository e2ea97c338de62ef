//! The model settings of a run: layer widths, activation, dropout, loss, initial weights.

use std::path::PathBuf;

use crate::data::{Dataset, TargetKind};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::model::{Activation, Mlp};
use crate::setting::{List, check, settings};

settings! {
    /// The network a run trains and what it minimises.
    pub struct ModelSettings, flags ModelFlags, heading "Model" {
        /// Hidden layer widths, e.g. 50 or 512,256.
        #[arg(value_name = "W[,W…]")]
        numbers hidden: List<usize> = List(vec![50]);
        /// Hidden activation.
        #[arg(value_enum)]
        numbers activation: Activation = Activation::Relu;
        /// Dropout probability after every hidden activation (training only).
        #[arg(value_name = "P")]
        numbers dropout: f32 = 0.0;
        /// Loss [default: mse for float targets, cross-entropy for integer labels].
        #[arg(value_enum)]
        numbers loss: Loss;
        /// Start from these weights (safetensors named fc1.weight, fc1.bias, …).
        #[arg(value_name = "FILE.safetensors")]
        input init: PathBuf;
    }
}

impl ModelSettings {
    /// Checks each value on its own, naming the flag of the first bad one.
    ///
    /// # Errors
    /// [`Error::Config`] naming the flag and the accepted range.
    pub fn validate(&self) -> Result<()> {
        // No hidden layer (`hidden = []` in a config file, or the library) is a linear model:
        // what the batch-size study's closed-form test trains.
        check(self.hidden.iter().all(|&h| h > 0), "--hidden", || {
            format!(
                "layer widths must be positive integers, got {:?}",
                self.hidden.0
            )
        })?;
        check((0.0..1.0).contains(&self.dropout), "--dropout", || {
            format!("must be in [0, 1), got {}", self.dropout)
        })
    }

    /// The loss for `dataset`, checking it fits the targets.
    ///
    /// # Errors
    /// [`Error::Config`] on `--loss` when the loss and the target dtype disagree.
    pub fn resolve_loss(&self, dataset: &Dataset) -> Result<Loss> {
        match (self.loss, dataset.kind()) {
            (None | Some(Loss::Mse), TargetKind::Regression { .. }) => Ok(Loss::Mse),
            (None | Some(Loss::CrossEntropy), TargetKind::Classification { .. }) => {
                Ok(Loss::CrossEntropy)
            }
            (Some(Loss::CrossEntropy), TargetKind::Regression { .. }) => Err(Error::config(
                "--loss",
                "cross-entropy needs integer class labels in y.npy, but y is float32 \
                 (save labels with y.astype(np.int64), or use --loss mse)",
            )),
            (Some(Loss::Mse), TargetKind::Classification { .. }) => Err(Error::config(
                "--loss",
                "mse needs float targets, but y.npy holds integer class labels \
                 (use --loss cross-entropy)",
            )),
        }
    }

    /// The network for `dataset`: features → hidden… → outputs (or `classes`, when given).
    ///
    /// # Errors
    /// [`Error::Config`] on `--classes` when a label is out of its range or the targets are
    /// floats; on `--hidden` when the parameters could not be counted in a machine word.
    pub fn model(&self, dataset: &Dataset, classes: Option<usize>) -> Result<Mlp> {
        let outputs = match (dataset.kind(), classes) {
            (TargetKind::Classification { classes }, Some(k)) => {
                if classes > k {
                    let row = (0..dataset.rows())
                        .find(|&r| dataset.label(r).is_some_and(|l| l as usize >= k))
                        .expect("a label ≥ k exists");
                    return Err(Error::config(
                        "--classes",
                        format!(
                            "row {row} of y.npy has label {} but --classes is {k} \
                             (labels must be in 0..{k})",
                            dataset.label(row).expect("labels")
                        ),
                    ));
                }
                k
            }
            (TargetKind::Regression { .. }, Some(k)) => {
                return Err(Error::config(
                    "--classes",
                    format!(
                        "{k} has no effect: y.npy holds float targets (regression); --classes \
                         counts integer class labels, drop it"
                    ),
                ));
            }
            (kind, None) => kind.outputs(),
        };
        let mut sizes = Vec::with_capacity(self.hidden.len() + 2);
        sizes.push(dataset.features());
        sizes.extend_from_slice(&self.hidden);
        sizes.push(outputs);
        // A parameter count past what an address can index cannot be laid out (nor held).
        let count = sizes.windows(2).try_fold(0usize, |n, w| {
            w[0].checked_mul(w[1])?.checked_add(w[1])?.checked_add(n)
        });
        if count.is_none_or(|n| n > isize::MAX as usize / 4) {
            let shown: Vec<String> = sizes.iter().map(usize::to_string).collect();
            return Err(Error::config(
                "--hidden",
                format!(
                    "the model {} has more parameters than any machine can hold; use \
                     narrower layers",
                    shown.join("→")
                ),
            ));
        }
        Ok(Mlp::new(sizes, self.activation, self.dropout))
    }
}
