# Sourced by the load scripts: builds the release binary and starts it on
# local data at port $1, stopped (and its state removed) on exit.
start_service() {
  cargo build --release -q
  state=$(mktemp -d)
  TICKCAST_MARKET__PROVIDERS='["local"]' TICKCAST_CATALOG__SUBSCRIPTIONS_DB="$state/subs.db" \
    TICKCAST_LOG__LEVEL=warn ./target/release/tickcast --port "$1" &
  pid=$!
  trap 'kill $pid; rm -rf "$state"' EXIT
  sleep 1
}
