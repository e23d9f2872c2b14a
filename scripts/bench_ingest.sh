#!/usr/bin/env bash
# Ingest benchmark: the real supervisor (durable: write-ahead log + flush
# before 202) against a bare server that only parses and counts the same
# NDJSON batches. 1,000 events of ~250 bytes per request, loaded with wrk
# (max rate), then the supervisor at 80% of its max rate with a fixed-rate
# client to read the acknowledgement latency.
#
# Usage: scripts/bench_ingest.sh [SECONDS_PER_RUN]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CONNS=${CONNS:-16}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p supervisor --bin supervisor --example bare_ingest --example loadgen
BIN=${CARGO_TARGET_DIR:-target}/release
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

python3 - "$work/body.ndjson" <<'PY'
import json, random, sys
random.seed(7)
levels = ["info"] * 97 + ["warn"] * 2 + ["error"]
msgs = ["GET /api/v1/orders/{} 200 in {}ms user={} region=eu-west-1 cache=hit upstream=orders-svc",
        "payment authorised order={} amount={}.00 currency=EUR customer={} gateway=stripe",
        "connection to 10.0.0.{}:5432 refused (attempt {} of {}) pool=primary"]
with open(sys.argv[1], "w") as f:
    for i in range(1000):
        lvl = random.choice(levels)
        m = msgs[2] if lvl == "error" else random.choice(msgs[:2])
        ev = {"timestamp": "2026-11-23T10:00:00.%03dZ" % (i % 1000), "service": "checkout-%d" % (i % 8),
              "level": lvl, "message": m.format(random.randint(1, 99999), random.randint(1, 999), random.randint(1, 9999)),
              "host": "node-%02d" % (i % 20), "trace_id": "%032x" % random.getrandbits(128)}
        f.write(json.dumps(ev) + "\n")
PY
bytes=$(wc -c < "$work/body.ndjson")
cat > "$work/post.lua" <<LUA
local f = io.open("$work/body.ndjson", "rb")
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "application/x-ndjson"
LUA

start_server() { # $1 = log file, rest = command; echoes the URL
  local log=$1; shift
  "$@" > "$log" 2>/dev/null &
  for _ in $(seq 1 200); do
    if grep -q "http://" "$log"; then grep -o 'http://[0-9.:]*' "$log" | head -1; return; fi
    sleep 0.05
  done
  echo "server did not start: $*" >&2; exit 1
}

rps_of() { awk '/Requests\/sec/ {print $2}'; }

echo "body: 1000 events, $bytes bytes per request; $SECS s per run, $CONNS connections, wrk -t1"
bare=$(start_server "$work/bare.log" "$BIN/examples/bare_ingest")
wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "$work/post.lua" "$bare/ingest/logs" > "$work/wrk_bare.txt"
kill %1 2>/dev/null || true
sup=$(start_server "$work/sup.log" env RUST_LOG=warn "$BIN/supervisor" --listen 127.0.0.1:0 --data-dir "$work/data")
wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "$work/post.lua" "$sup/ingest/logs" > "$work/wrk_sup.txt"
bare_rps=$(rps_of < "$work/wrk_bare.txt"); sup_rps=$(rps_of < "$work/wrk_sup.txt")
rate=$(python3 -c "print(round(0.8*$sup_rps, 1))")
"$BIN/examples/loadgen" "$sup/ingest/logs" "$work/body.ndjson" 1000 "$SECS" "$CONNS" "$rate" > "$work/at80.json"

python3 - "$bare_rps" "$sup_rps" "$work/wrk_sup.txt" "$work/at80.json" <<'PY'
import json, sys
bare, sup = float(sys.argv[1]), float(sys.argv[2])
lat = {l.split()[0]: l.split()[1] for l in open(sys.argv[3]) if l.strip().startswith(("50%", "99%"))}
at80 = json.load(open(sys.argv[4]))
print(f"bare parse-and-count : {bare*1000:12,.0f} events/s ({bare:,.1f} req/s)")
print(f"supervisor (durable) : {sup*1000:12,.0f} events/s ({sup:,.1f} req/s); at max rate p50 {lat.get('50%')} p99 {lat.get('99%')}")
print(f"ratio supervisor/bare: {sup/bare:.2f} (goal >= 0.70)")
print(f"at 80% of max ({at80['requests_per_s']:.1f} req/s achieved, {at80['errors']} errors): "
      f"ack p50 {at80['p50_ms']:.1f} ms, p99 {at80['p99_ms']:.1f} ms (goal p99 <= 50 ms)")
PY
