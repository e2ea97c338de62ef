//! Learnable synthetic datasets: inputs from N(0, 1), targets from a fixed random teacher network.
//!
//! Rows are generated and written in chunks of a few MiB, so `gen` writes a dataset of any size
//! the disk holds while memory holds only the teacher and one chunk; what cannot fit (on disk or
//! in memory) is refused before anything is written.

use std::path::Path;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::{StandardNormal, Uniform};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::data::Dataset;
use crate::data::npy_writer::NpyStream;
use crate::data::stage::{Stage, check_out};
use crate::error::{Error, Result};
use crate::rng::derive_seed;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSpec {
    /// Regression (float targets) or classification (integer labels).
    pub task: Task,
    /// Number of examples.
    pub rows: usize,
    /// Features per example.
    pub features: usize,
    /// Classes (classification) or outputs (regression).
    pub outputs: usize,
    /// Standard deviation of the noise added to the teacher's output (logits for classes).
    pub noise: f32,
    /// Seed of the teacher, the inputs and the noise.
    pub seed: u64,
}

/// The kind of target to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// Float targets.
    Regression,
    /// Integer labels.
    Classification,
}

impl SyntheticSpec {
    /// The seed article's example: 1000 rows × 20 features, one regression output.
    pub fn seed_example(seed: u64) -> Self {
        SyntheticSpec {
            task: Task::Regression,
            rows: 1000,
            features: 20,
            outputs: 1,
            noise: 0.1,
            seed,
        }
    }

    fn rng(&self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(derive_seed(self.seed, &[0x6e4]))
    }

    /// Rows per chunk: as many as fit in [`CHUNK_BYTES`] of features, hidden units, outputs and
    /// noise, at least one.
    fn chunk_rows(&self) -> usize {
        let per_row = self
            .features
            .saturating_add(TEACHER_HIDDEN)
            .saturating_add(self.outputs.saturating_mul(2))
            .saturating_mul(4);
        (CHUNK_BYTES / per_row.max(1)).clamp(1, self.rows.max(1))
    }

    /// Memory the generation needs, in bytes: the teacher network and one chunk of rows
    /// (features drawn, hidden units, outputs, noise); `None` when the count overflows.
    fn memory_need(&self) -> Option<u64> {
        let (f, o, h) = (
            self.features as u64,
            self.outputs as u64,
            TEACHER_HIDDEN as u64,
        );
        let teacher = f.checked_add(o)?.checked_add(1)?.checked_mul(h)?;
        let chunk = (self.chunk_rows() as u64)
            .checked_mul(f.checked_add(h)?.checked_add(o.checked_mul(2)?)?)?;
        teacher.checked_add(chunk)?.checked_mul(4)
    }

