//! Pass 2: the file is read again and `x.npy` and `y.npy` are written row by row through
//! buffered writers ([`NpyStream`], shared with `gen`); `labels.json` is written whole.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::CsvImport;
use super::classes::Classes;
use super::layout::{Layout, check_width};
use super::read::{next_record, open_reader, parse_number, record_at};
use crate::data::npy_writer::NpyStream;
use crate::error::{Error, Result};

/// Pass 2: writes `x.npy` and `y.npy` row by row. Returns the rows per class id.
pub(super) fn write_arrays(
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
    let nf = layout.features.len();
    let nt = layout.targets.len();
    let mut x = NpyStream::<f32>::create(xp, &[rows, nf], 1 << 20)?;
    let mut y = match classes {
        Some(classes) => Targets::Ids(classes, NpyStream::create(yp, &[rows], Y_BUFFER)?),
        None if nt == 1 => Targets::Values(NpyStream::create(yp, &[rows], Y_BUFFER)?),
        None => Targets::Values(NpyStream::create(yp, &[rows, nt], Y_BUFFER)?),
    };
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
        let line = record_at(&rec);
        for &c in &layout.features {
            x.push(parse_number(file, layout, line, c, &rec[c])?)?;
        }
        match &mut y {
            Targets::Values(y) => {
                for &c in &layout.targets {
                    y.push(parse_number(file, layout, line, c, &rec[c])?)?;
                }
            }
            Targets::Ids(classes, y) => {
                let id = classes.id_of(&rec[layout.targets[0]]).ok_or_else(changed)?;
                counts[id] += 1;
                y.push(id as i64)?;
            }
        }
        written += 1;
    }
    if written != rows {
        return Err(changed());
    }
    x.finish()?;
    match y {
        Targets::Values(y) => y.finish()?,
        Targets::Ids(_, y) => y.finish()?,
    }
    Ok(counts)
}

/// `y.npy` is a column or a few: the default buffer (8 KiB, as `BufWriter::new`) is enough.
const Y_BUFFER: usize = 8 * 1024;

/// What `y.npy` holds: float32 values for regression, int64 class ids for classification.
enum Targets<'c> {
    Values(NpyStream<f32>),
    Ids(&'c Classes, NpyStream<i64>),
}

/// Writes `labels.json`: the class names as a JSON list, index = class id.
pub(super) fn write_labels(path: &Path, names: &[String]) -> Result<()> {
    let json = serde_json::to_string_pretty(names).expect("strings serialise");
    (|| {
        let f = File::create(path)?;
        let mut w = BufWriter::new(&f);
        writeln!(w, "{json}")?;
        w.flush()?;
        drop(w);
        f.sync_all()
    })()
    .map_err(|e| Error::io(path, e))
}
