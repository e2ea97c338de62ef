//! Evaluation and prediction from a saved model.
//!
//! A [`Model`] is one weights file written by `dptrain train` (or made by PyTorch): the layer
//! sizes come from its tensors, and the activation, loss, input standardisation and class names
//! from the metadata in its header ([`ModelMeta`]). The stored standardisation is applied to the
//! features before the first layer, exactly as in training.
//!
//! [`evaluate`] reports the mean loss and, for a classifier, the accuracy, per-class precision,
//! recall and F1, and the confusion matrix; [`Model::predict`] gives one prediction per row,
//! which [`Predictions::write`] saves as `.npy` or `.csv`.

use std::fmt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::data::{Dataset, TargetKind};
use crate::error::{Error, Result};
use crate::loss::{Loss, LossSum, Targets};
use crate::model::weights::{ModelMeta, load_model};
use crate::model::{Mlp, Mode, Workspace};

/// Rows per forward pass: the unit of parallel work, fixed so results do not depend on threads.
const CHUNK: usize = 256;

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
            path.join("final.safetensors")
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
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build()
            .map_err(|e| Error::config("--threads", format!("cannot start the pool: {e}")))?;
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

    /// One prediction per row of `x`: the class id (arg-max output) for a classifier, the
    /// outputs otherwise. See [`Model::outputs`] for determinism and errors.
    ///
    /// # Errors
    /// As [`Model::outputs`].
    pub fn predict(&self, x: &[f32], threads: usize) -> Result<Predictions> {
        let out = self.outputs(x, threads)?;
        let k = self.mlp.outputs();
        Ok(if self.is_classifier() {
            Predictions::Classes(out.chunks_exact(k).map(argmax).collect())
        } else {
            Predictions::Values {
                outputs: k,
                values: out,
            }
        })
    }
}

/// The first index of the largest value (as training's accuracy counts it).
fn argmax(row: &[f32]) -> u32 {
    let (mut best, mut max) = (0, f32::NEG_INFINITY);
    for (c, &v) in row.iter().enumerate() {
        if v > max {
            (best, max) = (c, v);
        }
    }
    best as u32
}

/// One prediction per row.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictions {
    /// Regression: `rows × outputs` values, row-major.
    Values {
        /// Values per row.
        outputs: usize,
        /// The values.
        values: Vec<f32>,
    },
    /// Classification: a class id per row.
    Classes(Vec<u32>),
}

/// The file formats [`Predictions::write`] knows, from the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictionFormat {
    /// `.npy`: int64 class ids, or float32 `(rows,)`/`(rows, outputs)` values (like `y.npy`).
    Npy,
    /// `.csv`: a header line, then one line per row (class names where the model has them).
    Csv,
}

impl PredictionFormat {
    /// Checks that predictions may be written to `path`: a `.npy` or `.csv` name, in an
    /// existing directory, not already there.
    ///
    /// # Errors
    /// [`Error::Config`] on `--out`.
    pub fn for_path(path: &Path) -> Result<Self> {
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("npy") => PredictionFormat::Npy,
            Some(e) if e.eq_ignore_ascii_case("csv") => PredictionFormat::Csv,
            _ => {
                return Err(Error::config(
                    "--out",
                    format!("{}: give a file ending in .csv or .npy", path.display()),
                ));
            }
        };
        if path.exists() {
            return Err(Error::config(
                "--out",
                format!(
                    "{} already exists; predict never overwrites a file, choose another name",
                    path.display()
                ),
            ));
        }
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = parent
            && !dir.is_dir()
        {
            return Err(Error::config(
                "--out",
                format!("directory {} does not exist", dir.display()),
            ));
        }
        Ok(format)
    }
}

impl Predictions {
    /// Number of rows predicted.
    pub fn rows(&self) -> usize {
        match self {
            Predictions::Values { outputs, values } => values.len() / outputs,
            Predictions::Classes(c) => c.len(),
        }
    }

    /// Writes the predictions to `path` atomically, in the format its extension names (see
    /// [`PredictionFormat`]); `names` are the class names by id, used in `.csv` files.
    ///
    /// # Errors
    /// [`Error::Config`] on `--out` as [`PredictionFormat::for_path`]; [`Error::Io`] when the
    /// file cannot be written (nothing is left behind).
    pub fn write(&self, path: &Path, names: Option<&[String]>) -> Result<()> {
        match PredictionFormat::for_path(path)? {
            PredictionFormat::Npy => match self {
                Predictions::Classes(c) => {
                    let ids: Vec<i64> = c.iter().map(|&c| i64::from(c)).collect();
                    crate::fsutil::write_npy_atomic(path, &ndarray::Array1::from(ids))
                }
                Predictions::Values { outputs: 1, values } => {
                    crate::fsutil::write_npy_atomic(path, &ndarray::Array1::from(values.clone()))
                }
                Predictions::Values { outputs, values } => {
                    let a = ndarray::Array2::from_shape_vec(
                        (values.len() / outputs, *outputs),
                        values.clone(),
                    )
                    .expect("rows × outputs values");
                    crate::fsutil::write_npy_atomic(path, &a)
                }
            },
            PredictionFormat::Csv => crate::fsutil::write_atomic(path, |w| {
                let mut csv = csv::Writer::from_writer(w);
                let io = |e: csv::Error| std::io::Error::other(e.to_string());
                match self {
                    Predictions::Classes(c) => {
                        csv.write_record(["class"]).map_err(io)?;
                        for &id in c {
                            match names.and_then(|n| n.get(id as usize)) {
                                Some(name) => csv.write_record([name]),
                                None => csv.write_record([id.to_string()]),
                            }
                            .map_err(io)?;
                        }
                    }
                    Predictions::Values { outputs, values } => {
                        if *outputs == 1 {
                            csv.write_record(["prediction"]).map_err(io)?;
                        } else {
                            csv.write_record((0..*outputs).map(|i| format!("prediction_{i}")))
                                .map_err(io)?;
                        }
                        for row in values.chunks_exact(*outputs) {
                            csv.write_record(row.iter().map(f32::to_string))
                                .map_err(io)?;
                        }
                    }
                }
                csv.flush()
            }),
        }
    }
}

