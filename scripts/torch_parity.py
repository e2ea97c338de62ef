#!/usr/bin/env python3
"""Re-run a dptrain training config in PyTorch and compare final weights.

    python3 scripts/torch_parity.py --data DIR --init INIT.safetensors \
        --final FINAL_FROM_DPTRAIN.safetensors \
        --hidden 8 --activation relu --loss mse --batch-size 16 --epochs 3 \
        --lr 0.05 --momentum 0.9 [--dampening D] [--nesterov] --weight-decay 0.01 [--decay-bias]

The training flags are dptrain's (the contents of a fixture's args.txt can be appended
verbatim; --no-shuffle is required-by-semantics and accepted, --val-fraction must be 0).
Training loop: scripts/golden/torch_loop.py (no shuffle, last partial batch kept,
mean-reduced loss, SGD with weight decay on *.weight only unless --decay-bias).

For every tensor prints max|torch - dptrain| / max|torch| and exits 1 if any exceeds
--tol (default 1e-4), or if tensor names/shapes differ.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
import torch_loop  # noqa: E402


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--init", required=True)
    ap.add_argument("--final", required=True, help="dptrain's final.safetensors")
    ap.add_argument("--hidden", default="", help="comma-separated hidden sizes, e.g. 7,4")
    ap.add_argument("--activation", default="relu", choices=sorted(torch_loop.ACTIVATIONS))
    ap.add_argument("--loss", default="mse")
    ap.add_argument("--batch-size", default="32", help="integer or 'full'")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--dampening", type=float, default=0.0)
    ap.add_argument("--nesterov", action="store_true")
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--decay-bias", action="store_true")
    ap.add_argument("--no-shuffle", action="store_true", help="accepted; this tool never shuffles")
    ap.add_argument("--val-fraction", type=float, default=0.0, help="must be 0")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--write-final", default=None, help="also save PyTorch's final weights here")
    ap.add_argument("--losses", default=None, help="optional JSON with dptrain per-epoch losses "
                    "(list, or object with 'epoch_losses') to compare, same --tol, relative")
    args, unknown = ap.parse_known_args(argv)
    if unknown:
        print("warning: ignoring unknown arguments: %s" % " ".join(unknown), file=sys.stderr)
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.val_fraction != 0.0:
        print("error: --val-fraction must be 0 for parity (no held-out rows)", file=sys.stderr)
        return 2
    if args.nesterov and (args.momentum <= 0.0 or args.dampening != 0.0):
        print("error: nesterov needs momentum > 0 and dampening 0 (as in PyTorch)", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    loss = torch_loop.normalize_loss(args.loss)
    x, y = torch_loop.load_data(args.data, loss)
    hidden = torch_loop.parse_hidden(args.hidden)
    init_sizes = torch_loop.sizes_from_init(args.init)
    sizes = [int(x.shape[1])] + hidden + [init_sizes[-1]]
    if sizes != init_sizes:
        print("error: sizes from data/--hidden %s != sizes in init %s" % (sizes, init_sizes), file=sys.stderr)
        return 2
    if loss == "mse" and int(y.shape[1]) != sizes[-1]:
        print("error: y has %d outputs, init has %d" % (y.shape[1], sizes[-1]), file=sys.stderr)
        return 2
    if loss != "mse" and torch_loop.output_size(y, loss) > sizes[-1]:
        print("error: labels exceed init's %d classes" % sizes[-1], file=sys.stderr)
        return 2

    model = torch_loop.MLP(sizes, args.activation)
    torch_loop.load_init(model, args.init)
    epoch_losses, _ = torch_loop.train(
        model, x, y, loss, args.batch_size, args.epochs, args.lr,
        momentum=args.momentum, dampening=args.dampening, nesterov=args.nesterov,
        weight_decay=args.weight_decay, decay_bias=args.decay_bias,
    )
    ref = torch_loop.state_dict_f32(model)
    if args.write_final:
        from safetensors.torch import save_file
        save_file(ref, args.write_final)

    from safetensors.torch import load_file
    got = load_file(args.final)
    ok = True
    if set(got) != set(ref):
        print("FAIL tensor names differ: dptrain %s torch %s" % (sorted(got), sorted(ref)))
        ok = False
    print("torch %s; per-epoch loss (torch): %s" % (torch.__version__, ", ".join("%.6f" % v for v in epoch_losses)))
    print("%-14s %-12s %-14s %s" % ("tensor", "shape", "max_abs_diff", "rel_diff (max|a-b|/max|b|)"))
    for name in sorted(ref):
        b = ref[name]
        if name not in got:
            continue
        a = got[name].to(torch.float32)
        if tuple(a.shape) != tuple(b.shape):
            print("%-14s FAIL shape dptrain %s torch %s" % (name, tuple(a.shape), tuple(b.shape)))
            ok = False
            continue
        diff = (a.double() - b.double()).abs().max().item()
        denom = max(b.double().abs().max().item(), 1e-12)
        rel = diff / denom
        bad = not (rel <= args.tol)  # NaN counts as failure
        ok = ok and not bad
        print("%-14s %-12s %-14.3e %.3e%s" % (name, "x".join(str(s) for s in b.shape), diff, rel,
                                             "  FAIL" if bad else ""))
    if args.losses:
        with open(args.losses) as f:
            other = json.load(f)
        if isinstance(other, dict):
            other = other["epoch_losses"]
        if len(other) != len(epoch_losses):
            print("FAIL losses: dptrain has %d epochs, torch %d" % (len(other), len(epoch_losses)))
            ok = False
        else:
            for e, (o, t) in enumerate(zip(other, epoch_losses)):
                rel = abs(o - t) / max(abs(t), 1e-12)
                bad = not (rel <= args.tol)
                ok = ok and not bad
                print("epoch %d loss dptrain %.7g torch %.7g rel %.3e%s" % (e + 1, o, t, rel, "  FAIL" if bad else ""))
    print("PASS" if ok else "FAIL (tol %g)" % args.tol)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
