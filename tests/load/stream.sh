#!/usr/bin/env bash
# Live feeds under load against a release build: 1 000 WebSocket clients
# over 20 symbols for 20 s, quotes from a moving Yahoo stand-in on
# loopback (tests/load/moving_yahoo.py). Needs `pip install websockets` (PYTHON=/path/to/venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q
python3 tests/load/moving_yahoo.py 8191 &
yahoo=$!
state=$(mktemp -d)
TICKCAST_MARKET__PROVIDERS='["yfinance"]' TICKCAST_YAHOO__BASE_URL=http://127.0.0.1:8191 \
  TICKCAST_MARKET__QUOTE_CACHE_TTL_SECS=0 TICKCAST_MARKET__PROBE_ON_START=false \
  TICKCAST_YAHOO__QUOTA__PER_SECOND=100000 TICKCAST_YAHOO__QUOTA__PER_HOUR=1000000000 \
  TICKCAST_YAHOO__QUOTA__BURST=100000 \
  TICKCAST_CATALOG__SUBSCRIPTIONS_DB="$state/subs.db" TICKCAST_LOG__LEVEL=warn \
  ./target/release/tickcast --port 8192 &
pid=$!
trap 'kill $pid $yahoo; rm -rf "$state"' EXIT
sleep 2
"${PYTHON:-python3}" tests/load/stream.py 8192 "$pid" 8191 "$@"
