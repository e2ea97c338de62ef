//! Whole-or-nothing file writes (temporary file in the same directory, fsync, rename), and the
//! one check every command makes of its `--out` before it writes anything.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `path` atomically with the bytes `fill` produces.
///
/// The data goes to a temporary file beside `path`, is flushed to disk, renamed over `path`, and
/// the directory is synced, so a reader sees the old file or the whole new one, never a part.
///
/// # Errors
/// [`Error::Io`] naming `path`; the temporary file is removed.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<&File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let file = File::create(&tmp)?;
        let mut w = std::io::BufWriter::new(&file);
        fill(&mut w)?;
        w.flush()?;
        drop(w);
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            // Directory fsync makes the rename durable; some filesystems refuse it, harmlessly.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Writes an array as `.npy` atomically (see [`write_atomic`]).
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn write_npy_atomic<A, S, D>(path: &Path, array: &ndarray::ArrayBase<S, D>) -> Result<()>
where
    A: ndarray_npy::WritableElement,
    S: ndarray::Data<Elem = A>,
    D: ndarray::Dimension,
{
    use ndarray_npy::WriteNpyExt;
    write_atomic(path, |w| {
        array
            .write_npy(w)
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
}

/// What an output path is to become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutKind {
    /// A directory, created if missing (its contents are the caller's to check).
    Dir,
    /// A new file, which must not exist yet.
    File,
}

/// An I/O error's reason in plain words: `permission denied`, `read-only file system`, without
/// the `(os error N)` suffix.
pub fn plain_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text.to_string(),
    }
}

/// Checks, creating nothing, that `path` (given with `flag`) can be written as `kind`: a
/// symbolic link is never replaced (a link to an existing directory may be written into), an
/// existing file is never overwritten, a file is not a directory, and the nearest existing
/// directory is writable. Every command checks its `--out` this way, so a bad one is refused
/// the same way everywhere (exit code 2), with a plain reason.
///
/// # Errors
/// [`Error::Config`] on `flag`, naming the path and the reason.
pub fn check_out(flag: &str, path: &Path, kind: OutKind) -> Result<()> {
    let refuse = |why: String| Err(Error::config(flag, format!("{}: {why}", path.display())));
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(path)
                .map(|t| t.display().to_string())
                .unwrap_or_else(|_| "?".into());
            return match (kind, std::fs::metadata(path)) {
                (OutKind::Dir, Ok(t)) if t.is_dir() => check_writable(flag, path),
                (_, Err(_)) => refuse(format!(
                    "is a symbolic link to {target}, which does not exist; a link is never \
                     replaced: create {target} or choose another path"
                )),
                (OutKind::Dir, Ok(_)) => refuse(format!(
                    "is a symbolic link to {target}, which is not a directory"
                )),
                (OutKind::File, Ok(_)) => refuse(format!(
                    "is a symbolic link to {target}; a link is never replaced: choose another \
                     path"
                )),
            };
        }
        match kind {
            OutKind::Dir if !meta.is_dir() => {
                return refuse("exists and is a file, not a directory: choose a directory".into());
            }
            OutKind::File if meta.is_dir() => {
                return refuse("is a directory: give a file name".into());
            }
            OutKind::File => {
                return refuse(
                    "already exists and is never overwritten: choose another name".into(),
                );
            }
            OutKind::Dir => return check_writable(flag, path),
        }
    }
    let parent = match kind {
        OutKind::Dir => path,
        OutKind::File => path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    };
    if kind == OutKind::File && !parent.is_dir() {
        return refuse(format!("directory {} does not exist", parent.display()));
    }
    check_writable(flag, parent)
}

/// Creates the directory `path` given with `flag` (and its parents) after
/// [`check_out`]'s checks.
///
/// # Errors
/// [`Error::Config`] on `flag`, naming the path and the reason.
pub fn create_out_dir(flag: &str, path: &Path) -> Result<()> {
    check_out(flag, path, OutKind::Dir)?;
    std::fs::create_dir_all(path).map_err(|e| {
        Error::config(
            flag,
            format!("cannot create {}: {}", path.display(), plain_reason(&e)),
        )
    })
}

/// Refuses (on `flag`) when the nearest existing directory at or above `path` cannot be
/// written by this user: access(2), which also sees a read-only file system, and writes
/// nothing (a probe file would change the directory's modification time).
fn check_writable(flag: &str, path: &Path) -> Result<()> {
    let mut dir = path;
    while std::fs::symlink_metadata(dir).is_err() {
        dir = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
    if !dir.is_dir() {
        return Err(Error::config(
            flag,
            format!(
                "{}: {} is a file, not a directory",
                path.display(),
                dir.display()
            ),
        ));
    }
    let access = rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK;
    rustix::fs::access(dir, access).map_err(|e| {
        Error::config(
            flag,
            format!(
                "cannot write in {}: {}",
                dir.display(),
                plain_reason(&std::io::Error::from(e))
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_paths_are_checked_alike_for_files_and_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let file = d.join("f.txt");
        std::fs::write(&file, "x").unwrap();
        assert!(check_out("--out", &d.join("new/run"), OutKind::Dir).is_ok());
        assert!(check_out("--out", &d.join("p.csv"), OutKind::File).is_ok());
        let e = check_out("--out", &file, OutKind::Dir)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a file, not a directory"), "{e}");
        let e = check_out("--out", &file, OutKind::File)
            .unwrap_err()
            .to_string();
        assert!(e.contains("never overwritten"), "{e}");
        let e = check_out("--out", &file.join("run"), OutKind::Dir)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a file, not a directory"), "{e}");
        let link = d.join("dangling");
        std::os::unix::fs::symlink(d.join("missing"), &link).unwrap();
        for kind in [OutKind::Dir, OutKind::File] {
            let e = check_out("--out", &link, kind).unwrap_err().to_string();
            assert!(
                e.contains("symbolic link") && e.contains("never replaced"),
                "{e}"
            );
        }
        let to_dir = d.join("to_dir");
        std::os::unix::fs::symlink(d, &to_dir).unwrap();
        assert!(check_out("--out", &to_dir, OutKind::Dir).is_ok());
        assert_eq!(
            plain_reason(&std::io::Error::from_raw_os_error(13)),
            "permission denied"
        );
    }
}
