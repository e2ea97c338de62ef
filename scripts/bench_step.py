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
every layer but the first) and their share of threads × one core's FMA peak. That peak is
measured right before and right after every run (`cargo bench --bench dptrain -- peak/now`),
each run's share taken of the mean of the two: on a shared host the clock moves by tens of
percent within seconds, so a peak measured once would flatter some runs and wrong others.
--peak GFLOPS_PER_CORE uses a fixed figure instead.

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


def peak_now():
    """One core's FMA peak at this moment, GFLOP/s (see benches/dptrain/peak.rs)."""
    out = subprocess.run(["cargo", "bench", "--quiet", "--bench", "dptrain", "--", "peak/now"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return float(next(l for l in out.splitlines() if l.startswith("fma_peak_gflops")).split()[1])


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
            peaks = {k: [] for k in rates}
            measure = mflop and not a.peak
            kernels = {}
            for r in range(a.repeats):
                last = peak_now() if measure else a.peak
                runs = [(k, lambda k=k, b=b: dptrain(b, data, hidden, batch, epochs, a.threads,
                                                     os.path.join(tmp, f"{name}-{k}-{r}")))
                        for k, b in builds.items()]
                runs += [(k, lambda s=s: (anchor(s, data, hidden, batch, epochs, a.threads), None))
                         for k, s in anchors.items()]
                for k, run in runs:
                    rate, kernel = run()
                    if kernel:
                        kernels[k] = kernel
                    rates[k].append(rate)
                    after = peak_now() if measure else a.peak
                    peaks[k].append((last + after) / 2 if last else None)
                    last = after
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
                if measure or a.peak:
                    share = {k: [x * mflop / 1e3 / (p * a.threads) for x, p in zip(v, peaks[k])]
                             for k, v in rates.items()}
                    report["fma_peak_per_core"] = {k: [round(p, 1) for p in v]
                                                   for k, v in peaks.items()}
                    report["of_peak_per_run"] = {k: [round(x, 3) for x in v]
                                                 for k, v in share.items()}
                    report["of_peak"] = {k: round(statistics.median(v), 3)
                                         for k, v in share.items()}
            print(json.dumps(report))


if __name__ == "__main__":
    main()
