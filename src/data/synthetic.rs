//! Learnable synthetic datasets: inputs from N(0, 1), targets from a fixed random teacher network.

use std::path::Path;

use ndarray::{Array1, Array2, Axis};
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::{StandardNormal, Uniform};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::data::Dataset;
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

    /// Generates features (`rows × features`) and teacher outputs (`rows × outputs`).
    fn generate(&self) -> (Array2<f32>, Array2<f32>) {
        const TEACHER_HIDDEN: usize = 32;
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(self.seed, &[0x6e4]));
        let x = Array2::<f32>::random_using((self.rows, self.features), StandardNormal, &mut rng);
        let b1 = (3.0 / self.features as f32).sqrt();
        let w1 = Array2::random_using(
            (self.features, TEACHER_HIDDEN),
            Uniform::new(-b1, b1).expect("finite bounds"),
            &mut rng,
        );
        let c1 = Array1::random_using(
            TEACHER_HIDDEN,
            Uniform::new(-0.5f32, 0.5).expect("finite bounds"),
            &mut rng,
        );
        let b2 = (3.0 / TEACHER_HIDDEN as f32).sqrt() * 2.0;
        let w2 = Array2::random_using(
            (TEACHER_HIDDEN, self.outputs),
            Uniform::new(-b2, b2).expect("finite bounds"),
            &mut rng,
        );
        let h = (x.dot(&w1) + &c1).mapv(f32::tanh);
        let mut y = h.dot(&w2);
        let noise =
            Array2::<f32>::random_using((self.rows, self.outputs), StandardNormal, &mut rng);
        y.scaled_add(self.noise, &noise);
        (x, y)
    }

    /// Builds the dataset in memory.
    pub fn dataset(&self) -> Dataset {
        let (x, y) = self.generate();
        match self.task {
            Task::Regression => Dataset::from_vecs(
                x.into_raw_vec_and_offset().0,
                self.features,
                y.into_raw_vec_and_offset().0,
                self.outputs,
            ),
            Task::Classification => Dataset::from_labels(
                x.into_raw_vec_and_offset().0,
                self.features,
                argmax_rows(&y).into_iter().map(|l| l as u32).collect(),
                self.outputs,
            ),
        }
    }

    /// Writes `dir/x.npy` (float32) and `dir/y.npy` (float32 targets, or int64 labels).
    ///
    /// Each file is written to a temporary name and renamed, so a file appears whole or not at
    /// all; existing files are never overwritten.
    ///
    /// # Errors
    /// [`Error::Config`] on `--out` when a dataset file already exists there, [`Error::Io`]
    /// when the directory or files cannot be written.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let xp = dir.join("x.npy");
        let yp = dir.join("y.npy");
        for p in [&xp, &yp] {
            if p.exists() {
                return Err(Error::config(
                    "--out",
                    format!("{} already exists; choose another directory", p.display()),
                ));
            }
        }
        let created = !dir.exists();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let (x, y) = self.generate();
        let result = (|| {
            crate::fsutil::write_npy_atomic(&xp, &x)?;
            match self.task {
                Task::Regression if self.outputs == 1 => {
                    crate::fsutil::write_npy_atomic(&yp, &y.index_axis(Axis(1), 0))
                }
                Task::Regression => crate::fsutil::write_npy_atomic(&yp, &y),
                Task::Classification => {
                    crate::fsutil::write_npy_atomic(&yp, &Array1::from(argmax_rows(&y)))
                }
            }
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&xp);
            if created {
                let _ = std::fs::remove_dir(dir);
            }
        }
        result
    }
}

fn argmax_rows(y: &Array2<f32>) -> Vec<i64> {
    y.rows()
        .into_iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .fold((0usize, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv { (i, v) } else { (bi, bv) }
                })
                .0 as i64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
