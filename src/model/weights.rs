//! Weights in safetensors with PyTorch's names (`fc1.weight` `[out, in]`, `fc1.bias` `[out]`, …).

use std::path::Path;

use safetensors::tensor::{Dtype as StDtype, TensorView};
use safetensors::{SafeTensors, serialize};

use serde::{Deserialize, Serialize};

use crate::data::Standardizer;
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::model::{Activation, Mlp};

/// Metadata key under which dptrain describes the model inside the safetensors header.
const META_KEY: &str = "dptrain";

/// What a weights file needs beside its tensors to be used on its own (eval, predict): stored
/// as JSON in the safetensors header's `__metadata__`, which PyTorch's loader ignores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Hidden activation.
    pub activation: Activation,
    /// The loss the model was trained on (decides regression vs classification).
    pub loss: Loss,
    /// Input standardisation fitted on the training rows, applied before the first layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standardize: Option<Standardizer>,
    /// Class names by class id, when the labels were strings at import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

/// Writes `params` of `mlp` to `path` atomically, as float32 tensors named like the seed's
/// `nn.Module`, loadable with `safetensors.torch.load_file` + `load_state_dict`, with `meta` in
/// the header.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn save(mlp: &Mlp, params: &[f32], meta: Option<&ModelMeta>, path: &Path) -> Result<()> {
    let names = mlp.tensor_names();
    let views: Vec<(String, TensorView<'_>)> = names
        .iter()
        .map(|(name, shape, range)| {
            let bytes: &[u8] = bytemuck::cast_slice(&params[range.clone()]);
            let view = TensorView::new(StDtype::F32, shape.clone(), bytes)
                .expect("shape and byte length agree by construction");
            (name.clone(), view)
        })
        .collect();
    // One metadata key at most: safetensors writes the metadata map in hash order, and a
    // single key keeps the file's bytes reproducible.
    let header = meta.map(|m| {
        std::collections::HashMap::from([(
            META_KEY.to_string(),
            serde_json::to_string(m).expect("metadata serialises"),
        )])
    });
    let bytes = serialize(views, header).map_err(|e| {
        Error::io(
            path,
            std::io::Error::other(format!("cannot serialise weights: {e}")),
        )
    })?;
    crate::fsutil::write_atomic(path, |w| std::io::Write::write_all(w, &bytes))
}

/// Reads a user-given weights file; every failure is the user's to fix, so none is an I/O error.
fn read(path: &Path) -> Result<Vec<u8>> {
    if path.is_dir() {
        return Err(Error::weights(
            path,
            "is a directory, not a .safetensors file",
        ));
    }
    std::fs::read(path).map_err(|e| {
        let what = match e.kind() {
            std::io::ErrorKind::NotFound => "file not found".to_string(),
            _ => format!("cannot read: {e}"),
        };
        Error::weights(path, what)
    })
}

/// The largest header safetensors itself accepts.
const MAX_HEADER: u64 = 100_000_000;

/// Reads only the dptrain metadata of the weights file at `path` (its header, not its
/// tensors): `None` for a file without it (e.g. one made by PyTorch).
///
/// # Errors
/// [`Error::Weights`] naming the file when it cannot be read or its header is not
/// safetensors'.
pub fn read_meta(path: &Path) -> Result<Option<ModelMeta>> {
    use std::io::Read;
    if path.is_dir() {
        return Err(Error::weights(
            path,
            "is a directory, not a .safetensors file",
        ));
    }
    let bad = |why: String| Error::weights(path, format!("not a valid safetensors file ({why})"));
    let mut file = std::fs::File::open(path).map_err(|e| {
        let what = match e.kind() {
            std::io::ErrorKind::NotFound => "file not found".to_string(),
            _ => format!("cannot read: {e}"),
        };
        Error::weights(path, what)
    })?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|_| bad("shorter than its 8-byte header length".into()))?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER {
        return Err(bad(format!("a header of {len} bytes")));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|_| bad("the file ends inside its header".into()))?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| bad(format!("header: {e}")))?;
    match header
        .get("__metadata__")
        .and_then(|m| m.get(META_KEY))
        .and_then(|v| v.as_str())
    {
        Some(json) => serde_json::from_str(json)
            .map(Some)
            .map_err(|e| Error::weights(path, format!("unreadable dptrain metadata: {e}"))),
        None => Ok(None),
    }
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes).map_err(|e| {
        Error::weights(
            path,
            format!(
                "not a valid safetensors file ({e}); write one with \
                 safetensors.torch.save_file(model.state_dict(), path) \
                 (torch.save .pt/.pth files are not supported)"
            ),
        )
    })
}

