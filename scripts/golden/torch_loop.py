"""Reference PyTorch training loop matching dptrain's semantics (CPU, float32).

Shared by scripts/golden/make_parity_fixtures.py and scripts/torch_parity.py.

Semantics:
  * MLP of nn.Linear layers fc1..fcK, activation between them, none after the last.
    Tensor names follow PyTorch: fc1.weight [out,in], fc1.bias [out], ...
  * Data dir: x.npy float32 (rows, features); y.npy either float32 (rows,) -> treated
    as (rows, 1), float32 (rows, outputs) for regression (mse), or int64 (rows,)
    class labels for classification (cross-entropy).
  * No shuffle: batches in file order, last partial batch kept.
  * Loss mean-reduced (nn.MSELoss / nn.CrossEntropyLoss).
  * Each batch: zero_grad, forward, loss, backward, optimizer.step().
  * torch.optim.SGD; weight decay on *.weight only (two param groups) unless
    decay_bias, in which case one param group with weight decay on everything.
  * Per-epoch loss: sum over batches of loss.item() * batch_rows / rows.
"""
import os

import numpy as np
import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,  # exact erf form (approximate='none')
}

LOSS_ALIASES = {
    "mse": "mse",
    "cross-entropy": "cross-entropy",
    "cross_entropy": "cross-entropy",
    "crossentropy": "cross-entropy",
    "ce": "cross-entropy",
}


class MLP(nn.Module):
    def __init__(self, sizes, activation):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError("need at least input and output sizes")
        self.n_layers = len(sizes) - 1
        for i in range(self.n_layers):
            setattr(self, "fc%d" % (i + 1), nn.Linear(sizes[i], sizes[i + 1]))
        self.act = ACTIVATIONS[activation]()

    def forward(self, x):
        for i in range(self.n_layers):
            x = getattr(self, "fc%d" % (i + 1))(x)
            if i + 1 < self.n_layers:
                x = self.act(x)
        return x


def parse_hidden(s):
    """'8' -> [8]; '7,4' -> [7, 4]; '' or 'none' -> []."""
    if isinstance(s, (list, tuple)):
        return [int(v) for v in s]
    s = str(s).strip()
    if s == "" or s.lower() == "none":
        return []
    return [int(v) for v in s.split(",") if v.strip() != ""]


def normalize_loss(name):
    try:
        return LOSS_ALIASES[name.lower()]
    except KeyError:
        raise ValueError("unknown loss %r" % name)


def load_data(data_dir, loss):
    """Returns (x float32 tensor [rows, in], y tensor). For mse y is float32 [rows, out]
    ((rows,) becomes (rows, 1)); for cross-entropy y is int64 [rows]."""
    x = np.load(os.path.join(data_dir, "x.npy"))
    y = np.load(os.path.join(data_dir, "y.npy"))
    if x.dtype != np.float32 or x.ndim != 2:
        raise ValueError("x.npy must be float32 2-D, got %s %s" % (x.dtype, x.shape))
    if y.shape[0] != x.shape[0]:
        raise ValueError("row mismatch: x %s y %s" % (x.shape, y.shape))
    if loss == "mse":
        if y.dtype != np.float32:
            raise ValueError("mse needs float32 y, got %s" % y.dtype)
        if y.ndim == 1:
            y = y.reshape(-1, 1)  # one output; never broadcast
        if y.ndim != 2:
            raise ValueError("y must be (rows,) or (rows, outputs)")
    else:
        if y.dtype != np.int64 or y.ndim != 1:
            raise ValueError("cross-entropy needs int64 y of shape (rows,), got %s %s" % (y.dtype, y.shape))
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))


def output_size(y, loss):
    if loss == "mse":
        return int(y.shape[1])
    return int(y.max().item()) + 1


def state_dict_f32(model):
    return {k: v.detach().to(torch.float32).contiguous().clone() for k, v in model.state_dict().items()}


def load_init(model, path):
    from safetensors.torch import load_file

    sd = load_file(path)
    expected = set(model.state_dict().keys())
    if set(sd.keys()) != expected:
        raise ValueError("init tensors %s != model tensors %s" % (sorted(sd), sorted(expected)))
    for k, v in model.state_dict().items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise ValueError("shape mismatch for %s: init %s model %s" % (k, tuple(sd[k].shape), tuple(v.shape)))
    model.load_state_dict({k: v.to(torch.float32) for k, v in sd.items()})


def sizes_from_init(path):
    """Layer sizes [in, h1, ..., out] read from an init safetensors file."""
    from safetensors.torch import load_file

    sd = load_file(path)
    k = 1
    sizes = []
    while "fc%d.weight" % k in sd:
        w = sd["fc%d.weight" % k]
        if k == 1:
            sizes.append(int(w.shape[1]))
        sizes.append(int(w.shape[0]))
        k += 1
    if not sizes:
        raise ValueError("no fc1.weight in %s" % path)
    return sizes


def make_optimizer(model, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, decay_bias=False):
    if decay_bias:
        groups = [{"params": list(model.parameters()), "weight_decay": weight_decay}]
    else:
        weights = [p for n, p in model.named_parameters() if n.endswith(".weight")]
        biases = [p for n, p in model.named_parameters() if not n.endswith(".weight")]
        groups = [
            {"params": weights, "weight_decay": weight_decay},
            {"params": biases, "weight_decay": 0.0},
        ]
    # foreach=False is the CPU default anyway; explicit for reproducibility.
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, foreach=False)


def train(model, x, y, loss, batch_size, epochs, lr, momentum=0.0, dampening=0.0, nesterov=False,
          weight_decay=0.0, decay_bias=False):
    """Trains in place. batch_size: int or 'full'. Returns (epoch_losses, batch_losses)
    where batch_losses[e] is the list of loss.item() for epoch e."""
    rows = x.shape[0]
    bs = rows if str(batch_size) == "full" else int(batch_size)
    if bs <= 0:
        raise ValueError("batch size must be positive")
    crit = nn.MSELoss() if loss == "mse" else nn.CrossEntropyLoss()
    opt = make_optimizer(model, lr, momentum, dampening, nesterov, weight_decay, decay_bias)
    epoch_losses, batch_losses = [], []
    for _ in range(epochs):
        total = 0.0
        bl = []
        for start in range(0, rows, bs):
            xb = x[start:start + bs]
            yb = y[start:start + bs]
            opt.zero_grad()
            out = model(xb)
            l = crit(out, yb)
            l.backward()
            opt.step()
            v = l.item()
            bl.append(v)
            total += v * xb.shape[0]
        epoch_losses.append(total / rows)
        batch_losses.append(bl)
    return epoch_losses, batch_losses
