//! Memory-mapped `.npy` arrays, validated when opened.
//!
//! The header is parsed with `ndarray-npy`; the data stays in the page cache behind a read-only
//! map and is reinterpreted in place with `bytemuck`, so a dataset is never copied into the heap.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use ndarray_npy::npy::header::{Header, ParseHeaderError, ReadHeaderError};

use crate::data::quote::{QUOTE_CHARS, one_line, quoted, shape_text};
use crate::error::{Error, Result};

/// Element types we accept in dataset files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// `<f4`: features and regression targets.
    F32,
    /// A signed or unsigned integer of 1, 2, 4 or 8 bytes: class labels.
    Int {
        /// Size in bytes.
        bytes: usize,
        /// Whether the type is signed.
        signed: bool,
    },
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::Int { bytes, .. } => bytes,
        }
    }
}

/// What a reader tells the kernel about a range of a mapped file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAhead {
    /// It will be read soon: start reading it in (`MADV_WILLNEED`).
    Soon,
    /// It will be read from start to end (`MADV_SEQUENTIAL`: read ahead aggressively, drop
    /// behind).
    Sequential,
    /// It has been read, is not needed again this epoch, and the data does not fit in memory:
    /// unmap it and drop it from the page cache (`MADV_DONTNEED`, `POSIX_FADV_DONTNEED`), so
    /// the kernel reclaims it before the pages read ahead for the next blocks.
    Drop,
    /// It has been read and is not needed again this epoch: its pages may go (`MADV_DONTNEED`
    /// on this read-only map; the bytes are read again from the file when touched).
    Done,
}

/// A validated, memory-mapped `.npy` file: C order, little-endian, 1-D or 2-D.
#[derive(Debug)]
pub struct NpyArray {
    path: PathBuf,
    /// Kept open for `posix_fadvise` (hints on the page cache itself).
    file: File,
    map: Mmap,
    offset: usize,
    dtype: Dtype,
    shape: Vec<usize>,
}

/// Converts a numpy type descriptor such as `<f4` or `|u1` to a [`Dtype`], or explains why it is
/// not accepted.
fn parse_descr(descr: &str) -> std::result::Result<Dtype, String> {
    let (order, kind) = descr.split_at(1.min(descr.len()));
    if order == ">" {
        return Err(format!(
            "data is big-endian ({}); convert with `a.astype(a.dtype.newbyteorder('<'))`",
            quoted(descr)
        ));
    }
    match kind {
        "f4" => Ok(Dtype::F32),
        "f8" => Err("dtype is float64; dptrain trains in float32: save with \
             `np.save(path, a.astype(np.float32))`"
            .into()),
        "f2" => Err("dtype is float16; save with `a.astype(np.float32)`".into()),
        "i1" | "i2" | "i4" | "i8" | "u1" | "u2" | "u4" | "u8" => {
            let bytes = kind[1..].parse().expect("digit checked by the match");
            Ok(Dtype::Int {
                bytes,
                signed: kind.starts_with('i'),
            })
        }
        "b1" => Err("dtype is bool; save labels as integers with `a.astype(np.int64)`".into()),
        _ => Err(format!(
            "unsupported dtype {}; features must be float32 and labels integers",
            quoted(descr)
        )),
    }
}

/// Validates the bytes of an `.npy` file (named `path` in errors) and returns where the data
/// starts, its dtype and its shape. This is all the parsing of untrusted input the dataset does.
///
/// # Errors
/// As [`NpyArray::open`], for everything after opening the file.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<(usize, Dtype, Vec<usize>)> {
    let mut cursor: &[u8] = bytes;
    let header = Header::from_reader(&mut cursor).map_err(|e| match e {
        ReadHeaderError::Io(_) => Error::data(path, "not an .npy file (too short for a header)"),
        ReadHeaderError::Parse(p) => Error::data(
            path,
            format!(
                "not a valid .npy file ({}); write it with np.save",
                header_problem(&p)
            ),
        ),
    })?;
    let offset = bytes.len() - cursor.len();
    let descr = match &header.type_descriptor {
        py_literal::Value::String(s) => s.clone(),
        other => {
            return Err(Error::data(
                path,
                format!(
                    "structured dtype {} is not supported; use a plain float32 array",
                    one_line(&other.to_string(), QUOTE_CHARS)
                ),
            ));
        }
    };
    let dtype = parse_descr(&descr).map_err(|m| Error::data(path, m))?;
    if header.layout.is_fortran() && header.shape.iter().filter(|&&d| d > 1).count() > 1 {
        return Err(Error::data(
            path,
            "array is in Fortran order; save a C-ordered copy with \
             `np.save(path, np.ascontiguousarray(a))`",
        ));
    }
    if header.shape.is_empty() || header.shape.len() > 2 {
        return Err(Error::data(
            path,
            format!(
                "array has {} dimensions (shape {}); expected 1 (rows) or 2 (rows × columns)",
                header.shape.len(),
                shape_text(&header.shape)
            ),
        ));
    }
    let elements = header
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|n| n.checked_mul(dtype.size()))
        .ok_or_else(|| Error::data(path, "shape in the header overflows"))?;
    let have = bytes.len() - offset;
    if have < elements {
        return Err(Error::data(
            path,
            format!(
                "file is truncated: header promises shape {:?} ({} data bytes) but only {} \
                 bytes follow the header",
                header.shape, elements, have
            ),
        ));
    }
    if have > elements {
        return Err(Error::data(
            path,
            format!(
                "file has {} unexpected bytes after the data of shape {:?}",
                have - elements,
                header.shape
            ),
        ));
    }
    if !offset.is_multiple_of(dtype.size()) {
        return Err(Error::data(
            path,
            "data is not aligned for its dtype; re-save the array with np.save",
        ));
    }
    Ok((offset, dtype, header.shape))
}