/// Reads weights for `mlp` from `path`, checking every name, shape, dtype and value.
///
/// # Errors
/// [`Error::Weights`] naming the file and the first tensor that is missing, unexpected, of the
/// wrong shape, not float32 or holding a NaN or an infinity (with the shape the model needs, and the `--hidden` that would
/// fit); [`Error::Weights`] too when the file is not safetensors.
pub fn load(mlp: &Mlp, path: &Path) -> Result<Vec<f32>> {
    let bytes = read(path)?;
    params_from(mlp, path, &parse(path, &bytes)?)
}

fn params_from(mlp: &Mlp, path: &Path, st: &SafeTensors<'_>) -> Result<Vec<f32>> {
    let expected = mlp.tensor_names();
    let mut params = vec![0.0f32; mlp.num_params()];
    for (name, shape, range) in &expected {
        let t = st.tensor(name).map_err(|_| {
            let have: Vec<String> = st.names().into_iter().map(String::from).collect();
            Error::weights(
                path,
                format!("tensor {name} is missing (the file holds {have:?})"),
            )
        })?;
        if t.dtype() != StDtype::F32 {
            return Err(Error::weights(
                path,
                format!("tensor {name} has dtype {:?}; expected F32", t.dtype()),
            ));
        }
        if t.shape() != shape.as_slice() {
            return Err(Error::weights(
                path,
                format!(
                    "tensor {name} has shape {:?} but the model needs {:?} \
                     (model layer sizes {:?}; check --hidden and the data's feature count)",
                    t.shape(),
                    shape,
                    mlp.sizes()
                ),
            ));
        }
        // Tensor data in safetensors has no alignment guarantee: copy bytewise.
        for (dst, src) in params[range.clone()]
            .iter_mut()
            .zip(t.data().chunks_exact(4))
        {
            *dst = f32::from_le_bytes(src.try_into().expect("4 bytes"));
        }
        // A NaN or an infinity would only surface later, as a training run "diverging".
        if let Some(i) = params[range.clone()].iter().position(|v| !v.is_finite()) {
            let at = match shape.as_slice() {
                [_, cols] => format!("[{}, {}]", i / cols, i % cols),
                _ => format!("[{i}]"),
            };
            return Err(Error::weights(
                path,
                format!(
                    "tensor {name} holds {} at {at}; weights must be finite numbers",
                    params[range.start + i]
                ),
            ));
        }
    }
    if let Some(extra) = st
        .names()
        .into_iter()
        .find(|n| !expected.iter().any(|(e, _, _)| e == *n))
    {
        return Err(Error::weights(
            path,
            format!(
                "unexpected tensor {extra}: the file has more layers than the model \
                 (model layer sizes {:?}; check --hidden)",
                mlp.sizes()
            ),
        ));
    }
    Ok(params)
}

/// Reads a model saved by dptrain (or made by PyTorch) from one file: the layer sizes come from
/// the tensors, activation, loss, standardisation and class names from the metadata. A file
/// without dptrain's metadata (e.g. from PyTorch) is taken as a ReLU network trained with
/// `default_loss`.
///
/// # Errors
/// [`Error::Weights`] when the file is not a usable safetensors model.
pub fn load_model(path: &Path, default_loss: Loss) -> Result<(Mlp, Vec<f32>, ModelMeta)> {
    model_from_bytes(path, &read(path)?, default_loss)
}

