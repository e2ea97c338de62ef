#!/usr/bin/env python3
"""Training on data larger than memory: `--shuffle rows` against `--shuffle blocks` inside a
memory cgroup limited well below the dataset, and the in-cache baseline.

    sudo python3 scripts/memory_starved.py [--rows 60000] [--features 2048] [--limit-mb 100]
                                           [--epochs 1] [--hidden 512] [--batch-size 256]
                                           [--work DIR] [--repeats 3]

Cgroup memory includes the page cache, so a limit below the dataset's size reproduces a dataset
larger than RAM on a machine that has plenty: every page the loader needs and the kernel has
dropped is read from the disk again. The script (root only) makes a child of this process's own
memory cgroup (v1: `memory.limit_in_bytes`; v2: `memory.max`), runs `dptrain train` in it, and
removes it afterwards. Before each run it evicts the dataset from the page cache
(`posix_fadvise(DONTNEED)`), so no run profits from pages another one read.

It prints one line per run and a summary: samples/s (summary.json, training time) and the share
of the training time spent waiting for data (metrics.jsonl `data_wait_s` / `train_s`), medians
over `--repeats` interleaved runs. A second part measures what the block order costs in
convergence: validation loss after `--epochs` epochs, rows against blocks, on the generated
data as it is (rows in random order on disk) and sorted by class (rows grouped on disk, as a
dataset stored class by class is).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("DPTRAIN_BIN") or os.path.join(ROOT, "target", "release", "dptrain")


def own_memory_cgroup():
    """(version, directory) of this process's memory cgroup."""
    with open("/proc/self/cgroup") as f:
        lines = [l.strip().split(":", 2) for l in f]
    for _, controllers, path in lines:
        if "memory" in controllers.split(","):
            return 1, "/sys/fs/cgroup/memory" + path
    for hid, controllers, path in lines:
        if hid == "0" and controllers == "":
            return 2, "/sys/fs/cgroup" + path
    sys.exit("no memory cgroup controller found")


class Cgroup:
    def __init__(self, limit_bytes):
        self.version, parent = own_memory_cgroup()
        self.dir = os.path.join(parent, f"dptrain-starved-{os.getpid()}")
        os.mkdir(self.dir)
        name = "memory.limit_in_bytes" if self.version == 1 else "memory.max"
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(str(limit_bytes))
        if self.version == 1:
            # Swap would hide the limit; there is none on these machines, but be sure.
            try:
                with open(os.path.join(self.dir, "memory.swappiness"), "w") as f:
                    f.write("0")
            except OSError:
                pass

    def enter_cmd(self, cmd):
        """`cmd` run inside the cgroup (a shell moves itself in, then execs)."""
        procs = os.path.join(self.dir, "cgroup.procs")
        return ["sh", "-c", f'echo $$ > "{procs}" && exec "$@"', "sh", *cmd]

    def remove(self):
        for _ in range(50):
            try:
                os.rmdir(self.dir)
                return
            except OSError:
                time.sleep(0.1)
        print(f"warning: could not remove {self.dir}", file=sys.stderr)


