#!/usr/bin/env bash
# Issue #7 benchmark: D-MPNN accuracy on ESOL (random split, 5 seeds) and BBBP (scaffold split,
# 3 seeds), and throughput against chemprop 2 (pip `chemprop`, CPU) on the same machine.
# Usage: bash bench/molecules.sh [accuracy|ensemble|reference|speed|all] (default all: accuracy
# and speed). Needs a release build (`cargo build --release`) and, for `speed` and `reference`,
# `pip install chemprop` (which pins its RDKit; PYTHON=… picks the interpreter).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=../shared/data/molecules
OUT=${OUT:-target/bench-molecules}
MEDAI=${MEDAI:-target/release/medai}
mkdir -p "$OUT"
what=${1:-all}
ESOL_Y="measured log solubility in mols per litre"
ESOL_DESC="Minimum Degree,Molecular Weight,Number of H-Bond Donors,Number of Rings,Number of Rotatable Bonds,Polar Surface Area"

if [ "$what" = accuracy ] || [ "$what" = all ]; then
  for seed in 0 1 2 3 4; do
    "$MEDAI" train molecules --data $DATA/esol.csv --target-columns "$ESOL_Y" --split random \
      --seed $seed --out "$OUT/esol_s$seed.medai" --quiet
    "$MEDAI" eval --model "$OUT/esol_s$seed.medai" --data $DATA/esol.csv --split test --format json \
      > "$OUT/esol_s$seed.json"
  done
  # The same with the CSV's structure descriptors as extra molecule-level features (not the
  # "ESOL predicted log solubility" column, which is a model's output).
  for seed in 0 1 2 3 4; do
    "$MEDAI" train molecules --data $DATA/esol.csv --target-columns "$ESOL_Y" --split random \
      --feature-columns "$ESOL_DESC" --seed $seed --out "$OUT/esol_desc_s$seed.medai" --quiet
    "$MEDAI" eval --model "$OUT/esol_desc_s$seed.medai" --data $DATA/esol.csv --split test \
      --format json > "$OUT/esol_desc_s$seed.json"
  done
  for seed in 0 1 2; do
    "$MEDAI" train molecules --data $DATA/bbbp.csv --target-columns p_np --split scaffold \
      --skip-invalid --seed $seed --out "$OUT/bbbp_s$seed.medai" --quiet
    "$MEDAI" eval --model "$OUT/bbbp_s$seed.medai" --data $DATA/bbbp.csv --split test --format json \
      > "$OUT/bbbp_s$seed.json"
  done
  python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
for name, key, seeds in [("esol", "rmse", 5), ("esol_desc", "rmse", 5), ("bbbp", "auc", 3)]:
    v = [json.load(open(f"{out}/{name}_s{s}.json"))[key] for s in range(seeds)]
    print(f"{name}: test {key} per seed {[round(x, 4) for x in v]}  mean {statistics.mean(v):.4f}  sd {statistics.stdev(v):.4f}")
PY
fi

if [ "$what" = ensemble ]; then
  # ESOL with 3-member ensembles (same splits as `accuracy`).
  for seed in 0 1 2 3 4; do
    "$MEDAI" train molecules --data $DATA/esol.csv --target-columns "$ESOL_Y" --split random \
      --ensemble 3 --seed $seed --out "$OUT/esol_ens3_s$seed.medai" --quiet
    "$MEDAI" eval --model "$OUT/esol_ens3_s$seed.medai" --data $DATA/esol.csv --split test \
      --format json > "$OUT/esol_ens3_s$seed.json"
  done
fi

if [ "$what" = reference ]; then
  # chemprop's own ESOL test RMSE over 5 seeds of its random split, 50 epochs.
  for seed in 0 1 2 3 4; do
    ${PYTHON:-python3} bench/molecules_chemprop.py $DATA/esol.csv smiles "$ESOL_Y" 50 $seed 2>/dev/null | tail -1
  done
fi

if [ "$what" = speed ] || [ "$what" = all ]; then
  # medai: featurisation and training throughput from the bundle, prediction end to end.
  "$MEDAI" train molecules --data $DATA/esol.csv --target-columns "$ESOL_Y" --split random \
    --seed 0 --epochs 10 --out "$OUT/esol_speed.medai" --quiet
  "$MEDAI" predict --model "$OUT/esol_speed.medai" --data $DATA/esol.csv --out "$OUT/esol_pred.csv" \
    2> "$OUT/predict.log"
  python3 - "$OUT" <<'PY'
import json, re, statistics, sys
out = sys.argv[1]
m = json.load(open(f"{out}/esol_speed.medai/manifest.json"))
t = m["training"]
hist = t["members"][0]["history"]
speeds = [h["train_samples_per_s"] for h in hist[1:]]
log = open(f"{out}/predict.log").read()
pred = float(re.search(r"([0-9.]+) molecules/s end to end", log).group(1))
print(json.dumps({"tool": "medai", "molecules": m["dataset"]["counts"]["molecules"],
  "featurize_molecules_per_s": m["dataset"]["counts"]["molecules"] / t["featurize_seconds"],
  "train_molecules_per_s": statistics.median(speeds), "predict_molecules_per_s": pred}))
PY
  ${PYTHON:-python3} bench/molecules_chemprop.py $DATA/esol.csv smiles "$ESOL_Y" 10 0 2>/dev/null | tail -1
fi
