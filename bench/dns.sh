#!/usr/bin/env bash
# Cairn beside NSD (an authoritative server in C) in one run: the same 1,000 services x 3 instances (A + SRV),
# the same dnsperf query mix (80% A, 15% SRV, 5% NXDOMAIN). Each server is pinned to core 0 and dnsperf to core 1.
# Prints queries/s, average and p99 latency, lost queries, and the Cairn/NSD ratio.
# Usage: bench/dns.sh [seconds per throughput run, default 15]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-15}

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v nsd >/dev/null || need+=(nsd)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${need[@]}"; }
fi
python3 -c 'import boto3' 2>/dev/null || python3 -m pip install --quiet boto3

swift build -c release --product cairn >/dev/null
source bench/lib.sh
api_port=$(free_port); cairn_dns=$(free_port); nsd_port=$(free_port)

python3 bench/dns_data.py queries "$work/queries.txt"
python3 bench/dns_data.py zone "$work/bench.test.zone"

# NSD, response rate limiting off, one server process on core 0.
cat >"$work/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1
  port: $nsd_port
  server-count: 1
  username: ""
  zonesdir: "$work"
  database: ""
  pidfile: "$work/nsd.pid"
  xfrdfile: "$work/xfrd.state"
  zonelistfile: "$work/zone.list"
  verbosity: 0
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: bench.test
  zonefile: bench.test.zone
CONF
taskset -c 0 nsd -d -c "$work/nsd.conf" >"$work/nsd.log" 2>&1 &
bench_pids+=($!)

cat >"$work/cairn.yaml" <<CONF
limits:
  instancesPerNamespace: 10000
dns:
  rateLimit: {responsesPerSecond: 0}   # one dnsperf client is a flood by design; measure the server, not the limiter
CONF
taskset -c 0 .build/release/cairn serve --dev --no-throttling --port "$api_port" --dns-port "$cairn_dns" --data-dir "$work/data" \
  --config "$work/cairn.yaml" --log-level warning &
bench_pids+=($!)
wait_for_tcp "$api_port"
python3 bench/dns_data.py cairn "http://127.0.0.1:$api_port"
for _ in $(seq 50); do dig @127.0.0.1 -p "$nsd_port" +short svc1.bench.test A | grep -q . && break; sleep 0.1; done

# Both must give the same answers before they are compared.
for q in "svc7.bench.test A" "svc7.bench.test SRV" "missing7.bench.test A"; do
  c=$(dig @127.0.0.1 -p "$cairn_dns" +noall +answer +comments $q | grep -E "status|IN" | sed 's/id: [0-9]*//' | awk '{print $NF}' | sort | tr '\n' ' ')
  n=$(dig @127.0.0.1 -p "$nsd_port" +noall +answer +comments $q | grep -E "status|IN" | sed 's/id: [0-9]*//' | awk '{print $NF}' | sort | tr '\n' ' ')
  [ "$c" = "$n" ] || { echo "answers differ for $q: cairn [$c] nsd [$n]"; exit 1; }
done

throughput() { # port -> "qps lost"
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries.txt" -l "$SECONDS_EACH" -c 16 -q 500 -T 1 2>&1 |
    awk '/Queries per second/ {q=$4} /Queries lost/ {l=$3} END {print q, l}'
}
latency() { # port -> "avg_ms p99_ms" at a fixed 20,000 queries/s, from dnsperf's per-query report
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries.txt" -l 5 -Q 20000 -c 4 -T 1 -v 2>/dev/null |
    awk '/^> / {print $NF * 1000}' | sort -n |
    awk '{v[NR]=$1; s+=$1} END {if (NR) printf "%.3f %.3f\n", s/NR, v[int(NR*0.99)]; else print "0 0"}'
}

read -r c_qps c_lost < <(throughput "$cairn_dns")
read -r n_qps n_lost < <(throughput "$nsd_port")
read -r c_avg c_p99 < <(latency "$cairn_dns")
read -r n_avg n_p99 < <(latency "$nsd_port")
printf 'DNS queries/s (1,000 services x 3, 80%% A/15%% SRV/5%% NXDOMAIN, server on 1 core): cairn %.0f  nsd %.0f  ratio %s  (lost: cairn %s, nsd %s)\n' \
  "$c_qps" "$n_qps" "$(ratio "$c_qps" "$n_qps")" "$c_lost" "$n_lost"
printf 'DNS latency at 20,000 queries/s, avg / p99 ms: cairn %s / %s  nsd %s / %s\n' "$c_avg" "$c_p99" "$n_avg" "$n_p99"
