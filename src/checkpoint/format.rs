//! The checkpoint file format: a safetensors file whose large vectors are tensors (`params`,
//! `momentum`, `second_moment`, `best_params`) and whose state is JSON in the header's metadata
//! under `dptrain.checkpoint`.
//!
//! Reusing safetensors means one well-tested parser for every binary file dptrain reads; a
//! checksum over the tensor bytes catches a file damaged after it was written. What the state
//! holds is the caller's ([`CheckpointState`]): this module knows how to write and read, not
//! what a training run is.
//!
//! # Format versions
//! - 2 (this one): the checksum is XXH3-64 over each vector's length (8 bytes, little-endian)
//!   and then its float32 bytes (little-endian), in the order `params`, first moment, second
//!   moment, best parameters.
//! - 1: the same file with a hand-rolled checksum (a SplitMix64 chain). It is refused with a
//!   message saying so, not read: this dptrain no longer computes that checksum, and a
//!   checkpoint it cannot verify must not resume a run.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::{SafeTensors, serialize};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const META_KEY: &str = "dptrain.checkpoint";
const FORMAT: u32 = 2;

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

/// XXH3-64 over each part's length and its float32 bytes (see the module doc). The bytes are
/// the values' own little-endian encodings, as the file stores them, on any machine.
fn checksum(parts: &[&[f32]]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = Vec::with_capacity(4096);
    for part in parts {
        h.update(&(part.len() as u64).to_le_bytes());
        for chunk in part.chunks(1024) {
            buf.clear();
            buf.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            h.update(&buf);
        }
    }
    h.digest()
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
    // The tensor names are the file format's (since version 1): `momentum` holds the first
    // moment.
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
        match format.get("format").and_then(|f| f.as_u64()) {
            Some(f) if f == FORMAT as u64 => {}
            Some(1) => {
                return Err(bad(format!(
                    "checkpoint format 1 was written by an older dptrain, whose checksum this \
                     one no longer computes (it reads format {FORMAT}); finish the run with the \
                     dptrain that wrote it, or train again with a new --out"
                )));
            }
            _ => {
                return Err(bad(format!(
                    "checkpoint format {} is not supported (this dptrain reads format {FORMAT})",
                    format.get("format").map_or("?".into(), |f| f.to_string())
                )));
            }
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
    fn the_checksum_is_xxh3_of_each_vectors_length_and_bytes() {
        let (a, b) = ([1.0f32, -2.5, 3.25], [0.5f32]);
        let mut bytes = Vec::new();
        for part in [&a[..], &b[..], &[]] {
            bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
            bytes.extend(part.iter().flat_map(|v| v.to_le_bytes()));
        }
        assert_eq!(checksum(&[&a, &b, &[]]), xxhash_rust::xxh3::xxh3_64(&bytes));
        // Longer than one internal chunk of 1024 values.
        let long: Vec<f32> = (0..5000).map(|i| i as f32 * 0.25).collect();
        let mut bytes = (long.len() as u64).to_le_bytes().to_vec();
        bytes.extend(long.iter().flat_map(|v| v.to_le_bytes()));
        assert_eq!(checksum(&[&long]), xxhash_rust::xxh3::xxh3_64(&bytes));
    }

    #[test]
    fn a_format_1_checkpoint_is_refused_saying_what_to_do() {
        let t = Tensors {
            params: &[1.0, 2.0, 3.0, 4.0],
            first_moment: &[],
            second_moment: &[],
            best_params: None,
        };
        let bytes = to_bytes(&sample(), &t);
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let mut meta = meta.metadata().clone().unwrap();
        let json = meta[META_KEY].replace("\"format\":2", "\"format\":1");
        assert!(json.contains("\"format\":1"), "{json}");
        meta.insert(META_KEY.to_string(), json);
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let old = serialize(st.tensors(), Some(meta)).unwrap();
        let err = Checkpoint::<State>::from_bytes(Path::new("c"), &old).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("format 1") && msg.contains("older dptrain") && msg.contains("--out"),
            "{msg}"
        );
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
