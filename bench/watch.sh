#!/usr/bin/env bash
# Watch streams at scale (issue 13): STREAMS server-sent-event streams (default 10,000) on one service of one node.
# Prints the server's memory per stream, how long one registration a second takes to reach every stream (p50/p99,
# measured by one client process reading all streams, so it includes that client's own delay) and the server's CPU
# meanwhile, and durable RegisterInstance/s without streams and with them, to the watched service and to another.
# The write measurements run twice: as they come (the one process reading every stream shares the host's cores with
# the server), and with the server held to SERVER_CPU cores (default 1, a cgroup; bench/lib.sh's limit_cpu) in the
# runs with and without streams alike, so the ratio shows the streams' cost to the server, not their reader's.
# Usage: bench/watch.sh [seconds per write measurement, default 10]   (STREAMS=N CHANGES=N to change the load;
#   SERVER_CPU=0 to skip the budgeted runs; ROUNDS=N held runs of each kind, default 3, each figure their median)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
STREAMS=${STREAMS:-10000}
CHANGES=${CHANGES:-10}
SERVER_CPU=${SERVER_CPU:-1}
ROUNDS=${ROUNDS:-3}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
python3 -c 'import boto3' 2>/dev/null || python3 -m pip install --quiet boto3
[ -n "${CAIRN_SKIP_BUILD:-}${CAIRN_BIN:-}" ] || swift build -c release --product cairn >/dev/null
CAIRN_BIN=${CAIRN_BIN:-.build/release/cairn}
source bench/lib.sh
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true  # the streams' sockets, on both sides
limit=$(( $(ulimit -n) - 1000 ))
[ "$STREAMS" -le "$limit" ] || { echo "only $limit streams fit the descriptor limit"; STREAMS=$limit; }
port=$(free_port)
cat >"$work/cairn.yaml" <<YAML
api:
  maxConnections: $((STREAMS + 1000))
  watch: {maxStreams: $((STREAMS + 100)), maxWaiting: $((STREAMS + 100))}
YAML
"$CAIRN_BIN" serve --dev --no-throttling --port "$port" --no-dns --data-dir "$work/data" --log-level warning \
  --config "$work/cairn.yaml" &
