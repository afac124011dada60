#!/usr/bin/env bash
# Decode all shared DICOM files with medai and with pydicom (+ pylibjpeg): files/s and ratios,
# one file at a time and on every core (medai: rayon; pydicom: a process pool).
# usage: bench/dicom.sh [SECONDS]   (pip install pydicom pylibjpeg pylibjpeg-libjpeg
#                                    pylibjpeg-openjpeg pylibjpeg-rle pyjpegls)
# PER_FILE=1 on either program prints milliseconds per file instead.
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
rate = {}
for line in "\n".join(sys.argv[1:]).splitlines():
    rate[line.split()[0]] = float(re.search(r"decoded_per_s=([\d.]+)", line).group(1))
r = lambda a, b: rate[a] / rate[b]
print(f"ratio sequential  medai/pydicom = {r('medai-sequential', 'pydicom-sequential'):.2f}")
print(f"ratio all cores   medai/pydicom = {r('medai-parallel', 'pydicom-parallel'):.2f}")
print(f"ratio medai all cores / pydicom loop = {r('medai-parallel', 'pydicom-sequential'):.2f}")
print("(files/s, same 29 files, bytes in memory)")
PY
