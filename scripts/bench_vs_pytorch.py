#!/usr/bin/env python3
"""dptrain next to the PyTorch anchor, one right after the other, on the same data.

    python3 scripts/bench_vs_pytorch.py [--case seed|large|all] [--repeats 5] [--threads 2]

For each case it generates the dataset once (dptrain gen), then alternates: one whole
`dptrain train` process (timed from outside: process wall time, start-up included), then
../shared/anchors/pytorch_reference.py (its own loop-only timing, import and load excluded).
It prints the median of each and their ratio. Needs `cargo build --release` and
`pip install torch numpy`. DPTRAIN_BIN=path times another dptrain build (e.g. an older commit's)
against the same anchor.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("DPTRAIN_BIN") or os.path.join(ROOT, "target", "release", "dptrain")
ANCHOR = os.path.join(ROOT, "..", "shared", "anchors", "pytorch_reference.py")

CASES = {
    # name: (gen flags, train flags, epochs, rows)
    "seed": (["--task", "regression", "--rows", "1000", "--features", "20"],
             ["--hidden", "50", "--batch-size", "32"], 20, 1000),
    "large": (["--task", "classification", "--rows", "60000", "--features", "784",
               "--classes", "10"],
              ["--hidden", "1024,1024", "--batch-size", "256"], 1, 60000),
}


def run_dptrain(data, flags, epochs, threads):
    cmd = [BIN, "train", "--data", data, "--epochs", str(epochs), "--threads", str(threads)] + flags
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"dptrain failed: {out.stderr}")
    return wall


def run_torch(data, flags, epochs, threads, style):
    hidden = flags[flags.index("--hidden") + 1]
    batch = flags[flags.index("--batch-size") + 1]
    cmd = [sys.executable, ANCHOR, "--data", data, "--hidden", hidden, "--batch-size", batch,
           "--epochs", str(epochs), "--threads", str(threads), "--style", style]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["loop_s"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--case", default="all", choices=["seed", "large", "all"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    cases = list(CASES) if a.case == "all" else [a.case]
    with tempfile.TemporaryDirectory() as tmp:
        for name in cases:
            gen, flags, epochs, rows = CASES[name]
            data = os.path.join(tmp, name)
            subprocess.run([BIN, "gen", *gen, "--out", data], check=True, capture_output=True)
            ours, dl, plain = [], [], []
            for _ in range(a.repeats):
                ours.append(run_dptrain(data, flags, epochs, a.threads))
                dl.append(run_torch(data, flags, epochs, a.threads, "dataloader"))
                plain.append(run_torch(data, flags, epochs, a.threads, "plain"))
            n = rows * epochs
            m = {k: statistics.median(v) for k, v in
                 {"dptrain_process": ours, "torch_dataloader_loop": dl,
                  "torch_plain_loop": plain}.items()}
            print(json.dumps({
                "case": name, "threads": a.threads, "repeats": a.repeats, "samples": n,
                "median_s": {k: round(v, 4) for k, v in m.items()},
                "samples_per_s": {k: round(n / v) for k, v in m.items()},
                "speedup_vs_dataloader": round(m["torch_dataloader_loop"] / m["dptrain_process"], 2),
                "speedup_vs_plain": round(m["torch_plain_loop"] / m["dptrain_process"], 2),
            }))


if __name__ == "__main__":
    main()
