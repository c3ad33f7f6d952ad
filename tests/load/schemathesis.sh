#!/usr/bin/env bash
# Fuzzes a running tickcast with schemathesis from its own OpenAPI document:
# no 5xx, and every response must match its documented status, content type
# and schema. Usage: tests/load/schemathesis.sh [BASE_URL] [SECONDS]
set -euo pipefail
base="${1:-http://127.0.0.1:8080}"
seconds="${2:-120}"
# The admin switch changes the provider order for later requests; it is
# fuzzed only when an admin token is exported (ADMIN_TOKEN).
auth=()
[ -n "${ADMIN_TOKEN:-}" ] && auth=(--header "Authorization: Bearer $ADMIN_TOKEN")
exec schemathesis run "$base/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-time "$seconds" \
    --workers 2 \
    "${auth[@]}"
