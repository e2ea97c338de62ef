#!/usr/bin/env python3
"""Golden values for torch.nn.utils.clip_grad_norm_ followed by SGD / Adam / AdamW (CPU, float32).

Same tiny problem as sgd_golden.py / adam_golden.py: params w (2,3) "weight" and b (2,) "bias"
with fixed initial literals; gradients for steps t=0..3 are fixed literals set via p.grad (no
autograd). Two param groups: {w, weight_decay=0.01}, {b, weight_decay=0} (weights decayed, biases
not). Each step: set w.grad / b.grad, then
    total_norm = torch.nn.utils.clip_grad_norm_([w, b], max_norm=MAX, norm_type=2.0, foreach=False)
then opt.step(). Weight decay is applied inside the optimizer, i.e. AFTER clipping (the wd term
is not clipped).

Output: Rust constants. `<NAME>_PARAMS` rows are the flattened w (row-major, 6 values) followed
by b (2 values) AFTER step t (t=0..3). `<NAME>_NORMS` is the total norm returned by
clip_grad_norm_ at each step (computed from the raw, unclipped grads). The gradients are fixed
literals, so the norms are the same for every config; they are printed per config anyway.

    python3 scripts/golden/clip_golden.py > scripts/golden/clip_golden.out.txt

PyTorch clip_grad_norm_ reference (torch/nn/utils/clip_grad.py, foreach=False, norm_type=2.0),
all arithmetic on float32 tensors:
    grads = [p.grad for p in parameters if p.grad is not None]
    norms = [torch.linalg.vector_norm(g, 2.0) for g in grads]        # one norm per tensor
    total_norm = torch.linalg.vector_norm(torch.stack(norms), 2.0)    # norm of the norms
    clip_coef = max_norm / (total_norm + 1e-6)
        # Tensor.__rtruediv__ is `self.reciprocal() * other`, so this is evaluated as
        # (total_norm + 1e-6).reciprocal() * max_norm  (f32 add, f32 reciprocal, f32 mul)
    clip_coef_clamped = torch.clamp(clip_coef, max=1.0)
    for g in grads: g.mul_(clip_coef_clamped)     # ALWAYS, even when the coefficient is 1.0
    return total_norm                             # the pre-clipping norm

Bit-level notes (checked against a Python emulation with torch 2.15.0 on an AVX512 x86 CPU):
  * each f32 vector_norm here equals sequential fused multiply-add accumulation in f32,
    s = fma(x, x, s) over elements in order, then sqrt (a plain s += x*x with separate rounding
    differs by 1 ulp for the w grad of step 2); the total norm is the same thing over [|gw|, |gb|].
  * reciprocal()*max_norm differs from max_norm/x by 1 ulp for max_norm=0.3 at steps 1..3.
"""
import torch

torch.set_num_threads(1)

W0 = [[0.5, -0.25, 1.0], [0.75, 0.1, -0.6]]
B0 = [0.2, -0.3]
GRADS_W = [
    [[0.1, -0.2, 0.3], [-0.4, 0.5, -0.6]],
    [[0.25, 0.05, -0.15], [0.35, -0.45, 0.55]],
    [[-0.3, 0.2, 0.1], [0.0, -0.1, 0.2]],
    [[0.05, -0.05, 0.4], [-0.2, 0.3, -0.35]],
]
GRADS_B = [
    [0.15, -0.25],
    [-0.05, 0.4],
    [0.3, 0.1],
    [-0.2, -0.15],
]

SGD_KW = dict(lr=0.1, momentum=0.9, dampening=0.0, nesterov=False)
ADAM_KW = dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8)

# name: (optimizer class, kwargs, wd on w, max_norm, expectation about clipping)
#   "always": clip coefficient < 1 at every step (checked below)
#   "never":  clip coefficient clamps to exactly 1.0 at every step, grads unchanged (checked below)
CONFIGS = [
    # max_norm=0.5 clips at every step: the step norms are ~0.997, ~0.937, ~0.539, ~0.693 > 0.5.
    ("CLIP_SGD_MOMENTUM_WD", torch.optim.SGD, SGD_KW, 0.01, 0.5, "always"),
    # max_norm=10.0 never clips: max_norm / (norm + 1e-6) > 1, clamped to 1.0 (grads *= 1.0).
    ("CLIP_SGD_NO_CLIP", torch.optim.SGD, SGD_KW, 0.01, 10.0, "never"),
    # max_norm=0.3 clips at every step.
    ("CLIP_ADAM", torch.optim.Adam, ADAM_KW, 0.01, 0.3, "always"),
    ("CLIP_ADAMW", torch.optim.AdamW, ADAM_KW, 0.01, 0.3, "always"),
]


def fmt(v):
    return "%.9e" % v


