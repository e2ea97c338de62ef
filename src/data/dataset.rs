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
    /// Opens `dir/x.npy` and `dir/y.npy` and validates them.
    ///
    /// Validation reads every value once (from the page cache, never into the heap): NaN and Inf
    /// are rejected with their row and column, labels must be non-negative and fit in `u32`.
    ///
    /// # Errors
    /// [`Error::Data`] naming the file and the problem: see [`NpyArray::open`], plus row counts
    /// that differ, zero rows, non-finite values, negative labels and a `y` of a shape that is
    /// neither `(rows,)` nor `(rows, outputs)`.
    pub fn open(dir: &Path) -> Result<Self> {
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
                let mut max = 0i64;
                for r in 0..rows {
                    let l = y.int_at(r);
                    if l < 0 {
                        return Err(Error::data(
                            &yp,
                            format!("row {r}: class label {l} is negative; labels must be 0..K-1"),
                        ));
                    }
                    if l > u32::MAX as i64 / 2 {
                        return Err(Error::data(
                            &yp,
                            format!("row {r}: class label {l} is too large"),
                        ));
                    }
                    max = max.max(l);
                }
                let classes = max as usize + 1;
                if classes < 2 {
                    return Err(Error::data(
                        &yp,
                        "all labels are 0: classification needs at least two classes",
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
