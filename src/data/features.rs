//! Features without targets: `x.npy` alone, for prediction.

use std::path::{Path, PathBuf};

use crate::data::npy::{Dtype, NpyArray};
use crate::error::{Error, Result};

/// The memory-mapped `dir/x.npy` of a dataset directory, validated like [`crate::data::Dataset`]
/// validates it (float32, 2-D, at least one row and one feature, every value finite), with no
/// `y.npy` needed.
#[derive(Debug)]
pub struct FeatureMatrix {
    array: NpyArray,
    rows: usize,
    features: usize,
}

impl FeatureMatrix {
    /// Opens and validates `dir/x.npy`.
    ///
    /// # Errors
    /// [`Error::Data`] naming the directory when it is missing or a file, and naming `x.npy`
    /// for everything [`NpyArray::open`] refuses, a dtype other than float32, a shape that is
    /// not `(rows, features)` with both non-zero, and the first NaN or Inf (row and column).
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            let what = if dir.exists() {
                "is a file, not a dataset directory (give the folder holding x.npy)"
            } else {
                "dataset directory not found (expected a folder holding x.npy)"
            };
            return Err(Error::data(dir, what));
        }
        let path = dir.join("x.npy");
        let array = NpyArray::open(&path)?;
        if array.dtype() != Dtype::F32 {
            return Err(Error::data(
                &path,
                "features must be float32; save with `np.save(path, x.astype(np.float32))`",
            ));
        }
        let &[rows, features] = array.shape() else {
            return Err(Error::data(
                &path,
                format!(
                    "features must be 2-D (rows × features), got shape {:?}",
                    array.shape()
                ),
            ));
        };
        if rows == 0 || features == 0 {
            return Err(Error::data(
                &path,
                format!("features have shape [{rows}, {features}]; need at least one of each"),
            ));
        }
        if let Some(i) = array.as_f32().iter().position(|v| !v.is_finite()) {
            return Err(Error::data(
                &path,
                format!(
                    "row {}, column {}: value {} is not finite",
                    i / features,
                    i % features,
                    array.as_f32()[i]
                ),
            ));
        }
        Ok(FeatureMatrix {
            array,
            rows,
            features,
        })
    }

    /// The `x.npy` file.
    pub fn path(&self) -> PathBuf {
        self.array.path().to_path_buf()
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Features per row.
    pub fn features(&self) -> usize {
        self.features
    }

    /// All features, row-major.
    pub fn x(&self) -> &[f32] {
        self.array.as_f32()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{SyntheticSpec, Task};

    #[test]
    fn features_open_without_targets() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = SyntheticSpec {
            task: Task::Regression,
            rows: 7,
            features: 3,
            outputs: 1,
            noise: 0.0,
            seed: 1,
        };
        spec.write(tmp.path()).unwrap();
        std::fs::remove_file(tmp.path().join("y.npy")).unwrap();
        let f = FeatureMatrix::open(tmp.path()).unwrap();
        assert_eq!((f.rows(), f.features(), f.x().len()), (7, 3, 21));
        let missing = FeatureMatrix::open(&tmp.path().join("nope")).unwrap_err();
        assert!(missing.to_string().contains("not found"), "{missing}");
    }
}
