//! CSV import: a delimited text file becomes a dataset directory (`x.npy`, `y.npy`, and
//! `labels.json` for classification).
//!
//! The file is read twice and never held in memory: the first pass checks every cell and
//! collects the class names, the second writes the arrays row by row through buffered writers.
//! A file larger than memory imports.
//!
//! # Rules
//! - **Targets** are named by header name or by 0-based column index (`--target species`,
//!   `--target 4`, `--target y1,y2`); every other column is a feature, in file order. A flag
//!   value is read as a CSV record ([`split_targets`]): a name holding a comma goes in double
//!   quotes, `--target '"label, with comma"'`.
//! - **Task**: without [`CsvImport::task`], a target column of numbers is regression and a
//!   column of text is classification (a column mixing both is refused). With
//!   [`Task::Classification`], numbers are class names too; they must then be integers.
//! - **Class ids** follow the *sorted* class names (numeric order for integer labels, byte
//!   order for text), so they do not depend on the order of the rows. `labels.json` (a JSON
//!   list, index = class id) is written for every classification import; `dptrain train` stores
//!   it in the model and `dptrain predict` prints the names. A test split imported on its own
//!   may lack a class, which would shift the ids: give it the training split's names
//!   ([`CsvImport::labels`], `--labels train/labels.json`) to keep them.
//! - **Cells** are trimmed; an empty or non-numeric feature, or one that is not finite, is an
//!   error naming the line (1-based, as in an editor) and the column (header name and 0-based
//!   index, as `--target` counts). A UTF-8 byte-order mark and CRLF line ends are accepted;
//!   blank lines are skipped.
//! - **Nothing is left behind** on error: the files are written under temporary names in the
//!   output directory and renamed only when both passes succeeded; a directory the import
//!   created is removed again. An output directory that already holds a dataset is refused.
//!
//! # Where the parts live
//! [`import_csv`] runs the steps in order: `data::stage` refuses an output that holds a
//! dataset, `scan` is the first pass (with `layout` resolving the columns and `classes`
//! collecting the class names), `write` is the second pass, and `data::stage` renames the files
//! into place. `read` is the csv reader and cell parsing both passes share.

mod classes;
mod layout;
mod read;
mod scan;
mod write;

use std::path::Path;

use crate::data::Task;
use crate::data::quote::{list_text, quoted};
use crate::data::stage::{Stage, check_out};
use crate::error::{Error, Result};
use classes::Classes;
use layout::name_of;
use scan::scan;
use write::{write_arrays, write_labels};

/// How to read a CSV file and which columns are targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvImport {
    /// Target columns: header names or 0-based indices (a name wins over an index when a header
    /// cell is literally a number).
    pub targets: Vec<String>,
    /// Regression or classification; `None` decides from the target column (numbers:
    /// regression, text: classification).
    pub task: Option<Task>,
    /// Field separator (one ASCII byte).
    pub delimiter: u8,
    /// Whether the first record names the columns.
    pub has_header: bool,
    /// Class names by id to use instead of those found in the file (e.g. the `labels.json` of
    /// the training split, so that a test split gets the same ids); implies classification,
    /// and a label not in the list is an error.
    pub labels: Option<Vec<String>>,
}

