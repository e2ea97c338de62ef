//! What a checkpoint holds, and its file format.
//!
//! A checkpoint is a safetensors file: the large vectors are tensors (`params`, `momentum`,
//! `best_params`), everything else is JSON in the header's metadata under `dptrain.checkpoint`.
//! Reusing safetensors means one well-tested parser for every binary file dptrain reads; a
//! checksum over the tensor bytes catches a file damaged after it was written.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::{SafeTensors, serialize};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::mix64;
use crate::train::{EarlyStopping, EpochMetrics, TrainConfig};

const META_KEY: &str = "dptrain.checkpoint";
const FORMAT: u32 = 1;

/// Where the run stands: the next step to take, and what the current epoch has summed so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// 0-based epoch of the next step.
    pub epoch: usize,
    /// 0-based step within `epoch` to take next.
    pub step: usize,
    /// Optimizer steps taken so far.
    pub global_step: u64,
    /// Sample-weighted training loss summed over the current epoch's steps so far.
    pub epoch_loss_sum: f64,
    /// Correct predictions in the current epoch so far (classification).
    pub epoch_correct: usize,
    /// Samples seen in the current epoch so far.
    pub epoch_samples: usize,
    /// Early-stopping state.
    pub stopper: EarlyStopping,
    /// Metrics of every finished epoch.
    pub history: Vec<EpochMetrics>,
    /// Whether early stopping has ended the run.
    pub stopped: bool,
    /// Gradient-noise averages (with `noise_scale`).
    #[serde(default)]
    pub noise: Option<crate::parallel::NoiseScale>,
}

impl Progress {
    /// The state before the first step.
    pub fn start(config: &TrainConfig) -> Self {
        Progress {
            epoch: 0,
            step: 0,
            global_step: 0,
            epoch_loss_sum: 0.0,
            epoch_correct: 0,
            epoch_samples: 0,
            stopper: EarlyStopping::new(config.patience, config.min_delta),
            history: Vec::new(),
            stopped: false,
            noise: None,
        }
    }
}

/// Identifies the data and the settings a run was started with, to refuse resuming onto others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// The training configuration (every result-changing setting).
    pub config: TrainConfig,
    /// Fingerprints of the data files (empty for generated data).
    pub data: Vec<crate::checkpoint::FileFingerprint>,
    /// Number of parameters (a cheap consistency check).
    pub params: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: u32,
    identity: RunIdentity,
    progress: Progress,
    checksum: u64,
}

/// A borrowed view of the state to save: nothing is copied to write a checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// Position, accumulators, history, early stopping.
    pub progress: &'a Progress,
    /// Parameters after `progress.global_step` steps.
    pub params: &'a [f32],
    /// SGD momentum buffer or Adam's first moment (empty before the first step or without
    /// momentum).
    pub momentum: &'a [f32],
    /// Adam's second moment (empty for SGD).
    pub second_moment: &'a [f32],
    /// Parameters of the best validation epoch so far.
    pub best_params: Option<&'a [f32]>,
}

/// An owned checkpoint, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// What the run was started with.
    pub identity: RunIdentity,
    /// Where it stood.
    pub progress: Progress,
    /// Parameters.
    pub params: Vec<f32>,
    /// Momentum buffer (SGD) or first moment (Adam).
    pub momentum: Vec<f32>,
    /// Second moment (Adam).
    pub second_moment: Vec<f32>,
    /// Best validation epoch's parameters.
    pub best_params: Option<Vec<f32>>,
}

fn checksum(parts: &[&[f32]]) -> u64 {
    let mut h = 0x6a09_e667_f3bc_c908u64;
    for part in parts {
        h = mix64(h ^ part.len() as u64);
        for chunk in part.chunks(2) {
            let a = chunk[0].to_bits() as u64;
            let b = chunk.get(1).map_or(0, |v| v.to_bits() as u64);
            h = mix64(h ^ (a << 32 | b));
        }
    }
    h
}

