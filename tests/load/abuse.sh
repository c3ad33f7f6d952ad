#!/usr/bin/env bash
# Abuse against a release build on local data, as an outside client sees
# it (tests/load/abuse.py); the in-process version runs in CI as
# `cargo test --test api abuse`.
set -euo pipefail
cd "$(dirname "$0")/../.."
export TICKCAST_SERVER__HEADER_READ_TIMEOUT_SECS=2
. tests/load/serve.sh
start_service 8182
python3 tests/load/abuse.py 8182 "$pid"
