//! Helpers shared by the integration tests: `.npy` and safetensors files (broken ones too), small
//! datasets, running the `dptrain` binary, and snapshots of a directory tree to prove that a
//! refused command left every file as it was.

#![allow(dead_code)] // shared by several test binaries, each uses a subset

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

/// Writes an `.npy` file: the header from `ndarray-npy` (the writer `dptrain` itself uses),
/// then `data` as is.
///
/// `descr` is numpy's type descriptor (`<f4`, `<f8`, `<i8`, …), `fortran` the `fortran_order`
/// flag and `shape` the header's shape; since `data` is written as is, it may hold fewer or more
/// bytes than the shape promises (to make broken files on purpose).
pub fn write_npy(path: &Path, descr: &str, fortran: bool, shape: &[usize], data: &[u8]) {
    let mut bytes = npy_header(descr, fortran, shape);
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The `.npy` header `np.save` writes for `descr`, `fortran` order and `shape` (format 1.0,
/// padded so that the data starts on a 64-byte boundary), from `ndarray-npy`.
pub fn npy_header(descr: &str, fortran: bool, shape: &[usize]) -> Vec<u8> {
    use ndarray_npy::npy::header::{Header, Layout};
    Header {
        type_descriptor: py_literal::Value::String(descr.to_string()),
        layout: if fortran {
            Layout::Fortran
        } else {
            Layout::Standard
        },
        shape: shape.to_vec(),
    }
    .to_bytes()
    .expect("an npy header for a plain descriptor and shape")
}

/// Little-endian bytes of `values`.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Writes a valid C-order float32 array of `shape` (row-major `values`).
///
/// # Panics
/// If `values` does not hold exactly the product of `shape` elements.
pub fn write_f32(path: &Path, shape: &[usize], values: &[f32]) {
    assert_eq!(
        shape.iter().product::<usize>(),
        values.len(),
        "shape and value count disagree"
    );
    write_npy(path, "<f4", false, shape, &f32_bytes(values));
}

/// Writes a valid float64 array of `shape` (row-major `values`).
pub fn write_f64(path: &Path, shape: &[usize], values: &[f64]) {
    assert_eq!(shape.iter().product::<usize>(), values.len());
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(path, "<f8", false, shape, &data);
}

/// Writes a valid 1-D int64 array (class labels).
pub fn write_i64(path: &Path, values: &[i64]) {
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(path, "<i8", false, &[values.len()], &data);
}

/// Deterministic, finite feature values for `rows × features` (row-major), spread over
/// roughly [-1, 1].
pub fn features(rows: usize, features: usize) -> Vec<f32> {
    (0..rows * features)
        .map(|i| ((i * 37 + 11) % 101) as f32 / 50.0 - 1.0)
        .collect()
}

/// Creates `dir` (if needed) with a valid regression dataset: `x.npy` float32
/// `(rows, features)` and `y.npy` float32 `(rows,)` (the sum of each row's features).
///
/// # Panics
/// If `features_per_row` is 0.
pub fn make_regression_dir(dir: &Path, rows: usize, features_per_row: usize) {
    assert!(features_per_row > 0, "at least one feature");
    std::fs::create_dir_all(dir).unwrap();
    let x = features(rows, features_per_row);
    let y: Vec<f32> = x.chunks(features_per_row).map(|r| r.iter().sum()).collect();
    write_f32(&dir.join("x.npy"), &[rows, features_per_row], &x);
    write_f32(&dir.join("y.npy"), &[rows], &y);
}

/// Creates `dir` (if needed) with a valid classification dataset: `x.npy` float32
/// `(rows, features)` and `y.npy` int64 labels `row % classes`.
pub fn make_classification_dir(dir: &Path, rows: usize, features_per_row: usize, classes: i64) {
    std::fs::create_dir_all(dir).unwrap();
    write_f32(
        &dir.join("x.npy"),
        &[rows, features_per_row],
        &features(rows, features_per_row),
    );
    let y: Vec<i64> = (0..rows as i64).map(|r| r % classes).collect();
    write_i64(&dir.join("y.npy"), &y);
}

/// Writes a safetensors file of float32 tensors `(name, shape, values)`.
pub fn write_safetensors(path: &Path, tensors: &[(&str, &[usize], &[f32])]) {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, _, v)| f32_bytes(v)).collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            let view = TensorView::new(Dtype::F32, shape.to_vec(), b).expect("shape fits values");
            (name.to_string(), view)
        })
        .collect();
    let file = safetensors::serialize(views, None).expect("serialise");
    std::fs::write(path, file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Runs the `dptrain` binary with `args`, in working directory `cwd` (so that a stray relative
/// write would land where a snapshot sees it), and returns its output.
pub fn dptrain<I, S>(cwd: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_dptrain"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run the dptrain binary")
}

/// What a snapshot records of one entry: kind, length, modification time and, for files, the
/// bytes (the trees in tests are tiny).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `true` for a directory.
    pub is_dir: bool,
    /// Length from the metadata.
    pub len: u64,
    /// Modification time.
    pub mtime: SystemTime,
    /// File contents (empty for directories and other entries).
    pub bytes: Vec<u8>,
}

