#!/usr/bin/env bash
# Render an evaluation report in headless Chromium and save a full-page screenshot, to check
# that report.html renders offline (charts, tables, embedded heat maps).
# usage: bench/render_report.sh REPORT.html OUT.png [HEIGHT_PX]
# Needs Debian's chromium (`apt-get install -y chromium`); the network stays off.
set -euo pipefail
html=$(realpath "$1"); out=$(realpath -m "$2"); height=${3:-9000}
command -v chromium >/dev/null || { echo "chromium not found: apt-get install -y chromium" >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1280,"$height" \
  --screenshot="$out" "file://$html" 2>/dev/null
python3 - "$out" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("L")
w, h = im.size
# The page must not be blank: count non-white pixels and the last non-white row.
px = im.load()
ink = sum(1 for y in range(0, h, 4) for x in range(0, w, 4) if px[x, y] < 240)
last = max((y for y in range(0, h, 8) if any(px[x, y] < 240 for x in range(0, w, 8))), default=0)
print(f"{sys.argv[1]}: {w}x{h}, ink {ink * 16 / (w * h):.1%} of the page, content down to y={last}")
sys.exit(0 if ink > 1000 else 1)
PY
