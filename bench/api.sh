#!/usr/bin/env bash
# Cairn beside moto (the usual Cloud Map emulator) in one run: DiscoverInstances throughput and p99 at 64
# connections for a 100-instance service, and durable RegisterInstance throughput from concurrent clients. Also
# DiscoverInstances beside the HTTP stack's ceiling: a bare Hummingbird route (Sources/cairn-bench-http) answering
# the same bytes Cairn answered.
# Usage: bench/api.sh [seconds per measurement, default 10]   (ROUNDS=N: rounds of the DiscoverInstances trio, default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
ROUNDS=${ROUNDS:-3}
INSTANCES=100

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
python3 -c 'import moto, flask' 2>/dev/null || python3 -m pip install --quiet 'moto[server]'
python3 -c 'import boto3' 2>/dev/null || python3 -m pip install --quiet boto3

[ -n "${CAIRN_SKIP_BUILD:-}${CAIRN_BIN:-}" ] || swift build -c release --product cairn >/dev/null
# The bare Hummingbird route (the HTTP stack's ceiling) is always this checkout's.
[ -x .build/release/cairn-bench-http ] && [ -n "${CAIRN_SKIP_BUILD:-}" ] || swift build -c release --product cairn-bench-http >/dev/null
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


# The HTTP stack's ceiling: the same request, answered by a bare Hummingbird route with the bytes Cairn answered.
curl -s -X POST "http://127.0.0.1:$cairn_port/" -H 'Content-Type: application/x-amz-json-1.1' \
  -H 'X-Amz-Target: Route53AutoNaming_v20170314.DiscoverInstances' \
  -H 'Authorization: AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/servicediscovery/aws4_request, SignedHeaders=host, Signature=0' \
  -d '{"NamespaceName":"bench","ServiceName":"svc","HealthStatus":"ALL","MaxResults":1000}' >"$work/discover.json"
bare_port=$(free_port)
.build/release/cairn-bench-http "$bare_port" "$work/discover.json" >"$work/bare.log" 2>&1 &
bench_pids+=($!)
wait_for_tcp "$bare_port"

# DiscoverInstances in ROUNDS rounds of Cairn, the bare route and moto one after the other: this host's speed drifts
# within minutes, so each ratio is the median of the rounds' ratios, each taken between measurements seconds apart.
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
cs=(); cp=(); bs=(); bp=(); ms=(); mp=(); to_bare=(); to_moto=(); c_bad=0; m_bad=0
for round in $(seq "$ROUNDS"); do
  read -r c_rps c_p99 bad < <(measure "http://127.0.0.1:$cairn_port/" bench/discover.lua "" 64); c_bad=$((c_bad + bad))
  read -r b_rps b_p99 _ < <(measure "http://127.0.0.1:$bare_port/" bench/discover.lua "" 64)
  read -r m_rps m_p99 bad < <(measure "http://127.0.0.1:$moto_port/" bench/discover.lua "" 64); m_bad=$((m_bad + bad))
  cs+=("$c_rps"); cp+=("$c_p99"); bs+=("$b_rps"); bp+=("$b_p99"); ms+=("$m_rps"); mp+=("$m_p99")
  to_bare+=("$(python3 -c "import sys; print(float(sys.argv[1])/float(sys.argv[2]))" "$c_rps" "$b_rps")")
  to_moto+=("$(python3 -c "import sys; print(float(sys.argv[1])/float(sys.argv[2]))" "$c_rps" "$m_rps")")
  printf 'round %d: DiscoverInstances req/s: cairn %.0f  bare route %.0f  moto %.0f\n' "$round" "$c_rps" "$b_rps" "$m_rps"
done
printf 'DiscoverInstances (%d instances, 64 conns) req/s: cairn %.0f  moto %.0f  ratio %.1fx  (medians of %d rounds; non-2xx: cairn %s, moto %s)\n' \
  "$INSTANCES" "$(median "${cs[@]}")" "$(median "${ms[@]}")" "$(median "${to_moto[@]}")" "$ROUNDS" "$c_bad" "$m_bad"
printf 'DiscoverInstances p99 ms: cairn %.2f  moto %.2f  ratio %s (moto/cairn)\n' "$(median "${cp[@]}")" "$(median "${mp[@]}")" \
  "$(ratio "$(median "${mp[@]}")" "$(median "${cp[@]}")")"
printf 'DiscoverInstances vs a bare Hummingbird route with the same %d-byte body, 64 conns, req/s: cairn %.0f  bare %.0f  ratio %.2fx  (medians of %d rounds; p99 ms: cairn %.2f  bare %.2f)\n' \
  "$(wc -c <"$work/discover.json")" "$(median "${cs[@]}")" "$(median "${bs[@]}")" "$(median "${to_bare[@]}")" "$ROUNDS" \
  "$(median "${cp[@]}")" "$(median "${bp[@]}")"

read -r c_rps c_p99 c_bad < <(measure "http://127.0.0.1:$cairn_port/" bench/register.lua "$cairn_service" 32)
read -r m_rps m_p99 m_bad < <(measure "http://127.0.0.1:$moto_port/" bench/register.lua "$moto_service" 32)
printf 'RegisterInstance (32 conns, durable in cairn) req/s: cairn %.0f  moto %.0f  ratio %s  (non-2xx: cairn %s, moto %s)\n' \
  "$c_rps" "$m_rps" "$(ratio "$c_rps" "$m_rps")" "$c_bad" "$m_bad"
printf 'RegisterInstance p99 ms: cairn %.2f  moto %.2f\n' "$c_p99" "$m_p99"