/// Every entry under `root` (itself included, as the empty path), by path relative to `root`.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(root: &Path, path: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        let meta =
            std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let rel = path.strip_prefix(root).expect("under root").to_path_buf();
        let bytes = if meta.is_file() {
            std::fs::read(path).unwrap_or_default()
        } else {
            Vec::new()
        };
        out.insert(
            rel,
            Entry {
                is_dir: meta.is_dir(),
                len: meta.len(),
                mtime: meta.modified().expect("mtime"),
                bytes,
            },
        );
        if meta.is_dir() {
            // An unreadable directory (chmod 0 by a test) is recorded without its entries.
            if let Ok(rd) = std::fs::read_dir(path) {
                for e in rd {
                    walk(root, &e.expect("dir entry").path(), out);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Panics with the differences if two snapshots of the same tree disagree.
pub fn assert_unchanged(before: &BTreeMap<PathBuf, Entry>, after: &BTreeMap<PathBuf, Entry>) {
    let mut diffs = Vec::new();
    for (p, b) in before {
        match after.get(p) {
            None => diffs.push(format!("removed: {}", p.display())),
            Some(a) if a != b => diffs.push(format!(
                "modified: {} (len {} → {}, mtime {:?} → {:?}, contents {})",
                p.display(),
                b.len,
                a.len,
                b.mtime,
                a.mtime,
                if a.bytes == b.bytes { "same" } else { "differ" }
            )),
            Some(_) => {}
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        diffs.push(format!("created: {}", p.display()));
    }
    assert!(
        diffs.is_empty(),
        "the tree changed:\n  {}",
        diffs.join("\n  ")
    );
}

/// Asserts that `out` is a clean refusal: exit code exactly 2, a single line on stderr that
/// contains every string of `mentions` (the file or flag at fault, the key words of the
/// explanation), and no panic. Returns that line.
pub fn assert_refused(out: &Output, mentions: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let context = format!("\n--- stderr ---\n{stderr}--- stdout ---\n{stdout}");
    assert!(
        !stderr.contains("panicked"),
        "the binary panicked:{context}"
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit code 2, got {:?}{context}",
        out.status
    );
    let line = stderr.trim();
    assert_eq!(line.lines().count(), 1, "expected one stderr line{context}");
    for m in mentions {
        assert!(line.contains(m), "stderr does not mention {m:?}{context}");
    }
    line.to_string()
}

/// Runs `dptrain args` in `root` and asserts a clean refusal (see [`assert_refused`]) that left
/// every entry under `root` as it was. Returns the stderr line (also printed, for
/// `cargo test -- --nocapture`).
pub fn refuse<I, S>(root: &Path, args: I, mentions: &[&str]) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let before = snapshot(root);
    let out = dptrain(root, args);
    let line = assert_refused(&out, mentions);
    assert_unchanged(&before, &snapshot(root));
    eprintln!("refused as expected: {line}");
    line
}

/// Writes a CSV file with a header `sepal,petal,species,width` and `rows` rows whose string
/// label `species` (`"setosa"`, `"versicolor"`, `"virginica"`, in turn) is learnable from the
/// three numeric features: each class sits around its own centre, with deterministic jitter.
pub fn write_species_csv(path: &Path, rows: usize) {
    const NAMES: [&str; 3] = ["setosa", "versicolor", "virginica"];
    let mut text = String::from("sepal,petal,species,width\n");
    for r in 0..rows {
        let class = r % 3;
        let jitter = |k: usize| ((r * 7919 + k * 104_729) % 1000) as f32 / 1000.0 - 0.5;
        let sepal = 50.0 + 20.0 * class as f32 + 8.0 * jitter(1);
        let petal = 1.0 - class as f32 + 0.4 * jitter(2);
        let width = 0.3 * jitter(3);
        text.push_str(&format!("{sepal},{petal},{},{width}\n", NAMES[class]));
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Reads `labels.json` (a JSON list of class names) from a dataset directory.
pub fn read_labels(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("labels.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join("labels.json").display()));
    serde_json::from_str(&text).expect("labels.json is a JSON list of strings")
}

/// Runs `dptrain args` in `cwd`, asserts it succeeded, and returns its stdout.
pub fn dptrain_ok<I, S>(cwd: &Path, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = dptrain(cwd, args);
    assert!(
        out.status.success(),
        "dptrain failed ({:?}):\n--- stderr ---\n{}--- stdout ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// Says, in the test output, that the test named `test` skipped and why. Written to the process's
/// stderr directly: libtest captures `eprintln!`, and a skip must be seen whether or not the
/// test fails.
pub fn skip(test: &str, why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "test {test} SKIPPED: {why}");
}

/// `dptrain train --data DATA --out OUT --epochs 1 --threads 1 EXTRA…`.
pub fn train_args(data: &Path, out: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "train".into(),
        "--data".into(),
        data.into(),
        "--out".into(),
        out.into(),
        "--epochs".into(),
        "1".into(),
        "--threads".into(),
        "1".into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    args
}

/// `dptrain import csv FILE --out OUT EXTRA…`.
pub fn import_args(file: &Path, out: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "import".into(),
        "csv".into(),
        file.into(),
        "--out".into(),
        out.into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    args
}
