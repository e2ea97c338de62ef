//! The checkpoint file format: a safetensors file whose large vectors are tensors (`params`,
//! `momentum`, `second_moment`, `best_params`) and whose state is JSON in the header's metadata
//! under `dptrain.checkpoint`.
//!
//! Reusing safetensors means one well-tested parser for every binary file dptrain reads; a
//! checksum over the tensor bytes catches a file damaged after it was written. What the state
//! holds is the caller's ([`CheckpointState`]): this module knows how to write and read, not
//! what a training run is.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::{SafeTensors, serialize};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::mix64;

const META_KEY: &str = "dptrain.checkpoint";
const FORMAT: u32 = 1;

/// What a checkpoint's JSON state must tell about its tensors.
pub trait CheckpointState: Serialize + DeserializeOwned {
    /// The model's parameter count: the length of `params` (and of the optimizer's moments and
    /// the best parameters, when present).
    fn params(&self) -> usize;
}

#[derive(Debug, Serialize, Deserialize)]
struct Header<S> {
    format: u32,
    #[serde(flatten)]
    state: S,
    checksum: u64,
}

/// The vectors of a checkpoint, borrowed: nothing is copied to write one.
#[derive(Debug, Clone, Copy)]
pub struct Tensors<'a> {
    /// Parameters.
    pub params: &'a [f32],
    /// The optimizer's first moment: SGD's momentum buffer or Adam's `exp_avg` (empty before
    /// the first step or without momentum).
    pub first_moment: &'a [f32],
    /// The optimizer's second moment: Adam's `exp_avg_sq` (empty for SGD).
    pub second_moment: &'a [f32],
    /// Parameters of the best validation epoch so far.
    pub best_params: Option<&'a [f32]>,
}

/// An owned checkpoint, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint<S> {
    /// The caller's state (position, settings, history…).
    pub state: S,
    /// Parameters.
    pub params: Vec<f32>,
    /// First moment (SGD momentum buffer or Adam's `exp_avg`).
    pub first_moment: Vec<f32>,
    /// Second moment (Adam's `exp_avg_sq`).
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

/// Serialises `state` and `tensors` into checkpoint bytes.
pub fn to_bytes<S: Serialize>(state: &S, tensors: &Tensors<'_>) -> Vec<u8> {
    let best = tensors.best_params.unwrap_or(&[]);
    let header = Header {
        format: FORMAT,
        state,
        checksum: checksum(&[
            tensors.params,
            tensors.first_moment,
            tensors.second_moment,
            best,
        ]),
    };
    // The tensor names are the file format's (version 1): `momentum` holds the first moment.
    let named: Vec<(&str, &[f32])> = [
        ("params", tensors.params),
        ("momentum", tensors.first_moment),
        ("second_moment", tensors.second_moment),
        ("best_params", best),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    let views: Vec<(String, TensorView<'_>)> = named
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

impl<S: CheckpointState> Checkpoint<S> {
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
        let format: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| bad(format!("damaged checkpoint metadata: {e}")))?;
        if format.get("format").and_then(|f| f.as_u64()) != Some(FORMAT as u64) {
            return Err(bad(format!(
                "checkpoint format {} is not supported (this dptrain reads format {FORMAT})",
                format.get("format").map_or("?".into(), |f| f.to_string())
            )));
        }
        let header: Header<S> = serde_json::from_str(json)
            .map_err(|e| bad(format!("damaged checkpoint metadata: {e}")))?;
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
        let first = tensor("momentum")?;
        let second = tensor("second_moment")?;
        let best = tensor("best_params")?;
        if checksum(&[&params, &first, &second, &best]) != header.checksum {
            return Err(bad("checkpoint is damaged (checksum mismatch)".into()));
        }
        let n = header.state.params();
        if params.len() != n
            || !(first.is_empty() || first.len() == n)
            || !(second.is_empty() || second.len() == first.len())
            || !(best.is_empty() || best.len() == n)
        {
            return Err(bad(format!(
                "checkpoint tensors do not have the model's {n} parameters"
            )));
        }
        Ok(Checkpoint {
            state: header.state,
            params,
            first_moment: first,
            second_moment: second,
            best_params: (!best.is_empty()).then_some(best),
        })
    }

    /// A borrowed view of the vectors, e.g. to write this checkpoint again.
    pub fn tensors(&self) -> Tensors<'_> {
        Tensors {
            params: &self.params,
            first_moment: &self.first_moment,
            second_moment: &self.second_moment,
            best_params: self.best_params.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct State {
        params: usize,
        epoch_loss_sum: f64,
        step: u64,
    }

    impl CheckpointState for State {
        fn params(&self) -> usize {
            self.params
        }
    }

    fn sample() -> State {
        State {
            params: 4,
            epoch_loss_sum: 1.25,
            step: 77,
        }
    }

    #[test]
    fn checkpoints_round_trip() {
        let state = sample();
        let params = [1.0, -2.0, 3.5, 0.0];
        let momentum = [0.1, 0.2, 0.3, 0.4];
        let t = Tensors {
            params: &params,
            first_moment: &momentum,
            second_moment: &[],
            best_params: Some(&params),
        };
        let bytes = to_bytes(&state, &t);
        let back = Checkpoint::<State>::from_bytes(Path::new("c"), &bytes).unwrap();
        assert_eq!(back.state, state);
        assert_eq!(back.params, params);
        assert_eq!(back.first_moment, momentum);
        assert_eq!(back.best_params.as_deref(), Some(&params[..]));
    }

    #[test]
    fn float_state_round_trips_exactly() {
        // serde_json parses floats exactly only with its `float_roundtrip` feature; without it
        // a resumed epoch's loss sum could differ in the last bit.
        let mut state = sample();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let values = (0..2000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64 * 1000.0
        });
        for v in values.chain([0.1 + 0.2, 1.0 / 3.0, 6.02214076e23, 5e-324]) {
            state.epoch_loss_sum = v;
            let t = Tensors {
                params: &[1.0, 2.0, 3.0, 4.0],
                first_moment: &[],
                second_moment: &[],
                best_params: None,
            };
            let back =
                Checkpoint::<State>::from_bytes(Path::new("c"), &to_bytes(&state, &t)).unwrap();
            assert_eq!(back.state.epoch_loss_sum.to_bits(), v.to_bits(), "{v:e}");
        }
    }

    #[test]
    fn damaged_checkpoints_are_refused_with_a_reason() {
        let params = [1.0, -2.0, 3.5, 0.0];
        let t = Tensors {
            params: &params,
            first_moment: &[],
            second_moment: &[],
            best_params: None,
        };
        let mut bytes = to_bytes(&sample(), &t);
        let n = bytes.len();
        bytes[n - 3] ^= 0x40; // flip a bit in the tensor data
        let err = Checkpoint::<State>::from_bytes(Path::new("c"), &bytes).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        let err = Checkpoint::<State>::from_bytes(Path::new("c"), &bytes[..n / 2]).unwrap_err();
        assert!(
            err.to_string().contains("not a dptrain checkpoint"),
            "{err}"
        );
    }
}
