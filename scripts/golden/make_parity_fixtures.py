#!/usr/bin/env python3
"""Generates tests/fixtures/parity/<case>/ for dptrain's end-to-end PyTorch parity test.

Each case dir gets:
  x.npy             float32 (rows, features), C order
  y.npy             float32 (rows,) / (rows, outputs) for mse; int64 (rows,) for cross-entropy
  init.safetensors  torch.manual_seed(seed) + default nn.Linear init (fc1.weight, fc1.bias, ...)
  final.safetensors PyTorch weights after training with the loop in torch_loop.py
  args.txt          dptrain flags other than --data/--init/--out (one line)
  losses.json       per-epoch sample-weighted mean training loss (+ per-batch losses)

Deterministic and rerunnable:
    python3 scripts/golden/make_parity_fixtures.py            # writes tests/fixtures/parity
    python3 scripts/golden/make_parity_fixtures.py --out DIR  # elsewhere
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_loop  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

CASES = [
    dict(
        name="mse_momentum",
        data_seed=101, init_seed=1001,
        rows=100, features=6, outputs=None,  # y shape (rows,)
        classes=None, hidden=[8], activation="relu", loss="mse",
        batch_size=16, epochs=3, lr=0.05, momentum=0.9, dampening=0.0, nesterov=False,
        weight_decay=0.01, decay_bias=False,
    ),
    dict(
        name="mse_nesterov_multi_out",
        data_seed=202, init_seed=2002,
        rows=90, features=5, outputs=2,
        classes=None, hidden=[7, 4], activation="tanh", loss="mse",
        batch_size=32, epochs=4, lr=0.02, momentum=0.9, dampening=0.0, nesterov=True,
        weight_decay=0.001, decay_bias=False,
    ),
    dict(
        name="ce_momentum_decay",
        data_seed=303, init_seed=3003,
        rows=120, features=4, outputs=None,
        classes=3, hidden=[10], activation="relu", loss="cross-entropy",
        batch_size=25, epochs=3, lr=0.1, momentum=0.8, dampening=0.1, nesterov=False,
        weight_decay=0.005, decay_bias=False,
    ),
    dict(
        name="ce_full_batch_nesterov",
        data_seed=404, init_seed=4004,
        rows=64, features=3, outputs=None,
        classes=4, hidden=[6], activation="relu", loss="cross-entropy",
        batch_size="full", epochs=10, lr=0.5, momentum=0.9, dampening=0.0, nesterov=True,
        weight_decay=0.01, decay_bias=True,
    ),
]


def teacher(rng, x, n_out):
    """Random one-hidden-layer tanh teacher: R^features -> R^n_out."""
    f = x.shape[1]
    h = 12
    w1 = rng.normal(0.0, 1.0 / np.sqrt(f), size=(f, h))
    b1 = rng.normal(0.0, 0.3, size=(h,))
    w2 = rng.normal(0.0, 1.0 / np.sqrt(h), size=(h, n_out))
    b2 = rng.normal(0.0, 0.3, size=(n_out,))
    return np.tanh(x @ w1 + b1) @ w2 + b2


def make_data(c):
    rng = np.random.RandomState(c["data_seed"])
    x = rng.normal(0.0, 1.0, size=(c["rows"], c["features"]))
    if c["loss"] == "mse":
        n_out = 1 if c["outputs"] is None else c["outputs"]
        y = teacher(rng, x, n_out) + rng.normal(0.0, 0.05, size=(c["rows"], n_out))
        if c["outputs"] is None:
            y = y[:, 0]  # shape (rows,): one output
        return x.astype(np.float32), np.ascontiguousarray(y.astype(np.float32))
    k = c["classes"]
    # Retry until every class occurs (so classes = max label + 1 on any reader).
    while True:
        t = teacher(rng, x, k)
        t = (t - t.mean(axis=0)) / (t.std(axis=0) + 1e-6)  # roughly balanced classes
        logits = 2.0 * t + rng.gumbel(0.0, 0.3, size=(c["rows"], k))
        y = np.argmax(logits, axis=1).astype(np.int64)
        if len(np.unique(y)) == k:
            return x.astype(np.float32), y


def args_line(c):
    a = [
        "--hidden", ",".join(str(h) for h in c["hidden"]),
        "--activation", c["activation"],
        "--loss", c["loss"],
        "--batch-size", str(c["batch_size"]),
        "--no-shuffle",
        "--epochs", str(c["epochs"]),
        "--lr", repr(c["lr"]),
        "--momentum", repr(c["momentum"]),
    ]
    if c["dampening"] != 0.0:
        a += ["--dampening", repr(c["dampening"])]
    if c["nesterov"]:
        a += ["--nesterov"]
    a += ["--weight-decay", repr(c["weight_decay"])]
    if c["decay_bias"]:
        a += ["--decay-bias"]
    a += ["--val-fraction", "0"]
    return " ".join(a)


def make_case(c, out_root):
    d = os.path.join(out_root, c["name"])
    os.makedirs(d, exist_ok=True)
    x, y = make_data(c)
    np.save(os.path.join(d, "x.npy"), x)
    np.save(os.path.join(d, "y.npy"), y)

    n_out = (1 if c["outputs"] is None else c["outputs"]) if c["loss"] == "mse" else c["classes"]
    sizes = [c["features"]] + c["hidden"] + [n_out]
    torch.manual_seed(c["init_seed"])
    model = torch_loop.MLP(sizes, c["activation"])
    save_file(torch_loop.state_dict_f32(model), os.path.join(d, "init.safetensors"))

    # Train from the saved file exactly as torch_parity.py does.
    xt, yt = torch_loop.load_data(d, c["loss"])
    assert torch_loop.output_size(yt, c["loss"]) == n_out
    model = torch_loop.MLP(sizes, c["activation"])
    torch_loop.load_init(model, os.path.join(d, "init.safetensors"))
    epoch_losses, batch_losses = torch_loop.train(
        model, xt, yt, c["loss"], c["batch_size"], c["epochs"], c["lr"],
        momentum=c["momentum"], dampening=c["dampening"], nesterov=c["nesterov"],
        weight_decay=c["weight_decay"], decay_bias=c["decay_bias"],
    )
    save_file(torch_loop.state_dict_f32(model), os.path.join(d, "final.safetensors"))
    with open(os.path.join(d, "args.txt"), "w") as f:
        f.write(args_line(c) + "\n")
    with open(os.path.join(d, "losses.json"), "w") as f:
        json.dump({
            "epoch_losses": epoch_losses,
            "batch_losses": batch_losses,
            "note": "epoch_losses[e] = sum over batches of loss.item() * batch_rows / rows",
            "torch_version": torch.__version__,
        }, f, indent=2)
        f.write("\n")
    print("%-24s sizes=%s epoch_losses=%s" % (c["name"], sizes, ["%.6f" % v for v in epoch_losses]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "parity"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for c in CASES:
        make_case(c, args.out)


if __name__ == "__main__":
    main()
