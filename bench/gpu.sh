#!/usr/bin/env bash
# The GPU check of issue #9, as one prepared script: ResNet-18 training at 128 px (batch 32) on
# the GPU through Burn's Vulkan backend, the same on that machine's CPU, and the same network in
# PyTorch on that GPU and CPU; then `medai train` on PneumoniaMNIST at 128 px on the GPU.
#
# usage:
#   bench/gpu.sh prepare          here, once: builds medai and the bench_cnn example with
#                                 `--features vulkan` (in target/gpu, or $GPU_TARGET_DIR),
#                                 copies them stripped into .gpu/, copies
#                                 pneumoniamnist.npz there and downloads the Vulkan loader
#                                 package into .gl/ (both git-ignored through .git/info/exclude)
#   bench/gpu.sh run [SECONDS]    on the GPU machine (no Rust there): carry .gpu and .gl, run
#                                 this; writes gpu.jsonl, train_vulkan.log and summary.txt to
#                                 $OUT (or ./gpu-out). SECONDS per training measure (default 15).
#
# The GPU machine has python3 with a CUDA PyTorch but no cargo and no network, hence the carried
# binaries and loader. Burn's own `cuda` feature needs an LLVM download at build time; Vulkan
# builds offline (see README "CPU kernels and GPU").
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
case "$mode" in
prepare)
  set -e
  data=${MEDAI_DATA:-../shared/data}/medmnist/pneumoniamnist.npz
  [[ -f $data ]] || { echo "gpu.sh: $data not found (set MEDAI_DATA)" >&2; exit 1; }
  mkdir -p .git/info
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
  grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo '/.gl/' >> .git/info/exclude
  # A target folder of its own, so the default (CPU-only) build in target/ stays as it is.
  target=${GPU_TARGET_DIR:-target/gpu}
  CARGO_TARGET_DIR=$target cargo build --release -p medai-cli --features vulkan
  CARGO_TARGET_DIR=$target cargo build --release -p medai-nn --features vulkan --example bench_cnn
  mkdir -p .gpu .gl
  strip -o .gpu/medai "$target/release/medai"
  strip -o .gpu/bench_cnn "$target/release/examples/bench_cnn"
  cp "$data" .gpu/
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial
  # shellcheck disable=SC2086
  apt-get $o update -qq && (cd .gl && apt-get $o download libvulkan1)
  du -sh .gpu .gl
  echo "gpu.sh: prepared; on the GPU machine run: bench/gpu.sh run   (carry .gpu and .gl)"
  ;;
run)
  secs=${2:-15}
  out=${OUT:-gpu-out}
  mkdir -p "$out"
  [[ -x .gpu/bench_cnn && -x .gpu/medai ]] || { echo "gpu.sh: run 'bench/gpu.sh prepare' first and carry .gpu" >&2; exit 1; }
  # The Vulkan loader (the NVIDIA driver's ICD is on the machine).
  for f in .gl/*.deb; do [[ -f $f ]] && dpkg -x "$f" /; done
  ldconfig
  [[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]] &&
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  nvidia-smi -L 2>&1 | tee "$out/summary.txt"
  nproc | sed 's/^/cpu cores: /' | tee -a "$out/summary.txt"
  : > "$out/gpu.jsonl"
  measure() {  # tag command...
    local tag=$1; shift
    echo "== $tag: $*" >&2
    local line
    if line=$(timeout 300 "$@" 2> "$out/err_$tag.txt" | tail -1) && [[ $line == "{"* ]]; then
      echo "{\"tag\": \"$tag\", \"result\": $line}" >> "$out/gpu.jsonl"
    else
      echo "{\"tag\": \"$tag\", \"error\": \"exit or no JSON; see err_$tag.txt\"}" >> "$out/gpu.jsonl"
      tail -3 "$out/err_$tag.txt" >&2
    fi
  }
  measure medai_vulkan .gpu/bench_cnn 128 32 "$secs" resnet18 vulkan
  measure torch_cuda python3 bench/pytorch_cnn.py 128 32 "$secs" resnet18 cuda
  measure medai_cpu .gpu/bench_cnn 128 32 "$secs" resnet18 cpu
  measure torch_cpu python3 bench/pytorch_cnn.py 128 32 "$secs" resnet18 cpu
  # The real job: one epoch of ResNet-18 at 128 px on PneumoniaMNIST (4 708 training images).
  timeout 400 .gpu/medai train --data .gpu/pneumoniamnist.npz --arch resnet18 --img-size 128 \
    --epochs 1 --batch-size 32 --device vulkan --out /tmp/gpu-r18.medai > "$out/train_vulkan.log" 2>&1 ||
    echo "medai train on vulkan failed: $(tail -2 "$out/train_vulkan.log")" >&2
  python3 - "$out/gpu.jsonl" <<'PY' | tee -a "$out/summary.txt"
import json, sys
rows = {}
for l in open(sys.argv[1]):
    d = json.loads(l)
    rows[d["tag"]] = d.get("result")
def v(tag, key):
    r = rows.get(tag)
    return r.get(key) if r else None
for key, unit in [("train_img_s", "img/s"), ("infer256_img_s", "img/s"), ("latency1_ms_p50", "ms")]:
    print(f"resnet18_128px_{key}: " + " ".join(f"{t}={v(t, key)}" for t in rows) + f" unit={unit}")
def ratio(a, b):
    x, y = v(a, "train_img_s"), v(b, "train_img_s")
    return f"{x / y:.2f}x" if x and y else "n/a"
print(f"medai GPU speed-up over CPU (training): {ratio('medai_vulkan', 'medai_cpu')}")
print(f"PyTorch GPU speed-up over CPU (training): {ratio('torch_cuda', 'torch_cpu')}")
print(f"medai GPU / PyTorch GPU (training): {ratio('medai_vulkan', 'torch_cuda')}")
PY
  grep -E "^epoch" "$out/train_vulkan.log" | tee -a "$out/summary.txt"
  ;;
*)
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