pid=$!
bench_pids+=($pid)
wait_for_tcp "$port"
watched=$(python3 bench/load.py "http://127.0.0.1:$port" 10)
other=$(python3 - "$port" <<'PY'
import sys, boto3
from botocore.config import Config
sd = boto3.client("servicediscovery", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                  aws_access_key_id="bench", aws_secret_access_key="bench", config=Config(inject_host_prefix=False))
ns = next(n["Id"] for n in sd.list_namespaces()["Namespaces"] if n["Name"] == "bench")
print(sd.create_service(Name="other", NamespaceId=ns)["Service"]["Id"])
PY
)
writes() { # service -> "rps p99_ms non2xx"
  local out
  out=$(BENCH_SERVICE="$1" wrk -t2 -c32 -d"${SECONDS_EACH}s" --latency -s bench/register.lua "http://127.0.0.1:$port/")
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1=="99%" {print $2}' <<<"$out") $(awk '/Non-2xx/ {print $5}' <<<"$out")"
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
# Held runs, ROUNDS of each (one build measured four times single-round spread 0.71-1.09x): "median_rps first_p99 all".
held() { # service [service] -> one line per service
  local a=() b=() r p pa= pb=
  limit_cpu "$pid" "$SERVER_CPU"
  for _ in $(seq "$ROUNDS"); do
    read -r r p _ < <(writes "$1"); a+=("$r"); pa=${pa:-$p}
    if [ -n "${2:-}" ]; then read -r r p _ < <(writes "$2"); b+=("$r"); pb=${pb:-$p}; fi
  done
  unlimit_cpu "$pid"
  echo "$(median "${a[@]}") $pa $(IFS=/; echo "${a[*]}")"
  [ -z "${2:-}" ] || echo "$(median "${b[@]}") $pb $(IFS=/; echo "${b[*]}")"
}
budgeted=; [ "$SERVER_CPU" = 0 ] || [ -z "$cg_kind" ] || budgeted=1
read -r w0_rps w0_p99 w0_bad < <(writes "$other")
if [ -n "$budgeted" ]; then
  read -r b0_rps b0_p99 b0_all < <(held "$other")
fi
python3 bench/watch_load.py 127.0.0.1 "$port" "$pid" bench svc "$watched" "$STREAMS" "$CHANGES" >"$work/fanout.txt" &
loader=$!
# The streams stay open while writes run: wait until the fan-out part has finished, then measure with them open.
while ! grep -q server_cores_during_fanout "$work/fanout.txt" 2>/dev/null; do
  kill -0 "$loader" 2>/dev/null || { cat "$work/fanout.txt"; echo "watch_load.py failed" >&2; exit 1; }
  sleep 1
done
read -r w1_rps w1_p99 w1_bad < <(writes "$other")
read -r w2_rps w2_p99 w2_bad < <(writes "$watched")
if [ -n "$budgeted" ]; then
  { read -r b1_rps b1_p99 b1_all; read -r b2_rps b2_p99 b2_all; } < <(held "$other" "$watched")
fi
kill "$loader" 2>/dev/null || true
wait "$loader" 2>/dev/null || true
# Without streams once more, now they are closed: this host's speed drifts within minutes, so the writes with streams
# are compared with the mean of the runs before and after them. First the server lets go of the closed streams.
gone=
for i in $(seq 60); do
  open_now=$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1=="cairn_watch_streams" {print $2+0}')
  [ "${open_now:-1}" = 0 ] && { gone=$i; break; }
  sleep 1
done
echo "the server let go of the closed streams within ${gone:-(more than 60)} s"
read -r w3_rps _ _ < <(writes "$other")
if [ -n "$budgeted" ]; then
  read -r b3_rps _ b3_all < <(held "$other")
  b0_first=$b0_rps
  b0_rps=$(python3 -c "import sys; print((float(sys.argv[1]) + float(sys.argv[2])) / 2)" "$b0_rps" "$b3_rps")
fi
w0_first=$w0_rps
w0_rps=$(python3 -c "import sys; print((float(sys.argv[1]) + float(sys.argv[2])) / 2)" "$w0_rps" "$w3_rps")
val() { awk -v k="$1" '$1==k {print $2}' "$work/fanout.txt"; }
printf 'watch streams open: %s of %s; server RSS %s → %s KiB: %s KiB per stream\n' \
  "$(val streams_open)" "$STREAMS" "$(val rss_before_kib)" "$(val rss_after_kib)" "$(val kib_per_stream)"
printf 'one registration a second to the watched service (%s changes): events %s of %s, reached every stream p50 %s ms, p99 %s ms, max %s ms; server %s cores meanwhile\n' \
  "$(val changes)" "$(val events_delivered)" "$(val events_expected)" "$(val fanout_p50_ms)" "$(val fanout_p99_ms)" \
  "$(val fanout_max_ms)" "$(val server_cores_during_fanout)"
printf 'RegisterInstance/s (32 conns) to another service: without streams %.0f (the mean of %.0f before the streams and %.0f after; p99 %s before), with %s streams open %.0f (p99 %s): ratio %s\n' \
  "$w0_rps" "$w0_first" "$w3_rps" "$w0_p99" "$STREAMS" "$w1_rps" "$w1_p99" "$(ratio "$w1_rps" "$w0_rps")"
printf 'RegisterInstance/s (32 conns) to the watched service, %s streams open: %.0f (p99 %s): ratio to without streams %s  (non-2xx: %s %s %s)\n' \
  "$STREAMS" "$w2_rps" "$w2_p99" "$(ratio "$w2_rps" "$w0_rps")" "${w0_bad:-0}" "${w1_bad:-0}" "${w2_bad:-0}"
if [ -n "$budgeted" ]; then
  printf 'with the server held to %s cores: RegisterInstance/s without streams %.0f (mean of before and after; p99 %s before); with %s streams open, to another service %.0f (p99 %s): ratio %s; to the watched service %.0f (p99 %s): ratio %s\n' \
    "$SERVER_CPU" "$b0_rps" "$b0_p99" "$STREAMS" "$b1_rps" "$b1_p99" "$(ratio "$b1_rps" "$b0_rps")" "$b2_rps" "$b2_p99" "$(ratio "$b2_rps" "$b0_rps")"
  printf '  (each a median of %s rounds: without streams before %s, after %s; with streams, to another service %s, to the watched one %s; the medians %.0f and %.0f)\n' \
    "$ROUNDS" "$b0_all" "$b3_all" "$b1_all" "$b2_all" "$b0_first" "$b3_rps"
elif [ "$SERVER_CPU" != 0 ]; then
  echo "with the server held to $SERVER_CPU cores: skipped (this host lets this script make no cgroup with a CPU quota)"
fi
