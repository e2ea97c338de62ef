//! The column layout: which columns are targets and which are features, resolved once from
//! the header (or the first record) and `--target`, and used to name columns in errors.

use std::path::Path;

use super::CsvImport;
use super::read::{line_number, record_at};
use crate::data::quote::{list_text, quoted};
use crate::error::{Error, Result};

/// The column layout, resolved from the header (or the first record) and the targets.
#[derive(Debug)]
pub(super) struct Layout {
    pub(super) width: usize,
    pub(super) names: Vec<String>,
    pub(super) has_names: bool,
    pub(super) targets: Vec<usize>,
    pub(super) features: Vec<usize>,
}

impl Layout {
    pub(super) fn column(&self, c: usize) -> String {
        if self.has_names {
            format!("column {} (index {c})", quoted(&self.names[c]))
        } else {
            format!("column index {c}")
        }
    }
}

pub(super) fn name_of(layout: &Layout, c: usize) -> String {
    if layout.has_names {
        layout.names[c].clone()
    } else {
        format!("column {c}")
    }
}

pub(super) fn resolve_layout(
    file: &Path,
    spec: &CsvImport,
    first: &csv::StringRecord,
) -> Result<Layout> {
    let width = first.len();
    let names: Vec<String> = if spec.has_header {
        first.iter().map(str::to_string).collect()
    } else {
        Vec::new()
    };
    let mut targets = Vec::with_capacity(spec.targets.len());
    for t in &spec.targets {
        let t = t.trim();
        let by_name: Vec<usize> = (0..names.len()).filter(|&c| names[c] == t).collect();
        let c = match (by_name.as_slice(), t.parse::<usize>()) {
            ([c], _) => *c,
            ([_, _, ..], _) => {
                return Err(Error::config(
                    "--target",
                    format!(
                        "{} has {} columns named {} (indices {by_name:?}); \
                         name the target by its 0-based index",
                        file.display(),
                        by_name.len(),
                        quoted(t)
                    ),
                ));
            }
            ([], Ok(i)) if i < width => i,
            ([], Ok(i)) => {
                return Err(Error::config(
                    "--target",
                    format!(
                        "column index {i} is out of range: {} has {width} columns (0..{})",
                        file.display(),
                        width - 1
                    ),
                ));
            }
            ([], Err(_)) if !spec.has_header => {
                return Err(Error::config(
                    "--target",
                    format!(
                        "{} is not a column index, and with --no-header columns have no names",
                        quoted(t)
                    ),
                ));
            }
            ([], Err(_)) => {
                // A name holding a comma was split by the flag's own commas: say how to quote.
                let hint = if names.iter().any(|n| n.contains(',')) {
                    "; a name holding a comma goes in double quotes, as in the CSV file: \
                     --target '\"a, b\"'"
                } else {
                    ""
                };
                return Err(Error::config(
                    "--target",
                    format!(
                        "no column named {} in the header of {} (columns: {}){hint}",
                        quoted(t),
                        file.display(),
                        list_text(&names)
                    ),
                ));
            }
        };
        if targets.contains(&c) {
            return Err(Error::config(
                "--target",
                format!("column {} (index {c}) is named twice", quoted(t)),
            ));
        }
        targets.push(c);
    }
    let features: Vec<usize> = (0..width).filter(|c| !targets.contains(c)).collect();
    if features.is_empty() {
        return Err(Error::config(
            "--target",
            format!(
                "every column of {} is a target; no feature column is left",
                file.display()
            ),
        ));
    }
    Ok(Layout {
        width,
        has_names: spec.has_header,
        names,
        targets,
        features,
    })
}

pub(super) fn check_width(file: &Path, layout: &Layout, rec: &csv::StringRecord) -> Result<()> {
    if rec.len() == layout.width {
        return Ok(());
    }
    let against = if layout.has_names {
        "the header has"
    } else {
        "the first row has"
    };
    Err(Error::data(
        file,
        format!(
            "line {}: {} fields, but {against} {}; every row needs the same number of fields",
            line_number(file, record_at(rec)),
            rec.len(),
            layout.width
        ),
    ))
}
