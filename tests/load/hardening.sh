#!/usr/bin/env bash
# The hardening attacks at full size (tests/load/hardening.py) against a
# release build on local data; the small versions run in CI as
# `cargo test --test api hardening`. The subscriber cap is lowered to 1 000
# so item 4 shows it refusing.
set -euo pipefail
cd "$(dirname "$0")/../.."
export TICKCAST_CATALOG__MAX_SUBSCRIBERS=1000
. tests/load/serve.sh
start_service 8183
python3 tests/load/hardening.py 8183 "$pid"
