#!/usr/bin/env python3
"""dptrain's training step next to PyTorch's plain loop and JAX's jitted loop, interleaved.

    python3 scripts/bench_step.py [--case large|seed|all] [--repeats 3] [--threads 2]
                                  [--peak GFLOPS_PER_CORE]

Each round runs, one right after the other on the same data: every dptrain build given (the
current `target/release/dptrain`, and DPTRAIN_BEFORE=path for an older one), then
../shared/anchors/pytorch_reference.py --style plain, then ../shared/anchors/jax_reference.py
(when `import jax` works). Every figure is samples/s of the training loop as the program
measures it itself: dptrain's `train_s` (steps only: start-up, validation and checkpoints
excluded), PyTorch's loop time, JAX's loop time with compilation excluded (a warm-up epoch
first). It prints the medians, dptrain's ratio to the faster anchor, and for the large MLP the
useful GFLOP/s (9.56 MFLOP per sample: forward, weight gradients and the input gradients of
every layer but the first) and, with --peak (one core's FMA peak from `cargo bench -- peak`),
their share of threads × that peak.

Needs `cargo build --release`, `pip install torch numpy jax`.
"""
import argparse, importlib.util, json, os, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS = os.path.join(ROOT, "..", "shared", "anchors")

CASES = {
    # name: (gen flags, hidden, batch, epochs, MFLOP per sample or None)
    "large": (["--task", "classification", "--rows", "60000", "--features", "784",
               "--classes", "10"], "1024,1024", 256, 1, 9.56),
    "seed": (["--task", "regression", "--rows", "1000", "--features", "20"], "50", 32, 20, None),
}


def dptrain(binary, data, hidden, batch, epochs, threads, out):
    cmd = [binary, "train", "--data", data, "--hidden", hidden, "--batch-size", str(batch),
           "--epochs", str(epochs), "--threads", str(threads), "--val-fraction", "0",
           "--out", out]
    subprocess.run(cmd, check=True, capture_output=True)
    s = json.load(open(os.path.join(out, "summary.json")))
    return s["samples"] / s["train_s"], s.get("kernels", "?")


def anchor(script, data, hidden, batch, epochs, threads):
    cmd = [sys.executable, os.path.join(ANCHORS, script), "--data", data, "--hidden", hidden,
           "--batch-size", str(batch), "--epochs", str(epochs)]
    if script.startswith("pytorch"):
        cmd += ["--threads", str(threads), "--style", "plain"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    line = json.loads(out.stdout.strip().splitlines()[-1])
    if "samples_per_s" in line:
        return line["samples_per_s"]
    return line["samples"] / line["loop_s"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--case", default="all", choices=["large", "seed", "all"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--peak", type=float, help="one core's FMA peak, GFLOP/s")
    a = p.parse_args()
    builds = {"dptrain": os.path.join(ROOT, "target", "release", "dptrain")}
    if os.environ.get("DPTRAIN_BEFORE"):
        builds["dptrain_before"] = os.environ["DPTRAIN_BEFORE"]
    anchors = {"torch_plain": "pytorch_reference.py"}
    if importlib.util.find_spec("jax"):
        anchors["jax_jit_scan"] = "jax_reference.py"
    else:
        print("jax is not installed: JAX skipped (pip install jax)", file=sys.stderr)
    cases = list(CASES) if a.case == "all" else [a.case]
    with tempfile.TemporaryDirectory() as tmp:
        for name in cases:
            gen, hidden, batch, epochs, mflop = CASES[name]
            data = os.path.join(tmp, name)
            subprocess.run([builds["dptrain"], "gen", *gen, "--seed", "1", "--out", data],
                           check=True, capture_output=True)
            rates = {k: [] for k in [*builds, *anchors]}
            kernels = {}
            for r in range(a.repeats):
                for k, binary in builds.items():
                    out = os.path.join(tmp, f"{name}-{k}-{r}")
                    rate, kernels[k] = dptrain(binary, data, hidden, batch, epochs, a.threads, out)
                    rates[k].append(rate)
                for k, script in anchors.items():
                    rates[k].append(anchor(script, data, hidden, batch, epochs, a.threads))
            med = {k: statistics.median(v) for k, v in rates.items()}
            best_anchor = max(anchors, key=lambda k: med[k])
            report = {
                "case": name, "threads": a.threads, "repeats": a.repeats,
                "samples_per_s": {k: [round(x) for x in v] for k, v in rates.items()},
                "median": {k: round(v) for k, v in med.items()},
                "kernels": kernels,
                "dptrain_over_faster_anchor": round(med["dptrain"] / med[best_anchor], 3),
                "faster_anchor": best_anchor,
            }
            if "dptrain_before" in med:
                report["dptrain_over_before"] = round(med["dptrain"] / med["dptrain_before"], 3)
            if mflop:
                report["useful_gflops"] = {k: round(v * mflop / 1e3, 1) for k, v in med.items()}
                if a.peak:
                    report["of_peak"] = {k: round(v * mflop / 1e3 / (a.peak * a.threads), 3)
                                         for k, v in med.items()}
            print(json.dumps(report))


if __name__ == "__main__":
    main()
