#!/usr/bin/env bash
# Loopback load tests (local data only). Needs wrk (apt-get install wrk).
#   bash tests/load/run.sh                 portfolio_data, 10 symbols, warm quote cache
#   bash tests/load/run.sh lstm_predict    predict/lstm_predictor with 250 closes
#   bash tests/load/run.sh ensemble_predict predict/adaptive_ensemble, 250 closes (cached fit)
# Prints wrk's summary with latency percentiles.
set -euo pipefail
cd "$(dirname "$0")/../.."
scenario=${1:-portfolio_data}
[ -f "tests/load/$scenario.lua" ] || { echo "no scenario tests/load/$scenario.lua" >&2; exit 2; }
. tests/load/serve.sh
start_service 8181
# Warm the quote cache, then load.
curl -s -XPOST localhost:8181/api/production_api/portfolio_data -H 'Content-Type: application/json' \
  -d '{"symbols": ["AAPL", "MSFT", "JNJ", "KO", "XOM", "JPM", "PG", "WMT", "PEP", "MRK"]}' > /dev/null
wrk -t2 -c64 -d15s --latency -s "tests/load/$scenario.lua" http://127.0.0.1:8181