/// [`load_model`] on the bytes of a file (named `path` in errors): all the parsing of an
/// untrusted weights file.
///
/// # Errors
/// As [`load_model`].
pub fn model_from_bytes(
    path: &Path,
    bytes: &[u8],
    default_loss: Loss,
) -> Result<(Mlp, Vec<f32>, ModelMeta)> {
    let st = parse(path, bytes)?;
    let meta = {
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| Error::weights(path, format!("not a valid safetensors file ({e})")))?;
        match header.metadata().as_ref().and_then(|m| m.get(META_KEY)) {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| Error::weights(path, format!("unreadable dptrain metadata: {e}")))?,
            None => ModelMeta {
                activation: Activation::Relu,
                loss: default_loss,
                standardize: None,
                labels: None,
            },
        }
    };
    let mlp = Mlp::new(sizes_from(path, &st)?, meta.activation, 0.0);
    let params = params_from(&mlp, path, &st)?;
    if let Some(s) = &meta.standardize
        && (s.features() != mlp.inputs() || s.std.len() != s.features())
    {
        return Err(Error::weights(
            path,
            format!(
                "standardisation has {} features but fc1.weight takes {}",
                s.features(),
                mlp.inputs()
            ),
        ));
    }
    if let Some(labels) = &meta.labels
        && labels.len() != mlp.outputs()
    {
        return Err(Error::weights(
            path,
            format!(
                "the metadata names {} classes but the model has {} outputs",
                labels.len(),
                mlp.outputs()
            ),
        ));
    }
    Ok((mlp, params, meta))
}

/// Reads the layer sizes a weights file describes (`fc1.weight` … `fcK.weight`), so a model
/// can be rebuilt from a file alone.
///
/// # Errors
/// [`Error::Weights`] when the file is not safetensors or the tensors do not chain.
pub fn sizes_in(path: &Path) -> Result<Vec<usize>> {
    let bytes = read(path)?;
    sizes_from(path, &parse(path, &bytes)?)
}

fn sizes_from(path: &Path, st: &SafeTensors<'_>) -> Result<Vec<usize>> {
    let mut sizes = Vec::new();
    for k in 1.. {
        let Ok(t) = st.tensor(&format!("fc{k}.weight")) else {
            break;
        };
        let s = t.shape();
        if s.len() != 2 || s.contains(&0) || (k > 1 && sizes.last() != Some(&s[1])) {
            return Err(Error::weights(
                path,
                format!("fc{k}.weight has shape {s:?}, which does not follow the previous layer"),
            ));
        }
        if k == 1 {
            sizes.push(s[1]);
        }
        sizes.push(s[0]);
    }
    if sizes.is_empty() {
        return Err(Error::weights(path, "no tensor named fc1.weight"));
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_round_trip_and_mismatches_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let mlp = Mlp::new(vec![3, 4, 2], Activation::Relu, 0.0);
        let p = mlp.init_params(3);
        let meta = ModelMeta {
            activation: Activation::Relu,
            loss: Loss::Mse,
            standardize: None,
            labels: Some(vec!["a".into(), "b".into()]),
        };
        save(&mlp, &p, Some(&meta), &path).unwrap();
        let (m2, p2, meta2) = load_model(&path, Loss::CrossEntropy).unwrap();
        assert_eq!((m2.sizes(), &p2, &meta2), (mlp.sizes(), &p, &meta));
        assert_eq!(load(&mlp, &path).unwrap(), p);
        assert_eq!(sizes_in(&path).unwrap(), vec![3, 4, 2]);
        let wider = Mlp::new(vec![3, 5, 2], Activation::Relu, 0.0);
        let err = load(&wider, &path).unwrap_err().to_string();
        assert!(err.contains("fc1.weight has shape [4, 3]"), "{err}");
        let deeper = Mlp::new(vec![3, 4, 4, 2], Activation::Relu, 0.0);
        let err = load(&deeper, &path).unwrap_err().to_string();
        assert!(err.contains("fc2.weight has shape [2, 4]"), "{err}");
        assert_eq!(read_meta(&path).unwrap(), Some(meta));
        save(&mlp, &p, None, &path).unwrap();
        assert_eq!(read_meta(&path).unwrap(), None);
    }

    #[test]
    fn a_weight_that_is_not_finite_is_refused_naming_the_tensor_and_the_element() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let mlp = Mlp::new(vec![3, 4, 2], Activation::Relu, 0.0);
        let mut p = mlp.init_params(3);
        p[mlp.layers()[1].weight + 5] = f32::NAN; // fc2.weight [1, 1]
        save(&mlp, &p, None, &path).unwrap();
        let err = load(&mlp, &path).unwrap_err().to_string();
        assert!(
            err.contains("tensor fc2.weight holds NaN at [1, 1]"),
            "{err}"
        );
        let err = load_model(&path, Loss::Mse).unwrap_err().to_string();
        assert!(err.contains("fc2.weight"), "{err}");
    }
}