def evict(data_dir):
    for name in ("x.npy", "y.npy"):
        fd = os.open(os.path.join(data_dir, name), os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def warm(data_dir):
    for name in ("x.npy", "y.npy"):
        with open(os.path.join(data_dir, name), "rb") as f:
            while f.read(1 << 24):
                pass


def train(data, out, flags, wrap=None):
    shutil.rmtree(out, ignore_errors=True)
    cmd = [BIN, "train", "--data", data, "--out", out, *flags]
    if wrap:
        cmd = wrap(cmd)
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"dptrain failed ({p.returncode}): {p.stderr.strip()}")
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    epochs = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
    train_s = sum(e["train_s"] for e in epochs)
    wait = sum(e["time"]["data_wait_s"] for e in epochs)
    return {
        "samples_per_s": summary["samples_per_s"],
        "data_wait_share": wait / max(train_s, 1e-12),
        "val_loss": epochs[-1].get("val_loss"),
        "wall_s": wall,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=60_000)
    ap.add_argument("--features", type=int, default=2048)
    ap.add_argument("--limit-mb", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--hidden", default="512")
    ap.add_argument("--batch-size", default="256")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--convergence-epochs", type=int, default=5)
    ap.add_argument("--skip-speed", action="store_true", help="only the convergence part")
    ap.add_argument("--skip-starved-rows", action="store_true",
                    help="no --shuffle rows run under the limit (it takes minutes an epoch)")
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "memory-starved"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the script makes a memory cgroup")
    os.makedirs(a.work, exist_ok=True)
    data = os.path.join(a.work, f"data-{a.rows}x{a.features}")
    if not os.path.exists(os.path.join(data, "y.npy")):
        subprocess.run([BIN, "gen", "--task", "classification", "--rows", str(a.rows),
                        "--features", str(a.features), "--classes", "10", "--seed", "7",
                        "--out", data], check=True, capture_output=True)
    size = sum(os.path.getsize(os.path.join(data, f)) for f in ("x.npy", "y.npy"))
    limit = a.limit_mb << 20
    print(f"dataset {size / 2**20:.0f} MiB, cgroup limit {a.limit_mb} MiB "
          f"({size / limit:.1f}x the limit); {os.cpu_count()} cores; "
          f"model {a.features}->{a.hidden}->10, batch {a.batch_size}, {a.epochs} epoch(s)")
    flags = ["--hidden", a.hidden, "--batch-size", a.batch_size, "--epochs", str(a.epochs),
             "--val-fraction", "0.01", "--threads", "2"]
    if not a.skip_speed:
        speed(a, data, flags, limit)
    convergence(a)


def speed(a, data, flags, limit):
    results = {"cache": [], "rows": [], "blocks": []}
    cg = Cgroup(limit)
    try:
        for rep in range(a.repeats):
            warm(data)
            r = train(data, os.path.join(a.work, "run"), flags + ["--shuffle", "rows"])
            results["cache"].append(r)
            print(f"  [{rep}] in cache, rows   : {r['samples_per_s']:>10.0f} samples/s, "
                  f"data wait {100 * r['data_wait_share']:5.1f}%", flush=True)
            for order in ("blocks",) if a.skip_starved_rows else ("blocks", "rows"):
                evict(data)
                r = train(data, os.path.join(a.work, "run"), flags + ["--shuffle", order],
                          wrap=cg.enter_cmd)
                results[order].append(r)
                print(f"  [{rep}] starved, {order:<6} : {r['samples_per_s']:>10.0f} samples/s, "
                      f"data wait {100 * r['data_wait_share']:5.1f}%", flush=True)
    finally:
        cg.remove()
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("samples_per_s", "data_wait_share")}
           for k, v in results.items() if v}
    print("medians:")
    for k, v in med.items():
        print(f"  {k:<7} {v['samples_per_s']:>10.0f} samples/s, data wait "
              f"{100 * v['data_wait_share']:5.1f}%")
    if "rows" in med:
        print(f"blocks / rows under the limit: "
              f"{med['blocks']['samples_per_s'] / med['rows']['samples_per_s']:.1f}x")
    print(f"blocks under the limit / in cache: "
          f"{med['blocks']['samples_per_s'] / med['cache']['samples_per_s']:.2f}")

def convergence(a):
    """Validation loss after some epochs, rows against blocks, on a learnable generated set as
    generated (rows in random order on disk) and sorted by class (rows grouped on disk). Blocks
    of 500 rows (54 blocks, windows of 4,000 rows) stand for a dataset much larger than a
    window."""
    import numpy as np
    data = os.path.join(a.work, "conv-30000x32")
    if not os.path.exists(os.path.join(data, "y.npy")):
        subprocess.run([BIN, "gen", "--task", "classification", "--rows", "30000",
                        "--features", "32", "--classes", "10", "--seed", "3", "--out", data],
                       check=True, capture_output=True)
    sorted_dir = data + "-by-class"
    if not os.path.exists(os.path.join(sorted_dir, "y.npy")):
        os.makedirs(sorted_dir, exist_ok=True)
        y = np.load(os.path.join(data, "y.npy"))
        order = np.argsort(y, kind="stable")
        x = np.load(os.path.join(data, "x.npy"))
        np.save(os.path.join(sorted_dir, "x.npy"), np.ascontiguousarray(x[order]))
        np.save(os.path.join(sorted_dir, "y.npy"), y[order])
    conv = ["--hidden", "64", "--batch-size", "64", "--epochs", str(a.convergence_epochs),
            "--val-fraction", "0.1", "--threads", "2", "--block-rows", "500"]
    print(f"convergence: validation loss after {a.convergence_epochs} epochs (32 features, "
          f"10 classes, 30,000 rows, hidden 64, batch 64, SGD lr 0.01 momentum 0.9; "
          f"median of 3 seeds)")
    for name, d in (("as generated", data), ("sorted by class", sorted_dir)):
        losses = {}
        for o in ("rows", "blocks"):
            runs = [train(d, os.path.join(a.work, "run"), conv + ["--shuffle", o, "--seed", str(s)])
                    for s in range(3)]
            losses[o] = statistics.median(r["val_loss"] for r in runs)
        print(f"  {name:<16} rows {losses['rows']:.4f}  blocks {losses['blocks']:.4f}  "
              f"(blocks - rows: {losses['blocks'] - losses['rows']:+.4f})")

if __name__ == "__main__":
    main()
