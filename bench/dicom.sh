#!/usr/bin/env bash
# Decode all shared DICOM files with medai and with pydicom (+ pylibjpeg), files/s and ratio.
# usage: bench/dicom.sh [SECONDS]   (pip install pydicom pylibjpeg pylibjpeg-libjpeg
#                                    pylibjpeg-openjpeg pylibjpeg-rle pyjpegls)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
dir=../shared/data/dicom
cargo build --release -q -p medai-data --example bench_dicom
m=$(target/release/examples/bench_dicom "$dir" "$secs")
p=$(python3 bench/pydicom_decode.py "$dir" "$secs")
echo "$m"; echo "$p"
python3 - "$m" "$p" <<'PY'
import re, sys
f = lambda s: float(re.search(r"decoded_per_s=([\d.]+)", s).group(1))
print(f"ratio medai/pydicom = {f(sys.argv[1]) / f(sys.argv[2]):.2f} (files/s, same 29 files, bytes in memory)")
PY
