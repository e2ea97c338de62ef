//! Pass 2: the file is read again and `x.npy` and `y.npy` are written row by row through
//! buffered writers; `labels.json` is written whole.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::CsvImport;
use super::classes::{Classes, integer_of};
use super::layout::{Layout, check_width};
use super::read::{line_of, next_record, open_reader, parse_number};
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

pub(super) fn write_file(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_headers_are_padded_to_64_bytes() {
        assert_eq!(npy_header("<f4", &[3, 2]).len() % 64, 0);
        assert_eq!(npy_header("<i8", &[123456789]).len() % 64, 0);
    }
}
