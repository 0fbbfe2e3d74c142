#!/usr/bin/env bash
# Cairn beside moto (the usual Cloud Map emulator) in one run: DiscoverInstances throughput and p99 at 64
# connections for a 100-instance service, and durable RegisterInstance throughput from concurrent clients.
# Usage: bench/api.sh [seconds per measurement, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
INSTANCES=100

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
python3 -c 'import moto, flask' 2>/dev/null || python3 -m pip install --quiet 'moto[server]'
python3 -c 'import boto3' 2>/dev/null || python3 -m pip install --quiet boto3

[ -n "${CAIRN_SKIP_BUILD:-}${CAIRN_BIN:-}" ] || swift build -c release --product cairn >/dev/null
CAIRN_BIN=${CAIRN_BIN:-.build/release/cairn}  # another binary to measure (a before-build, say)
source bench/lib.sh
cairn_port=$(free_port)
moto_port=$(free_port)

"$CAIRN_BIN" serve --dev --no-throttling --port "$cairn_port" --no-dns --data-dir "$work/data" --log-level warning &
bench_pids+=($!)
moto_server -p "$moto_port" >"$work/moto.log" 2>&1 &
bench_pids+=($!)
wait_for_tcp "$cairn_port" && wait_for_tcp "$moto_port"

cairn_service=$(python3 bench/load.py "http://127.0.0.1:$cairn_port" "$INSTANCES")
moto_service=$(python3 bench/load.py "http://127.0.0.1:$moto_port" "$INSTANCES")

# wrk prints "Requests/sec: N" and, with --latency, the "99%" percentile line.
measure() { # url script -> "rps p99_ms non2xx"
  local out
  out=$(BENCH_SERVICE="$3" wrk -t2 -c"$4" -d"${SECONDS_EACH}s" --latency -s "$2" "$1")
  local rps p99 bad
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' <<<"$out")
  bad=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  echo "$rps ${p99:-0} ${bad:-0}"
}


read -r c_rps c_p99 c_bad < <(measure "http://127.0.0.1:$cairn_port/" bench/discover.lua "" 64)
read -r m_rps m_p99 m_bad < <(measure "http://127.0.0.1:$moto_port/" bench/discover.lua "" 64)
printf 'DiscoverInstances (%d instances, 64 conns) req/s: cairn %.0f  moto %.0f  ratio %s  (non-2xx: cairn %s, moto %s)\n' \
  "$INSTANCES" "$c_rps" "$m_rps" "$(ratio "$c_rps" "$m_rps")" "$c_bad" "$m_bad"
printf 'DiscoverInstances p99 ms: cairn %.2f  moto %.2f  ratio %s (moto/cairn)\n' "$c_p99" "$m_p99" "$(ratio "$m_p99" "$c_p99")"

read -r c_rps c_p99 c_bad < <(measure "http://127.0.0.1:$cairn_port/" bench/register.lua "$cairn_service" 32)
read -r m_rps m_p99 m_bad < <(measure "http://127.0.0.1:$moto_port/" bench/register.lua "$moto_service" 32)
printf 'RegisterInstance (32 conns, durable in cairn) req/s: cairn %.0f  moto %.0f  ratio %s  (non-2xx: cairn %s, moto %s)\n' \
  "$c_rps" "$m_rps" "$(ratio "$c_rps" "$m_rps")" "$c_bad" "$m_bad"
printf 'RegisterInstance p99 ms: cairn %.2f  moto %.2f\n' "$c_p99" "$m_p99"
