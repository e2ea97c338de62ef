#!/usr/bin/env bash
# The price of determinism across processes (issue 12), on this machine:
#  1. the chain all-reduce against MPI_Allreduce(SUM) on ~1M and ~10M floats, 2 and 3 processes
#     (benches/mpi_chain: medians of 30);
#  2. the large MLP (784→1024→1024→10, batch 256, shards of 128) trained 2 processes × 1 thread
#     against 1 process × 2 threads, interleaved, REPEATS times each; median samples/s of the
#     training steps (the run's own figure, start-up and validation excluded).
# Needs OpenMPI (apt-get install libopenmpi-dev openmpi-bin libclang-dev).
# Usage: scripts/bench_mpi.sh [ROWS] [REPEATS]      (defaults 12000 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-12000}
REPEATS=${2:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun --oversubscribe --bind-to none)

cargo build --release --features mpi -q
cargo bench --features mpi --bench mpi_chain --no-run -q 2>/dev/null
chain=$(ls -t target/release/deps/mpi_chain-* | grep -v '\.d$' | head -1)
echo "== chain against MPI_Allreduce"
for np in 2 3; do "${MPIRUN[@]}" -np "$np" "$chain"; done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin=target/release/dptrain
"$bin" gen --task classification --rows "$ROWS" --features 784 --classes 10 --seed 1 \
    --out "$tmp/data" >/dev/null
args=(train --data "$tmp/data" --hidden 1024,1024 --batch-size 256 --shard-size 128
      --val-fraction 0 --epochs 1 --lr 0.01)
rate() { sed -n 's/.*training steps (\([0-9]*\) samples\/s).*/\1/p'; }
one=() two=()
for i in $(seq "$REPEATS"); do
    one+=("$("$bin" "${args[@]}" --threads 2 | rate)")
    two+=("$("${MPIRUN[@]}" -np 2 "$bin" "${args[@]}" --threads 1 | rate)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m1=$(median "${one[@]}") m2=$(median "${two[@]}")
echo "== large MLP, $ROWS rows, batch 256: samples/s of the training steps"
echo "1 process x 2 threads: ${one[*]} (median $m1)"
echo "2 processes x 1 thread: ${two[*]} (median $m2)"
awk -v a="$m2" -v b="$m1" 'BEGIN {printf "2x1 / 1x2 = %.2f\n", a / b}'
