//! dptrain ends on PyTorch's weights, to float rounding, when given the same data, the same
//! initial weights and the same batch order (`--no-shuffle`).
//!
//! The fixtures under `tests/fixtures/parity/` were produced by PyTorch 2.15 with
//! `python3 scripts/golden/make_parity_fixtures.py` (training loop in
//! `scripts/golden/torch_loop.py`: `DataLoader`-equivalent file-order batches, last partial batch
//! kept, `nn.MSELoss` / `nn.CrossEntropyLoss`, `torch.optim.SGD` with two parameter groups,
//! weights decayed and biases not, unless `--decay-bias`). See that folder's README.

use std::path::Path;
use std::process::Command;

use safetensors::SafeTensors;

fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let t = st.tensor(&n).unwrap();
            let v = t
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            (n, v)
        })
        .collect()
}

fn check_case(case: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/parity")
        .join(case);
    let args = std::fs::read_to_string(dir.join("args.txt")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = out.path().join("run");
    let status = Command::new(env!("CARGO_BIN_EXE_dptrain"))
        .arg("train")
        .arg("--data")
        .arg(&dir)
        .arg("--init")
        .arg(dir.join("init.safetensors"))
        .arg("--out")
        .arg(&run)
        .arg("--threads")
        .arg("2")
        .args(args.split_whitespace())
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{case}: {}",
        String::from_utf8_lossy(&status.stderr)
    );

    let ours = tensors(&run.join("final.safetensors"));
    let torch = tensors(&dir.join("final.safetensors"));
    assert_eq!(
        ours.iter().map(|t| &t.0).collect::<Vec<_>>(),
        torch.iter().map(|t| &t.0).collect::<Vec<_>>(),
        "{case}: tensor names"
    );
    for ((name, a), (_, b)) in ours.iter().zip(&torch) {
        let max_b = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let max_diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        let rel = max_diff / max_b;
        assert!(
            rel < 1e-4,
            "{case}: {name} differs from PyTorch by {rel:e} (relative)"
        );
    }

    // The per-epoch training loss is PyTorch's sample-weighted mean of loss.item() per batch.
    let losses: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("losses.json")).unwrap()).unwrap();
    let torch_losses: Vec<f64> = losses["epoch_losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let ours: Vec<f64> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["train_loss"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(ours.len(), torch_losses.len(), "{case}: epochs");
    for (e, (a, b)) in ours.iter().zip(&torch_losses).enumerate() {
        assert!(
            ((a - b) / b).abs() < 1e-4,
            "{case}: epoch {} loss {a} vs PyTorch {b}",
            e + 1
        );
    }
}

#[test]
fn mse_with_momentum_and_weight_decay_matches_pytorch() {
    check_case("mse_momentum");
}

#[test]
fn mse_with_nesterov_two_hidden_layers_and_two_outputs_matches_pytorch() {
    check_case("mse_nesterov_multi_out");
}

#[test]
fn cross_entropy_with_momentum_dampening_and_weight_decay_matches_pytorch() {
    check_case("ce_momentum_decay");
}

#[test]
fn full_batch_cross_entropy_with_nesterov_and_decayed_biases_matches_pytorch() {
    check_case("ce_full_batch_nesterov");
}
