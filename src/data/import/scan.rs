//! Pass 1: every cell is checked, the rows are counted and the class names collected, before
//! anything is written. It also decides the task when `--task` is not given.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::CsvImport;
use super::classes::{Classes, integer_of};
use super::layout::{Layout, check_width, resolve_layout};
use super::read::{At, cell_error, line_number, next_record, open_reader, parse_number, record_at};
use crate::data::Task;
use crate::data::quote::quoted;
use crate::error::{Error, Result};

/// The result of the checking pass.
#[derive(Debug)]
pub(super) struct Scan {
    pub(super) rows: usize,
    pub(super) task: Task,
    pub(super) classes: Option<Classes>,
}

/// What the first data row said the target is, in auto mode.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Number,
    Text,
}

pub(super) fn scan(file: &Path, spec: &CsvImport) -> Result<(Layout, Scan)> {
    let mut reader = open_reader(file, spec)?;
    let mut rec = csv::StringRecord::new();
    if !next_record(file, &mut reader, &mut rec)? {
        return Err(Error::data(file, "file is empty (no header and no rows)"));
    }
    let layout = resolve_layout(file, spec, &rec)?;
    let mut rows = 0usize;
    let mut first_kind: Option<(Kind, At)> = None;
    let mut numeric: BTreeMap<i64, usize> = BTreeMap::new();
    let mut text: BTreeMap<String, usize> = BTreeMap::new();
    let mut any_text = false;
    let mut not_integer: Option<Error> = None;
    let given: Option<HashMap<String, usize>> = spec.labels.as_ref().map(|names| {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect()
    });
    let classification_only = spec.task == Some(Task::Classification) || given.is_some();
    let mut pending = !spec.has_header; // the first record is data
    loop {
        if !pending && !next_record(file, &mut reader, &mut rec)? {
            break;
        }
        pending = false;
        check_width(file, &layout, &rec)?;
        let line = record_at(&rec);
        for &c in &layout.features {
            parse_number(file, &layout, line, c, &rec[c])?;
        }
        rows += 1;
        match spec.task {
            Some(Task::Regression) => {
                for &c in &layout.targets {
                    parse_number(file, &layout, line, c, &rec[c])?;
                }
            }
            _ => {
                let c = layout.targets[0];
                let cell = &rec[c];
                if cell.is_empty() {
                    return Err(cell_error(file, &layout, line, c, "missing value"));
                }
                if let Some(ids) = &given {
                    if !ids.contains_key(cell) {
                        return Err(cell_error(
                            file,
                            &layout,
                            line,
                            c,
                            &format!(
                                "class {} is not one of the {} names given with --labels",
                                quoted(cell),
                                ids.len()
                            ),
                        ));
                    }
                    continue;
                }
                let kind = if cell.parse::<f64>().is_ok() {
                    Kind::Number
                } else {
                    Kind::Text
                };
                if !classification_only {
                    match first_kind {
                        None => first_kind = Some((kind, line)),
                        Some((k, first)) if k != kind => {
                            return Err(cell_error(
                                file,
                                &layout,
                                line,
                                c,
                                &format!(
                                    "target {} is {} but line {} held {}; pass \
                                     --task classification to treat every value as a class name",
                                    quoted(cell),
                                    describe(kind),
                                    line_number(file, first),
                                    describe(k)
                                ),
                            ));
                        }
                        Some(_) => {}
                    }
                }
                if kind == Kind::Number && !classification_only {
                    // Auto mode, a column of numbers: regression, checked like a feature.
                    for &c in &layout.targets {
                        parse_number(file, &layout, line, c, &rec[c])?;
                    }
                    continue;
                }
                // A class name. Counted as text always (a column with any text is all names);
                // numbers also as integers, used when the whole column turns out numeric.
                if let Some(n) = text.get_mut(cell) {
                    *n += 1;
                } else {
                    text.insert(cell.to_string(), 1);
                }
                if kind == Kind::Text {
                    any_text = true;
                } else {
                    match integer_of(cell) {
                        Some(v) => *numeric.entry(v).or_default() += 1,
                        None if not_integer.is_none() => {
                            not_integer = Some(cell_error(
                                file,
                                &layout,
                                line,
                                c,
                                &format!(
                                    "class label {} is not an integer; \
                                     numeric class labels must be whole numbers",
                                    quoted(cell)
                                ),
                            ));
                        }
                        None => {}
                    }
                }
            }
        }
    }
    if rows == 0 {
        return Err(Error::data(file, "has a header but no data rows"));
    }
    let task = match spec.task {
        Some(t) => t,
        None if any_text || given.is_some() => Task::Classification,
        None => Task::Regression,
    };
    let classes = match task {
        Task::Regression => None,
        Task::Classification => {
            if layout.targets.len() > 1 {
                return Err(Error::config(
                    "--target",
                    format!(
                        "classification takes one target column, got {}; \
                         import each label column separately",
                        layout.targets.len()
                    ),
                ));
            }
            if let (Some(names), Some(ids)) = (&spec.labels, given) {
                let classes = Classes::Given {
                    names: names.clone(),
                    ids,
                };
                return Ok((
                    layout,
                    Scan {
                        rows,
                        task,
                        classes: Some(classes),
                    },
                ));
            }
            let classes = if any_text {
                Classes::Text(text)
            } else if let Some(e) = not_integer {
                return Err(e);
            } else {
                Classes::Numeric(numeric)
            };
            if classes.len() < 2 {
                let name = classes.names().pop().unwrap_or_default();
                return Err(Error::data(
                    file,
                    format!(
                        "target {} holds a single class ({}) in all {rows} rows; \
                         classification needs at least two",
                        layout.column(layout.targets[0]),
                        quoted(&name)
                    ),
                ));
            }
            Some(classes)
        }
    };
    Ok((
        layout,
        Scan {
            rows,
            task,
            classes,
        },
    ))
}

fn describe(k: Kind) -> &'static str {
    match k {
        Kind::Number => "a number",
        Kind::Text => "text",
    }
}
