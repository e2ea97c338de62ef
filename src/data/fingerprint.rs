//! Fingerprints of data files, so a resume onto changed data is refused.
//!
//! # What a fingerprint covers
//! The file's length, and its bytes at 65 blocks of 4 KiB: the first (the `.npy` header and the
//! first rows), the last, and 63 spread evenly between, hashed with XXH3-64. A file up to 260 KiB
//! is therefore hashed whole; a larger one is sampled, which takes milliseconds even for many
//! GB and catches truncation, appends, a re-save with other rows or another dtype, and any
//! rewrite that does not keep every sampled block byte for byte. A change confined to the bytes
//! between sampled blocks of a large file is not seen.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};

/// Blocks sampled across a file, after the first one.
const BLOCKS: u64 = 64;
const BLOCK: usize = 4096;

/// Size and a sampled content hash of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFingerprint {
    /// File name (within the dataset directory).
    pub file: String,
    /// Length in bytes.
    pub len: u64,
    /// XXH3-64 of the length (8 bytes, little-endian) followed by the sampled blocks in file
    /// order (see the module doc).
    pub sample_hash: u64,
}

/// The offsets of the sampled blocks of a file of `len` bytes: `BLOCKS + 1` of them, from the
/// first block to the last (overlapping, for a file shorter than that).
fn block_offsets(len: u64) -> impl Iterator<Item = u64> {
    (0..=BLOCKS).map(move |i| len.saturating_sub(BLOCK as u64) * i / BLOCKS)
}

/// Reads up to `buf.len()` bytes (fewer only at the end of the file).
fn read_block(f: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
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
        let mut h = Xxh3::new();
        h.update(&len.to_le_bytes());
        let mut buf = vec![0u8; BLOCK];
        for at in block_offsets(len) {
            f.seek(SeekFrom::Start(at)).map_err(err)?;
            let n = read_block(&mut f, &mut buf).map_err(err)?;
            h.update(&buf[..n]);
        }
        Ok(FileFingerprint {
            file: path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            len,
            sample_hash: h.digest(),
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
    fn the_hash_is_xxh3_of_the_length_and_the_sampled_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        for len in [0usize, 10, 4096, 100_000, 1_000_003] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            std::fs::write(&p, &bytes).unwrap();
            // The plain version: the whole sample concatenated, hashed at once.
            let mut sample = (len as u64).to_le_bytes().to_vec();
            for at in block_offsets(len as u64) {
                let at = at as usize;
                sample.extend_from_slice(&bytes[at..(at + BLOCK).min(len)]);
            }
            let f = FileFingerprint::of(&p).unwrap();
            assert_eq!(f.len, len as u64);
            assert_eq!(
                f.sample_hash,
                xxhash_rust::xxh3::xxh3_64(&sample),
                "len {len}"
            );
        }
    }

    #[test]
    fn a_small_file_is_covered_whole() {
        // 65 blocks of 4 KiB overlap to cover every byte of a file up to 65 × 4 KiB.
        let len = (BLOCKS as usize + 1) * BLOCK;
        let mut covered = vec![false; len];
        for at in block_offsets(len as u64) {
            covered[at as usize..at as usize + BLOCK].fill(true);
        }
        assert!(covered.iter().all(|&c| c));
    }

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