/// What is wrong with a header, in one short line. The parser's own report may quote the whole
/// header over several lines (pest's syntax errors do, and a hostile header is 4 GiB at most):
/// we keep where and why, and cut what it quotes.
fn header_problem(e: &ParseHeaderError) -> String {
    match e {
        ParseHeaderError::DictParse(py_literal::ParseError::Syntax(report)) => {
            let at = report
                .split_whitespace()
                .skip_while(|w| *w != "-->")
                .nth(1)
                .map(|pos| format!(" at {}", one_line(pos, 24)))
                .unwrap_or_default();
            let why = report
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("= "))
                .map(|w| format!(": {}", one_line(w, 80)))
                .unwrap_or_default();
            format!("syntax error in the header dict{at}{why}")
        }
        ParseHeaderError::UnknownKey(key) => format!(
            "unknown key {} in the header dict",
            one_line(&key.to_string(), QUOTE_CHARS)
        ),
        ParseHeaderError::IllegalValue { key, value } => format!(
            "illegal value for {}: {}",
            quoted(key),
            one_line(&value.to_string(), QUOTE_CHARS)
        ),
        ParseHeaderError::MetaNotDict(value) => format!(
            "the header is not a dict: {}",
            one_line(&value.to_string(), QUOTE_CHARS)
        ),
        other => one_line(&other.to_string(), 160),
    }
}

