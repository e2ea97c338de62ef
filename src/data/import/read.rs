//! Reading the CSV file, shared by both passes: the csv reader (byte-order mark skipped,
//! fields trimmed), its errors turned into ours with the line, and the parsing of numeric cells.
//!
//! # Line numbers
//! An error names the line a record starts on, 1-based as in an editor. The csv crate's own
//! line count is one short after every CRLF line end (it counts a `\n` only when it reads the
//! next record: BurntSushi/rust-csv#395), but its byte offsets are exact; so a record's place is
//! kept as its byte offset ([`At`]), and only an error counts the line ends before it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::CsvImport;
use super::layout::Layout;
use crate::data::quote::quoted;
use crate::error::{Error, Result};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where a record starts: its byte offset as the csv reader counts (after a byte-order mark),
/// and the csv crate's line as a fallback should the file not be readable again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct At {
    byte: u64,
    csv_line: u64,
}

impl At {
    fn of(p: &csv::Position) -> Self {
        At {
            byte: p.byte(),
            csv_line: p.line(),
        }
    }
}

/// Where `rec` (just read) starts.
pub(super) fn record_at(rec: &csv::StringRecord) -> At {
    rec.position().map_or(
        At {
            byte: 0,
            csv_line: 1,
        },
        At::of,
    )
}

/// The 1-based line holding the first byte of the record at `at`: one plus the line ends
/// before it, counted in the file's bytes. The line ends at the record's start are skipped: the
/// csv reader may place a record at the `\n` of the CRLF before it, or before blank lines.
pub(super) fn line_number(file: &Path, at: At) -> u64 {
    let count = || -> std::io::Result<u64> {
        let mut r = BufReader::with_capacity(1 << 16, File::open(file)?);
        let skip = if r.fill_buf()?.starts_with(BOM) { 3 } else { 0 };
        let mut left = at.byte + skip;
        let mut line = 1u64;
        loop {
            let buf = r.fill_buf()?;
            if buf.is_empty() {
                return Ok(line);
            }
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            if n > 0 {
                line += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                r.consume(n);
                left -= n as u64;
                continue;
            }
            // At the record: step over the line ends it starts with.
            let ends = buf
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            line += buf[..ends].iter().filter(|&&b| b == b'\n').count() as u64;
            if ends < buf.len() {
                return Ok(line);
            }
            r.consume(ends);
        }
    };
    count().unwrap_or(at.csv_line)
}

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
    if head.starts_with(BOM) {
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
        let line = e.position().map(|p| line_number(file, At::of(p)));
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

/// An error about the cell of column `c` in the record at `at`.
pub(super) fn cell_error(file: &Path, layout: &Layout, at: At, c: usize, what: &str) -> Error {
    Error::data(
        file,
        format!(
            "line {}, {}: {what}",
            line_number(file, at),
            layout.column(c)
        ),
    )
}

/// Parses a feature or regression target: a finite number that fits in `f32`.
pub(super) fn parse_number(
    file: &Path,
    layout: &Layout,
    at: At,
    c: usize,
    cell: &str,
) -> Result<f32> {
    if cell.is_empty() {
        return Err(cell_error(
            file,
            layout,
            at,
            c,
            "missing value (impute or drop the row first)",
        ));
    }
    let v: f64 = cell.parse().map_err(|_| {
        cell_error(
            file,
            layout,
            at,
            c,
            &format!("{} is not a number", quoted(cell)),
        )
    })?;
    let f = v as f32;
    if !f.is_finite() {
        return Err(cell_error(
            file,
            layout,
            at,
            c,
            &format!("{} is not a finite float32 number", quoted(cell)),
        ));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line of every record of `text`, as errors name them.
    fn lines(text: &[u8]) -> Vec<u64> {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("d.csv");
        std::fs::write(&file, text).unwrap();
        let mut r = open_reader(&file, &CsvImport::default()).unwrap();
        let mut rec = csv::StringRecord::new();
        let mut out = Vec::new();
        while next_record(&file, &mut r, &mut rec).unwrap() {
            out.push(line_number(&file, record_at(&rec)));
        }
        out
    }

    #[test]
    fn records_are_on_the_lines_an_editor_shows_whatever_the_line_ends() {
        assert_eq!(lines(b"a,b\n1,2\n3,4\n"), [1, 2, 3]);
        assert_eq!(lines(b"a,b\r\n1,2\r\n3,4\r\n"), [1, 2, 3]);
        assert_eq!(lines(b"a,b\r\n1,2\r\n3,4"), [1, 2, 3]);
        // Blank lines are skipped, and a quoted cell may span lines.
        assert_eq!(lines(b"a,b\r\n\r\n\r\n1,2\r\n"), [1, 4]);
        assert_eq!(lines(b"a,b\r\n\"x\r\ny\",2\r\n\r\n3,4\r\n"), [1, 2, 5]);
        assert_eq!(lines(b"a,b\n\n\"x\ny\",2\n3,4\n"), [1, 3, 5]);
        // A byte-order mark is not a line.
        assert_eq!(lines(b"\xEF\xBB\xBFa,b\r\n1,2\r\n"), [1, 2]);
    }
}
