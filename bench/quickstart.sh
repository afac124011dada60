#!/usr/bin/env bash
# The README's main command over 3 seeds: test AUC / ACC (MedMNIST convention: ACC at 0.5,
# AUC of the positive-class score), wall time and peak memory; prints mean ± sd.
# usage: bench/quickstart.sh [SEED ...]      (default seeds: 1 2 3)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=("$@"); [[ ${#seeds[@]} -gt 0 ]] || seeds=(1 2 3)
cargo build --release -q -p medai-cli
out=$(mktemp -d)
for s in "${seeds[@]}"; do
  /usr/bin/time -f "%e %M" -o "$out/time_$s" target/release/medai quickstart --seed "$s" --out "$out/seed_$s" > "$out/log_$s" 2>&1
  read -r secs kb < "$out/time_$s"
  python3 - "$out/seed_$s/metrics.json" "$s" "$secs" "$kb" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]["test"]
print(f"seed {sys.argv[2]}: test_auc={m['auc']:.4f} test_acc={m['accuracy']:.4f} wall_s={float(sys.argv[3]):.0f} peak_rss_mib={int(sys.argv[4])/1024:.0f}")
PY
done | tee "$out/summary"
python3 - "$out/summary" <<'PY'
import re, statistics, sys
rows = [dict(re.findall(r"(\w+)=([\d.]+)", l)) for l in open(sys.argv[1])]
for k in ["test_auc", "test_acc", "wall_s", "peak_rss_mib"]:
    v = [float(r[k]) for r in rows]
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    print(f"{k}: mean {statistics.mean(v):.4f} sd {sd:.4f} min {min(v):.4f} max {max(v):.4f} (n={len(v)})")
PY
echo "logs: $out"
