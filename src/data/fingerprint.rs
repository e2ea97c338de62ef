//! Fingerprints of data files, so a resume onto changed data is refused.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::mix64;

/// Blocks sampled across a file; with the length this catches truncation, appends and any
/// rewrite that is not a byte-for-byte copy, in milliseconds even for a file of many GB.
const BLOCKS: u64 = 64;
const BLOCK: usize = 4096;

/// Size and a sampled content hash of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFingerprint {
    /// File name (within the dataset directory).
    pub file: String,
    /// Length in bytes.
    pub len: u64,
    /// Hash of the first block and `BLOCKS` blocks spread evenly over the file.
    pub sample_hash: u64,
}

impl FileFingerprint {
    /// Fingerprints `path`.
    ///
    /// # Errors
    /// [`Error::Data`] when the file cannot be read.
    pub fn of(path: &Path) -> Result<Self> {
        let err = |e: std::io::Error| Error::data(path, format!("cannot read: {e}"));
        let mut f = std::fs::File::open(path).map_err(err)?;
        let len = f.metadata().map_err(err)?.len();
        let mut h = mix64(len);
        let mut buf = vec![0u8; BLOCK];
        for i in 0..=BLOCKS {
            let at = (len.saturating_sub(BLOCK as u64)) * i / BLOCKS;
            f.seek(SeekFrom::Start(at)).map_err(err)?;
            let n = f.read(&mut buf).map_err(err)?;
            for chunk in buf[..n].chunks(8) {
                let mut w = [0u8; 8];
                w[..chunk.len()].copy_from_slice(chunk);
                h = mix64(h ^ u64::from_le_bytes(w));
            }
        }
        Ok(FileFingerprint {
            file: path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            len,
            sample_hash: h,
        })
    }

    /// Fingerprints `dir/x.npy` and `dir/y.npy`.
    ///
    /// # Errors
    /// As [`FileFingerprint::of`].
    pub fn of_dataset(dir: &Path) -> Result<Vec<Self>> {
        ["x.npy", "y.npy"]
            .iter()
            .map(|f| FileFingerprint::of(&dir.join(f)))
            .collect()
    }

    /// Why `now` differs from `self`, if it does.
    pub fn difference(&self, now: &FileFingerprint) -> Option<String> {
        if self.len != now.len {
            Some(format!(
                "{} changed size since the run started (was {} bytes, now {})",
                self.file, self.len, now.len
            ))
        } else if self.sample_hash != now.sample_hash {
            Some(format!(
                "{} changed content since the run started",
                self.file
            ))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_see_truncation_and_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        std::fs::write(&p, vec![7u8; 100_000]).unwrap();
        let a = FileFingerprint::of(&p).unwrap();
        assert_eq!(a.difference(&FileFingerprint::of(&p).unwrap()), None);
        std::fs::write(&p, vec![7u8; 90_000]).unwrap();
        assert!(
            a.difference(&FileFingerprint::of(&p).unwrap())
                .unwrap()
                .contains("size")
        );
        let mut v = vec![7u8; 100_000];
        v[0] = 1;
        std::fs::write(&p, v).unwrap();
        assert!(
            a.difference(&FileFingerprint::of(&p).unwrap())
                .unwrap()
                .contains("content")
        );
    }
}
