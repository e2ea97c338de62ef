//! CSV import: a delimited text file becomes a dataset directory (`x.npy`, `y.npy`, and
//! `labels.json` for classification).
//!
//! The file is read twice and never held in memory: the first pass checks every cell and
//! collects the class names, the second writes the arrays row by row through buffered writers.
//! A file larger than memory imports.
//!
//! # Rules
//! - **Targets** are named by header name or by 0-based column index (`--target species`,
//!   `--target 4`, `--target y1,y2`); every other column is a feature, in file order.
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

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::data::Task;
use crate::error::{Error, Result};

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

/// Class names seen in the target column, and how they map to ids.
#[derive(Debug)]
enum Classes {
    /// Integer labels: ids follow numeric order.
    Numeric(BTreeMap<i64, usize>),
    /// Text labels: ids follow byte order of the names.
    Text(BTreeMap<String, usize>),
    /// Names given by the caller, in id order.
    Given {
        names: Vec<String>,
        ids: HashMap<String, usize>,
    },
}

impl Classes {
    fn len(&self) -> usize {
        match self {
            Classes::Numeric(m) => m.len(),
            Classes::Text(m) => m.len(),
            Classes::Given { names, .. } => names.len(),
        }
    }

    fn names(&self) -> Vec<String> {
        match self {
            Classes::Numeric(m) => m.keys().map(i64::to_string).collect(),
            Classes::Text(m) => m.keys().cloned().collect(),
            Classes::Given { names, .. } => names.clone(),
        }
    }

    fn assign_ids(&mut self) {
        match self {
            Classes::Numeric(m) => m.values_mut().enumerate().for_each(|(i, v)| *v = i),
            Classes::Text(m) => m.values_mut().enumerate().for_each(|(i, v)| *v = i),
            Classes::Given { .. } => {}
        }
    }
}

/// The column layout, resolved from the header (or the first record) and the targets.
#[derive(Debug)]
struct Layout {
    width: usize,
    names: Vec<String>,
    has_names: bool,
    targets: Vec<usize>,
    features: Vec<usize>,
}

