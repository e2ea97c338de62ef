//! Reading the CSV file, shared by both passes: the csv reader (byte-order mark skipped,
//! fields trimmed), its errors turned into ours with the line, and the parsing of numeric cells.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::CsvImport;
use super::layout::Layout;
use crate::error::{Error, Result};

/// Opens `file` for the csv reader, skipping a UTF-8 byte-order mark.
pub(super) fn open_reader(file: &Path, spec: &CsvImport) -> Result<csv::Reader<BufReader<File>>> {
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
pub(super) fn next_record(
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

pub(super) fn line_of(rec: &csv::StringRecord) -> u64 {
    rec.position().map_or(0, |p| p.line())
}

pub(super) fn cell_error(file: &Path, layout: &Layout, line: u64, c: usize, what: &str) -> Error {
    Error::data(file, format!("line {line}, {}: {what}", layout.column(c)))
}

/// Parses a feature or regression target: a finite number that fits in `f32`.
pub(super) fn parse_number(
    file: &Path,
    layout: &Layout,
    line: u64,
    c: usize,
    cell: &str,
) -> Result<f32> {
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
