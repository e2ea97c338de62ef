//! Pass 2: the file is read again and `x.npy` and `y.npy` are written row by row through
//! buffered writers; `labels.json` is written whole.
//!
//! The `.npy` headers come from `ndarray-npy` ([`Header`], the same type our reader parses
//! with), built from the element type's own descriptor, and the elements are written with that
//! type's [`WritableElement::write`], so the header and the bytes cannot disagree. Both are in
//! the machine's byte order, `<f4`/`<i8` on the little-endian targets we run on; the reader
//! (`data/npy.rs`) reinterprets the data in place and so assumes little-endian too.
//! `ndarray-npy` only writes whole arrays held in memory ([`ndarray_npy::write_npy`]) or
//! zero-filled files ([`ndarray_npy::write_zeroed_npy`], which would then be overwritten), so
//! the streaming itself is ours: [`NpyStream`].

use std::fs::File;
use std::io::{BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use ndarray_npy::npy::header::{FormatHeaderError, Header, Layout as NpyLayout};
use ndarray_npy::{WritableElement, WriteDataError};

use super::CsvImport;
use super::classes::Classes;
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
        let line = line_of(&rec);
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

/// An `.npy` file written element by element in C order: the header for `A` and the shape
/// first, then exactly as many elements as the shape holds (the caller's count; a short file
/// is caught by the caller, which refuses a file whose rows changed between the passes).
struct NpyStream<A> {
    path: PathBuf,
    w: BufWriter<File>,
    elem: PhantomData<A>,
}

impl<A: WritableElement> NpyStream<A> {
    /// Creates `path` and buffers the header.
    fn create(path: &Path, shape: &[usize], buffer: usize) -> Result<Self> {
        let header = npy_header::<A>(shape).map_err(|e| Error::io(path, other(e)))?;
        let f = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut w = BufWriter::with_capacity(buffer, f);
        w.write_all(&header).map_err(|e| Error::io(path, e))?;
        Ok(NpyStream {
            path: path.to_path_buf(),
            w,
            elem: PhantomData,
        })
    }

    fn push(&mut self, v: A) -> Result<()> {
        v.write(&mut self.w).map_err(|e| {
            let e = match e {
                WriteDataError::Io(e) => e,
                WriteDataError::FormatData(e) => other(e),
            };
            Error::io(&self.path, e)
        })
    }

    /// Flushes the buffer and syncs the file to disk.
    fn finish(self) -> Result<()> {
        let f = self
            .w
            .into_inner()
            .map_err(|e| Error::io(&self.path, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(&self.path, e))
    }
}

/// The `.npy` header for a C-order array of `A`: format 1.0 (2.0 only past 64 KiB of header,
/// which a 1-D or 2-D shape never reaches), padded so the data starts on a 64-byte boundary.
fn npy_header<A: WritableElement>(
    shape: &[usize],
) -> std::result::Result<Vec<u8>, FormatHeaderError> {
    Header {
        type_descriptor: A::type_descriptor(),
        layout: NpyLayout::Standard,
        shape: shape.to_vec(),
    }
    .to_bytes()
}

fn other(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> std::io::Error {
    std::io::Error::other(e)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_headers_are_padded_to_64_bytes() {
        assert_eq!(npy_header::<f32>(&[3, 2]).unwrap().len() % 64, 0);
        assert_eq!(npy_header::<i64>(&[123456789]).unwrap().len() % 64, 0);
    }

    #[test]
    fn headers_read_back_as_little_endian_float32_and_int64_in_c_order() {
        for (bytes, descr, shape) in [
            (npy_header::<f32>(&[3, 2]).unwrap(), "<f4", vec![3, 2]),
            (npy_header::<i64>(&[5]).unwrap(), "<i8", vec![5]),
        ] {
            let h = Header::from_reader(&mut bytes.as_slice()).unwrap();
            assert_eq!(h.type_descriptor, py_literal::Value::String(descr.into()));
            assert_eq!(h.layout, NpyLayout::Standard);
            assert_eq!(h.shape, shape);
        }
    }
}
