#!/usr/bin/env python3
"""Decode every .dcm of a directory with pydicom (+ pylibjpeg plugins) repeatedly; print files/s.

usage: bench/pydicom_decode.py DIR [SECONDS]
Needs: pip install pydicom pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg pylibjpeg-rle pyjpegls
"""
import io
import os
import sys
import time

import pydicom

d = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/dicom"
secs = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
paths = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".dcm"))
blobs = [open(p, "rb").read() for p in paths]
decoded = failed = samples = 0
t0 = time.perf_counter()
while time.perf_counter() - t0 < secs:
    for b in blobs:
        try:
            ds = pydicom.dcmread(io.BytesIO(b))
            samples += ds.pixel_array.size
            decoded += 1
        except Exception as e:  # noqa: BLE001 - a benchmark counts failures
            failed += 1
s = time.perf_counter() - t0
print(f"pydicom files={len(blobs)} decoded_per_s={decoded / s:.1f} failed={failed} "
      f"samples_per_s={samples / s:.3e} pydicom={pydicom.__version__}")
