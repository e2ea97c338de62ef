//! Staging of the output files: refusing an output directory that already holds a dataset, and
//! writing under temporary names that are renamed into place only when the import succeeded.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const OUTPUTS: [&str; 3] = ["x.npy", "y.npy", "labels.json"];

pub(super) fn check_out(out: &Path) -> Result<()> {
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
                    "{} already exists; import never overwrites a dataset, choose another directory",
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
pub(super) struct Stage {
    dir: PathBuf,
    created_dir: bool,
    files: Vec<(PathBuf, PathBuf)>,
    committed: bool,
}

impl Stage {
    pub(super) fn new(dir: &Path) -> Result<Self> {
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
    pub(super) fn file(&mut self, name: &str) -> PathBuf {
        let tmp = self.dir.join(format!(".{name}.tmp-{}", std::process::id()));
        self.files.push((tmp.clone(), self.dir.join(name)));
        tmp
    }

    pub(super) fn commit(mut self) -> Result<()> {
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
