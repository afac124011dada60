#!/usr/bin/env python3
"""Closed-loop load on a text (or SMILES) model behind `medai serve`, standard library only.

usage: python3 bench/serve_text_load.py URL TOKEN MODEL DATA.tsv [--column text] [--seconds 20]
                                        [--concurrency 1,8,32]

Each of C client threads POSTs one document after another to /v1/models/MODEL/predict
(text/plain, documents taken in turn from the TSV's column) for the given seconds; prints per
concurrency: requests/s, p50 and p99 latency (ms) and errors (non-200 answers). Keep-alive
connections, one per thread.
"""
import argparse
import csv
import http.client
import statistics
import sys
import threading
import time
import urllib.parse


def run(url, token, model, docs, conc, seconds):
    u = urllib.parse.urlparse(url if "://" in url else "http://" + url)
    path = f"/v1/models/{urllib.parse.quote(model)}/predict"
    lat, errors, lock = [], [0], threading.Lock()
    stop = time.monotonic() + seconds

    def worker(k):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        i = k
        mine, bad = [], 0
        while time.monotonic() < stop:
            body = docs[i % len(docs)].encode("utf-8")
            i += conc
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body, {"Authorization": f"Bearer {token}",
                                                  "Content-Type": "text/plain"})
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
                ok = False
            if ok:
                mine.append(time.perf_counter() - t0)
            else:
                bad += 1
        with lock:
            lat.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(conc)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    lat.sort()
    p = lambda q: 1000 * lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
    return {"concurrency": conc, "requests_per_s": round(len(lat) / wall, 1),
            "p50_ms": round(p(0.5), 2), "p99_ms": round(p(0.99), 2),
            "mean_ms": round(1000 * statistics.fmean(lat), 2) if lat else None,
            "ok": len(lat), "errors": errors[0]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("token")
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--column", default="text")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--concurrency", default="1,8,32")
    a = ap.parse_args()
    csv.field_size_limit(sys.maxsize)
    with open(a.data, encoding="utf-8", newline="") as f:
        docs = [r[a.column] for r in csv.DictReader(f, delimiter="\t")]
    if not docs:
        sys.exit(f"{a.data}: no documents in column {a.column!r}")
    for c in [int(x) for x in a.concurrency.split(",")]:
        print(run(a.url, a.token, a.model, docs, c, a.seconds), flush=True)


if __name__ == "__main__":
    main()
