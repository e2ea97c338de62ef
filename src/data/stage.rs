//! Staging of a dataset's files (`import`, `gen`): refusing an output directory that already
//! holds a dataset, and writing under temporary names that are renamed into place only when
//! every file was written whole, so that nothing is left behind on failure.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The files of a dataset directory. A directory holding any of them is refused as an output:
/// new `x.npy`/`y.npy` beside an old `labels.json` would be a dataset that lies.
const OUTPUTS: [&str; 3] = ["x.npy", "y.npy", "labels.json"];

/// Refuses `out` when it is a file or already holds a dataset file.
///
/// # Errors
/// [`Error::Config`] on `--out`.
pub(crate) fn check_out(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(Error::config(
            "--out",
            format!("{} is a file; give a directory", out.display()),
        ));
    }
    for name in OUTPUTS {
        let p = out.join(name);
        if p.exists() {
            return Err(Error::config(
                "--out",
                format!(
                    "{} already exists; dptrain never overwrites a dataset, choose another directory",
                    p.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Output files under temporary names, renamed into place by [`Stage::commit`]; dropped
/// uncommitted, it removes them (and the directory, if it created it).
#[derive(Debug)]
pub(crate) struct Stage {
    dir: PathBuf,
    created_dir: bool,
    files: Vec<(PathBuf, PathBuf)>,
    committed: bool,
}

impl Stage {
    /// Creates `dir` if needed (and remembers whether it did, to remove it on failure).
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be created.
    pub(crate) fn new(dir: &Path) -> Result<Self> {
        let created_dir = !dir.exists();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(Stage {
            dir: dir.to_path_buf(),
            created_dir,
            files: Vec::new(),
            committed: false,
        })
    }

    /// A temporary path for the output `name`.
    pub(crate) fn file(&mut self, name: &str) -> PathBuf {
        let tmp = self.dir.join(format!(".{name}.tmp-{}", std::process::id()));
        self.files.push((tmp.clone(), self.dir.join(name)));
        tmp
    }

    /// Renames every staged file into place and syncs the directory.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file that could not be renamed; those renamed before it are
    /// removed again.
    pub(crate) fn commit(mut self) -> Result<()> {
        for (i, (tmp, dst)) in self.files.iter().enumerate() {
            if let Err(e) = std::fs::rename(tmp, dst) {
                // Undo the renames already done: the outputs did not exist before (checked).
                for (_, done) in &self.files[..i] {
                    let _ = std::fs::remove_file(done);
                }
                return Err(Error::io(dst, e));
            }
        }
        self.committed = true;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for (tmp, _) in &self.files {
            let _ = std::fs::remove_file(tmp);
        }
        if self.created_dir {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uncommitted_stage_leaves_nothing_and_a_committed_one_every_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new");
        let mut stage = Stage::new(&dir).unwrap();
        std::fs::write(stage.file("x.npy"), b"x").unwrap();
        drop(stage); // failure: the temporary file and the directory it created go
        assert!(!dir.exists());

        let mut stage = Stage::new(&dir).unwrap();
        std::fs::write(stage.file("x.npy"), b"x").unwrap();
        std::fs::write(stage.file("y.npy"), b"y").unwrap();
        stage.commit().unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["x.npy", "y.npy"]);
        let e = check_out(&dir).unwrap_err().to_string();
        assert!(e.contains("x.npy already exists"), "{e}");
    }

    #[test]
    fn a_directory_that_existed_is_kept_on_failure() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("notes.txt"), b"mine").unwrap();
        let mut stage = Stage::new(tmp.path()).unwrap();
        std::fs::write(stage.file("x.npy"), b"x").unwrap();
        drop(stage);
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
