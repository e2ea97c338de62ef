//! A dataset: features `x` (rows × features, f32) and targets `y`, mapped or in memory.

use std::path::{Path, PathBuf};

use crate::data::npy::{Dtype, NpyArray};
use crate::error::{Error, Result};

/// What the targets are, decided by the dtype of `y.npy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// Float targets, `outputs` values per row (a 1-D `y` has one output).
    Regression {
        /// Values per row.
        outputs: usize,
    },
    /// Integer class labels in `0..classes`.
    Classification {
        /// One more than the largest label.
        classes: usize,
    },
}

impl TargetKind {
    /// The number of network outputs this target needs.
    pub fn outputs(self) -> usize {
        match self {
            TargetKind::Regression { outputs } => outputs,
            TargetKind::Classification { classes } => classes,
        }
    }
}

/// What bounds the class labels of a dataset, by what it is opened for.
///
/// A label is a class id, so a label `L` asks for a model of at least `L + 1` classes. When the
/// labels decide the class count (training), a label beyond the row count is a mistake, never
/// a model: class ids must be renumbered to `0..K-1` first. When a model already exists
/// (evaluation), the model's class count bounds the labels, and a small test split may well
/// hold labels above its row count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelBound {
    /// Training: the largest label + 1 is the class count, at most the number of rows.
    Rows,
    /// Evaluation against a model: any label up to [`MAX_LABEL`] opens; the evaluation
    /// compares the labels with the model's classes.
    Model,
}

/// The largest class label accepted in `y.npy` (it must fit in `u32` with room to spare).
pub const MAX_LABEL: i128 = (u32::MAX / 2) as i128;

#[derive(Debug)]
enum Features {
    Mapped(NpyArray),
    Owned(Vec<f32>),
}

#[derive(Debug)]
enum Targets {
    MappedValues(NpyArray),
    MappedLabels(NpyArray),
    OwnedValues(Vec<f32>),
    OwnedLabels(Vec<u32>),
}

/// Features and targets of `rows` examples.
///
/// Opened from a directory with [`Dataset::open`] (memory-mapped, validated) or built in memory
/// with [`Dataset::from_vecs`] (the built-in example, tests).
#[derive(Debug)]
pub struct Dataset {
    source: Option<PathBuf>,
    rows: usize,
    features: usize,
    kind: TargetKind,
    x: Features,
    y: Targets,
}

impl Dataset {
    /// Opens `dir/x.npy` and `dir/y.npy` to train on, and validates them: as
    /// [`Dataset::open_with`] with [`LabelBound::Rows`].
    ///
    /// # Errors
    /// As [`Dataset::open_with`].
    pub fn open(dir: &Path) -> Result<Self> {
        Dataset::open_with(dir, LabelBound::Rows)
    }

