#!/usr/bin/env bash
# Load test of `medai serve` against the reference Python server (bench/serve_reference.py) on
# loopback with wrk: one fixed JSON infer request (one 28×28 FP32 image, deterministic values),
# concurrency 1, 8 and 64, reporting requests/s, p50/p99 latency, errors and server RSS.
#
# usage: bench/serve_load.sh MEDAI_URL TOKEN REF_URL MEDAI_PID REF_PID [SECONDS=60]
#   MEDAI_URL, REF_URL  base URLs, e.g. http://127.0.0.1:8080 and http://127.0.0.1:8081
#   TOKEN               a predict token for medai (the reference has no authentication)
#   MEDAI_PID, REF_PID  server process ids for RSS (VmRSS of the process and its children)
# env: MODEL (default pneumonia), CONCURRENCY (default "1 8 64"), WRK_TIMEOUT (default 10s),
#      READY_TIMEOUT (s to wait for /v2/health/ready, default 120),
#      OUT_DIR (keep wrk's raw outputs and results.tsv there; default: a temporary folder).
# needs: wrk (apt-get install wrk), python3, curl.
# Exit status 1 when any request failed (non-2xx, bad body or socket error): zero errors is an
# acceptance criterion.
set -euo pipefail

usage() { sed -n '6,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -ge 5 && $# -le 6 ]] || usage
MEDAI_URL=${1%/}; TOKEN=$2; REF_URL=${3%/}; MEDAI_PID=$4; REF_PID=$5; DURATION=${6:-60}
MODEL=${MODEL:-pneumonia}
CONCURRENCY=${CONCURRENCY:-"1 8 64"}
WRK_TIMEOUT=${WRK_TIMEOUT:-10s}
here=$(cd "$(dirname "$0")" && pwd)
lua="$here/serve_load.lua"

die() { echo "serve_load.sh: $*" >&2; exit 1; }
command -v wrk > /dev/null || die "wrk is not installed (apt-get install wrk)"
command -v curl > /dev/null || die "curl is not installed"
[[ -f $lua ]] || die "missing $lua"
[[ $DURATION =~ ^[0-9]+$ && $DURATION -gt 0 ]] || die "SECONDS must be a positive integer, got '$DURATION'"
for pid in "$MEDAI_PID" "$REF_PID"; do
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/status ]] || die "no process with id '$pid'"
done

if [[ -n ${OUT_DIR:-} ]]; then
  out=$OUT_DIR; mkdir -p "$out"
else
  out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
fi
body="$out/infer_body.json"

# The fixed request: one deterministic, smooth 28×28 image, values in [0.1, 0.9] (for the
# quickstart pneumonia bundle p(pneumonia) ≈ 0.31: not saturated, so the cross-check means something).
python3 - "$body" <<'PY'
import json, math, sys
data = [round(0.5 + 0.4 * math.sin(x / 4) * math.cos(y / 5), 6) for y in range(28) for x in range(28)]
req = {"inputs": [{"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": data}]}
open(sys.argv[1], "w").write(json.dumps(req, separators=(",", ":")))
PY