impl Default for CsvImport {
    fn default() -> Self {
        CsvImport {
            targets: Vec::new(),
            task: None,
            delimiter: b',',
            has_header: true,
            labels: None,
        }
    }
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportSummary {
    /// Data rows written.
    pub rows: usize,
    /// Feature columns, in file order (header names, or `column N` without a header).
    pub features: Vec<String>,
    /// Target columns, in the order given.
    pub targets: Vec<String>,
    /// The task decided.
    pub task: Task,
    /// Class names by id (classification only).
    pub labels: Option<Vec<String>>,
    /// Rows per class id (classification only).
    pub class_counts: Option<Vec<usize>>,
}

/// Imports `file` into `out` (created if missing): `x.npy` float32 `(rows, features)`, `y.npy`
/// float32 `(rows,)`/`(rows, targets)` for regression or int64 `(rows,)` class ids for
/// classification, plus `labels.json` for classification. See the module doc for the rules.
///
/// # Errors
/// - [`Error::Data`] naming `file` and, for a bad cell, its line and column: an empty file, no
///   data rows, a ragged row, a missing, non-numeric or non-finite feature, a target column
///   mixing numbers and text, a non-integer class label, a single class.
/// - [`Error::Config`] on `--target` (unknown column, index out of range, repeated, several
///   targets for classification, no feature left), `--delimiter`, or `--out` (already holds a
///   dataset, or is a file).
/// - [`Error::Io`] when the output cannot be written; nothing is left behind.
pub fn import_csv(file: &Path, spec: &CsvImport, out: &Path) -> Result<ImportSummary> {
    check_spec(spec)?;
    check_out(out)?;
    // Pass 1: check every cell, count rows, collect class names. Nothing is written yet.
    let (layout, scan) = scan(file, spec)?;
    let task = scan.task;
    let mut classes = scan.classes;
    if let Some(c) = &mut classes {
        c.assign_ids();
    }
    let labels = classes.as_ref().map(Classes::names);
    let mut stage = Stage::new(out)?;
    let xp = stage.file("x.npy");
    let yp = stage.file("y.npy");
    let counts = write_arrays(file, spec, &layout, scan.rows, classes.as_ref(), &xp, &yp)?;
    if let Some(names) = &labels {
        write_labels(&stage.file("labels.json"), names)?;
    }
    stage.commit()?;
    Ok(ImportSummary {
        rows: scan.rows,
        features: layout
            .features
            .iter()
            .map(|&c| name_of(&layout, c))
            .collect(),
        targets: layout
            .targets
            .iter()
            .map(|&c| name_of(&layout, c))
            .collect(),
        task,
        labels,
        class_counts: classes.is_some().then_some(counts),
    })
}

/// The target column names in one `--target` value: a comma-separated list read with CSV
/// quoting, so that a name holding a comma is given in double quotes as in the file itself
/// (`y1,y2` is two names, `"label, with comma"` one; `""` inside quotes is a quote). Names are
/// trimmed, as the file's cells are.
///
/// # Errors
/// [`Error::Config`] on `--target` for a value the CSV reader cannot read.
pub fn split_targets(value: &str) -> Result<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(value.as_bytes());
    let mut names = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| {
            Error::config(
                "--target",
                format!("{} is not a comma-separated list: {e}", quoted(value)),
            )
        })?;
        names.extend(rec.iter().map(str::to_string));
    }
    Ok(names)
}

/// Reads a `labels.json` written by an import: a JSON list of class names, index = class id.
///
/// # Errors
/// [`Error::Data`] naming the file when it cannot be read or is not a list of strings.
pub fn read_labels(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let what = match e.kind() {
            std::io::ErrorKind::NotFound => "file not found".to_string(),
            _ => format!("cannot read: {e}"),
        };
        Error::data(path, what)
    })?;
    serde_json::from_str(&text)
        .map_err(|e| Error::data(path, format!("expected a JSON list of class names: {e}")))
}

