//! [`Predictions`]: one per row (a class id or the outputs), made by [`Model::predict`] and
//! written as `.npy` or `.csv` by [`Predictions::write`].

use std::path::Path;

use super::model::Model;
use crate::error::{Error, Result};

impl Model {
    /// One prediction per row of `x`: the class id (arg-max output) for a classifier, the
    /// outputs otherwise. See [`Model::outputs`] for determinism and errors.
    ///
    /// # Errors
    /// As [`Model::outputs`].
    pub fn predict(&self, x: &[f32], threads: usize) -> Result<Predictions> {
        let out = self.outputs(x, threads)?;
        let k = self.mlp().outputs();
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
pub(super) fn argmax(row: &[f32]) -> u32 {
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
    /// existing writable directory, not already there (not even as a symbolic link).
    ///
    /// # Errors
    /// [`Error::Config`] on `--out`.
    pub fn for_path(path: &Path) -> Result<Self> {
        // Never overwritten, never a symbolic link replaced, in a writable directory.
        crate::fsutil::check_out("--out", path, crate::fsutil::OutKind::File)?;
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