# KiB of VmRSS of a process and all its descendants.
rss_kib() {
  local total=0 p kids c v
  local -a todo=("$1")
  while [[ ${#todo[@]} -gt 0 ]]; do
    p=${todo[0]}; todo=("${todo[@]:1}")
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2> /dev/null || true)
    total=$((total + ${v:-0}))
    kids=$(cat /proc/"$p"/task/*/children 2> /dev/null || true)
    for c in $kids; do todo+=("$c"); done
  done
  echo "$total"
}
procs() {  # number of processes in the tree
  local n=0 p kids c
  local -a todo=("$1")
  while [[ ${#todo[@]} -gt 0 ]]; do
    p=${todo[0]}; todo=("${todo[@]:1}"); n=$((n + 1))
    kids=$(cat /proc/"$p"/task/*/children 2> /dev/null || true)
    for c in $kids; do todo+=("$c"); done
  done
  echo "$n"
}

# Wait (up to READY_TIMEOUT s, default 120) until both servers say they are ready.
wait_ready() {  # name url
  local i
  for ((i = 0; i < ${READY_TIMEOUT:-120} * 2; i++)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$2/v2/health/ready" 2> /dev/null) == 200 ]] && return 0
    sleep 0.5
  done
  die "$1: $2/v2/health/ready did not answer 200 within ${READY_TIMEOUT:-120} s"
}
wait_ready medai "$MEDAI_URL"
wait_ready reference "$REF_URL"

# One request to each server first: both must answer 200 with probabilities.
check_one() {  # name url token
  local code
  local -a auth=()
  [[ -n $3 ]] && auth=(-H "Authorization: Bearer $3")
  code=$(curl -sS -o "$out/first_$1.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    "${auth[@]}" --data-binary "@$body" "$2/v2/models/$MODEL/infer") || die "$1: cannot reach $2"
  [[ $code == 200 ]] || die "$1: $2/v2/models/$MODEL/infer answered HTTP $code: $(head -c 300 "$out/first_$1.json")"
}
check_one medai "$MEDAI_URL" "$TOKEN"
check_one reference "$REF_URL" ""
python3 - "$out/first_medai.json" "$out/first_reference.json" <<'PY'
import json, sys
def probs(path):
    for o in json.load(open(path))["outputs"]:
        if o["name"] == "probabilities":
            return o["data"]
    sys.exit(f"serve_load.sh: {path}: no probabilities output")
a, b = probs(sys.argv[1]), probs(sys.argv[2])
d = max(abs(x - y) for x, y in zip(a, b))
print(f"request: 1 x FP32 [1,1,28,28]; medai probabilities {[round(v, 6) for v in a]}, "
      f"reference {[round(v, 6) for v in b]}, max |diff| {d:.2g}"
      + ("" if d <= 1e-4 else "  (WARNING: the servers disagree)"))
PY
echo "wrk: ${DURATION} s per run, concurrency: $CONCURRENCY, timeout $WRK_TIMEOUT; RSS = VmRSS incl. child processes"
echo

results="$out/results.tsv"
: > "$results"
failed=0
run() {  # name url token pid conc
  local name=$1 url=$2 tok=$3 pid=$4 c=$5 t before after n line raw
  t=2; [[ $c -lt 2 ]] && t=1   # wrk needs connections >= threads
  kill -0 "$pid" 2> /dev/null || die "$name: process $pid is gone"
  before=$(rss_kib "$pid"); n=$(procs "$pid")
  raw="$out/wrk_${name}_c${c}.txt"
  BODY_FILE=$body TOKEN=$tok wrk -t"$t" -c"$c" -d"${DURATION}s" --latency --timeout "$WRK_TIMEOUT" \
    -s "$lua" "$url/v2/models/$MODEL/infer" > "$raw" 2>&1 || die "$name c=$c: wrk failed: $(tail -5 "$raw")"
  kill -0 "$pid" 2> /dev/null || die "$name: process $pid died during the run (see $raw)"
  after=$(rss_kib "$pid")
  line=$(grep '^RESULT ' "$raw") || die "$name c=$c: no RESULT line from $lua: $(tail -5 "$raw")"
  # shellcheck disable=SC2086
  python3 - "$name" "$c" "$before" "$after" "$n" "$raw" $line >> "$results" <<'PY'
import re, sys
name, c, before, after, nproc, raw = sys.argv[1:7]
kv = dict(a.split("=", 1) for a in sys.argv[8:])
text = open(raw).read()
m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)  # wrk's own count, as a cross-check
non2xx = max(int(kv["non2xx"]), int(m.group(1)) if m else 0) + int(kv["bad_body"])
sock = sum(int(kv[k]) for k in ("connect", "read", "write", "timeout"))
print("\t".join(map(str, [name, c, kv["rps"], kv["p50_ms"], kv["p99_ms"], non2xx, sock,
                          int(before) / 1024, int(after) / 1024, nproc, kv["requests"],
                          kv["first_non2xx_status"]])))
PY
  IFS=$'\t' read -r _ _ rps p50 p99 bad sock rb ra np reqs first < <(tail -1 "$results")
  printf '%-9s c=%-3s %10.1f req/s  p50 %8.3f ms  p99 %8.3f ms  non-2xx %s  socket errors %s  RSS %.1f -> %.1f MiB (%s proc)  [%s requests]\n' \
    "$name" "$c" "$rps" "$p50" "$p99" "$bad" "$sock" "$rb" "$ra" "$np" "$reqs"
  if [[ $bad != 0 || $sock != 0 ]]; then
    failed=1
    echo "          ^ errors (first non-2xx status: $first); wrk output: $raw" >&2
  fi
  sleep 1
}

for c in $CONCURRENCY; do run medai "$MEDAI_URL" "$TOKEN" "$MEDAI_PID" "$c"; done
for c in $CONCURRENCY; do run reference "$REF_URL" "" "$REF_PID" "$c"; done

echo
python3 - "$results" "$DURATION" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print(f"| server | conc. | req/s | p50 ms | p99 ms | non-2xx | socket err. | RSS before MiB | RSS after MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
by = {}
for name, c, rps, p50, p99, bad, sock, rb, ra, *_ in rows:
    by[(name, c)] = float(rps)
    print(f"| {name} | {c} | {float(rps):.1f} | {float(p50):.3f} | {float(p99):.3f} | {bad} | {sock} "
          f"| {float(rb):.1f} | {float(ra):.1f} |")
print()
print("| conc. | medai req/s | reference req/s | medai / reference |")
print("|---:|---:|---:|---:|")
for c in dict.fromkeys(c for _, c, *_ in rows):
    m, r = by.get(("medai", c)), by.get(("reference", c))
    ratio = f"{m / r:.2f}x" if m and r else "n/a"
    print(f"| {c} | {m or 0:.1f} | {r or 0:.1f} | {ratio} |")
print(f"\n({sys.argv[2]} s per run, wrk on loopback, one 28x28 FP32 image per request, JSON)")
PY
[[ -n ${OUT_DIR:-} ]] && echo "raw wrk outputs: $out"
if [[ $failed != 0 ]]; then
  echo "serve_load.sh: FAILED: some requests failed (see above)" >&2
  exit 1
fi