fn check_spec(spec: &CsvImport) -> Result<()> {
    if spec.targets.is_empty() {
        return Err(Error::config("--target", "name at least one target column"));
    }
    if let Some(names) = &spec.labels {
        if spec.task == Some(Task::Regression) {
            return Err(Error::config(
                "--labels",
                "class names make no sense with --task regression",
            ));
        }
        let distinct: std::collections::HashSet<&String> = names.iter().collect();
        if names.len() < 2 || distinct.len() != names.len() {
            return Err(Error::config(
                "--labels",
                format!(
                    "need at least two distinct class names, got {}: {}",
                    names.len(),
                    list_text(names)
                ),
            ));
        }
    }
    if !spec.delimiter.is_ascii() {
        return Err(Error::config(
            "--delimiter",
            format!(
                "byte 0x{:02X} is not an ASCII character; use one such as , ; or tab",
                spec.delimiter
            ),
        ));
    }
    if matches!(spec.delimiter, b'"' | b'\n' | b'\r') {
        return Err(Error::config(
            "--delimiter",
            format!(
                "{:?} cannot separate fields; use one ASCII character such as , ; or tab",
                spec.delimiter as char
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;

    fn import(text: &[u8], spec: &CsvImport) -> (tempfile::TempDir, Result<ImportSummary>) {
        let tmp = tempfile::tempdir().unwrap();
        let csv = tmp.path().join("d.csv");
        std::fs::write(&csv, text).unwrap();
        let r = import_csv(&csv, spec, &tmp.path().join("out"));
        (tmp, r)
    }

    fn target(t: &str) -> CsvImport {
        CsvImport {
            targets: vec![t.into()],
            ..CsvImport::default()
        }
    }

    #[test]
    fn string_labels_get_ids_in_sorted_order_and_a_bom_and_crlf_are_accepted() {
        let text = b"\xEF\xBB\xBFa,species,b\r\n1,zebra,2\r\n3,ant,4\r\n5,zebra,6\r\n";
        let (tmp, r) = import(text, &target("species"));
        let s = r.unwrap();
        assert_eq!(s.task, Task::Classification);
        assert_eq!(s.labels, Some(vec!["ant".to_string(), "zebra".to_string()]));
        assert_eq!(s.features, vec!["a", "b"]);
        assert_eq!(s.class_counts, Some(vec![1, 2]));
        let d = Dataset::open(&tmp.path().join("out")).unwrap();
        assert_eq!(d.x(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(
            (0..3).map(|r| d.label(r).unwrap()).collect::<Vec<_>>(),
            [1, 0, 1]
        );
        let json = std::fs::read_to_string(tmp.path().join("out/labels.json")).unwrap();
        assert_eq!(
            serde_json::from_str::<Vec<String>>(&json).unwrap(),
            ["ant", "zebra"]
        );
    }

    #[test]
    fn numeric_targets_are_regression_unless_classification_is_asked() {
        let text = b"y,x\n1,0.5\n3.0,1.5\n-1,2.5\n";
        let (tmp, r) = import(text, &target("0"));
        assert_eq!(r.unwrap().task, Task::Regression);
        let d = Dataset::open(&tmp.path().join("out")).unwrap();
        assert_eq!(d.y_values().unwrap(), &[1.0, 3.0, -1.0]);
        let spec = CsvImport {
            task: Some(Task::Classification),
            ..target("y")
        };
        let (tmp, r) = import(text, &spec);
        assert_eq!(
            r.unwrap().labels,
            Some(vec!["-1".to_string(), "1".into(), "3".into()])
        );
        let d = Dataset::open(&tmp.path().join("out")).unwrap();
        assert_eq!(
            (0..3).map(|r| d.label(r).unwrap()).collect::<Vec<_>>(),
            [1, 2, 0]
        );
    }

    #[test]
    fn several_regression_targets_make_a_two_dimensional_y() {
        let spec = CsvImport {
            targets: vec!["2".into(), "0".into()],
            has_header: false,
            delimiter: b';',
            ..CsvImport::default()
        };
        let (tmp, r) = import(b"1;2;3\n4;5;6\n", &spec);
        assert_eq!(r.unwrap().targets, vec!["column 2", "column 0"]);
        let d = Dataset::open(&tmp.path().join("out")).unwrap();
        assert_eq!(d.y_values().unwrap(), &[3.0, 1.0, 6.0, 4.0]);
        assert_eq!(d.x(), &[2.0, 5.0]);
    }

    #[test]
    fn a_bad_cell_is_named_by_line_and_column_and_nothing_is_left() {
        let (tmp, r) = import(b"a,b,y\n1,2,x\n1,,y\n", &target("y"));
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("line 3, column \"b\" (index 1): missing value"),
            "{e}"
        );
        assert!(!tmp.path().join("out").exists());
        let (_, r) = import(b"a,b,y\n1,2,x\n1,nan,y\n", &target("y"));
        let e = r.unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("not a finite"), "{e}");
    }

    #[test]
    fn a_target_column_mixing_numbers_and_text_is_refused_in_auto_mode() {
        let (_, r) = import(b"a,y\n1,2\n1,n/a\n", &target("y"));
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("line 3") && e.contains("--task classification"),
            "{e}"
        );
    }

    #[test]
    fn target_values_are_csv_records() {
        assert_eq!(split_targets("y1, y2").unwrap(), ["y1", "y2"]);
        assert_eq!(
            split_targets("\"label, with comma\",y").unwrap(),
            ["label, with comma", "y"]
        );
        assert_eq!(split_targets("\"say \"\"hi\"\"\"").unwrap(), ["say \"hi\""]);
        assert_eq!(split_targets("4").unwrap(), ["4"]);
    }

    #[test]
    fn given_labels_fix_the_ids_even_when_a_class_is_absent() {
        let spec = CsvImport {
            labels: Some(vec!["zebra".into(), "ant".into(), "bee".into()]),
            ..target("y")
        };
        let (tmp, r) = import(b"x,y\n1,ant\n2,ant\n3,zebra\n", &spec);
        let s = r.unwrap();
        assert_eq!(s.class_counts, Some(vec![1, 2, 0]));
        let d = Dataset::open(&tmp.path().join("out")).unwrap();
        assert_eq!(
            (0..3).map(|r| d.label(r).unwrap()).collect::<Vec<_>>(),
            [1, 1, 0]
        );
        let (_, r) = import(b"x,y\n1,ant\n2,cat\n", &spec);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("--labels"), "{e}");
    }
}