    /// Generates the dataset chunk by chunk: `on_x` gets the features of each chunk of rows
    /// (row-major), in order; then `on_y` gets the teacher's outputs plus noise for each chunk
    /// (`rows × outputs`), in order.
    ///
    /// # Determinism
    /// The random stream is the one whole arrays would draw: every feature of every row (C
    /// order), then the teacher, then the noise of every row. To reach the teacher without
    /// holding the features, they are drawn once for `on_x` and again, from a second stream
    /// started at the same seed, beside the noise; each row's outputs are computed from its own
    /// features only, so the chunk size changes no number (a test compares with whole arrays).
    fn generate(
        &self,
        on_x: impl FnMut(&[f32]) -> Result<()>,
        on_y: impl FnMut(ArrayView2<'_, f32>) -> Result<()>,
    ) -> Result<()> {
        self.generate_in_chunks(self.chunk_rows(), on_x, on_y)
    }

    /// [`SyntheticSpec::generate`] with `chunk` rows per chunk (at least 1).
    fn generate_in_chunks(
        &self,
        chunk: usize,
        mut on_x: impl FnMut(&[f32]) -> Result<()>,
        mut on_y: impl FnMut(ArrayView2<'_, f32>) -> Result<()>,
    ) -> Result<()> {
        let chunk = chunk.max(1);
        let chunks = || {
            (0..self.rows)
                .step_by(chunk)
                .map(move |r| chunk.min(self.rows - r))
        };
        let start = self.rng();
        let mut rng = start.clone();
        for rows in chunks() {
            let x = Array2::<f32>::random_using((rows, self.features), StandardNormal, &mut rng);
            on_x(x.as_slice().expect("a new array is in standard layout"))?;
        }
        let teacher = Teacher::draw(self.features, self.outputs, &mut rng);
        let mut again = start;
        for rows in chunks() {
            let x = Array2::<f32>::random_using((rows, self.features), StandardNormal, &mut again);
            let mut y = teacher.outputs(&x);
            let noise = Array2::<f32>::random_using((rows, self.outputs), StandardNormal, &mut rng);
            y.scaled_add(self.noise, &noise);
            on_y(y.view())?;
        }
        Ok(())
    }

    /// Builds the dataset in memory.
    pub fn dataset(&self) -> Dataset {
        let mut x = Vec::with_capacity(self.rows * self.features);
        let mut values = Vec::new();
        let mut labels = Vec::new();
        self.generate(
            |chunk| {
                x.extend_from_slice(chunk);
                Ok(())
            },
            |y| {
                match self.task {
                    Task::Regression => values.extend(y.iter()),
                    Task::Classification => labels.extend(y.rows().into_iter().map(argmax)),
                }
                Ok(())
            },
        )
        .expect("generating into memory cannot fail");
        match self.task {
            Task::Regression => Dataset::from_vecs(x, self.features, values, self.outputs),
            Task::Classification => Dataset::from_labels(
                x,
                self.features,
                labels.into_iter().map(|l| l as u32).collect(),
                self.outputs,
            ),
        }
    }

    /// Refuses, before anything is written, a dataset that cannot be made: more classes than
    /// rows, a teacher network larger than the memory this process may use, files larger than
    /// the free space under `dir`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the flag to change, with the sizes.
    pub fn check_fits(&self, dir: &Path) -> Result<()> {
        let outputs_flag = match self.task {
            Task::Classification => "--classes",
            Task::Regression => "--outputs",
        };
        if self.task == Task::Classification && self.outputs > self.rows {
            return Err(Error::config(
                "--classes",
                format!(
                    "{} classes is more than the {} rows (--rows): each class needs a row",
                    self.outputs, self.rows
                ),
            ));
        }
        let too_large = |flag: &str, value: usize| {
            Error::config(
                flag,
                format!("{flag} {value} is too large: the bytes it needs overflow a 64-bit count"),
            )
        };
        let big = if self.features >= self.outputs {
            ("--features", self.features)
        } else {
            (outputs_flag, self.outputs)
        };
        let need = self.memory_need().ok_or_else(|| too_large(big.0, big.1))?;
        if let Some(limit) = crate::resources::memory_limit()
            && need > limit
        {
            return Err(Error::config(
                big.0,
                format!(
                    "{} {}: generating needs {} of memory (a teacher network of 32 × (features + \
                     outputs + 1) float32 and a chunk of rows), more than the {} this process \
                     may use",
                    big.0,
                    big.1,
                    bytes_text(need),
                    bytes_text(limit)
                ),
            ));
        }
        let per_row_y = match self.task {
            Task::Regression => (self.outputs as u64).checked_mul(4),
            Task::Classification => Some(8),
        };
        let rows = self.rows as u64;
        let files = rows
            .checked_mul(self.features as u64)
            .and_then(|n| n.checked_mul(4))
            .zip(per_row_y.and_then(|b| b.checked_mul(rows)))
            .and_then(|(x, y)| x.checked_add(y)?.checked_add(2 * NPY_HEADER_MAX));
        let Some(files) = files else {
            return Err(Error::config(
                "--rows",
                format!(
                    "--rows {} × --features {} is too large: the file size overflows a 64-bit \
                     count",
                    self.rows, self.features
                ),
            ));
        };
        if let Some(free) = crate::resources::disk_free(dir)
            && files > free
        {
            return Err(Error::config(
                "--rows",
                format!(
                    "--rows {} × --features {} needs {} for x.npy and y.npy, but {} has {} free",
                    self.rows,
                    self.features,
                    bytes_text(files),
                    dir.display(),
                    bytes_text(free)
                ),
            ));
        }
        Ok(())
    }

    /// Writes `dir/x.npy` (float32) and `dir/y.npy` (float32 targets, or int64 labels), row
    /// chunk by row chunk: memory holds the teacher and one chunk whatever `rows` is, so any
    /// size the disk holds can be written.
    ///
    /// What cannot fit is refused before anything is written ([`SyntheticSpec::check_fits`]).
    /// Both files are written under temporary names and renamed into place only when both are
    /// whole; on failure they are removed, and so is the directory if this created it. A
    /// directory already holding a dataset file (`x.npy`, `y.npy`, `labels.json`) is refused.
    ///
    /// # Errors
    /// [`Error::Config`] on `--out` when a dataset file already exists there or it is a file,
    /// and on the flag to change when the data cannot fit ([`SyntheticSpec::check_fits`]);
    /// [`Error::Io`] when the directory or the files cannot be written.
    pub fn write(&self, dir: &Path) -> Result<()> {
        check_out(dir)?;
        self.check_fits(dir)?;
        let mut stage = Stage::new(dir)?;
        let xp = stage.file("x.npy");
        let yp = stage.file("y.npy");
        let mut x = NpyStream::<f32>::create(&xp, &[self.rows, self.features], 1 << 20)?;
        let mut y = match self.task {
            Task::Regression if self.outputs == 1 => {
                Targets::Values(NpyStream::create(&yp, &[self.rows], 1 << 16)?)
            }
            Task::Regression => {
                Targets::Values(NpyStream::create(&yp, &[self.rows, self.outputs], 1 << 20)?)
            }
            Task::Classification => Targets::Labels(NpyStream::create(&yp, &[self.rows], 1 << 16)?),
        };
        self.generate(
            |chunk| x.push_slice(chunk),
            |out| match &mut y {
                Targets::Values(w) => {
                    w.push_slice(out.as_slice().expect("a new array is in standard layout"))
                }
                Targets::Labels(w) => out.rows().into_iter().try_for_each(|r| w.push(argmax(r))),
            },
        )?;
        x.finish()?;
        match y {
            Targets::Values(w) => w.finish()?,
            Targets::Labels(w) => w.finish()?,
        }
        stage.commit()
    }
}

/// What `y.npy` holds.
enum Targets {
    Values(NpyStream<f32>),
    Labels(NpyStream<i64>),
}

/// The fixed random network whose outputs are the targets: features → 32 tanh units → outputs.
struct Teacher {
    w1: Array2<f32>,
    c1: Array1<f32>,
    w2: Array2<f32>,
}

impl Teacher {
    fn draw(features: usize, outputs: usize, rng: &mut ChaCha8Rng) -> Self {
        let b1 = (3.0 / features as f32).sqrt();
        let w1 = Array2::random_using(
            (features, TEACHER_HIDDEN),
            Uniform::new(-b1, b1).expect("finite bounds"),
            rng,
        );
        let c1 = Array1::random_using(
            TEACHER_HIDDEN,
            Uniform::new(-0.5f32, 0.5).expect("finite bounds"),
            rng,
        );
        let b2 = (3.0 / TEACHER_HIDDEN as f32).sqrt() * 2.0;
        let w2 = Array2::random_using(
            (TEACHER_HIDDEN, outputs),
            Uniform::new(-b2, b2).expect("finite bounds"),
            rng,
        );
        Teacher { w1, c1, w2 }
    }

    /// The outputs for rows `x` (`rows × features`), before noise.
    fn outputs(&self, x: &Array2<f32>) -> Array2<f32> {
        let h = (x.dot(&self.w1) + &self.c1).mapv(f32::tanh);
        h.dot(&self.w2)
    }
}

/// Hidden units of the teacher network.
const TEACHER_HIDDEN: usize = 32;

/// Working memory of one chunk of rows: bounds what generation holds whatever `rows` is.
const CHUNK_BYTES: usize = 4 << 20;

/// Room for an `.npy` header: format 1.0 pads it to a multiple of 64 bytes, 128 for any 1-D or
/// 2-D shape.
const NPY_HEADER_MAX: u64 = 128;

/// `n` bytes in binary units, as `1.5 GiB`.
fn bytes_text(n: u64) -> String {
    const UNITS: [&str; 7] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The index of the largest value (the first, on ties).
fn argmax(r: ArrayView1<'_, f32>) -> i64 {
    r.iter()
        .enumerate()
        .fold((0usize, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0 as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain version: whole arrays, as `gen` made them before it streamed.
    fn whole(spec: &SyntheticSpec) -> (Array2<f32>, Array2<f32>) {
        let mut rng = spec.rng();
        let x = Array2::<f32>::random_using((spec.rows, spec.features), StandardNormal, &mut rng);
        let teacher = Teacher::draw(spec.features, spec.outputs, &mut rng);
        let mut y = teacher.outputs(&x);
        let noise =
            Array2::<f32>::random_using((spec.rows, spec.outputs), StandardNormal, &mut rng);
        y.scaled_add(spec.noise, &noise);
        (x, y)
    }

    fn chunked(spec: &SyntheticSpec, chunk: usize) -> (Vec<f32>, Vec<f32>) {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        spec.generate_in_chunks(
            chunk,
            |c| {
                x.extend_from_slice(c);
                Ok(())
            },
            |c| {
                y.extend(c.iter());
                Ok(())
            },
        )
        .unwrap();
        (x, y)
    }

    #[test]
    fn chunks_of_any_size_give_the_bits_of_whole_arrays() {
        let spec = SyntheticSpec {
            task: Task::Regression,
            rows: 203,
            features: 37,
            outputs: 3,
            noise: 0.1,
            seed: 9,
        };
        let (x, y) = whole(&spec);
        for chunk in [1, 7, 64, 203, 1000] {
            let (cx, cy) = chunked(&spec, chunk);
            assert_eq!(cx, x.as_slice().unwrap(), "features, chunk {chunk}");
            let same = cy
                .iter()
                .zip(y.iter())
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same && cy.len() == y.len(), "targets, chunk {chunk}");
        }
    }

    #[test]
    fn the_written_files_hold_the_dataset_built_in_memory() {
        let tmp = tempfile::tempdir().unwrap();
        for (task, outputs) in [
            (Task::Classification, 4),
            (Task::Regression, 1),
            (Task::Regression, 2),
        ] {
            let spec = SyntheticSpec {
                task,
                rows: 300,
                features: 6,
                outputs,
                noise: 0.1,
                seed: 3,
            };
            let dir = tmp.path().join(format!("{task:?}{outputs}"));
            spec.write(&dir).unwrap();
            let file = Dataset::open(&dir).unwrap();
            let mem = spec.dataset();
            assert_eq!(file.x(), mem.x());
            assert_eq!(file.kind(), mem.kind());
            assert_eq!(file.y_values(), mem.y_values());
            assert!((0..300).all(|r| file.label(r) == mem.label(r)));
        }
    }

    #[test]
    fn what_cannot_fit_is_refused_before_anything_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        let spec = |rows, features, outputs, task| SyntheticSpec {
            task,
            rows,
            features,
            outputs,
            noise: 0.0,
            seed: 0,
        };
        for (s, flag) in [
            (spec(10, 2, 11, Task::Classification), "--classes"),
            (spec(usize::MAX / 2, 1000, 1, Task::Regression), "--rows"),
            (spec(1, usize::MAX / 8, 1, Task::Regression), "--features"),
        ] {
            let e = s.write(&dir).unwrap_err().to_string();
            assert!(e.starts_with(flag), "{e}");
            assert!(!dir.exists());
        }
    }

    #[test]
    fn generation_is_deterministic_and_classes_are_all_used() {
        let spec = SyntheticSpec {
            task: Task::Classification,
            rows: 600,
            features: 5,
            outputs: 3,
            noise: 0.1,
            seed: 4,
        };
        let a = spec.dataset();
        let b = spec.dataset();
        assert_eq!(a.x(), b.x());
        let mut counts = [0usize; 3];
        for r in 0..a.rows() {
            counts[a.label(r).unwrap() as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 30), "class counts {counts:?}");
    }
}
