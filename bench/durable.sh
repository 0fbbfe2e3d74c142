#!/usr/bin/env bash
# Durable writes beside etcd, in one run: RegisterInstance on Cairn's embedded SQLite store (every request an
# acknowledged write, fsynced before the answer) and a put on a single-node etcd (which fsyncs its WAL before it
# answers, batching concurrent puts), each through wrk at 1, 8 and 64 connections with the same key space
# (800 ids per wrk thread, upserted). Prints requests/s and p99 for both and Cairn's ratio to etcd (issue 12: ≥ 1.0×,
# p99 no worse), and Cairn's transactions and fsync-bearing batches from its batch-size histogram.
# Usage: bench/durable.sh [seconds per measurement, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v etcd >/dev/null || { apt-get update -qq && apt-get install -y -qq etcd-server || apt-get install -y -qq etcd; }
[ -n "${CAIRN_SKIP_BUILD:-}${CAIRN_BIN:-}" ] || swift build -c release --product cairn >/dev/null
CAIRN_BIN=${CAIRN_BIN:-.build/release/cairn}  # another binary to measure (a before-build, say)
source bench/lib.sh
cat >"$work/config.yaml" <<YAML
limits: {instancesPerNamespace: 1000000, instancesPerService: 1000000}
YAML
cairn_port=$(free_port)
etcd_port=$(free_port)
peer_port=$(free_port)
"$CAIRN_BIN" serve --dev --no-throttling --port "$cairn_port" --no-dns --health-interval 3600 --data-dir "$work/cairn" \
  --config "$work/config.yaml" --log-level warning >"$work/cairn.log" 2>&1 &
bench_pids+=($!)
etcd --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "default=http://127.0.0.1:$peer_port" >"$work/etcd.log" 2>&1 &
bench_pids+=($!)
wait_for_tcp "$cairn_port" && wait_for_tcp "$etcd_port"
service=$(python3 bench/load.py "http://127.0.0.1:$cairn_port" 10)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$etcd_port/health" | grep -q true && break; sleep 0.1; done

measure() { # url script conns -> "rps p99_ms non2xx"
  local out
  out=$(BENCH_SERVICE="$service" wrk -t"$(($3 > 1 ? 2 : 1))" -c"$3" -d"${SECONDS_EACH}s" --latency -s "$2" "$1")
  awk '/Requests\/sec/ {r=$2} $1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p=v} /Non-2xx/ {b=$5} END {printf "%s %s %s\n", r, (p==""?0:p), (b==""?0:b)}' <<<"$out"
}
batches() { # -> "transactions entries" so far
  curl -s "http://127.0.0.1:$cairn_port/metrics" | awk '/^cairn_store_commit_batch_entries_count/ {c=$2} /^cairn_store_commit_batch_entries_sum/ {s=$2} END {print c, s}'
}

for conns in 1 8 64; do
  read -r b0 e0 < <(batches)
  read -r c_rps c_p99 c_bad < <(measure "http://127.0.0.1:$cairn_port/" bench/register.lua "$conns")
  read -r b1 e1 < <(batches)
  read -r e_rps e_p99 e_bad < <(measure "http://127.0.0.1:$etcd_port" bench/etcd_put.lua "$conns")
  per=$(python3 -c "import sys; b=float(sys.argv[2])-float(sys.argv[1]); e=float(sys.argv[4])-float(sys.argv[3]); print(f'{e/b:.1f}' if b else 'n/a')" "$b0" "$b1" "$e0" "$e1")
  printf 'durable writes, %d conns, req/s: cairn %.0f  etcd %.0f  ratio %s  (p99 ms: cairn %s  etcd %s; non-2xx: cairn %s, etcd %s; cairn writes per transaction %s)\n' \
    "$conns" "$c_rps" "$e_rps" "$(ratio "$c_rps" "$e_rps")" "$c_p99" "$e_p99" "$c_bad" "$e_bad" "$per"
done
