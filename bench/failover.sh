#!/usr/bin/env bash
# The failover scenario of docs/cluster.md, for real: etcd, two PostgreSQL servers under Patroni (synchronous,
# strict), HAProxy following the primary by Patroni's REST check, three Cairn nodes (release build) under a write
# load with a verifier that records every acknowledged write and every read. Then `patronictl switchover`, then
# kill -9 of the new primary's postmaster. Prints: acknowledged writes lost (must be 0), the longest write outage
# in seconds, reads that failed (must be 0). Needs Debian's patroni, etcd-server and haproxy (installed if missing).
# Too heavy for CI; run by hand: bench/failover.sh [seconds of load between events, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
PHASE=${1:-20}
need=()
command -v patroni >/dev/null || need+=(patroni)
command -v etcd >/dev/null || need+=(etcd-server)
command -v haproxy >/dev/null || need+=(haproxy)
export DEBIAN_FRONTEND=noninteractive
[ ${#need[@]} -eq 0 ] || apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 \
  || { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }
[ -n "${CAIRN_SKIP_BUILD:-}${CAIRN_BIN:-}" ] || swift build -c release --product cairn >/dev/null
CAIRN_BIN=${CAIRN_BIN:-.build/release/cairn}  # another binary to measure
source bench/lib.sh
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg=()
[ "$(id -u)" -ne 0 ] || as_pg=(runuser -u postgres --)
dir=$(mktemp -d /tmp/cairn-failover.XXXXXX)
chmod 755 "$dir"
[ ${#as_pg[@]} -eq 0 ] || chown postgres "$dir"
# Everything dies hard at the end: a strict synchronous primary can wait forever for a standby that is gone.
trap 'cp "$dir"/cairn-*.log "${FAILOVER_LOGS:-/tmp}/" 2>/dev/null || true; kill -9 "${bench_pids[@]}" 2>/dev/null || true; pkill -9 -f "$dir" 2>/dev/null || true; sleep 1; rm -rf "$dir" "$work"' EXIT

etcd_client=$(free_port); etcd_peer=$(free_port)
pg1=$(free_port); pg2=$(free_port); rest1=$(free_port); rest2=$(free_port); hap=$(free_port)
"${as_pg[@]}" etcd --name e1 --data-dir "$dir/etcd" --enable-v2=true \
  --listen-client-urls "http://127.0.0.1:$etcd_client" --advertise-client-urls "http://127.0.0.1:$etcd_client" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "e1=http://127.0.0.1:$etcd_peer" >"$dir/etcd.log" 2>&1 &
bench_pids+=($!)
wait_for_tcp "$etcd_client"

patroni_config() { # name pg_port rest_port
  cat <<YAML
scope: cairn-failover
name: $1
log: {level: WARNING}
restapi: {listen: 127.0.0.1:$3, connect_address: 127.0.0.1:$3}
etcd: {host: 127.0.0.1:$etcd_client}
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    synchronous_mode_strict: true
    postgresql:
      use_pg_rewind: true
      parameters: {synchronous_commit: "on", wal_log_hints: "on", max_wal_senders: 10, max_replication_slots: 10}
  initdb: [{encoding: UTF8}]
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 md5
    - host all all 127.0.0.1/32 md5
postgresql:
  listen: 127.0.0.1:$2
  connect_address: 127.0.0.1:$2
  data_dir: $dir/$1
  bin_dir: $bindir
  pgpass: $dir/pgpass-$1
  authentication:
    superuser: {username: postgres, password: pw}
    replication: {username: replicator, password: rep}
    rewind: {username: rewinder, password: rw}
  parameters: {unix_socket_directories: '$dir'}
YAML
}
patroni_config pg1 "$pg1" "$rest1" >"$dir/pg1.yml"
patroni_config pg2 "$pg2" "$rest2" >"$dir/pg2.yml"
[ ${#as_pg[@]} -eq 0 ] || chown postgres "$dir"/*.yml
"${as_pg[@]}" patroni "$dir/pg1.yml" >"$dir/patroni-pg1.log" 2>&1 &
bench_pids+=($!)
sleep 5
"${as_pg[@]}" patroni "$dir/pg2.yml" >"$dir/patroni-pg2.log" 2>&1 &
bench_pids+=($!)
cat >"$dir/haproxy.cfg" <<CFG
global
  maxconn 2000
defaults
  mode tcp
  timeout connect 2s
  timeout client 30m
  timeout server 30m
  timeout check 2s
listen primary
  bind 127.0.0.1:$hap
  option httpchk OPTIONS /primary
  http-check expect status 200
  default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
  server pg1 127.0.0.1:$pg1 check port $rest1
  server pg2 127.0.0.1:$pg2 check port $rest2
CFG
haproxy -f "$dir/haproxy.cfg" -db >"$dir/haproxy.log" 2>&1 &
bench_pids+=($!)
pctl() { "${as_pg[@]}" patronictl -c "$dir/pg1.yml" "$@"; }
for _ in $(seq 120); do
  pctl list 2>/dev/null | grep -q "Sync Standby" && break
  sleep 1
done
pctl list
PGPASSWORD=pw "$bindir/psql" -h 127.0.0.1 -p "$hap" -U postgres -d postgres -qc \
  "CREATE ROLE cairn LOGIN PASSWORD 'cairn'" -c "CREATE DATABASE cairn OWNER cairn"
url="postgres://cairn:cairn@127.0.0.1:$hap/cairn?sslmode=disable"

cat >"$dir/cairn.yaml" <<YAML
limits: {instancesPerNamespace: 1000000, instancesPerService: 1000000}
YAML
ports=()
for n in 1 2 3; do
  p=$(free_port)
  "$CAIRN_BIN" serve --dev --no-throttling --store "$url" --port "$p" --no-dns --health-interval 3600 \
    --config "$dir/cairn.yaml" --data-dir "$dir/cairn-$n" --log-level "${CAIRN_LOG_LEVEL:-warning}" >"$dir/cairn-$n.log" 2>&1 &
  bench_pids+=($!)
  wait_for_tcp "$p"
  ports+=("$p")
done

python3 bench/failover_load.py "$dir/events" "${ports[@]}" &
load=$!
sleep "$PHASE"
echo "switchover: $(date +%T)"; echo "switchover $(date +%s.%N)" >>"$dir/events"
pctl switchover --force >/dev/null 2>&1 || pctl switchover --force --candidate pg2 >/dev/null
sleep "$PHASE"
pctl list
leader=$(pctl list -f json | python3 -c 'import json,sys; print([m["Member"] for m in json.load(sys.stdin) if m["Role"]=="Leader"][0])')
pid=$(head -1 "$dir/$leader/postmaster.pid")
echo "kill -9 of the primary ($leader, postmaster $pid): $(date +%T)"; echo "kill $(date +%s.%N)" >>"$dir/events"
kill -9 "$pid"
sleep "$PHASE"
pctl list
echo stop >>"$dir/events"
wait "$load"
