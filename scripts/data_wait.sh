#!/usr/bin/env bash
# Share of step time spent waiting for data, on the large MLP 784→1024→1024→10, at batch sizes
# from 1 to full, summed over EPOCHS epochs (the first batch of a run cannot be prefetched: with
# one step per epoch it is the whole epoch's wait). Usage:
#   scripts/data_wait.sh [ROWS] [THREADS] [EPOCHS]      (needs cargo build --release)
set -euo pipefail
rows=${1:-4096}
threads=${2:-2}
epochs=${3:-3}
bin="$(dirname "$0")/../target/release/dptrain"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" gen --task classification --rows "$rows" --features 784 --classes 10 --out "$tmp/data" >/dev/null
printf '%-8s %10s %12s %12s %10s\n' batch steps train_s data_wait_s wait_%
for b in 1 4 16 64 256 1024 full; do
  "$bin" train --data "$tmp/data" --hidden 1024,1024 --batch-size "$b" --epochs "$epochs" \
    --threads "$threads" --out "$tmp/run-$b" >/dev/null
  python3 - "$tmp/run-$b/metrics.jsonl" "$b" <<'PY'
import json, sys
ms = [json.loads(l) for l in open(sys.argv[1])]
w = sum(m["time"]["data_wait_s"] for m in ms)
t = sum(m["train_s"] for m in ms)
steps = sum(m["steps"] for m in ms)
print(f'{sys.argv[2]:<8} {steps:>10} {t:>12.3f} {w:>12.5f} {100 * w / t:>9.3f}%')
PY
done
