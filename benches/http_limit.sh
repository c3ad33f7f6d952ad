#!/usr/bin/env bash
# tickcast's HTTP path against the framework's limit, side by side: the
# release binary (local data, default settings: info logs) and a bare axum
# server answering the same bytes (benches/bare_axum.rs), each under
# `wrk -t2 -c32 -d10s` in turns A B A B (ROUNDS, default 2), then one
# connection's back-to-back requests for 5 s each (wrk -c1, median latency). wrk and the servers
# share the 2 cores. Needs wrk (apt-get install wrk). SERVER_BIN runs
# another build of tickcast (an older one, for before/after figures).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
cargo build --release -q --example bare_axum
state=$(mktemp -d)
bin=$(realpath "${SERVER_BIN:-./target/release/tickcast}")
# Started in the state directory: the built-in settings, whatever build.
(cd "$state" && TICKCAST_MARKET__PROVIDERS='["local"]' TICKCAST_MARKET__PROBE_ON_START=false \
  TICKCAST_CATALOG__SUBSCRIPTIONS_DB="$state/subs.db" exec "$bin" --port 8300 >"$state/tickcast.log" 2>&1) &
tickcast=$!
trap 'kill $tickcast ${bare:-} 2>/dev/null; wait 2>/dev/null; rm -rf "$state"' EXIT
for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:8300/healthz && break; sleep 0.2; done
curl -sf -o /dev/null http://127.0.0.1:8300/healthz || { cat "$state/tickcast.log"; exit 1; }
single() { # median latency of one connection's back-to-back requests, in microseconds
  wrk -t1 -c1 -d5s --latency "$1" | awk '$1 == "50%" {
    v = $2; u = 1; if (v ~ /ms$/) u = 1000; else if (v ~ /us$/) u = 1; else if (v ~ /s$/) u = 1e6
    gsub(/[a-z]+$/, "", v); printf "%.1f", v * u }'
}
for route in /api/enhanced_ml_models/list /api/production_api/health; do
  curl -s "http://127.0.0.1:8300$route" >"$state/body.json"
  if [ -n "${bare:-}" ]; then kill "$bare"; wait "$bare" 2>/dev/null || true; fi
  ./target/release/examples/bare_axum 8301 "$state/body.json" &
  bare=$!
  until curl -sf -o /dev/null "http://127.0.0.1:8301$route"; do sleep 0.2; done
  for round in $(seq "${ROUNDS:-2}"); do
    t=$(wrk -t2 -c32 -d10s "http://127.0.0.1:8300$route" | awk '/Requests\/sec/ {print $2}')
    b=$(wrk -t2 -c32 -d10s "http://127.0.0.1:8301$route" | awk '/Requests\/sec/ {print $2}')
    echo "$route round $round: tickcast $t req/s, bare axum $b req/s, ratio $(awk "BEGIN {printf \"%.2f\", $t / $b}")"
  done
  ts=$(single "http://127.0.0.1:8300$route")
  bs=$(single "http://127.0.0.1:8301$route")
  echo "$route single request: tickcast $ts us, bare axum $bs us, ratio $(awk "BEGIN {printf \"%.2f\", $ts / $bs}")"
done
