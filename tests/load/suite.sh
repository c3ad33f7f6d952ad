#!/usr/bin/env bash
# The load figures of docs/performance.md: each scenario once with one
# sequential client (latency, comparable to the legacy baseline's
# sequential medians) and once under wrk -t2 -c64 (throughput), against a
# release build on local data. Needs wrk (apt-get install wrk).
#   bash tests/load/suite.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
. tests/load/serve.sh
start_service 8181
url=http://127.0.0.1:8181
curl -s -XPOST $url/api/production_api/portfolio_data -H 'Content-Type: application/json' \
  -d '{"symbols": ["AAPL", "MSFT", "JNJ", "KO", "XOM", "JPM", "PG", "WMT", "PEP", "MRK"]}' > /dev/null
run() { # name, connections, wrk args...
  local name=$1 conns=$2; shift 2
  local threads=2; [ "$conns" = 1 ] && threads=1
  local out; out=$(wrk -t$threads -c"$conns" -d"${seconds}s" --latency "$@")
  printf '%-16s c=%-3s %10s req/s  p50 %9s  p99 %9s  %s\n' "$name" "$conns" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" "$(awk '$1=="99%" {print $2}' <<<"$out")" \
    "$(grep 'non-200' <<<"$out")"
}
for conns in 1 64; do
  run healthz "$conns" -s tests/load/get.lua $url/healthz
  run provider_health "$conns" -s tests/load/get.lua $url/api/production_api/health
  run list "$conns" -s tests/load/get.lua $url/api/enhanced_ml_models/list
  run portfolio_data "$conns" -s tests/load/portfolio_data.lua $url
  run lstm_predict "$conns" -s tests/load/lstm_predict.lua $url
  run optimizer_20 "$conns" -s tests/load/optimizer_20.lua $url
done
run list_c32 32 -s tests/load/get.lua $url/api/enhanced_ml_models/list
echo "peak RSS of the service: $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)"
