#!/usr/bin/env bash
# The LibTorch backend (issue #9): build medai with `--features libtorch` against pip's
# torch==2.9.0, then run the small-CNN benchmark on the default CPU backend, on LibTorch, and in
# PyTorch (the system's and the venv's 2.9.0), alternating; figures in bench/RESULTS.md.
#
#   bench/libtorch.sh VENV        VENV: a virtual environment with torch==2.9.0 installed
#                                  (python3 -m venv VENV && VENV/bin/pip install torch==2.9.0 numpy)
# Builds into target-libtorch/ (the default build in target/ is left alone).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:?usage: bench/libtorch.sh VENV (with torch==2.9.0)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target-libtorch}
PATH="$venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1 cargo build --release -q -p medai-cli -p medai-nn \
  --features medai-cli/libtorch,medai-nn/libtorch --example bench_cnn --bin medai
LD_LIBRARY_PATH="$("$venv/bin/python" -c 'import torch, os; print(os.path.dirname(torch.__file__))')/lib"
export LD_LIBRARY_PATH
(unset CARGO_TARGET_DIR; cargo build --release -q -p medai-nn --example bench_cnn)
for args in "28 128 5" "128 32 5"; do
  for round in 1 2; do
    echo "cpu      $args $(target/release/examples/bench_cnn $args | tail -1)"
    echo "libtorch $args $(BURN_DEVICE=tch "$CARGO_TARGET_DIR/release/examples/bench_cnn" $args | tail -1)"
    echo "pytorch  $args $(python3 bench/pytorch_cnn.py $args | tail -1)"
    echo "torch2.9 $args $("$venv/bin/python" bench/pytorch_cnn.py $args | tail -1)"
  done
done
D=../shared/data/medmnist/pneumoniamnist.npz
for dev in libtorch cpu; do
  /usr/bin/time -f "$dev: wall %e s, peak RSS %M KiB" "$CARGO_TARGET_DIR/release/medai" train \
    --data "$D" --out "$CARGO_TARGET_DIR/quickstart-$dev.medai" --seed 42 --epochs 15 \
    --name pneumonia --device "$dev" --quiet 2>&1 | grep -v "^epoch"
done
