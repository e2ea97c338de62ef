//! `dptrain inspect`: shapes, dtypes and per-column statistics of a dataset directory.
//!
//! Unlike [`crate::data::Dataset::open`], this does not reject NaN or Inf, nor row counts that
//! differ, nor a missing `y.npy`: it shows them, so a user can see what is wrong with a
//! directory that training refuses. What training would refuse is also said as a warning.

use std::fmt;
use std::path::Path;

use crate::data::npy::{Dtype, NpyArray};
use crate::data::quote::list_text;
use crate::data::read_labels;
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
    /// `(label, count)` for integer arrays, by label; every value of every integer dtype
    /// (`uint64` included) is exact.
    pub class_counts: Vec<(i128, usize)>,
}

/// Statistics of a dataset directory: `x.npy`, and `y.npy` and `labels.json` where present.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DatasetStats {
    /// `x.npy`.
    pub x: ArrayStats,
    /// `y.npy`; `None` for a directory of features only (which `predict` reads).
    pub y: Option<ArrayStats>,
    /// The class names of `labels.json`, by class id, when the file is there and readable.
    pub labels: Option<Vec<String>>,
    /// What is inconsistent between the files (row counts, class names), one sentence each.
    pub warnings: Vec<String>,
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
    /// Reads `dir/x.npy`, and `dir/y.npy` and `dir/labels.json` where they exist.
    ///
    /// # Errors
    /// [`Error::Data`](crate::Error::Data) for a missing directory, a file in its place, a
    /// missing `x.npy` or a malformed `.npy` file (see [`NpyArray::open`]). A `labels.json`
    /// that cannot be read is a warning, not an error.
    pub fn compute(dir: &Path) -> Result<Self> {
        crate::data::dataset::check_dir(dir)?;
        let x = array_stats(&dir.join("x.npy"))?;
        let yp = dir.join("y.npy");
        // A dangling link or an unreadable entry is still "there": opening it says what is wrong.
        let y = match std::fs::symlink_metadata(&yp) {
            Ok(_) => Some(array_stats(&yp)?),
            Err(_) => None,
        };
        let mut warnings = Vec::new();
        let lp = dir.join("labels.json");
        let labels = match std::fs::symlink_metadata(&lp) {
            Err(_) => None,
            Ok(_) => match read_labels(&lp) {
                Ok(names) => Some(names),
                Err(e) => {
                    warnings.push(e.to_string());
                    None
                }
            },
        };
        if let Some(y) = &y {
            let (xr, yr) = (x.shape[0], y.shape[0]);
            if xr != yr {
                warnings.push(format!(
                    "x.npy has {xr} rows but y.npy has {yr}; train and eval refuse this dataset \
                     (one row of y.npy per row of x.npy)"
                ));
            }
        }
        match (&labels, &y) {
            (Some(names), Some(y)) if y.dtype == "float32" => warnings.push(format!(
                "labels.json names {} classes but y.npy holds float32 targets (regression), \
                 not class labels",
                names.len()
            )),
            (Some(names), Some(y)) => {
                if let Some(&(max, _)) = y.class_counts.last()
                    && max >= names.len() as i128
                {
                    warnings.push(format!(
                        "labels.json has {} class names but y.npy holds label {max}: labels {} \
                         and above have no name",
                        names.len(),
                        names.len()
                    ));
                }
            }
            _ => {}
        }
        Ok(DatasetStats {
            x,
            y,
            labels,
            warnings,
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
    /// The tables of `x.npy` and `y.npy`, the class names beside their counts. The warnings
    /// are not shown here: the CLI prints them on stderr.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.x)?;
        let Some(y) = &self.y else {
            writeln!(
                f,
                "no y.npy: features only (predict reads this directory; train and eval need y.npy)"
            )?;
            if let Some(names) = &self.labels {
                writeln!(
                    f,
                    "labels.json: {} classes: {}",
                    names.len(),
                    list_text(names)
                )?;
            }
            return Ok(());
        };
        let Some(names) = self.labels.as_ref().filter(|_| !y.class_counts.is_empty()) else {
            return write!(f, "{y}");
        };
        // y.npy with the class names of labels.json beside the counts.
        writeln!(f, "{}: shape {:?}, dtype {}", y.file, y.shape, y.dtype)?;
        writeln!(f, "  {:>6} {:>10}  name (labels.json)", "class", "count")?;
        for (l, n) in &y.class_counts {
            let name = usize::try_from(*l)
                .ok()
                .and_then(|i| names.get(i))
                .map_or("(no name)", String::as_str);
            writeln!(f, "  {l:>6} {n:>10}  {name}")?;
        }
        // Names without a row are shown too: a test split may lack a class.
        for (i, name) in names.iter().enumerate() {
            if !y.class_counts.iter().any(|&(l, _)| l == i as i128) {
                writeln!(f, "  {i:>6} {:>10}  {name}", 0)?;
            }
        }
        Ok(())
    }
}
