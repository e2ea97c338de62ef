//! [`EvalReport`]: what [`evaluate_model`] finds when it runs a [`Model`] over a labelled
//! dataset — the mean loss and, for a classifier, accuracy, per-class scores and the confusion
//! matrix.

use std::path::{Path, PathBuf};

use super::model::{CHUNK, Model};
use super::predict::argmax;
use crate::data::{Dataset, TargetKind};
use crate::error::{Error, Result};
use crate::loss::{Loss, LossSum, Targets};

/// What [`evaluate_model`] found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalReport {
    /// The weights file evaluated.
    pub model: PathBuf,
    /// Rows evaluated.
    pub rows: usize,
    /// The loss function.
    pub loss_fn: Loss,
    /// Mean loss over the rows (PyTorch's mean reduction).
    pub loss: f64,
    /// Classification metrics, for a classifier.
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    pub classification: Option<ClassReport>,
}

/// Accuracy, per-class scores and the confusion matrix.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassReport {
    /// Fraction of rows whose predicted class is the label.
    pub accuracy: f64,
    /// Rows whose predicted class is the label.
    pub correct: usize,
    /// Scores per class id.
    pub per_class: Vec<ClassScore>,
    /// `confusion[true][predicted]`: rows of class `true` predicted as `predicted`.
    pub confusion: Vec<Vec<usize>>,
}

/// The scores of one class. A score whose denominator is zero is `None` (`null` in JSON).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassScore {
    /// The class name (or its id as text).
    pub name: String,
    /// Rows labelled with this class.
    pub support: usize,
    /// Of the rows predicted as this class, the fraction that are.
    pub precision: Option<f64>,
    /// Of the rows of this class, the fraction predicted as it.
    pub recall: Option<f64>,
    /// Harmonic mean of precision and recall.
    pub f1: Option<f64>,
}

/// Evaluates `model` on every row of `data`: mean loss, and for a classifier accuracy,
/// per-class precision/recall/F1 and the confusion matrix.
///
/// # Determinism
/// Outputs come from [`Model::outputs`] (independent of `threads`); the loss is summed in row
/// order.
///
/// # Errors
/// [`Error::Data`] naming the data file when its feature count, target kind (float targets for
/// a classifier, labels for a regression model), output count or a label does not fit the
/// model; [`Error::Config`] on `--threads`.
pub fn evaluate_model(model: &Model, data: &Dataset, threads: usize) -> Result<EvalReport> {
    let dir = data.source().unwrap_or(Path::new("data"));
    model.check_features(&dir.join("x.npy"), data.features())?;
    let yp = dir.join("y.npy");
    let k = model.mlp().outputs();
    let loss_fn = model.meta().loss;
    let class_map = match (loss_fn, data.kind()) {
        (Loss::CrossEntropy, TargetKind::Classification { .. }) => {
            ClassMap::new(model, data.source())?
        }
        _ => ClassMap::Same,
    };
    let known = class_map.data_classes().unwrap_or(k);
    match (loss_fn, data.kind()) {
        (Loss::CrossEntropy, TargetKind::Classification { classes }) if classes > known => {
            let r = (0..data.rows())
                .find(|&r| data.label(r).is_some_and(|l| l as usize >= known))
                .unwrap_or(0);
            if let ClassMap::Remap { names, .. } = &class_map {
                return Err(Error::data(
                    &yp,
                    format!(
                        "row {r}: label {} is past the {} classes its labels.json names \
                         ({names:?})",
                        data.label(r).unwrap_or(0),
                        names.len()
                    ),
                ));
            }
            return Err(Error::data(
                &yp,
                format!(
                    "row {r}: label {} is out of range for the model {}, which has {k} classes",
                    data.label(r).unwrap_or(0),
                    model.path().display()
                ),
            ));
        }
        (Loss::CrossEntropy, TargetKind::Classification { .. }) => {}
        (Loss::Mse, TargetKind::Regression { outputs }) if outputs != k => {
            return Err(Error::data(
                &yp,
                format!(
                    "has {outputs} target column(s) but the model {} has {k} outputs",
                    model.path().display()
                ),
            ));
        }
        (Loss::Mse, TargetKind::Regression { .. }) => {}
        (Loss::CrossEntropy, TargetKind::Regression { .. }) => {
            return Err(Error::data(
                &yp,
                format!(
                    "holds float targets but the model {} is a classifier (cross-entropy); \
                     give the dataset it was trained for",
                    model.path().display()
                ),
            ));
        }
        (Loss::Mse, TargetKind::Classification { .. }) => {
            return Err(Error::data(
                &yp,
                format!(
                    "holds class labels but the model {} is a regression model (MSE); \
                     give the dataset it was trained for",
                    model.path().display()
                ),
            ));
        }
    }
    let out = model.outputs(data.x(), threads)?;
    let rows = data.rows();
    let mut total = LossSum::default();
    let classification = if loss_fn == Loss::CrossEntropy {
        let labels: Vec<u32> = (0..rows)
            .map(|r| class_map.model_id(data.label(r).expect("classification data")))
            .collect();
        for (o, l) in out.chunks(CHUNK * k).zip(labels.chunks(CHUNK)) {
            total.add(loss_fn.sum_over(o, k, Targets::Labels(l), l.len(), None));
        }
        let mut confusion = vec![vec![0usize; k]; k];
        for (o, &l) in out.chunks_exact(k).zip(&labels) {
            confusion[l as usize][argmax(o) as usize] += 1;
        }
        Some(class_report(&confusion, &model.class_names()))
    } else {
        let y = data.y_values().expect("regression data");
        for (o, t) in out.chunks(CHUNK * k).zip(y.chunks(CHUNK * k)) {
            total.add(loss_fn.sum_over(o, k, Targets::Values(t), t.len() / k, None));
        }
        None
    };
    Ok(EvalReport {
        model: model.path().to_path_buf(),
        rows,
        loss_fn,
        loss: loss_fn.mean(total, rows, k),
        classification,
    })
}