def run(cls, kwargs, wd_w, max_norm, expect):
    w = torch.tensor(W0, dtype=torch.float32, requires_grad=True)
    b = torch.tensor(B0, dtype=torch.float32, requires_grad=True)
    # foreach=False: the single-tensor path (for-loop implementation).
    opt = cls(
        [
            {"params": [w], "weight_decay": wd_w},
            {"params": [b], "weight_decay": 0.0},
        ],
        foreach=False,
        **kwargs,
    )
    rows, norms, coefs = [], [], []
    for t in range(4):
        opt.zero_grad()
        w.grad = torch.tensor(GRADS_W[t], dtype=torch.float32)
        b.grad = torch.tensor(GRADS_B[t], dtype=torch.float32)
        raw = [w.grad.clone(), b.grad.clone()]
        total_norm = torch.nn.utils.clip_grad_norm_([w, b], max_norm=max_norm, norm_type=2.0, foreach=False)
        assert total_norm.dtype == torch.float32
        # Recompute the coefficient exactly as torch does (see docstring) and check it against
        # what clip_grad_norm_ did to the grads.
        coef = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)
        assert torch.equal(w.grad, raw[0] * coef) and torch.equal(b.grad, raw[1] * coef)
        if expect == "always":
            assert coef.item() < 1.0, (t, coef.item())
        else:
            assert coef.item() == 1.0, (t, coef.item())
            assert torch.equal(w.grad, raw[0]) and torch.equal(b.grad, raw[1])
        opt.step()
        rows.append(w.detach().flatten().tolist() + b.detach().flatten().tolist())
        norms.append(total_norm.item())
        coefs.append(coef.item())
    return rows, norms, coefs


def rust_rows(name, rows):
    n = len(rows[0])
    out = ["const %s: [[f32; %d]; %d] = [" % (name, n, len(rows))]
    for r in rows:
        out.append("    [" + ", ".join(fmt(v) for v in r) + "],")
    out.append("];")
    return "\n".join(out)


def rust_vec(name, ty, vals, f=fmt):
    return "const %s: [%s; %d] = [%s];" % (name, ty, len(vals), ", ".join(f(v) for v in vals))


def main():
    print("// Generated by scripts/golden/clip_golden.py with torch %s (CPU, float32)." % torch.__version__)
    print("// Each step: set grads; total_norm = clip_grad_norm_([w, b], max_norm, norm_type=2.0, foreach=False);")
    print("// opt.step(). <NAME>_PARAMS rows: flattened w (2x3, row-major) then b (2) after steps 1..4.")
    print("// <NAME>_NORMS: total norm returned by clip_grad_norm_ at steps 1..4 (before clipping).")
    print("//")
    print("// torch clip_grad_norm_ semantics (torch/nn/utils/clip_grad.py), all in f32:")
    print("//   norms = [vector_norm(g, 2.0) for g in grads]          (per-tensor L2 norms)")
    print("//   total_norm = vector_norm(stack(norms), 2.0)           (L2 norm of the per-tensor norms)")
    print("//   clip_coef = max_norm / (total_norm + 1e-6)            (Tensor.__rtruediv__ = reciprocal() * max_norm)")
    print("//   clip_coef_clamped = clamp(clip_coef, max=1.0)")
    print("//   g.mul_(clip_coef_clamped) for every grad, unconditionally (also when the coef is 1.0)")
    print("//   returns total_norm (pre-clipping). Weight decay is added later, inside opt.step().")
    print("// Observed bit-exact on this CPU: each f32 L2 norm = sqrt of sequential s = fma(x, x, s) in f32;")
    print("// the coefficient is (1/(n+1e-6))*max_norm in f32, which is 1 ulp off max_norm/(n+1e-6) for max_norm=0.3.")
    print("// Initial params and per-step gradients:")
    print("const W0: [[f32; 3]; 2] = [" + ", ".join("[" + ", ".join(fmt(v) for v in r) + "]" for r in W0) + "];")
    print("const B0: [f32; 2] = [" + ", ".join(fmt(v) for v in B0) + "];")
    print("const GRADS_W: [[[f32; 3]; 2]; 4] = [")
    for g in GRADS_W:
        print("    [" + ", ".join("[" + ", ".join(fmt(v) for v in r) + "]" for r in g) + "],")
    print("];")
    print("const GRADS_B: [[f32; 2]; 4] = [")
    for g in GRADS_B:
        print("    [" + ", ".join(fmt(v) for v in g) + "],")
    print("];")
    for name, cls, kw, wd_w, max_norm, expect in CONFIGS:
        rows, norms, coefs = run(cls, kw, wd_w, max_norm, expect)
        print()
        print("// %s: %s %s weight_decay(w)=%s weight_decay(b)=0.0 max_norm=%s (%s clips)"
              % (name, cls.__name__, kw, wd_w, max_norm, "always" if expect == "always" else "never"))
        print("// clamped clip coefficient per step: " + ", ".join(fmt(c) for c in coefs))
        print(rust_rows(name + "_PARAMS", rows))
        print(rust_vec(name + "_NORMS", "f32", norms))


if __name__ == "__main__":
    main()