    /// Opens `dir/x.npy` and `dir/y.npy` and validates them, class labels against `bound`.
    ///
    /// Validation reads every value once (from the page cache, never into the heap): NaN and Inf
    /// are rejected with their row and column, labels must be non-negative, at most
    /// [`MAX_LABEL`], and with [`LabelBound::Rows`] make no more classes than there are rows.
    ///
    /// # Errors
    /// [`Error::Data`] naming the file and the problem: see [`NpyArray::open`], plus row counts
    /// that differ, zero rows, non-finite values, negative or too large labels (naming the row
    /// and the value as the file holds it), and a `y` of a shape that is neither `(rows,)` nor
    /// `(rows, outputs)`.
    pub fn open_with(dir: &Path, bound: LabelBound) -> Result<Self> {
        check_dir(dir)?;
        let xp = dir.join("x.npy");
        let yp = dir.join("y.npy");
        let x = NpyArray::open(&xp)?;
        let y = NpyArray::open(&yp)?;
        if x.dtype() != Dtype::F32 {
            return Err(Error::data(
                &xp,
                "features must be float32; save with `np.save(path, x.astype(np.float32))`",
            ));
        }
        if x.shape().len() != 2 {
            return Err(Error::data(
                &xp,
                format!(
                    "features must be 2-D (rows × features), got shape {:?}; \
                     for one feature use x.reshape(-1, 1)",
                    x.shape()
                ),
            ));
        }
        let (rows, features) = (x.shape()[0], x.shape()[1]);
        if rows == 0 {
            return Err(Error::data(&xp, "dataset has zero rows"));
        }
        if features == 0 {
            return Err(Error::data(
                &xp,
                "dataset has zero features (shape [rows, 0])",
            ));
        }
        if y.shape()[0] != rows {
            return Err(Error::data(
                &yp,
                format!(
                    "y has {} rows but x.npy has {rows}; both files must have one row per example",
                    y.shape()[0]
                ),
            ));
        }
        check_finite(&xp, x.as_f32(), features)?;
        let (kind, y) = match y.dtype() {
            Dtype::F32 => {
                let outputs = if y.shape().len() == 2 {
                    y.shape()[1]
                } else {
                    1
                };
                if outputs == 0 {
                    return Err(Error::data(&yp, "targets have zero columns"));
                }
                check_finite(&yp, y.as_f32(), outputs)?;
                (TargetKind::Regression { outputs }, Targets::MappedValues(y))
            }
            Dtype::Int { .. } => {
                if y.shape().len() != 1 {
                    return Err(Error::data(
                        &yp,
                        format!(
                            "class labels must be 1-D (one integer per row), got shape {:?}",
                            y.shape()
                        ),
                    ));
                }
                // The largest label and the first row holding it.
                let (mut max, mut max_row) = (0i128, 0usize);
                for r in 0..rows {
                    let l = y.int_at(r);
                    if l < 0 {
                        return Err(Error::data(
                            &yp,
                            format!("row {r}: class label {l} is negative; labels must be 0..K-1"),
                        ));
                    }
                    if l > MAX_LABEL {
                        return Err(Error::data(
                            &yp,
                            format!(
                                "row {r}: class label {l} is too large (labels are class ids \
                                 0..K-1, at most {MAX_LABEL})"
                            ),
                        ));
                    }
                    if l > max {
                        (max, max_row) = (l, r);
                    }
                }
                let classes = max as usize + 1;
                if classes < 2 {
                    return Err(Error::data(
                        &yp,
                        "all labels are 0: classification needs at least two classes",
                    ));
                }
                if bound == LabelBound::Rows && classes > rows {
                    return Err(Error::data(
                        &yp,
                        format!(
                            "row {max_row}: class label {max} would make {classes} classes for \
                             {rows} rows, more classes than rows (with or without --classes); \
                             labels are class ids 0..K-1: renumber them, e.g. with \
                             np.unique(y, return_inverse=True)[1]"
                        ),
                    ));
                }
                (
                    TargetKind::Classification { classes },
                    Targets::MappedLabels(y),
                )
            }
        };
        Ok(Dataset {
            source: Some(dir.to_path_buf()),
            rows,
            features,
            kind,
            x: Features::Mapped(x),
            y,
        })
    }

    /// Builds an in-memory regression dataset (`y` holds `rows × outputs` values).
    ///
    /// # Panics
    /// If the lengths do not match `rows`, `features` and `outputs` (a programming error).
    pub fn from_vecs(x: Vec<f32>, features: usize, y: Vec<f32>, outputs: usize) -> Self {
        let rows = x.len() / features;
        assert_eq!(x.len(), rows * features, "x length is not rows × features");
        assert_eq!(y.len(), rows * outputs, "y length is not rows × outputs");
        Dataset {
            source: None,
            rows,
            features,
            kind: TargetKind::Regression { outputs },
            x: Features::Owned(x),
            y: Targets::OwnedValues(y),
        }
    }

    /// Builds an in-memory classification dataset with labels in `0..classes`.
    ///
    /// # Panics
    /// If the lengths do not match or a label is out of range (a programming error).
    pub fn from_labels(x: Vec<f32>, features: usize, y: Vec<u32>, classes: usize) -> Self {
        let rows = x.len() / features;
        assert_eq!(x.len(), rows * features, "x length is not rows × features");
        assert_eq!(y.len(), rows, "one label per row");
        assert!(
            y.iter().all(|&l| (l as usize) < classes),
            "label out of range"
        );
        Dataset {
            source: None,
            rows,
            features,
            kind: TargetKind::Classification { classes },
            x: Features::Owned(x),
            y: Targets::OwnedLabels(y),
        }
    }

    /// The directory this dataset was opened from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Number of examples.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Features per example.
    pub fn features(&self) -> usize {
        self.features
    }

    /// Regression or classification, with the output width.
    pub fn kind(&self) -> TargetKind {
        self.kind
    }

    /// All features, row-major.
    pub fn x(&self) -> &[f32] {
        match &self.x {
            Features::Mapped(a) => a.as_f32(),
            Features::Owned(v) => v,
        }
    }

    /// The features of row `r`.
    pub fn x_row(&self, r: usize) -> &[f32] {
        &self.x()[r * self.features..(r + 1) * self.features]
    }