/// How the data's class ids map to the model's: the same ids, or (when the data's
/// `labels.json` names its classes in another order or a subset of them) by name.
#[derive(Debug, Clone, PartialEq)]
enum ClassMap {
    /// Data id = model id.
    Same,
    /// Data id `i` is model id `to[i]`; `names` are the data's class names.
    Remap { to: Vec<u32>, names: Vec<String> },
}

impl ClassMap {
    /// Compares the class names the model stores with the `labels.json` of the dataset
    /// directory `dir` (when both exist).
    ///
    /// # Errors
    /// [`Error::Data`] naming `labels.json`, both lists and a class the model does not know.
    fn new(model: &Model, dir: Option<&Path>) -> Result<Self> {
        let (Some(model_names), Some(dir)) = (&model.meta().labels, dir) else {
            return Ok(ClassMap::Same);
        };
        let path = dir.join("labels.json");
        if !path.is_file() {
            return Ok(ClassMap::Same);
        }
        let names = crate::data::read_labels(&path)?;
        if &names == model_names {
            return Ok(ClassMap::Same);
        }
        let to = names
            .iter()
            .map(|n| {
                model_names
                    .iter()
                    .position(|m| m == n)
                    .map(|i| i as u32)
                    .ok_or_else(|| {
                        Error::data(
                            &path,
                            format!(
                                "names the classes {names:?}, but the model {} was trained on \
                                 {model_names:?}, which has no class {n:?}; give data with the \
                                 model's classes (import it with --labels naming them)",
                                model.path().display()
                            ),
                        )
                    })
            })
            .collect::<Result<Vec<u32>>>()?;
        Ok(ClassMap::Remap { to, names })
    }

    /// The number of classes the data's `labels.json` names, when it remaps.
    fn data_classes(&self) -> Option<usize> {
        match self {
            ClassMap::Same => None,
            ClassMap::Remap { to, .. } => Some(to.len()),
        }
    }

    /// The model's id of the data's class `label` (in range: checked first).
    fn model_id(&self, label: u32) -> u32 {
        match self {
            ClassMap::Same => label,
            ClassMap::Remap { to, .. } => to[label as usize],
        }
    }
}

fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

fn class_report(confusion: &[Vec<usize>], names: &[String]) -> ClassReport {
    let k = confusion.len();
    let rows: usize = confusion.iter().flatten().sum();
    let correct: usize = (0..k).map(|c| confusion[c][c]).sum();
    let per_class = (0..k)
        .map(|c| {
            let support: usize = confusion[c].iter().sum();
            let predicted: usize = confusion.iter().map(|r| r[c]).sum();
            let precision = ratio(confusion[c][c], predicted);
            let recall = ratio(confusion[c][c], support);
            let f1 = match (precision, recall) {
                (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
                (Some(_), Some(_)) => Some(0.0),
                _ => None,
            };
            ClassScore {
                name: names[c].clone(),
                support,
                precision,
                recall,
                f1,
            }
        })
        .collect();
    ClassReport {
        accuracy: ratio(correct, rows).unwrap_or(0.0),
        correct,
        per_class,
        confusion: confusion.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Predictions;
    use crate::eval::model::tests::classifier;

    #[test]
    fn evaluation_matches_a_plain_recount_of_the_predictions() {
        let tmp = tempfile::tempdir().unwrap();
        let m = classifier(tmp.path());
        let x: Vec<f32> = (0..3 * 300).map(|i| (i as f32 * 0.11).cos()).collect();
        let labels: Vec<u32> = (0..300).map(|r| (r * 7 % 4) as u32).collect();
        let data = Dataset::from_labels(x.clone(), 3, labels.clone(), 4);
        let report = evaluate_model(&m, &data, 2).unwrap();
        let Predictions::Classes(pred) = m.predict(&x, 1).unwrap() else {
            panic!("a classifier predicts classes");
        };
        let c = report.classification.as_ref().unwrap();
        let correct = pred.iter().zip(&labels).filter(|(p, l)| p == l).count();
        assert_eq!(c.correct, correct);
        assert_eq!(c.confusion.iter().flatten().sum::<usize>(), 300);
        for (k, s) in c.per_class.iter().enumerate() {
            assert_eq!(
                s.support,
                labels.iter().filter(|&&l| l as usize == k).count()
            );
        }
        let (loss, acc) =
            crate::train::evaluate_dataset(&data, m.mlp(), Loss::CrossEntropy, m.params(), None, 1)
                .unwrap();
        assert!(
            (report.loss - loss).abs() < 1e-6 * loss.max(1.0),
            "{} vs {loss}",
            report.loss
        );
        assert_eq!(Some(c.accuracy), acc);
        assert!(report.to_string().contains("confusion matrix"));
    }

    #[test]
    fn scores_with_no_predictions_are_undefined_not_nan() {
        let r = class_report(&[vec![2, 0], vec![1, 0]], &["a".into(), "b".into()]);
        assert_eq!(r.per_class[1].precision, None);
        assert_eq!(r.per_class[1].recall, Some(0.0));
        assert_eq!(r.per_class[0].precision, Some(2.0 / 3.0));
        assert_eq!(r.correct, 2);
    }
}
