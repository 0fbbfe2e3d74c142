#!/usr/bin/env bash
# Watch streams at scale (issue 13): STREAMS server-sent-event streams (default 10,000) on one service of one node.
# Prints the server's memory per stream, how long one registration a second takes to reach every stream (p50/p99,
# measured by one client process reading all streams, so it includes that client's own delay) and the server's CPU
# meanwhile, and durable RegisterInstance/s without streams and with them, to the watched service and to another.
# The write measurements run twice: as they come (the one process reading every stream shares the host's cores with
# the server; the runs without streams come before and after the streams), and held: the server with the streams and
# a second server loaded the same way that never has any, each held to SERVER_CPU cores (default 1, a cgroup each;
# bench/lib.sh's limit_cpu), written to in turns, seconds apart, in ROUNDS rounds (default 3). Each held ratio is the
# median of the rounds' ratios, so it shows the streams' cost to the server, not their reader's, nor this host's drift.
# Usage: bench/watch.sh [seconds per write measurement, default 10]   (STREAMS=N CHANGES=N to change the load;
#   SERVER_CPU=0 to skip the held runs; ROUNDS=N held rounds, default 3)
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
# The peer for the held rounds: the same build, configuration and data, and never a stream.
peer_port=$(free_port)
"$CAIRN_BIN" serve --dev --no-throttling --port "$peer_port" --no-dns --data-dir "$work/peer" --log-level warning \
  --config "$work/cairn.yaml" &
peer=$!
bench_pids+=($peer)
wait_for_tcp "$peer_port"
other_service() { # port -> the id of a new service "other" beside "svc" in namespace "bench"
  python3 - "$1" <<'PY'
import sys, boto3
from botocore.config import Config
sd = boto3.client("servicediscovery", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                  aws_access_key_id="bench", aws_secret_access_key="bench", config=Config(inject_host_prefix=False))
ns = next(n["Id"] for n in sd.list_namespaces()["Namespaces"] if n["Name"] == "bench")
print(sd.create_service(Name="other", NamespaceId=ns)["Service"]["Id"])
PY
}
watched=$(python3 bench/load.py "http://127.0.0.1:$port" 10)
other=$(other_service "$port")
peer_watched=$(python3 bench/load.py "http://127.0.0.1:$peer_port" 10)
peer_other=$(other_service "$peer_port")
writes() { # service [port [pid]] -> "rps p99_ms non2xx cores us_per_write" (the server's CPU while wrk ran)
  local out t0 t1 rps
  t0=$(cpu_ticks "${3:-$pid}")
  out=$(BENCH_SERVICE="$1" wrk -t2 -c32 -d"${SECONDS_EACH}s" --latency -s bench/register.lua "http://127.0.0.1:${2:-$port}/")
  t1=$(cpu_ticks "${3:-$pid}")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  echo "$rps $(awk '$1=="99%" {print $2}' <<<"$out") $(awk '/Non-2xx/ {n=$5} END {print n+0}' <<<"$out") \
$(python3 -c "import sys; t,s,r=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]); print(f'{t/100/s:.2f} {t*1e4/(r*s):.0f}')" \
    "$((t1 - t0))" "$SECONDS_EACH" "$rps")"
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
# Held rounds, streams open (one build measured four times with a baseline minutes away spread 0.71-1.09x): in each
# round the peer and the server with the streams take turns (who goes first alternates), to the service the streams
# watch and to another. Prints "median_ratio_watched median_ratio_other" then one line per round.
held_rounds() {
  local rw=() ro=() lines=() r p0w p1w p0o p1o c0w c1w c0o c1o u0w u1w u0o u1o
  limit_cpu "$pid" "$SERVER_CPU"
  limit_cpu "$peer" "$SERVER_CPU"
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
      read -r p0w _ _ c0w u0w < <(writes "$peer_watched" "$peer_port" "$peer"); read -r p1w _ _ c1w u1w < <(writes "$watched")
      read -r p0o _ _ c0o u0o < <(writes "$peer_other" "$peer_port" "$peer"); read -r p1o _ _ c1o u1o < <(writes "$other")
    else
      read -r p1w _ _ c1w u1w < <(writes "$watched"); read -r p0w _ _ c0w u0w < <(writes "$peer_watched" "$peer_port" "$peer")
      read -r p1o _ _ c1o u1o < <(writes "$other"); read -r p0o _ _ c0o u0o < <(writes "$peer_other" "$peer_port" "$peer")
    fi
    rw+=("$(python3 -c "import sys; print(float(sys.argv[1])/float(sys.argv[2]))" "$p1w" "$p0w")")
    ro+=("$(python3 -c "import sys; print(float(sys.argv[1])/float(sys.argv[2]))" "$p1o" "$p0o")")
    lines+=("$(printf '  round %d, RegisterInstance/s: to the watched service %.0f with the streams, %.0f on the peer (%.2fx); to another service %.0f, %.0f (%.2fx)' \
      "$r" "$p1w" "$p0w" "${rw[-1]}" "$p1o" "$p0o" "${ro[-1]}")")
    lines+=("$(printf '    server CPU meanwhile, cores and µs per write: watched %s / %s, peer %s / %s; another service %s / %s, peer %s / %s' \
      "$c1w" "$u1w" "$c0w" "$u0w" "$c1o" "$u1o" "$c0o" "$u0o")")
  done
  unlimit_cpu "$pid"
  unlimit_cpu "$peer"
  echo "$(median "${rw[@]}") $(median "${ro[@]}")"
  printf '%s\n' "${lines[@]}"
}
budgeted=; [ "$SERVER_CPU" = 0 ] || [ -z "$cg_kind" ] || budgeted=1
read -r w0_rps w0_p99 w0_bad _ < <(writes "$other")
# The peer gets the same history (the registry's operation records and log grow with every write, and slow it).
writes "$peer_other" "$peer_port" >/dev/null
python3 bench/watch_load.py 127.0.0.1 "$port" "$pid" bench svc "$watched" "$STREAMS" "$CHANGES" >"$work/fanout.txt" &
loader=$!
# The streams stay open while writes run: wait until the fan-out part has finished, then measure with them open.
while ! grep -q server_cores_during_fanout "$work/fanout.txt" 2>/dev/null; do
  kill -0 "$loader" 2>/dev/null || { cat "$work/fanout.txt"; echo "watch_load.py failed" >&2; exit 1; }
  sleep 1
done
if [ -n "$budgeted" ]; then
  held_rounds >"$work/held.txt"
fi
read -r w1_rps w1_p99 w1_bad _ < <(writes "$other")
read -r w2_rps w2_p99 w2_bad _ < <(writes "$watched")
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
  read -r held_watched held_other <"$work/held.txt"
  printf 'with each server held to %s cores, %s streams open on one, the other a peer with none (medians of %s rounds): RegisterInstance/s to the watched service %sx the peer'"'"'s, to another service %sx\n' \
    "$SERVER_CPU" "$STREAMS" "$ROUNDS" "$(printf '%.2f' "$held_watched")" "$(printf '%.2f' "$held_other")"
  tail -n +2 "$work/held.txt"
elif [ "$SERVER_CPU" != 0 ]; then
  echo "held to $SERVER_CPU cores: skipped (this host lets this script make no cgroup with a CPU quota)"
fi
