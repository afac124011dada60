#!/usr/bin/env bash
# Fuzz the DICOM, NIfTI and .npz readers with cargo-fuzz (libFuzzer), seeded from the shared
# files. Needs the nightly toolchain and `cargo install cargo-fuzz`.
# usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 600 s; dicom nifti npz)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}; shift || true
targets=("$@"); [[ ${#targets[@]} -gt 0 ]] || targets=(dicom nifti npz)
shared=../shared/data
for t in "${targets[@]}"; do
  corpus=fuzz/corpus/$t; mkdir -p "$corpus"
  case $t in
    dicom) cp -n "$shared"/dicom/*.dcm "$corpus"/ ;;
    nifti) cp -n "$shared"/nifti/*.nii* "$corpus"/ ;;
    npz)   python3 fuzz/make_npz_seed.py "$corpus"/tiny.npz ;;
  esac
  echo "== $t: ${secs}s"
  # -rss_limit_mb: a reader that trusts a header size and allocates gigabytes is a bug here.
  cargo +nightly fuzz run --release "$t" "$corpus" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=1048576 2>&1 | tail -n 4
done
