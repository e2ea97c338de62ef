//! `dptrain inspect`: shapes, dtypes and per-column statistics of a dataset directory.
//!
//! Unlike [`crate::data::Dataset::open`], this does not reject NaN or Inf: it counts them, so a
//! user can see what is wrong with a file that training refuses.

use std::fmt;
use std::path::Path;

use crate::data::npy::{Dtype, NpyArray};
use crate::error::Result;

/// Statistics of one column.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ColumnStats {
    /// Smallest finite value.
    pub min: f64,
    /// Mean of the finite values.
    pub mean: f64,
    /// Largest finite value.
    pub max: f64,
    /// NaN count.
    pub nan: usize,
    /// ±Inf count.
    pub inf: usize,
}

/// What `inspect` reports for one `.npy` file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArrayStats {
    /// File name.
    pub file: String,
    /// Shape from the header.
    pub shape: Vec<usize>,
    /// numpy-style dtype name.
    pub dtype: String,
    /// Per-column statistics for float arrays.
    pub columns: Vec<ColumnStats>,
    /// `(label, count)` for integer arrays.
    pub class_counts: Vec<(i64, usize)>,
}

/// Statistics of `x.npy` and `y.npy`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DatasetStats {
    /// `x.npy`.
    pub x: ArrayStats,
    /// `y.npy`.
    pub y: ArrayStats,
}

fn float_columns(a: &NpyArray) -> Vec<ColumnStats> {
    let cols = if a.shape().len() == 2 {
        a.shape()[1]
    } else {
        1
    };
    let mut out = vec![
        ColumnStats {
            min: f64::INFINITY,
            mean: 0.0,
            max: f64::NEG_INFINITY,
            nan: 0,
            inf: 0,
        };
        cols
    ];
    let mut counts = vec![0usize; cols];
    if cols == 0 {
        return out;
    }
    for row in a.as_f32().chunks_exact(cols) {
        for (c, &v) in row.iter().enumerate() {
            let s = &mut out[c];
            if v.is_nan() {
                s.nan += 1;
            } else if v.is_infinite() {
                s.inf += 1;
            } else {
                let v = v as f64;
                s.min = s.min.min(v);
                s.max = s.max.max(v);
                s.mean += v;
                counts[c] += 1;
            }
        }
    }
    for (s, n) in out.iter_mut().zip(counts) {
        s.mean = if n > 0 { s.mean / n as f64 } else { f64::NAN };
    }
    out
}

fn array_stats(path: &Path) -> Result<ArrayStats> {
    let a = NpyArray::open(path)?;
    let (dtype, columns, class_counts) = match a.dtype() {
        Dtype::F32 => ("float32".to_string(), float_columns(&a), Vec::new()),
        Dtype::Int { bytes, signed } => {
            let n = a.shape().iter().product::<usize>();
            let mut counts = std::collections::BTreeMap::new();
            for i in 0..n {
                *counts.entry(a.int_at(i)).or_insert(0usize) += 1;
            }
            let name = format!("{}int{}", if signed { "" } else { "u" }, bytes * 8);
            (name, Vec::new(), counts.into_iter().collect())
        }
    };
    Ok(ArrayStats {
        file: path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into(),
        shape: a.shape().to_vec(),
        dtype,
        columns,
        class_counts,
    })
}

impl DatasetStats {
    /// Reads `dir/x.npy` and `dir/y.npy`.
    ///
    /// # Errors
    /// [`Error::Data`](crate::Error::Data) for a missing directory, a file in its place or a
    /// malformed file (see [`NpyArray::open`]).
    pub fn compute(dir: &Path) -> Result<Self> {
        crate::data::dataset::check_dir(dir)?;
        Ok(DatasetStats {
            x: array_stats(&dir.join("x.npy"))?,
            y: array_stats(&dir.join("y.npy"))?,
        })
    }
}

impl fmt::Display for ArrayStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: shape {:?}, dtype {}",
            self.file, self.shape, self.dtype
        )?;
        if !self.columns.is_empty() {
            writeln!(
                f,
                "  {:>6} {:>12} {:>12} {:>12} {:>6} {:>6}",
                "column", "min", "mean", "max", "NaN", "Inf"
            )?;
            for (i, c) in self.columns.iter().enumerate() {
                writeln!(
                    f,
                    "  {:>6} {:>12.5} {:>12.5} {:>12.5} {:>6} {:>6}",
                    i, c.min, c.mean, c.max, c.nan, c.inf
                )?;
            }
            let (nan, inf): (usize, usize) = self
                .columns
                .iter()
                .fold((0, 0), |(a, b), c| (a + c.nan, b + c.inf));
            writeln!(f, "  non-finite values: {nan} NaN, {inf} Inf")?;
        }
        if !self.class_counts.is_empty() {
            writeln!(f, "  {:>6} {:>10}", "class", "count")?;
            for (l, n) in &self.class_counts {
                writeln!(f, "  {l:>6} {n:>10}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for DatasetStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.x, self.y)
    }
}
