#!/usr/bin/env bash
# Durable writes as the registry grows: registers COUNT instances (default 100,000) into one service through 32
# keep-alive connections, every request an acknowledged durable write, and prints the rate and the server's RSS
# for each tenth and its growth per instance (six attributes each); then restarts the server on the same data and
# prints the seconds to its first DiscoverInstances answer and its RSS after the reload (issue 12, item 4).
# With CAIRN_BASELINE=path/to/other/cairn it runs that binary the same way first, so one run shows before and after.
# CAIRN_BASELINE_COUNT sets the baseline's count (default COUNT); CAIRN_SKIP_BUILD=1 uses the release binary as built.
# Usage: bench/writes.sh [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-100000}
[ -n "${CAIRN_SKIP_BUILD:-}${CAIRN_BIN:-}" ] || swift build -c release --product cairn >/dev/null
CAIRN_BIN=${CAIRN_BIN:-.build/release/cairn}  # another binary to measure (a before-build, say)
source bench/lib.sh
cat >"$work/config.yaml" <<YAML
limits: {instancesPerNamespace: 1000000, instancesPerService: 1000000}
YAML

run() { # binary label count
  local bin=$1 label=$2 count=$3 port data
  port=$(free_port)
  data="$work/data-$label"
  "$bin" serve --dev --no-throttling --port "$port" --no-dns --health-interval 3600 --data-dir "$data" \
    --config "$work/config.yaml" --log-level warning &
  local pid=$!
  bench_pids+=($pid)
  wait_for_tcp "$port"
  echo "$label: RegisterInstance into one service, $count instances"
  python3 bench/register_load.py "http://127.0.0.1:$port" "$count" 32 "$pid"
  kill -TERM "$pid"; wait "$pid" || true
  local started answered
  sync; sleep 1  # the stop's own writes out of the way of the timing
  started=$(date +%s.%N)
  "$bin" serve --dev --no-throttling --port "$port" --no-dns --health-interval 3600 --data-dir "$data" \
    --config "$work/config.yaml" --log-level warning &
  pid=$!
  bench_pids+=($pid)
  answered=$(python3 bench/register_load.py --first-answer "http://127.0.0.1:$port" "$started")
  echo "  restart with $count instances: first DiscoverInstances answer after $answered s (target <= 3 s)"
  echo "  after a restart on the same data: server RSS $(awk '/VmRSS/ {printf "%.0f", $2/1024}' /proc/$pid/status) MB"
  kill -TERM "$pid"; wait "$pid" || true
}

if [ -n "${CAIRN_BASELINE:-}" ]; then run "$CAIRN_BASELINE" baseline "${CAIRN_BASELINE_COUNT:-$COUNT}"; fi
run "$CAIRN_BIN" cairn "$COUNT"
