#!/usr/bin/env bash
# Self-healing demo: starts the `demo` service and the `supervisor` with a
# configuration whose recovery actions are named after the knowledge base's
# fixes (restart_service, disable_feature_flag, recycle_connection_pools),
# then breaks the demo in each way and prints, with timestamps, the incident
# being detected, diagnosed (cause), the fix chosen by fix selection
# executed, verified and the incident resolved. Nothing stands in for a
# stage: detection uses the built-in signatures, diagnosis the built-in
# knowledge base.
#
# Usage: scripts/demo.sh [kind ...]   (default: crash 500s pool leak hang)
# Env: SUP_PORT (18080), DEMO_PORT (19000), PROFILE (debug | release).
set -euo pipefail
cd "$(dirname "$0")/.."

KINDS=${*:-crash 500s pool leak hang}
SUP_PORT=${SUP_PORT:-18080}
DEMO_PORT=${DEMO_PORT:-19000}
PROFILE=${PROFILE:-debug}
SUP="http://127.0.0.1:$SUP_PORT"
DEMO="127.0.0.1:$DEMO_PORT"

flag=""
[ "$PROFILE" = release ] && flag="--release"
cargo build -q $flag -p supervisor -p demo
BIN=$(cd "${CARGO_TARGET_DIR:-target}/$PROFILE" && pwd)

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/demo.pid" ] && kill "$(cat "$WORK/demo.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ts() { date -u +%H:%M:%S.%3N; }
say() { printf '%s  %s\n' "$(ts)" "$*"; }
# An event at its own time (ms since the epoch), not when it is printed.
say_at() {
  local ms=$1; shift
  printf '%s  %s\n' "$(date -u -d "@$(( ms / 1000 )).$(printf '%03d' $(( ms % 1000 )))" +%H:%M:%S.%3N)" "$*"
}

HEALTH="verify = { check = { type = \"http\", url = \"http://$DEMO/health\", status = 200 }, within = \"10s\", hold = \"300ms\", interval = \"50ms\", timeout = \"500ms\" }"
cat > "$WORK/config.toml" <<TOML
listen = "127.0.0.1:$SUP_PORT"
data_dir = "$WORK/data"
[triage]
dedup_window = "1h"
# The demo breaks the same target again at once: no cooldown between
# attempts of a fix on it.
[rca]
fix_cooldown = "0s"
[recovery]
mode = "auto"
allowed_hosts = ["$DEMO"]
# The default budget (3 attempts per target per 10 min) would escalate the
# third kind of fault on the same target to humans: raised for the demo.
[recovery.budget]
max_attempts = 20
[recovery.actions.restart_service]
layer = "service"
risk = "low"
kind = { type = "command", program = "/usr/bin/setsid", args = ["-f", "$BIN/demo", "--replace", "--service", "{target}", "--listen", "$DEMO", "--ship-to", "$SUP/ingest/logs", "--pid-file", "$WORK/demo.pid"], timeout = "5s" }
$HEALTH
[recovery.actions.disable_feature_flag]
layer = "application"
risk = "low"
kind = { type = "http", method = "POST", url = "http://$DEMO/flags/broken_path/off", timeout = "2s", status = 200 }
$HEALTH
[recovery.actions.recycle_connection_pools]
layer = "service"
risk = "low"
kind = { type = "http", method = "POST", url = "http://$DEMO/pool/recycle", timeout = "2s", status = 200 }
$HEALTH
TOML

say "starting supervisor on $SUP (auto mode, actions: restart_service, disable_feature_flag, recycle_connection_pools)"
"$BIN/supervisor" --config "$WORK/config.toml" > "$WORK/supervisor.log" 2>&1 &
PIDS+=($!)
until curl -fs "$SUP/ready" > /dev/null; do sleep 0.1; done
say "starting demo on $DEMO (logs shipped to the supervisor)"
setsid -f "$BIN/demo" --listen "$DEMO" --ship-to "$SUP/ingest/logs" --pid-file "$WORK/demo.pid" > /dev/null 2>&1
until curl -fs "http://$DEMO/health" > /dev/null; do sleep 0.1; done

# Traffic, so faults show up in the demo's logs.
( while true; do curl -s -m 0.4 "http://$DEMO/" > /dev/null || true; sleep 0.02; done ) &
PIDS+=($!)

for kind in $KINDS; do
  echo
  seen=$(curl -fs "$SUP/actions" | jq '.audit | last | .seq // 0')
  t0=$(date +%s%3N)
  say_at "$t0" "break               demo: $kind"
  curl -s -m 3 -X POST "http://$DEMO/fault/$kind" > /dev/null || true
  deadline=$(( $(date +%s) + 60 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    new=$(curl -fs "$SUP/actions" | jq -c --argjson s "$seen" '[.audit[] | select(.seq > $s)]')
    for e in $(echo "$new" | jq -r '.[] | @base64'); do
      row=$(echo "$e" | base64 -d)
      seen=$(echo "$row" | jq .seq)
      at=$(echo "$row" | jq -r '.ts_ms')
      d=$(echo "$row" | jq -r '.decision'); fix=$(echo "$row" | jq -r '.fix')
      inc=$(echo "$row" | jq -r '.incident_id'); detail=$(echo "$row" | jq -r '.detail' | cut -c1-90)
      if [ "$d" = proposed ]; then
        inc_json=$(curl -fs "$SUP/incidents/$inc")
        opened=$(echo "$inc_json" | jq -r '[.timeline[]? | select(.kind == "opened" or .kind == "reopened")] | last | .ts_ms // empty')
        title=$(echo "$inc_json" | jq -r '"\(.kind) [\(.severity)] \(.title)"')
        say_at "${opened:-$at}" "detected            incident $inc: $title (+$(( ${opened:-$at} - t0 )) ms)"
        rca=$(curl -fs "$SUP/incidents/$inc/rca")
        cause=$(echo "$rca" | jq -r '.diagnosis.hypotheses[0] | "\(.cause_id) (\(.cause_name)) on \(.service), confidence \(.confidence * 100 | floor)%"')
        say_at "$at" "diagnosed           $cause (+$(( at - t0 )) ms)"
      fi
      # Fix selection hands the plan over again on every re-diagnosis;
      # recovery refuses those while it works on the incident.
      [ "$d" = duplicate_plan ] && continue
      say_at "$at" "$(printf '%-19s' "$d") $fix: $detail (+$(( at - t0 )) ms)"
      if [ "$d" = verified ]; then
        for _ in $(seq 100); do
          resolved=$(curl -fs "$SUP/incidents/$inc" | jq -r 'select(.status == "resolved") | [.timeline[] | select(.kind == "resolved")] | last | .ts_ms // empty')
          [ -n "$resolved" ] && break
          sleep 0.05
        done
        if [ -n "$resolved" ]; then
          say_at "$resolved" "resolved            incident $inc (+$(( resolved - t0 )) ms); fault -> verified heal $(( at - t0 )) ms"
        else
          say "incident $inc NOT resolved; fault -> verified heal $(( at - t0 )) ms"
        fi
        continue 3
      fi
      [ "$d" = escalated ] && { say "ESCALATED to humans"; continue 3; }
    done
    sleep 0.05
  done
  say "no heal within 60 s"
done
echo
say "audit chain: $(curl -fs "$SUP/actions" | jq -c .audit_chain)"
