#!/usr/bin/env bash
# ED arrivals (issue #8): train the neural forecasters on 2013-07 … 2016-12, backtest them with
# the baselines on 2017 one step and 24 hours ahead, and time the same network in PyTorch
# (bench/forecast_reference.py: seconds per epoch and its own 2017 R²).
# usage: bench/forecast.sh [OUT_DIR]      (PyTorch part: pip install torch scipy; SKIP_TORCH=1)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/forecast-bench}
mkdir -p "$out"
D=../shared/data/timeseries/ed_arrivals_hourly.csv
COV=temp,xmas,xmas2,nye,nyd,thx,thx1,ind,game_day
cargo build --release -q -p medai-cli
M=target/release/medai
for cell in gru lstm; do
  /usr/bin/time -f "$cell training wall %e s, max RSS %M KiB" \
    $M train forecast --data $D --target Arrivals --covariates $COV --train-until 2017-01-01 \
       --out "$out/$cell.medai" --cell $cell 2>&1 | grep -v "^epoch"
done
for h in 1 24; do
  $M backtest --data $D --target Arrivals --covariates $COV --train-until 2017-01-01 \
     --test-until 2018-01-01 --horizon $h --model "$out/gru.medai" --model "$out/lstm.medai"
done
if [ -z "${SKIP_TORCH:-}" ]; then
  python3 bench/forecast_reference.py $D 42
fi
