//! Evaluation and prediction from a saved model.
//!
//! A [`Model`] is one weights file written by `dptrain train` (or made by PyTorch): the layer
//! sizes come from its tensors, and the activation, loss, input standardisation and class names
//! from the metadata in its header ([`ModelMeta`]). The stored standardisation is applied to the
//! features before the first layer, exactly as in training.
//!
//! [`evaluate_model`] reports the mean loss and, for a classifier, the accuracy, per-class
//! precision, recall and F1, and the confusion matrix; [`Model::predict`] gives one prediction
//! per row, which [`Predictions::write`] saves as `.npy` or `.csv`.
//!
//! One concept per file:
//!
//! - `model.rs`: [`Model`], loading a weights file and the forward pass ([`Model::outputs`]);
//! - `predict.rs`: [`Predictions`] from [`Model::predict`], and writing them
//!   ([`PredictionFormat`]);
//! - `report.rs`: [`EvalReport`], [`ClassReport`] and [`ClassScore`], computed by
//!   [`evaluate_model`];
//! - `table.rs`: the text table an [`EvalReport`] displays as.
//!
//! [`ModelMeta`]: crate::model::weights::ModelMeta

mod model;
mod predict;
mod report;
mod table;

pub use model::Model;
pub use predict::{PredictionFormat, Predictions};
pub use report::{ClassReport, ClassScore, EvalReport, evaluate_model};