impl Snapshot<'_> {
    /// Serialises the snapshot with `identity` into checkpoint bytes.
    pub fn to_bytes(&self, identity: &RunIdentity) -> Vec<u8> {
        let best = self.best_params.unwrap_or(&[]);
        let header = Header {
            format: FORMAT,
            identity: identity.clone(),
            progress: self.progress.clone(),
            checksum: checksum(&[self.params, self.momentum, self.second_moment, best]),
        };
        let tensors: Vec<(&str, &[f32])> = [
            ("params", self.params),
            ("momentum", self.momentum),
            ("second_moment", self.second_moment),
            ("best_params", best),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        let views: Vec<(String, TensorView<'_>)> = tensors
            .iter()
            .map(|(name, v)| {
                let view = TensorView::new(Dtype::F32, vec![v.len()], bytemuck::cast_slice(v))
                    .expect("length and shape agree");
                (name.to_string(), view)
            })
            .collect();
        let meta = HashMap::from([(
            META_KEY.to_string(),
            serde_json::to_string(&header).expect("checkpoint header serialises"),
        )]);
        serialize(views, Some(meta)).expect("checkpoint tensors serialise")
    }
}

impl Checkpoint {
    /// Parses checkpoint bytes read from `path` (named in errors).
    ///
    /// # Errors
    /// [`Error::Data`] naming the file when it is not a dptrain checkpoint, is of another
    /// format version, or fails its checksum.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self> {
        let bad = |m: String| Error::data(path, m);
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("not a dptrain checkpoint (safetensors: {e})")))?;
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("not a dptrain checkpoint (safetensors: {e})")))?;
        let json = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get(META_KEY))
            .ok_or_else(|| bad("not a dptrain checkpoint (no checkpoint metadata)".into()))?;
        let header: Header = serde_json::from_str(json)
            .map_err(|e| bad(format!("damaged checkpoint metadata: {e}")))?;
        if header.format != FORMAT {
            return Err(bad(format!(
                "checkpoint format {} is not supported (this dptrain reads format {FORMAT})",
                header.format
            )));
        }
        let tensor = |name: &str| -> Result<Vec<f32>> {
            match st.tensor(name) {
                Err(_) => Ok(Vec::new()),
                Ok(t) if t.dtype() != Dtype::F32 || t.shape().len() != 1 => {
                    Err(bad(format!("tensor {name} is not a float32 vector")))
                }
                Ok(t) => Ok(t
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                    .collect()),
            }
        };
        let params = tensor("params")?;
        let momentum = tensor("momentum")?;
        let second = tensor("second_moment")?;
        let best = tensor("best_params")?;
        if checksum(&[&params, &momentum, &second, &best]) != header.checksum {
            return Err(bad("checkpoint is damaged (checksum mismatch)".into()));
        }
        let n = header.identity.params;
        if params.len() != n
            || !(momentum.is_empty() || momentum.len() == n)
            || !(second.is_empty() || second.len() == momentum.len())
            || !(best.is_empty() || best.len() == n)
        {
            return Err(bad(format!(
                "checkpoint tensors do not have the model's {n} parameters"
            )));
        }
        Ok(Checkpoint {
            identity: header.identity,
            progress: header.progress,
            params,
            momentum,
            second_moment: second,
            best_params: (!best.is_empty()).then_some(best),
        })
    }

    /// A borrowed view, e.g. to write this checkpoint again.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            progress: &self.progress,
            params: &self.params,
            momentum: &self.momentum,
            second_moment: &self.second_moment,
            best_params: self.best_params.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (RunIdentity, Progress) {
        let config = TrainConfig::default();
        let mut progress = Progress::start(&config);
        progress.epoch = 2;
        progress.step = 5;
        progress.global_step = 77;
        progress.epoch_loss_sum = 1.25;
        let identity = RunIdentity {
            config,
            data: Vec::new(),
            params: 4,
        };
        (identity, progress)
    }

    #[test]
    fn checkpoints_round_trip() {
        let (identity, progress) = sample();
        let params = [1.0, -2.0, 3.5, 0.0];
        let momentum = [0.1, 0.2, 0.3, 0.4];
        let snap = Snapshot {
            progress: &progress,
            params: &params,
            momentum: &momentum,
            second_moment: &[],
            best_params: Some(&params),
        };
        let bytes = snap.to_bytes(&identity);
        let back = Checkpoint::from_bytes(Path::new("c"), &bytes).unwrap();
        assert_eq!(back.identity, identity);
        assert_eq!(back.progress, progress);
        assert_eq!(back.params, params);
        assert_eq!(back.momentum, momentum);
        assert_eq!(back.best_params.as_deref(), Some(&params[..]));
    }

    #[test]
    fn float_state_round_trips_exactly() {
        // serde_json parses floats exactly only with its `float_roundtrip` feature; without it
        // a resumed epoch's loss sum could differ in the last bit.
        let (identity, mut progress) = sample();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let values = (0..2000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64 * 1000.0
        });
        for v in values.chain([0.1 + 0.2, 1.0 / 3.0, 6.02214076e23, 5e-324]) {
            progress.epoch_loss_sum = v;
            let snap = Snapshot {
                progress: &progress,
                params: &[1.0, 2.0, 3.0, 4.0],
                momentum: &[],
                second_moment: &[],
                best_params: None,
            };
            let back = Checkpoint::from_bytes(Path::new("c"), &snap.to_bytes(&identity)).unwrap();
            assert_eq!(back.progress.epoch_loss_sum.to_bits(), v.to_bits(), "{v:e}");
        }
    }

    #[test]
    fn damaged_checkpoints_are_refused_with_a_reason() {
        let (identity, progress) = sample();
        let params = [1.0, -2.0, 3.5, 0.0];
        let snap = Snapshot {
            progress: &progress,
            params: &params,
            momentum: &[],
            second_moment: &[],
            best_params: None,
        };
        let mut bytes = snap.to_bytes(&identity);
        let n = bytes.len();
        bytes[n - 3] ^= 0x40; // flip a bit in the tensor data
        let err = Checkpoint::from_bytes(Path::new("c"), &bytes).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        let err = Checkpoint::from_bytes(Path::new("c"), &bytes[..n / 2]).unwrap_err();
        assert!(
            err.to_string().contains("not a dptrain checkpoint"),
            "{err}"
        );
    }
}
