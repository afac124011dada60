-- wrk script for bench/serve_load.sh: POST one fixed Open Inference Protocol v2 JSON request.
-- env: BODY_FILE (the request body, required), TOKEN (bearer token; empty or unset = no header).
-- Counts responses that are not 2xx (and 2xx answers without "probabilities") per thread and
-- prints one machine-readable RESULT line when wrk is done.

local path = os.getenv("BODY_FILE")
local f = assert(io.open(path or "", "rb"), "serve_load.lua: set BODY_FILE to the request body")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

-- per-thread counters (each wrk thread runs its own copy of this script)
non2xx = 0
bad_body = 0
first_bad = 0

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_bad == 0 then first_bad = status end
  elseif not string.find(body, "probabilities", 1, true) then
    bad_body = bad_body + 1
  end
end

function done(summary, latency, requests)
  local bad, badbody, first = 0, 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
    badbody = badbody + t:get("bad_body")
    if first == 0 then first = t:get("first_bad") end
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.2f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
    "non2xx=%d first_non2xx_status=%d bad_body=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, bad, first, badbody, e.connect, e.read, e.write, e.timeout))
end