/// What [`evaluate`] found.
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
pub fn evaluate(model: &Model, data: &Dataset, threads: usize) -> Result<EvalReport> {
    let dir = data.source().unwrap_or(Path::new("data"));
    model.check_features(&dir.join("x.npy"), data.features())?;
    let yp = dir.join("y.npy");
    let k = model.mlp.outputs();
    let loss_fn = model.meta.loss;
    match (loss_fn, data.kind()) {
        (Loss::CrossEntropy, TargetKind::Classification { classes }) if classes > k => {
            let r = (0..data.rows())
                .find(|&r| data.label(r).is_some_and(|l| l as usize >= k))
                .unwrap_or(0);
            return Err(Error::data(
                &yp,
                format!(
                    "row {r}: label {} is out of range for the model {}, which has {k} classes",
                    data.label(r).unwrap_or(0),
                    model.path.display()
                ),
            ));
        }
        (Loss::CrossEntropy, TargetKind::Classification { .. }) => {}
        (Loss::Mse, TargetKind::Regression { outputs }) if outputs != k => {
            return Err(Error::data(
                &yp,
                format!(
                    "has {outputs} target column(s) but the model {} has {k} outputs",
                    model.path.display()
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
                    model.path.display()
                ),
            ));
        }
        (Loss::Mse, TargetKind::Classification { .. }) => {
            return Err(Error::data(
                &yp,
                format!(
                    "holds class labels but the model {} is a regression model (MSE); \
                     give the dataset it was trained for",
                    model.path.display()
                ),
            ));
        }
    }
    let out = model.outputs(data.x(), threads)?;
    let rows = data.rows();
    let mut total = LossSum::default();
    let classification = if loss_fn == Loss::CrossEntropy {
        let labels: Vec<u32> = (0..rows)
            .map(|r| data.label(r).expect("classification data"))
            .collect();
        for (o, l) in out.chunks(CHUNK * k).zip(labels.chunks(CHUNK)) {
            total.add(loss_fn.evaluate(o, k, Targets::Labels(l), l.len(), None));
        }
        let mut confusion = vec![vec![0usize; k]; k];
        for (o, &l) in out.chunks_exact(k).zip(&labels) {
            confusion[l as usize][argmax(o) as usize] += 1;
        }
        Some(class_report(&confusion, &model.class_names()))
    } else {
        let y = data.y_values().expect("regression data");
        for (o, t) in out.chunks(CHUNK * k).zip(y.chunks(CHUNK * k)) {
            total.add(loss_fn.evaluate(o, k, Targets::Values(t), t.len() / k, None));
        }
        None
    };
    Ok(EvalReport {
        model: model.path.clone(),
        rows,
        loss_fn,
        loss: loss_fn.mean(total, rows, k),
        classification,
    })
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

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loss_name = match self.loss_fn {
            Loss::Mse => "mse",
            Loss::CrossEntropy => "cross-entropy",
        };
        writeln!(f, "model: {}", self.model.display())?;
        writeln!(f, "rows: {}", self.rows)?;
        writeln!(f, "loss ({loss_name}): {:.6}", self.loss)?;
        let Some(c) = &self.classification else {
            return Ok(());
        };
        writeln!(
            f,
            "accuracy: {:.4} ({}/{})",
            c.accuracy, c.correct, self.rows
        )?;
        let w = c
            .per_class
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(5);
        let score = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        writeln!(f)?;
        writeln!(
            f,
            "{:<w$}  {:>9}  {:>9}  {:>9}  {:>7}",
            "class", "precision", "recall", "f1", "support"
        )?;
        for s in &c.per_class {
            writeln!(
                f,
                "{:<w$}  {:>9}  {:>9}  {:>9}  {:>7}",
                s.name,
                score(s.precision),
                score(s.recall),
                score(s.f1),
                s.support
            )?;
        }
        writeln!(f)?;
        writeln!(f, "confusion matrix (rows: true class, columns: predicted)")?;
        let cw = c
            .per_class
            .iter()
            .map(|s| s.name.chars().count())
            .chain(c.confusion.iter().flatten().map(|n| n.to_string().len()))
            .max()
            .unwrap_or(1);
        write!(f, "{:<w$}", "")?;
        for s in &c.per_class {
            write!(f, "  {:>cw$}", s.name)?;
        }
        writeln!(f)?;
        for (s, row) in c.per_class.iter().zip(&c.confusion) {
            write!(f, "{:<w$}", s.name)?;
            for n in row {
                write!(f, "  {n:>cw$}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Activation;
    use crate::model::weights::save;

    fn classifier(dir: &Path) -> Model {
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

    #[test]
    fn evaluation_matches_a_plain_recount_of_the_predictions() {
        let tmp = tempfile::tempdir().unwrap();
        let m = classifier(tmp.path());
        let x: Vec<f32> = (0..3 * 300).map(|i| (i as f32 * 0.11).cos()).collect();
        let labels: Vec<u32> = (0..300).map(|r| (r * 7 % 4) as u32).collect();
        let data = Dataset::from_labels(x.clone(), 3, labels.clone(), 4);
        let report = evaluate(&m, &data, 2).unwrap();
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
            crate::train::evaluate_dataset(&data, m.mlp(), Loss::CrossEntropy, &m.params, None, 1)
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
