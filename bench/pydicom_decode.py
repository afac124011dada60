#!/usr/bin/env python3
"""Decode every .dcm of a directory with pydicom (+ pylibjpeg plugins) repeatedly; print files/s.

usage: bench/pydicom_decode.py DIR [SECONDS]
Needs: pip install pydicom pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg pylibjpeg-rle pyjpegls
"""
import io
import multiprocessing
import os
import sys
import time

import pydicom

d = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/dicom"
secs = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
paths = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".dcm"))
blobs = [open(p, "rb").read() for p in paths]
if os.environ.get("PER_FILE"):
    # Milliseconds per decode of each file (compare with PER_FILE=1 bench_dicom).
    for p, b in zip(paths, blobs):
        n, t = 0, time.perf_counter()
        while time.perf_counter() - t < 0.3:
            pydicom.dcmread(io.BytesIO(b)).pixel_array
            n += 1
        print(f"{os.path.basename(p)} {(time.perf_counter() - t) * 1e3 / n:.3f}")
    sys.exit(0)


def decode(b):
    """Samples decoded from one file, or None when it failed."""
    try:
        return pydicom.dcmread(io.BytesIO(b)).pixel_array.size
    except Exception:  # noqa: BLE001 - a benchmark counts failures
        return None


def run(mode, pass_, workers):
    decoded = failed = samples = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < secs:
        for n in pass_(blobs):
            if n is None:
                failed += 1
            else:
                decoded += 1
                samples += n
    s = time.perf_counter() - t0
    print(f"{mode} files={len(blobs)} decoded_per_s={decoded / s:.1f} failed={failed} "
          f"samples_per_s={samples / s:.3e} workers={workers} pydicom={pydicom.__version__}")


if __name__ == "__main__":
    # One file after another, as a pydicom loop runs …
    run("pydicom-sequential", lambda bs: [decode(b) for b in bs], 1)
    # … and a process per core (GIL), as a PyTorch DataLoader with num_workers would.
    n = os.cpu_count()
    with multiprocessing.Pool(n) as pool:
        run("pydicom-parallel", lambda bs: pool.map(decode, bs), n)