impl NpyArray {
    /// Maps and validates `path`.
    ///
    /// # Errors
    /// [`Error::Data`] naming the file when it is missing, a directory, not an `.npy` file, of an
    /// unsupported dtype (float64 gets the conversion to use), in Fortran order, not 1-D or 2-D,
    /// shorter or longer than its header promises, or misaligned.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| {
            let what = if e.kind() == std::io::ErrorKind::NotFound {
                "file not found".to_string()
            } else {
                format!("cannot open: {e}")
            };
            Error::data(path, what)
        })?;
        // A directory opens fine on Unix but cannot be mapped ("No such device"): say what it is.
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(Error::data(path, "is a directory, not an .npy file"));
        }
        // SAFETY: the map is read-only and private to this process. The promise that the file is
        // not truncated or rewritten while we run comes from the user (documented in the README,
        // "Datasets"); if it is broken, reads may see the new bytes or fault with SIGBUS, which is
        // what every mmap-based reader (numpy's mmap_mode included) accepts.
        let map = unsafe { Mmap::map(&file) }
            .map_err(|e| Error::data(path, format!("cannot memory-map: {e}")))?;
        let (offset, dtype, shape) = parse(path, &map)?;
        Ok(NpyArray {
            path: path.to_path_buf(),
            file,
            map,
            offset,
            dtype,
            shape,
        })
    }

    /// The file this array was mapped from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The shape from the header (1 or 2 dimensions).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Tells the kernel how elements `elements` (a range of the flattened array) will be used.
    /// A hint only: failure is ignored (the reads are correct either way).
    pub fn advise(&self, elements: std::ops::Range<usize>, advice: ReadAhead) {
        let size = self.dtype.size();
        let start = self.offset + elements.start * size;
        let len = (elements.end.saturating_sub(elements.start) * size)
            .min(self.map.len().saturating_sub(start));
        if len == 0 {
            return;
        }
        let _ = match advice {
            ReadAhead::Soon => self.map.advise_range(memmap2::Advice::WillNeed, start, len),
            ReadAhead::Sequential => self
                .map
                .advise_range(memmap2::Advice::Sequential, start, len),
            // SAFETY: the map is read-only: MADV_DONTNEED only drops this process's mapping of
            // the pages (the kernel reads them back from the file, or finds them in the page
            // cache, when they are touched again), so no value seen through the map changes.
            // The page cache itself is left to the kernel: dropping it would cost a re-read
            // whenever the data fits in memory after all.
            ReadAhead::Done => unsafe {
                self.map
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, len)
            },
            ReadAhead::Drop => {
                self.advise(elements, ReadAhead::Done);
                rustix::fs::fadvise(
                    &self.file,
                    start as u64,
                    std::num::NonZeroU64::new(len as u64),
                    rustix::fs::Advice::DontNeed,
                )
                .map_err(std::io::Error::from)
            }
        };
    }

    /// The raw data bytes, after the header.
    pub fn bytes(&self) -> &[u8] {
        &self.map[self.offset..]
    }

    /// The data as `f32`, for arrays of dtype [`Dtype::F32`].
    ///
    /// # Panics
    /// If the dtype is not `F32` (a programming error: check [`NpyArray::dtype`] first).
    pub fn as_f32(&self) -> &[f32] {
        assert_eq!(self.dtype, Dtype::F32, "as_f32 on a non-float32 array");
        // Alignment and length were checked in `open`.
        bytemuck::cast_slice(self.bytes())
    }

    /// Reads integer element `i`, for arrays of dtype [`Dtype::Int`]. Every value of every
    /// integer dtype, `u64` included, is exact in `i128`, so a message shows the value the file
    /// holds.
    ///
    /// # Panics
    /// If the dtype is not an integer (a programming error: check [`NpyArray::dtype`] first).
    pub fn int_at(&self, i: usize) -> i128 {
        let Dtype::Int { bytes, signed } = self.dtype else {
            panic!("int_at on a float array");
        };
        let b = &self.bytes()[i * bytes..(i + 1) * bytes];
        match (bytes, signed) {
            (1, true) => b[0] as i8 as i128,
            (1, false) => b[0] as i128,
            (2, true) => i16::from_le_bytes([b[0], b[1]]) as i128,
            (2, false) => u16::from_le_bytes([b[0], b[1]]) as i128,
            (4, true) => i32::from_le_bytes(b.try_into().expect("4 bytes")) as i128,
            (4, false) => u32::from_le_bytes(b.try_into().expect("4 bytes")) as i128,
            (8, true) => i64::from_le_bytes(b.try_into().expect("8 bytes")) as i128,
            _ => u64::from_le_bytes(b.try_into().expect("8 bytes")) as i128,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `.npy` file of format 2.0 (a 4-byte header length, so the header may pass 64 KiB).
    fn v2(dict: &str) -> Vec<u8> {
        let mut dict = dict.to_string();
        while !(12 + dict.len() + 1).is_multiple_of(64) {
            dict.push(' ');
        }
        dict.push('\n');
        let mut v = b"\x93NUMPY\x02\x00".to_vec();
        v.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        v.extend_from_slice(dict.as_bytes());
        v
    }

    #[test]
    fn a_hostile_header_is_reported_in_one_short_line() {
        let head = "{'descr': '<f4', 'fortran_order': False, 'shape': ";
        for dict in [
            format!("{head}{}{}}}", "[".repeat(50_000), "]".repeat(50_000)),
            format!("{head}(2,), '{}': 1}}", "k".repeat(70_000)),
            format!("{head}{}}}", "(".repeat(70_000)),
            format!(
                "{{'descr': '{}', 'fortran_order': False, 'shape': (2,)}}",
                "<".repeat(70_000)
            ),
            format!("{head}({})}}", "1, ".repeat(20_000)),
            format!("{head}'{}'}}", "s".repeat(70_000)),
        ] {
            let e = parse(Path::new("x.npy"), &v2(&dict))
                .unwrap_err()
                .to_string();
            assert!(e.len() < 300 && !e.contains('\n'), "{} bytes: {e}", e.len());
        }
    }

    #[test]
    fn every_integer_dtype_reads_exactly_uint64_included() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("y.npy");
        let header = ndarray_npy::npy::header::Header {
            type_descriptor: py_literal::Value::String("<u8".into()),
            layout: ndarray_npy::npy::header::Layout::Standard,
            shape: vec![3],
        };
        let mut bytes = header.to_bytes().unwrap();
        for v in [0u64, 1 << 63, u64::MAX] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        std::fs::write(&p, bytes).unwrap();
        let a = NpyArray::open(&p).unwrap();
        assert_eq!(
            (0..3).map(|i| a.int_at(i)).collect::<Vec<_>>(),
            [0, 1i128 << 63, u64::MAX as i128]
        );
    }

    #[test]
    fn descriptors_map_to_dtypes_or_explanations() {
        assert_eq!(parse_descr("<f4"), Ok(Dtype::F32));
        assert_eq!(
            parse_descr("|u1"),
            Ok(Dtype::Int {
                bytes: 1,
                signed: false
            })
        );
        assert!(
            parse_descr("<f8")
                .unwrap_err()
                .contains("astype(np.float32)")
        );
        assert!(parse_descr(">f4").unwrap_err().contains("big-endian"));
        assert!(parse_descr("<U3").is_err());
    }
}