impl Layout {
    fn column(&self, c: usize) -> String {
        if self.has_names {
            format!("column {:?} (index {c})", self.names[c])
        } else {
            format!("column index {c}")
        }
    }
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
        let lp = stage.file("labels.json");
        let json = serde_json::to_string_pretty(names).expect("strings serialise");
        write_file(&lp, |w| writeln!(w, "{json}"))?;
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

fn name_of(layout: &Layout, c: usize) -> String {
    if layout.has_names {
        layout.names[c].clone()
    } else {
        format!("column {c}")
    }
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
                format!("need at least two distinct class names, got {names:?}"),
            ));
        }
    }
    if !spec.delimiter.is_ascii() || matches!(spec.delimiter, b'"' | b'\n' | b'\r') {
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

const OUTPUTS: [&str; 3] = ["x.npy", "y.npy", "labels.json"];

fn check_out(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(Error::config(
            "--out",
            format!("{} is a file; give a directory", out.display()),
        ));
    }
    for name in OUTPUTS {
        let p = out.join(name);
        if p.exists() {
            return Err(Error::config(
                "--out",
                format!(
                    "{} already exists; import never overwrites a dataset, choose another directory",
                    p.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Opens `file` for the csv reader, skipping a UTF-8 byte-order mark.
fn open_reader(file: &Path, spec: &CsvImport) -> Result<csv::Reader<BufReader<File>>> {
    if file.is_dir() {
        return Err(Error::data(file, "is a directory, not a CSV file"));
    }
    let f = File::open(file).map_err(|e| {
        let what = match e.kind() {
            std::io::ErrorKind::NotFound => "file not found".to_string(),
            _ => format!("cannot open: {e}"),
        };
        Error::data(file, what)
    })?;
    let mut r = BufReader::new(f);
    // The csv crate strips a BOM only when it reads headers itself; we read the header as an
    // ordinary record (so that --no-header works the same), hence strip it here.
    let head = r.fill_buf().map_err(|e| Error::io(file, e))?;
    if head.starts_with(b"\xEF\xBB\xBF") {
        r.consume(3);
    }
    Ok(csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(spec.delimiter)
        .trim(csv::Trim::All)
        .from_reader(r))
}

/// Reads the next record, turning the csv crate's errors into ours.
fn next_record(
    file: &Path,
    reader: &mut csv::Reader<impl Read>,
    rec: &mut csv::StringRecord,
) -> Result<bool> {
    reader.read_record(rec).map_err(|e| {
        let line = e.position().map(|p| p.line());
        let what = match e.kind() {
            csv::ErrorKind::Io(io) => format!("cannot read: {io}"),
            csv::ErrorKind::Utf8 { .. } => {
                "is not valid UTF-8 text; re-save it as UTF-8 CSV".to_string()
            }
            _ => e.to_string(),
        };
        match line {
            Some(l) => Error::data(file, format!("line {l}: {what}")),
            None => Error::data(file, what),
        }
    })
}

fn line_of(rec: &csv::StringRecord) -> u64 {
    rec.position().map_or(0, |p| p.line())
}

/// The result of the checking pass.
#[derive(Debug)]
struct Scan {
    rows: usize,
    task: Task,
    classes: Option<Classes>,
}

/// What the first data row said the target is, in auto mode.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Number,
    Text,
}

fn scan(file: &Path, spec: &CsvImport) -> Result<(Layout, Scan)> {
    let mut reader = open_reader(file, spec)?;
    let mut rec = csv::StringRecord::new();
    if !next_record(file, &mut reader, &mut rec)? {
        return Err(Error::data(file, "file is empty (no header and no rows)"));
    }
    let layout = resolve_layout(file, spec, &rec)?;
    let mut rows = 0usize;
    let mut first_kind: Option<(Kind, u64)> = None;
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
        let line = line_of(&rec);
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
                                "class {cell:?} is not one of the {} names given with --labels",
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
                                    "target {cell:?} is {} but line {first} held {}; pass \
                                     --task classification to treat every value as a class name",
                                    describe(kind),
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
                                    "class label {cell:?} is not an integer; \
                                     numeric class labels must be whole numbers"
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
                        "target {} holds a single class ({name:?}) in all {rows} rows; \
                         classification needs at least two",
                        layout.column(layout.targets[0])
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

fn resolve_layout(file: &Path, spec: &CsvImport, first: &csv::StringRecord) -> Result<Layout> {
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
                        "{} has {} columns named {t:?} (indices {by_name:?}); \
                         name the target by its 0-based index",
                        file.display(),
                        by_name.len()
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
                        "{t:?} is not a column index, and with --no-header columns have no names"
                    ),
                ));
            }
            ([], Err(_)) => {
                return Err(Error::config(
                    "--target",
                    format!(
                        "no column named {t:?} in the header of {} (columns: {})",
                        file.display(),
                        names.join(", ")
                    ),
                ));
            }
        };
        if targets.contains(&c) {
            return Err(Error::config(
                "--target",
                format!("column {t:?} (index {c}) is named twice"),
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

fn check_width(file: &Path, layout: &Layout, rec: &csv::StringRecord) -> Result<()> {
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
            line_of(rec),
            rec.len(),
            layout.width
        ),
    ))
}

fn cell_error(file: &Path, layout: &Layout, line: u64, c: usize, what: &str) -> Error {
    Error::data(file, format!("line {line}, {}: {what}", layout.column(c)))
}

/// Parses a feature or regression target: a finite number that fits in `f32`.
fn parse_number(file: &Path, layout: &Layout, line: u64, c: usize, cell: &str) -> Result<f32> {
    if cell.is_empty() {
        return Err(cell_error(
            file,
            layout,
            line,
            c,
            "missing value (impute or drop the row first)",
        ));
    }
    let v: f64 = cell
        .parse()
        .map_err(|_| cell_error(file, layout, line, c, &format!("{cell:?} is not a number")))?;
    let f = v as f32;
    if !f.is_finite() {
        return Err(cell_error(
            file,
            layout,
            line,
            c,
            &format!("{cell:?} is not a finite float32 number"),
        ));
    }
    Ok(f)
}

/// A numeric class label: an integer, written as `3` or `3.0`.
fn integer_of(cell: &str) -> Option<i64> {
    let v: f64 = cell.parse().ok()?;
    (v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15).then_some(v as i64)
}

/// Pass 2: writes `x.npy` and `y.npy` row by row. Returns the rows per class id.
fn write_arrays(
    file: &Path,
    spec: &CsvImport,
    layout: &Layout,
    rows: usize,
    classes: Option<&Classes>,
    xp: &Path,
    yp: &Path,
) -> Result<Vec<usize>> {
    let mut reader = open_reader(file, spec)?;
    let mut rec = csv::StringRecord::new();
    let changed = || {
        Error::data(
            file,
            "changed while it was being imported (rows differ between the two passes)",
        )
    };
    let xf = File::create(xp).map_err(|e| Error::io(xp, e))?;
    let yf = File::create(yp).map_err(|e| Error::io(yp, e))?;
    let mut xw = BufWriter::with_capacity(1 << 20, &xf);
    let mut yw = BufWriter::new(&yf);
    let nf = layout.features.len();
    let nt = layout.targets.len();
    xw.write_all(&npy_header("<f4", &[rows, nf]))
        .map_err(|e| Error::io(xp, e))?;
    let y_header = match (classes, nt) {
        (Some(_), _) => npy_header("<i8", &[rows]),
        (None, 1) => npy_header("<f4", &[rows]),
        (None, _) => npy_header("<f4", &[rows, nt]),
    };
    yw.write_all(&y_header).map_err(|e| Error::io(yp, e))?;
    let mut counts = vec![0usize; classes.map_or(0, Classes::len)];
    if spec.has_header && !next_record(file, &mut reader, &mut rec)? {
        return Err(changed());
    }
    let mut written = 0usize;
    while next_record(file, &mut reader, &mut rec)? {
        if written == rows {
            return Err(changed());
        }
        check_width(file, layout, &rec)?;
        let line = line_of(&rec);
        for &c in &layout.features {
            let v = parse_number(file, layout, line, c, &rec[c])?;
            xw.write_all(&v.to_le_bytes())
                .map_err(|e| Error::io(xp, e))?;
        }
        match classes {
            None => {
                for &c in &layout.targets {
                    let v = parse_number(file, layout, line, c, &rec[c])?;
                    yw.write_all(&v.to_le_bytes())
                        .map_err(|e| Error::io(yp, e))?;
                }
            }
            Some(classes) => {
                let c = layout.targets[0];
                let cell = &rec[c];
                let id = match classes {
                    Classes::Numeric(m) => integer_of(cell).and_then(|v| m.get(&v).copied()),
                    Classes::Text(m) => m.get(cell).copied(),
                    Classes::Given { ids, .. } => ids.get(cell).copied(),
                }
                .ok_or_else(changed)?;
                counts[id] += 1;
                yw.write_all(&(id as i64).to_le_bytes())
                    .map_err(|e| Error::io(yp, e))?;
            }
        }
        written += 1;
    }
    if written != rows {
        return Err(changed());
    }
    for (w, f, p) in [(xw, &xf, xp), (yw, &yf, yp)] {
        w.into_inner().map_err(|e| Error::io(p, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(p, e))?;
    }
    Ok(counts)
}

/// An `.npy` format 1.0 header for a C-order array, padded like `np.save` so the data starts
/// on a 64-byte boundary.
fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let preamble = 6 + 2 + 2;
    while (preamble + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let len = u16::try_from(dict.len()).expect("a 2-D header is far below 64 KiB");
    let mut out = Vec::with_capacity(preamble + dict.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

fn write_file(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&File>) -> std::io::Result<()>,
) -> Result<()> {
    (|| {
        let f = File::create(path)?;
        let mut w = BufWriter::new(&f);
        fill(&mut w)?;
        w.flush()?;
        drop(w);
        f.sync_all()
    })()
    .map_err(|e| Error::io(path, e))
}

/// Output files under temporary names, renamed into place by [`Stage::commit`]; dropped
/// uncommitted, it removes them (and the directory, if it created it).
#[derive(Debug)]
struct Stage {
    dir: PathBuf,
    created_dir: bool,
    files: Vec<(PathBuf, PathBuf)>,
    committed: bool,
}

impl Stage {
    fn new(dir: &Path) -> Result<Self> {
        let created_dir = !dir.exists();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(Stage {
            dir: dir.to_path_buf(),
            created_dir,
            files: Vec::new(),
            committed: false,
        })
    }

    /// A temporary path for the output `name`.
    fn file(&mut self, name: &str) -> PathBuf {
        let tmp = self.dir.join(format!(".{name}.tmp-{}", std::process::id()));
        self.files.push((tmp.clone(), self.dir.join(name)));
        tmp
    }

    fn commit(mut self) -> Result<()> {
        for (i, (tmp, dst)) in self.files.iter().enumerate() {
            if let Err(e) = std::fs::rename(tmp, dst) {
                // Undo the renames already done: the outputs did not exist before (checked).
                for (_, done) in &self.files[..i] {
                    let _ = std::fs::remove_file(done);
                }
                return Err(Error::io(dst, e));
            }
        }
        self.committed = true;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for (tmp, _) in &self.files {
            let _ = std::fs::remove_file(tmp);
        }
        if self.created_dir {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
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

    #[test]
    fn npy_headers_are_padded_to_64_bytes() {
        assert_eq!(npy_header("<f4", &[3, 2]).len() % 64, 0);
        assert_eq!(npy_header("<i8", &[123456789]).len() % 64, 0);
    }
}
