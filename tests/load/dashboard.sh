#!/usr/bin/env bash
# The dashboard page's latency and weight against a release build on local
# data: 500 sequential GET /dashboard (curl's time_total, median and p99,
# service defaults: info logs, compression), then the gzipped bytes of the
# page's own files. The page weight across all five views, its API answers
# included, is printed by tests/browser/dashboard.py ("page weight").
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/load/serve.sh
start_service 8193
url=http://127.0.0.1:8193
for _ in $(seq 500); do
  curl -s -o /dev/null -w '%{time_total}\n' "$url/dashboard"
done | sort -n | awk '{t[NR] = $1 * 1000} END {
  printf "GET /dashboard: median %.3f ms, p99 %.3f ms over %d requests\n", t[int(NR / 2)], t[int(NR * 0.99)], NR }'
total=0
for path in /dashboard /dashboard/assets/app.js /dashboard/assets/style.css \
    /dashboard/assets/uPlot.iife.min.js /dashboard/assets/uPlot.min.css; do
  bytes=$(curl -s -H 'Accept-Encoding: gzip' -o /dev/null -w '%{size_download}' "$url$path")
  echo "$path: $bytes bytes gzipped"
  total=$((total + bytes))
done
echo "page files: $total bytes gzipped"
