#!/usr/bin/env bash
# Real public tabular data, offline: a dataset that scikit-learn ships inside its package
# (sklearn/datasets/data/), exported to CSV with a header and string class names, then
#   dptrain import csv → train --standardize --val-fraction 0.2 → eval → predict
# on a test split that training never sees.
#
#   scripts/real_data_demo.sh [breast_cancer|wine|iris]     (default: breast_cancer)
#
# Needs python3; installs scikit-learn with pip if it is missing (no other download: the data
# is in the package). Everything is written under target/real_data_demo/NAME/ (replaced on
# each run). Set DPTRAIN to use a built binary instead of `cargo build --release`.
set -euo pipefail

NAME=${1:-breast_cancer}
cd "$(dirname "$0")/.."
OUT=target/real_data_demo/$NAME

python3 -c "import sklearn" 2>/dev/null || python3 -m pip install --quiet scikit-learn
if [[ -z "${DPTRAIN:-}" ]]; then
    cargo build --release --quiet
    DPTRAIN=target/release/dptrain
fi

rm -rf "$OUT"
mkdir -p "$OUT"

# 1. CSV export: feature names as the header, the class *name* as the last column; a
#    stratified 80/20 train/test split with a fixed seed, so the test rows stay unseen.
python3 - "$NAME" "$OUT" <<'EOF'
import csv, sys
import numpy as np
from sklearn import datasets

name, out = sys.argv[1:]
d = getattr(datasets, f"load_{name}")()
rng = np.random.default_rng(0)
test = np.zeros(len(d.target), dtype=bool)
for c in np.unique(d.target):
    rows = np.flatnonzero(d.target == c)
    test[rng.choice(rows, size=round(0.2 * len(rows)), replace=False)] = True
for split, mask in (("train", ~test), ("test", test)):
    with open(f"{out}/{split}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(d.feature_names) + ["class"])
        for x, t in zip(d.data[mask], d.target[mask]):
            w.writerow([repr(float(v)) for v in x] + [str(d.target_names[t])])
print(f"{name}: {len(d.target)} rows, {d.data.shape[1]} features, classes "
      f"{list(map(str, d.target_names))}; train.csv {int((~test).sum())} rows, "
      f"test.csv {int(test.sum())} rows")
EOF

# 2. Import both splits; the test split reuses the training split's class names (same ids).
"$DPTRAIN" import csv "$OUT/train.csv" --target class --out "$OUT/train"
"$DPTRAIN" import csv "$OUT/test.csv" --target class --labels "$OUT/train/labels.json" \
    --out "$OUT/test"

# 3. Train: standardised features, 20% of the training rows held out for validation and
#    early stopping (the best epoch's weights are kept).
"$DPTRAIN" train --data "$OUT/train" --standardize --val-fraction 0.2 \
    --hidden 32 --epochs 200 --patience 20 --batch-size 16 --lr 0.01 --seed 0 \
    --out "$OUT/run" | tail -n 3

# 4. Held-out figures: the validation split's best epoch, and the unseen test split.
python3 - "$OUT/run" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(f"{sys.argv[1]}/metrics.jsonl")]
best = min(rows, key=lambda r: r["val_loss"])
print(f"validation (best epoch {best['epoch']}): val_loss {best['val_loss']:.4f}, "
      f"val_accuracy {best['val_accuracy']:.4f}")
EOF
echo "--- test split (never seen in training) ---"
"$DPTRAIN" eval --model "$OUT/run" --data "$OUT/test"

# 5. Named predictions for the test rows.
"$DPTRAIN" predict --model "$OUT/run" --data "$OUT/test" --out "$OUT/test_predictions.csv"
head -n 4 "$OUT/test_predictions.csv"