    /// All regression targets, row-major (`rows × outputs`); `None` for classification.
    pub fn y_values(&self) -> Option<&[f32]> {
        match &self.y {
            Targets::MappedValues(a) => Some(a.as_f32()),
            Targets::OwnedValues(v) => Some(v),
            _ => None,
        }
    }

    /// Tells the kernel how rows `rows` of the mapped files will be used (nothing for a dataset
    /// in memory): a hint for reading data larger than memory in large sequential pieces.
    pub fn advise_rows(&self, rows: std::ops::Range<usize>, advice: crate::data::npy::ReadAhead) {
        if let Features::Mapped(a) = &self.x {
            a.advise(rows.start * self.features..rows.end * self.features, advice);
        }
        match &self.y {
            Targets::MappedValues(a) | Targets::MappedLabels(a) => {
                let per_row = a.shape().get(1).copied().unwrap_or(1);
                a.advise(rows.start * per_row..rows.end * per_row, advice);
            }
            _ => {}
        }
    }

    /// Bytes of the mapped files' data (0 for a dataset in memory).
    pub fn mapped_bytes(&self) -> u64 {
        let x = match &self.x {
            Features::Mapped(a) => a.bytes().len(),
            Features::Owned(_) => 0,
        };
        let y = match &self.y {
            Targets::MappedValues(a) | Targets::MappedLabels(a) => a.bytes().len(),
            _ => 0,
        };
        (x + y) as u64
    }

    /// The class label of row `r`; `None` for regression.
    pub fn label(&self, r: usize) -> Option<u32> {
        match &self.y {
            // Range was checked when the file was opened.
            Targets::MappedLabels(a) => Some(a.int_at(r) as u32),
            Targets::OwnedLabels(v) => Some(v[r]),
            _ => None,
        }
    }
}

/// Checks that `dir` is a directory, telling a missing path from a file given in its place
/// (`--data d/x.npy` instead of `--data d`).
pub(crate) fn check_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        Ok(())
    } else if dir.exists() {
        Err(Error::data(
            dir,
            "is a file, not a dataset directory (give the folder holding x.npy and y.npy)",
        ))
    } else {
        Err(Error::data(
            dir,
            "dataset directory not found (expected a folder holding x.npy and y.npy)",
        ))
    }
}

/// Rejects NaN and Inf, naming the first offending row and column.
fn check_finite(path: &Path, values: &[f32], cols: usize) -> Result<()> {
    // A fast pass over the whole slice; only on failure do we look for the position.
    if values.iter().all(|v| v.is_finite()) {
        return Ok(());
    }
    let i = values
        .iter()
        .position(|v| !v.is_finite())
        .expect("a non-finite value exists");
    Err(Error::data(
        path,
        format!(
            "row {}, column {}: value {} is not finite (NaN and Inf cannot be trained on; \
             clean or impute them first)",
            i / cols,
            i % cols,
            values[i]
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::npy_writer::NpyStream;

    fn write_dataset(dir: &Path, labels: &[i64]) {
        std::fs::create_dir_all(dir).unwrap();
        let mut x = NpyStream::<f32>::create(&dir.join("x.npy"), &[labels.len(), 1], 64).unwrap();
        x.push_slice(&vec![0.5; labels.len()]).unwrap();
        x.finish().unwrap();
        let mut y = NpyStream::<i64>::create(&dir.join("y.npy"), &[labels.len()], 64).unwrap();
        y.push_slice(labels).unwrap();
        y.finish().unwrap();
    }

    #[test]
    fn labels_make_at_most_one_class_per_row_to_train_on_but_any_number_to_evaluate() {
        let tmp = tempfile::tempdir().unwrap();
        write_dataset(tmp.path(), &[0, 1, 2]);
        let d = Dataset::open(tmp.path()).unwrap();
        assert_eq!(d.kind(), TargetKind::Classification { classes: 3 });

        write_dataset(tmp.path(), &[0, 7, 1, 7]);
        let e = Dataset::open(tmp.path()).unwrap_err().to_string();
        assert!(
            e.contains("row 1: class label 7 would make 8 classes for 4 rows"),
            "{e}"
        );
        let d = Dataset::open_with(tmp.path(), LabelBound::Model).unwrap();
        assert_eq!(d.kind(), TargetKind::Classification { classes: 8 });
        assert_eq!(d.label(3), Some(7));

        write_dataset(tmp.path(), &[0, MAX_LABEL as i64 + 1]);
        let e = Dataset::open_with(tmp.path(), LabelBound::Model)
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 1") && e.contains("too large"), "{e}");
    }
}
