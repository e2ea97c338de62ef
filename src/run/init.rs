//! What an `--init` weights file records beside its tensors (activation, loss,
//! standardisation, class names) against the run that starts from it: each is used or the
//! conflict refused, never ignored.

use std::path::Path;

use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::model::weights::ModelMeta;
use crate::train::Trainer;

fn loss_name(l: Loss) -> &'static str {
    match l {
        Loss::Mse => "mse (a regression model)",
        Loss::CrossEntropy => "cross-entropy (a classifier)",
    }
}

/// Checks the metadata `meta` of the `--init` file `path` against `trainer`'s run on data whose
/// `labels.json` (at `labels_path`) names `data_labels`; returns the class names the trained
/// model records: the data's, else the file's.
///
/// # Errors
/// [`Error::Config`] naming `--activation`, `--loss`, `--standardize` or `--init` when the file
/// records another activation, loss or standardisation than the run uses (with both);
/// [`Error::Data`] naming `labels.json` when its class names differ from the file's (with both
/// lists).
pub fn check_init_meta(
    path: &Path,
    meta: &ModelMeta,
    trainer: &Trainer,
    data_labels: Option<&[String]>,
    labels_path: Option<&Path>,
) -> Result<Option<Vec<String>>> {
    let c = trainer.config();
    let file = path.display();
    if meta.activation != c.model.activation {
        return Err(Error::config(
            "--activation",
            format!(
                "{file} was trained with {}, but this run asks for {}: drop --activation to \
                 continue with the file's, or start without --init",
                crate::setting::show(&meta.activation),
                crate::setting::show(&c.model.activation)
            ),
        ));
    }
    if meta.loss != trainer.loss() {
        let flag = if c.model.loss.is_some() {
            "--loss"
        } else {
            "--init"
        };
        return Err(Error::config(
            flag,
            format!(
                "{file} was trained with {}, but this run minimises {} on its data: start \
                 without --init, or train on data of the file's kind",
                loss_name(meta.loss),
                loss_name(trainer.loss())
            ),
        ));
    }
    match (&meta.standardize, trainer.standardizer()) {
        (Some(_), None) => {
            return Err(Error::config(
                "--standardize",
                format!(
                    "{file} was trained on standardised inputs (it stores their mean and \
                     deviation), but this run does not standardise: drop --standardize=false"
                ),
            ));
        }
        (None, Some(_)) => {
            return Err(Error::config(
                "--standardize",
                format!(
                    "{file} was trained on raw inputs (it stores no standardisation), but this \
                     run standardises them: drop --standardize"
                ),
            ));
        }
        (Some(stored), Some(fitted)) if stored != fitted => {
            return Err(Error::config(
                "--init",
                format!(
                    "{file} stores the standardisation of the rows it was trained on, and this \
                     run's training split gives another (other data, --val-fraction or --seed): \
                     its weights would see inputs on another scale; train on the same data and \
                     split, or start without --init"
                ),
            ));
        }
        _ => {}
    }
    match (&meta.labels, data_labels) {
        (Some(file_labels), Some(data)) if file_labels.as_slice() != data => {
            let at = labels_path.unwrap_or(Path::new("labels.json"));
            Err(Error::data(
                at,
                format!(
                    "names the classes {data:?}, but {file} was trained on {file_labels:?} \
                     (the same ids must mean the same classes): import the data with \
                     --labels naming the file's classes, or start without --init"
                ),
            ))
        }
        (_, Some(data)) => Ok(Some(data.to_vec())),
        (Some(file_labels), None) if file_labels.len() == trainer.mlp().outputs() => {
            Ok(Some(file_labels.clone()))
        }
        (_, None) => Ok(None),
    }
}
