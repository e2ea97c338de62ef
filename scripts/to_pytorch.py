#!/usr/bin/env python3
"""Load a dptrain model into the seed's PyTorch nn.Module and reproduce its predictions.

    python3 scripts/to_pytorch.py RUN_DIR|FILE.safetensors --data DIR [--dptrain BIN] [--tol 1e-4]

RUN_DIR means RUN_DIR/final.safetensors. The module is the seed article's MLP: nn.Linear layers
fc1, fc2, ... with the stored activation between them and none after the last; its state dict is
read with safetensors.torch.load_file and loaded with load_state_dict (strict). The activation,
loss, input standardisation and class names come from the "dptrain" entry of the safetensors
metadata (a file without it is taken as a ReLU regression model with no standardisation).

The model runs on DIR/x.npy, standardised with the stored mean and deviation first. With a
dptrain binary (--dptrain BIN, else `dptrain` on PATH, else target/release or target/debug of
this repository), the script runs `dptrain predict --raw` and `dptrain predict` on the same
data and compares: the outputs must agree to --tol (max|torch - dptrain| / max|torch|), and
the class ids must agree on every row except near-ties (top two logits within --tol of the
scale). Exit status 1 on a disagreement. Without a binary it prints the first predictions.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """The seed's network: fc1 -> act -> fc2 -> act -> ... -> fcK."""

    def __init__(self, sizes, activation):
        super().__init__()
        self.depth = len(sizes) - 1
        for i in range(self.depth):
            setattr(self, f"fc{i + 1}", nn.Linear(sizes[i], sizes[i + 1]))
        self.act = ACTIVATIONS[activation]()

    def forward(self, x):
        for i in range(1, self.depth):
            x = self.act(getattr(self, f"fc{i}")(x))
        return getattr(self, f"fc{self.depth}")(x)


def weights_path(path):
    return os.path.join(path, "final.safetensors") if os.path.isdir(path) else path


def read_meta(path):
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    if "dptrain" not in meta:
        return {"activation": "relu", "loss": "mse"}
    return json.loads(meta["dptrain"])


def load(path):
    """The nn.Module with the file's weights, and dptrain's metadata."""
    meta = read_meta(path)
    state = load_file(path)
    sizes = []
    k = 1
    while f"fc{k}.weight" in state:
        out, inp = state[f"fc{k}.weight"].shape
        if k == 1:
            sizes.append(inp)
        sizes.append(out)
        k += 1
    if not sizes:
        sys.exit(f"{path}: no tensor named fc1.weight")
    model = MLP(sizes, meta["activation"])
    model.load_state_dict(state)  # strict: every name and shape must match
    model.eval()
    return model, meta


def torch_outputs(model, meta, x):
    x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    std = meta.get("standardize")
    if std:
        # Same float32 operations as dptrain: (x - mean) / std.
        x = (x - torch.tensor(std["mean"], dtype=torch.float32)) / torch.tensor(
            std["std"], dtype=torch.float32
        )
    with torch.no_grad():
        return model(x).numpy()


def find_dptrain(flag):
    if flag:
        return flag
    on_path = shutil.which("dptrain")
    if on_path:
        return on_path
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for profile in ("release", "debug"):
        candidate = os.path.join(root, "target", profile, "dptrain")
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def dptrain_predict(binary, model_path, data, raw):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "p.npy")
        cmd = [binary, "predict", "--model", model_path, "--data", data, "--out", out]
        if raw:
            cmd.append("--raw")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return np.load(out)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("model", help="run directory or .safetensors file")
    ap.add_argument("--data", required=True, help="dataset directory holding x.npy")
    ap.add_argument("--dptrain", help="dptrain binary to compare with")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args(argv)

    path = weights_path(a.model)
    model, meta = load(path)
    x = np.load(os.path.join(a.data, "x.npy"))
    out = torch_outputs(model, meta, x)
    classifier = meta.get("loss") == "cross-entropy"
    labels = meta.get("labels")
    sizes = [model.fc1.in_features] + [
        getattr(model, f"fc{i}").out_features for i in range(1, model.depth + 1)
    ]
    print(
        f"{path}: MLP {sizes} ({meta['activation']}, {meta.get('loss', 'mse')}, "
        f"standardize={'yes' if meta.get('standardize') else 'no'}) on {len(x)} rows"
    )

    binary = find_dptrain(a.dptrain)
    if binary is None:
        shown = out.argmax(axis=1) if classifier else out
        for row in shown[:10]:
            print(labels[int(row)] if classifier and labels else row)
        print("no dptrain binary found: printed PyTorch's predictions only")
        return 0

    ours = dptrain_predict(binary, path, a.data, raw=True).reshape(out.shape)
    scale = max(float(np.abs(out).max()), 1e-12)
    rel = float(np.abs(out - ours).max()) / scale
    ok = rel <= a.tol
    print(f"outputs: max|torch - dptrain| / max|torch| = {rel:.3e} (tol {a.tol:g})")
    if classifier:
        ids = dptrain_predict(binary, path, a.data, raw=False)
        torch_ids = out.argmax(axis=1)
        differ = np.nonzero(torch_ids != ids)[0]
        top2 = np.sort(out, axis=1)[:, -2:]
        near_tie = (top2[:, 1] - top2[:, 0]) <= a.tol * scale
        real = [int(r) for r in differ if not near_tie[r]]
        print(
            f"class ids: agree on {len(ids) - len(differ)}/{len(ids)} rows"
            + (f" ({len(differ)} near-ties)" if len(differ) and not real else "")
        )
        if real:
            print(f"class ids differ on rows {real[:10]}")
            ok = False
    print("PyTorch reproduces dptrain's predictions" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
