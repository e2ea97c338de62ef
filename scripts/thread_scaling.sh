#!/usr/bin/env bash
# Thread scaling of whole `dptrain train` runs: MLP 784→1024→1024→10, cross-entropy, batch 1024
# cut into shards of 64 rows (16 shards, so up to 16 cores have a shard each), one epoch over
# ROWS generated rows, at 1, 2, 4, 8, 16 … threads up to MAX_THREADS (default: the cores
# present). For each thread count: the median over REPEATS runs of the training samples/s
# (summary.json: training time, start-up and data generation excluded) and of the process wall
# time, the speedup over 1 thread, and whether the final weights are bit-identical to the
# 1-thread run's (they must be). Usage:
#   scripts/thread_scaling.sh [ROWS] [REPEATS] [MAX_THREADS]     (needs cargo build --release)
set -euo pipefail
rows=${1:-32768}
repeats=${2:-3}
max_threads=${3:-$(nproc)}
bin="$(dirname "$0")/../target/release/dptrain"
[ -x "$bin" ] || { echo "thread_scaling.sh: $bin not found: run cargo build --release" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" gen --task classification --rows "$rows" --features 784 --classes 10 --out "$tmp/data" >/dev/null

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

printf '%-8s %14s %10s %12s %s\n' threads samples_per_s speedup process_s weights
base=""
ref_hash=""
threads=1
while [ "$threads" -le "$max_threads" ]; do
    : >"$tmp/sps"
    : >"$tmp/wall"
    for r in $(seq "$repeats"); do
        out="$tmp/run-$threads-$r"
        start=$(date +%s.%N)
        "$bin" train --data "$tmp/data" --hidden 1024,1024 --batch-size 1024 --shard-size 64 \
            --epochs 1 --val-fraction 0 --threads "$threads" --out "$out" >/dev/null
        end=$(date +%s.%N)
        awk -v a="$start" -v b="$end" 'BEGIN { print b - a }' >>"$tmp/wall"
        python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["samples_per_s"])' \
            "$out/summary.json" >>"$tmp/sps"
    done
    sps=$(median <"$tmp/sps")
    wall=$(median <"$tmp/wall")
    hash=$(sha256sum "$tmp/run-$threads-1/final.safetensors" | cut -d' ' -f1)
    if [ -z "$base" ]; then
        base=$sps
        ref_hash=$hash
    fi
    same=$([ "$hash" = "$ref_hash" ] && echo identical || echo DIFFERENT)
    printf '%-8s %14.0f %9.2fx %12.3f %s\n' "$threads" "$sps" "$(awk -v a="$sps" -v b="$base" 'BEGIN { print a / b }')" "$wall" "$same"
    [ "$same" = identical ] || exit 1
    rm -rf "$tmp"/run-*
    threads=$((threads * 2))
done
