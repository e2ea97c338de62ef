//! Writing `.npy` files as a stream of elements, so that an array larger than memory can be
//! written (`import`, `gen`).
//!
//! The header comes from `ndarray-npy` ([`Header`], the same type our reader parses with),
//! built from the element type's own descriptor, and the elements are written with that type's
//! [`WritableElement`] methods, so the header and the bytes cannot disagree. Both are in the
//! machine's byte order, `<f4`/`<i8` on the little-endian targets we run on; the reader
//! (`data/npy.rs`) reinterprets the data in place and so assumes little-endian too.
//! `ndarray-npy` itself only writes whole arrays held in memory ([`ndarray_npy::write_npy`]) or
//! zero-filled files ([`ndarray_npy::write_zeroed_npy`], to be overwritten through a writable
//! map), so the streaming is ours: [`NpyStream`].

use std::fs::File;
use std::io::{BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use ndarray_npy::npy::header::{FormatHeaderError, Header, Layout as NpyLayout};
use ndarray_npy::{WritableElement, WriteDataError};

use crate::error::{Error, Result};

/// An `.npy` file written in C order: the header for `A` and the shape first, then exactly as
/// many elements as the shape holds (the caller's count: [`NpyStream::finish`] refuses a file
/// that got fewer or more).
pub(crate) struct NpyStream<A> {
    path: PathBuf,
    w: BufWriter<File>,
    expected: u64,
    written: u64,
    elem: PhantomData<A>,
}

impl<A: WritableElement> NpyStream<A> {
    /// Creates `path` (replacing a file of that name: callers write under a staged temporary
    /// name) and buffers the header; `buffer` bytes are buffered.
    ///
    /// # Errors
    /// [`Error::Io`] naming `path`.
    pub(crate) fn create(path: &Path, shape: &[usize], buffer: usize) -> Result<Self> {
        let header = npy_header::<A>(shape).map_err(|e| Error::io(path, other(e)))?;
        let f = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut w = BufWriter::with_capacity(buffer, f);
        w.write_all(&header).map_err(|e| Error::io(path, e))?;
        Ok(NpyStream {
            path: path.to_path_buf(),
            w,
            expected: shape.iter().map(|&d| d as u64).product(),
            written: 0,
            elem: PhantomData,
        })
    }

    fn data_error(&self, e: WriteDataError) -> Error {
        let e = match e {
            WriteDataError::Io(e) => e,
            WriteDataError::FormatData(e) => other(e),
        };
        Error::io(&self.path, e)
    }

    /// Appends one element.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub(crate) fn push(&mut self, v: A) -> Result<()> {
        v.write(&mut self.w).map_err(|e| self.data_error(e))?;
        self.written += 1;
        Ok(())
    }

    /// Appends elements in order.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub(crate) fn push_slice(&mut self, v: &[A]) -> Result<()> {
        A::write_slice(v, &mut self.w).map_err(|e| self.data_error(e))?;
        self.written += v.len() as u64;
        Ok(())
    }

    /// Flushes the buffer and syncs the file to disk.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file, also when it did not get exactly the elements its header
    /// promises (a programming error caught before a broken file could be renamed into place).
    pub(crate) fn finish(self) -> Result<()> {
        if self.written != self.expected {
            return Err(Error::io(
                &self.path,
                other(format!(
                    "wrote {} elements where the header promises {}",
                    self.written, self.expected
                )),
            ));
        }
        let f = self
            .w
            .into_inner()
            .map_err(|e| Error::io(&self.path, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(&self.path, e))
    }
}

/// The `.npy` header for a C-order array of `A`: format 1.0 (2.0 only past 64 KiB of header,
/// which a 1-D or 2-D shape never reaches), padded so the data starts on a 64-byte boundary.
pub(crate) fn npy_header<A: WritableElement>(
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

    #[test]
    fn a_streamed_file_is_what_ndarray_npy_writes_and_a_short_one_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let ours = tmp.path().join("a.npy");
        let mut s = NpyStream::<f32>::create(&ours, &[2, 3], 64).unwrap();
        s.push(1.0).unwrap();
        s.push_slice(&[2.0, 3.0, 4.0, 5.0]).unwrap();
        s.push(6.0).unwrap();
        s.finish().unwrap();
        let theirs = tmp.path().join("b.npy");
        let a = ndarray::arr2(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        ndarray_npy::write_npy(&theirs, &a).unwrap();
        assert_eq!(
            std::fs::read(&ours).unwrap(),
            std::fs::read(&theirs).unwrap()
        );

        let mut s = NpyStream::<i64>::create(&ours, &[3], 64).unwrap();
        s.push(1).unwrap();
        let e = s.finish().unwrap_err().to_string();
        assert!(
            e.contains("wrote 1 elements where the header promises 3"),
            "{e}"
        );
    }
}
