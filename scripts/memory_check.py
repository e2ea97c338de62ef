#!/usr/bin/env python3
"""Peak anonymous memory (RssAnon) of a `dptrain train` process, polled from /proc.

    python3 scripts/memory_check.py --data DIR [extra dptrain train flags...]

The dataset is memory-mapped, so its pages count as file-backed memory (RssFile), which the
kernel can drop at any time; what must not grow with the dataset is RssAnon: the process's own
heap (batches, gradients, workspaces). Prints one JSON line with both peaks.
"""
import json, os, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("DPTRAIN_BIN") or os.path.join(ROOT, "target", "release", "dptrain")


def field(pid, name):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])  # kB
    except FileNotFoundError:
        return None
    return None


def main():
    args = sys.argv[1:]
    data = args[args.index("--data") + 1]
    size = sum(os.path.getsize(os.path.join(data, f)) for f in ("x.npy", "y.npy"))
    t = time.perf_counter()
    p = subprocess.Popen([BIN, "train", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_anon = peak_file = 0
    while p.poll() is None:
        a, f = field(p.pid, "RssAnon"), field(p.pid, "RssFile")
        if a is not None:
            peak_anon, peak_file = max(peak_anon, a), max(peak_file, f or 0)
        time.sleep(0.02)
    out, err = p.communicate()
    if p.returncode != 0:
        sys.exit(f"dptrain failed ({p.returncode}): {err}")
    print(json.dumps({
        "dataset_bytes": size,
        "peak_rss_anon_mb": round(peak_anon / 1024, 1),
        "peak_rss_file_mb": round(peak_file / 1024, 1),
        "wall_s": round(time.perf_counter() - t, 2),
        "last_line": out.strip().splitlines()[-1],
    }))


if __name__ == "__main__":
    main()
