#!/usr/bin/env bash
# The audit log's cost under load: `medai serve` (the quickstart pneumonia bundle) under wrk,
# concurrency 64, with its audit log in SQLite and in PostgreSQL (a throwaway local server),
# alternating, ROUNDS rounds of SECONDS each; after each run `medai audit verify` must find the
# chain intact and at least one row per request wrk counted (requests still in flight when wrk
# stops are answered and logged too).
#
# usage: bench/serve_audit.sh [SECONDS=15] [ROUNDS=3]
# needs: target/release/medai, runs/quickstart/pneumonia.medai (`medai quickstart`), wrk, curl,
#        PostgreSQL's initdb and pg_ctl (PG_BIN, default: Debian's /usr/lib/postgresql/*/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-15}; ROUNDS=${2:-3}
M=target/release/medai
BUNDLE=runs/quickstart/pneumonia.medai
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[[ -x $M && -d $BUNDLE ]] || { echo "needs $M and $BUNDLE (cargo build --release; medai quickstart)" >&2; exit 2; }
[[ -x $PG_BIN/initdb ]] || { echo "no PostgreSQL initdb (set PG_BIN)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 2; }
W=$(mktemp -d)
as_pg=()
if [[ $(id -u) == 0 ]]; then chown postgres: "$W"; as_pg=(runuser -u postgres --); fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$PG_BIN/initdb" -D "$W/pg" -A trust -U medai --no-sync >/dev/null
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$W/pg" -l "$W/pg.log" -o "-p $port -k $W -c listen_addresses=127.0.0.1" -w start >/dev/null
trap '"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$W/pg" -m immediate stop >/dev/null; rm -rf "$W"' EXIT
URL=postgresql://medai@127.0.0.1:$port/postgres
TOK=$("$M" token create --auth "$W/auth.json" --role predict --name load 2>/dev/null)
python3 - "$W/body.json" <<'PY'
import json, math, sys
data = [round(0.5 + 0.4 * math.sin(x / 4) * math.cos(y / 5), 6) for y in range(28) for x in range(28)]
req = {"inputs": [{"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": data}]}
open(sys.argv[1], "w").write(json.dumps(req, separators=(",", ":")))
PY
addr=127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
prev_pg=0
for ((round = 1; round <= ROUNDS; round++)); do
  for target in sqlite postgres; do
    A=$W/audit-$round.sqlite; [[ $target == postgres ]] && A=$URL
    "$M" serve --model "pneumonia=$BUNDLE" --auth "$W/auth.json" --audit "$A" --addr "$addr" 2>"$W/serve.log" &
    pid=$!
    for _ in $(seq 1 300); do
      [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$addr/v2/health/ready") == 200 ]] && break
      sleep 0.1
    done
    out=$W/wrk-$target-$round.txt
    BODY_FILE=$W/body.json TOKEN=$TOK wrk -t2 -c64 -d"${SECONDS_PER_RUN}s" --latency \
      -s bench/serve_load.lua "http://$addr/v2/models/pneumonia/infer" >"$out"
    kill -TERM $pid; wait $pid
    reqs=$(grep -oE "^ +[0-9]+ requests in" "$out" | grep -oE "[0-9]+")
    rps=$(awk '/Requests\/sec/ {print $2}' "$out")
    p50=$(awk '$1 == "50%" {print $2}' "$out"); p99=$(awk '$1 == "99%" {print $2}' "$out")
    errors=$(grep -oE "non2xx=[0-9]+" "$out" || echo "non2xx=?")
    rows=$("$M" audit verify --audit "$A" | grep -oE "intact: [0-9]+" | grep -oE "[0-9]+")
    if [[ $target == postgres ]]; then new=$((rows - prev_pg)); prev_pg=$rows; else new=$rows; fi
    (( new >= reqs )) || { echo "audit=$target: $new rows for $reqs requests" >&2; exit 1; }
    echo "round=$round audit=$target requests=$reqs req/s=$rps p50=$p50 p99=$p99 $errors audit_rows=$new chain=intact"
  done
done
