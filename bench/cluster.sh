#!/usr/bin/env bash
# Cluster mode in one run, on a throwaway PostgreSQL (scripts/postgres.sh) and release builds:
#  1. propagation: a registration acknowledged by node A, seen on node B through DiscoverInstances and through DNS
#     (p50/p99 over 300 registrations);
#  2. durable RegisterInstance/s at 64 connections with 1 node and with 3 nodes (ROUNDS rounds, default 3, each on
#     fresh databases: this host's speed drifts within minutes, so the ratio is the median of the rounds' ratios),
#     with what bounds 3 nodes read from their /metrics (batches, how many proposals were stored and how many were
#     decided again under the clock's lock, and how long those held it),
#     beside pgbench running the SQL one write costs (reading the clock, then CALL cairn_propose, which locks,
#     checks, writes the change-log row and the audit row, advances the clock, notifies and commits) at 64 clients;
#     then the same rounds with equal CPU per node (NODE_CPU cores each, default 0.3, in a cgroup of its own), as when
#     each node has a host of its own: the three nodes above share this host's cores with each other, PostgreSQL
#     and wrk, and each applies every node's writes, so they can only do less than one node on the same cores;
#  3. idle database load: statements (counted in PostgreSQL's log) and transactions per second per node, 3 idle nodes;
#  4. cold start of a node with COLD instances (default 100,000) in the database: seconds to /readyz and to an answer.
# Usage: bench/cluster.sh [seconds per measurement, default 10]   (env COLD=N: the cold-start size; ROUNDS=N; IDLE_SECONDS=N;
#   NODE_CPU=cores, or NODE_CPU=0 to skip the equal-CPU rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
COLD=${COLD:-100000}
ROUNDS=${ROUNDS:-3}
IDLE_SECONDS=${IDLE_SECONDS:-30}
NODE_CPU=${NODE_CPU:-0.3}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
python3 -c "import dns.message" 2>/dev/null || python3 -m pip install --quiet dnspython
[ -n "${CAIRN_SKIP_BUILD:-}${CAIRN_BIN:-}" ] || swift build -c release --product cairn >/dev/null
CAIRN_BIN=${CAIRN_BIN:-.build/release/cairn}  # another binary to measure (a before-build, say)
export CAIRN_BIN
source bench/lib.sh
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pg_started=$(scripts/postgres.sh)
pg_dir=${pg_started%% *}
base=${pg_started#* }
node_cpu=  # NODE_CPU while the equal-CPU rounds run: each node started gets that budget (bench/lib.sh's limit_cpu)
trap 'cleanup; scripts/postgres.sh stop "$pg_dir"' EXIT
psql_() { PGPASSWORD=cairn "$bindir/psql" "$1" -Atqc "$2"; }
newdb() { local name="b_$(date +%s%N | tail -c 9)_$RANDOM"; psql_ "$base" "CREATE DATABASE $name" >/dev/null; echo "${base%/*}/$name"; }
cat >"$work/config.yaml" <<YAML
limits: {instancesPerNamespace: 1000000, instancesPerService: 1000000}
YAML
start_node() { # url -> "port dns_port pid" (the caller adds pid to bench_pids: this runs in a subshell)
  local port; port=$(free_port)
  local dns; dns=$(free_port)
  "$CAIRN_BIN" serve --dev --no-throttling --store "$1" --port "$port" --dns-port "$dns" --health-interval 3600 \
    --config "$work/config.yaml" --data-dir "$work/d-$port" --log-level warning >"$work/node-$port.log" 2>&1 &
  local pid=$!
  [ -z "$node_cpu" ] || limit_cpu "$pid" "$node_cpu"
  wait_for_tcp "$port" || { echo "a node did not start:" >&2; cat "$work/node-$port.log" >&2; return 1; }
  echo "$port $dns $pid"
}
measure() { # url script service conns -> "rps p99_ms non2xx"
  local out
  out=$(BENCH_SERVICE="$3" wrk -t2 -c"$4" -d"${SECONDS_EACH}s" --latency -s "$2" "$1")
  awk '/Requests\/sec/ {r=$2} $1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p=v} /Non-2xx/ {b=$5} END {printf "%s %s %s\n", r, (p==""?0:p), (b==""?0:b)}' <<<"$out"
}

echo "== 1. propagation, node A -> node B"
url=$(newdb)
read -r pa da pid < <(start_node "$url"); bench_pids+=("$pid")
read -r pb db pid < <(start_node "$url"); bench_pids+=("$pid")
python3 bench/cluster_propagation.py "http://127.0.0.1:$pa" "http://127.0.0.1:$pb" "$db" 300

echo "== 2. durable RegisterInstance at 64 connections ($ROUNDS rounds of 1 node then 3 nodes, each on a fresh database)"
write_rounds() { # fills one, three, one_p99s, three_p99s, bad
one=(); three=(); one_p99s=(); three_p99s=(); bad=0
for round in $(seq "$ROUNDS"); do
  url=$(newdb)
  read -r p1 _ pid < <(start_node "$url"); bench_pids+=("$pid")
  service=$(python3 bench/load.py "http://127.0.0.1:$p1" 10)
  read -r rps p99 nb < <(measure "http://127.0.0.1:$p1/" bench/register.lua "$service" 64)
  one+=("$rps"); one_p99s+=("$p99"); bad=$((bad + nb))
  kill "${bench_pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; bench_pids=()
  url=$(newdb)
  ports=()
  for _ in 1 2 3; do read -r p _ pid < <(start_node "$url"); bench_pids+=("$pid"); ports+=("$p"); done
  service=$(python3 bench/load.py "http://127.0.0.1:${ports[0]}" 10)
  sleep 1
  measures=()
  for p in "${ports[@]}"; do
    (measure "http://127.0.0.1:$p/" bench/register.lua "$service" 21 >"$work/three-$p") &
    measures+=($!)
  done
  wait "${measures[@]}"
  rps=$(cat "${ports[@]/#/$work/three-}" | awk '{s+=$1} END {print s}')
  three+=("$rps"); three_p99s+=("$(cat "${ports[@]/#/$work/three-}" | awk '{if ($2>m) m=$2} END {print m}')")
  bad=$((bad + $(cat "${ports[@]/#/$work/three-}" | awk '{s+=$3} END {print s}')))
  printf 'round %d: 1 node %.0f/s, 3 nodes %.0f/s, 3 nodes / 1 node %s\n' "$round" "${one[-1]}" "$rps" "$(ratio "$rps" "${one[-1]}")"
  # What bounds the cluster: how many batches decided ahead stood (proposals stored), how many were decided again
  # under the lock, and how long those held it.
  for p in "${ports[@]}"; do curl -s "http://127.0.0.1:$p/metrics"; done | python3 -c '
import re, sys
m = {}
for line in sys.stdin:
    found = re.match(r"(cairn_store_lock_held_seconds_(?:sum|count)|cairn_store_commit_batch_entries_(?:sum|count)|cairn_writer_speculations_total)(\{[^}]*\})? ([0-9.e+-]+)$", line.strip())
    if found: m[found[1] + (found[2] or "")] = m.get(found[1] + (found[2] or ""), 0) + float(found[3])
held, batches = m.get("cairn_store_lock_held_seconds_sum", 0), m.get("cairn_store_lock_held_seconds_count", 0)
kept, again = m.get("cairn_writer_speculations_total{outcome=\"kept\"}", 0), m.get("cairn_writer_speculations_total{outcome=\"decided_again\"}", 0)
writes = m.get("cairn_store_commit_batch_entries_sum", 0) / max(1, m.get("cairn_store_commit_batch_entries_count", 0))
commits = m.get("cairn_store_commit_batch_entries_count", 0)
held_text = f", holding it {1000 * held / batches:.2f} ms each ({held / '"$SECONDS_EACH"' * 100:.0f}% of the time)" if batches else ""
if commits: print(f"  3 nodes: {commits:.0f} batches of {writes:.1f} entries; kept as decided ahead: {kept:.0f}, decided again: {again:.0f}; batches under the node-held lock: {batches:.0f}{held_text}")
'
  if [ "$round" -lt "$ROUNDS" ]; then kill "${bench_pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; bench_pids=(); fi
done
}
write_rounds
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
one_rps=$(median "${one[@]}"); one_p99=$(median "${one_p99s[@]}")
three_rps=$(median "${three[@]}"); three_p99=$(median "${three_p99s[@]}")
ratios=(); for i in "${!one[@]}"; do ratios+=("$(python3 -c "import sys; print(float(sys.argv[1])/float(sys.argv[2]))" "${three[$i]}" "${one[$i]}")"); done
pgdb=$(newdb)
"$CAIRN_BIN" serve --dev --store "$pgdb" --port 0 --no-dns --log-level warning >"$work/schema.log" 2>&1 &
schema_pid=$!; sleep 3; kill "$schema_pid"; wait "$schema_pid" 2>/dev/null || true
entry=$(python3 -c "print('\\\\x' + ('7b22' + '61'*380 + '227d'))")
# What one batch of Cairn's costs, for a batch of one write (schema version 4): one CALL of cairn_propose, which locks
# the clock, reads the entries after the cursor and checks their keys, writes the change-log row and the audit row
# (hashed and chained in the database), advances the clock, notifies and commits; the cursor is read first, as a
# node knows it from following the others.
cat >"$work/write.sql" <<SQL
SELECT revision AS cursor FROM cairn_clock WHERE id = 1 \\gset
CALL cairn_propose(:cursor, 'bench', 10, NULL, '{inst:bench}'::TEXT[], false, '{}'::BIGINT[], '{}'::BOOLEAN[], '{0}'::BIGINT[],
  ARRAY['$entry'::bytea], '{inst:other}'::TEXT[], '{1}'::INT[], '{1}'::INT[], '{0}'::BIGINT[], '{RegisterInstance}'::TEXT[],
  '{" bench dev "}'::TEXT[], '{" arn "}'::TEXT[], ARRAY['$entry'::bytea], NULL, NULL, NULL, NULL, NULL, NULL);
SQL
if [ "$(psql_ "$pgdb" "SELECT to_regproc('cairn_propose') IS NOT NULL")" != t ]; then
# A binary from before schema version 4: the statements its batch of one write costs: lock the clock (cairn_lock,
# which also reads the node's term, the entries after its cursor and the audit head), one statement that writes the
# change-log row, the audit row, the clock's advance and the NOTIFY, and the commit.
cat >"$work/write.sql" <<SQL
BEGIN;
SELECT revision, coalesce(audit_seq, 0) AS audit_seq FROM cairn_lock(9223372036854775807, 'bench', 10) \\gset
WITH log AS (INSERT INTO cairn_change_log (seq, time, entry) SELECT * FROM unnest(ARRAY[:revision + 1]::BIGINT[], '{0}'::BIGINT[], ARRAY['$entry'::bytea])),
  audit AS (INSERT INTO cairn_audit_log (seq, time, event_name, principals, resources, record, hash)
    SELECT * FROM unnest(ARRAY[:audit_seq + 1]::BIGINT[], '{0}'::BIGINT[], '{RegisterInstance}'::TEXT[], '{" bench dev "}'::TEXT[],
      '{" arn "}'::TEXT[], ARRAY['$entry'::bytea], '{h}'::TEXT[])),
  clock AS (UPDATE cairn_clock SET revision = :revision + 1 WHERE id = 1)
SELECT pg_notify('cairn_changes', 'bench');
COMMIT;
SQL
fi
if [ "$(psql_ "$pgdb" "SELECT to_regproc('cairn_lock') IS NOT NULL")" != t ]; then
  # A binary from before schema version 3 (CAIRN_BIN set to an older build): the statements its write costs.
  cat >"$work/write.sql" <<SQL
BEGIN;
SELECT revision FROM cairn_clock WHERE id = 1 FOR UPDATE;
INSERT INTO cairn_change_log (seq, time, entry) SELECT revision + 1, 0, '$entry'::bytea FROM cairn_clock WHERE id = 1;
SELECT seq, hash FROM cairn_audit_log ORDER BY seq DESC LIMIT 1;
INSERT INTO cairn_audit_log (seq, time, event_name, principals, resources, record, hash)
  SELECT coalesce(max(seq), 0) + 1, 0, 'RegisterInstance', ' bench dev ', ' arn ', '$entry'::bytea, 'h' FROM cairn_audit_log;
UPDATE cairn_clock SET revision = revision + 1 WHERE id = 1;
SELECT pg_notify('cairn_changes', 'bench');
COMMIT;
SQL
fi
pgb=$(PGPASSWORD=cairn "$bindir/pgbench" -n -c 64 -j 2 -T "$SECONDS_EACH" -f "$work/write.sql" -r "$pgdb" 2>&1)
pg_tps=$(awk '/^tps =/ {print $3}' <<<"$pgb")
pg_lat=$(awk '/latency average/ {print $4}' <<<"$pgb")
printf 'RegisterInstance/s, 1 node, 64 conns: %.0f (median of %d; p99 %.1f ms)\n' "$one_rps" "$ROUNDS" "$one_p99"
printf 'RegisterInstance/s, 3 nodes, 3x21 conns: %.0f (median of %d; worst node p99 %.1f ms; non-2xx in all rounds %s)\n' "$three_rps" "$ROUNDS" "$three_p99" "$bad"
printf 'pgbench, the SQL of one write, 64 clients: %.0f tps (mean latency %s ms)\n' "$pg_tps" "$pg_lat"
printf 'ratio to pgbench: 1 node %s, 3 nodes %s; 3 nodes / 1 node %s\n' "$(ratio "$one_rps" "$pg_tps")" "$(ratio "$three_rps" "$pg_tps")" "$(median "${ratios[@]}" | awk '{printf "%.2fx", $1}')"

echo "== 3. idle database load, 3 idle nodes"
sleep 3
db=${url##*/}
stat() { psql_ "$base" "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$db'"; }
# PostgreSQL's backends flush these counters about once a second, so a short window reads a second's worth more or
# less from each of three nodes; over IDLE_SECONDS (default 30) that is under 0.1 per node.
# The statements themselves, exactly: PostgreSQL logs every one while the window is open (log_statement=all), and
# the lines are counted, leaving out this script's own reads of the counters.
psql_ "$base" "ALTER SYSTEM SET log_statement = 'all'" >/dev/null; psql_ "$base" "SELECT pg_reload_conf()" >/dev/null; sleep 1
log_from=$(wc -l <"$pg_dir/server.log")
before=$(stat); sleep "$IDLE_SECONDS"; after=$(stat)
statements=$(tail -n +"$((log_from + 1))" "$pg_dir/server.log" | grep -E 'LOG:  (statement|execute [^:]*):' | grep -vc 'pg_stat_database' || true)
psql_ "$base" "ALTER SYSTEM RESET log_statement" >/dev/null; psql_ "$base" "SELECT pg_reload_conf()" >/dev/null
python3 -c "import sys; d=(int(sys.argv[2])-int(sys.argv[1]))/float(sys.argv[3])/3; s=int(sys.argv[4])/float(sys.argv[3])/3; print(f'idle load per node over {sys.argv[3]} s: {s:.2f} statements/s (logged), {d:.2f} transactions/s (pg_stat_database, which flushes about once a second)')" "$before" "$after" "$IDLE_SECONDS" "$statements"
kill "${bench_pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; bench_pids=()

if [ "$NODE_CPU" = 0 ]; then :
elif [ -z "$cg_kind" ]; then
  echo "== 2b. equal CPU per node: skipped (this host lets this script make no cgroup with a CPU quota)"
else
  echo "== 2b. the same rounds with equal CPU per node: $NODE_CPU cores each (a cgroup per node), as with a host per node"
  node_cpu=$NODE_CPU
  shared_ratio=$(median "${ratios[@]}")
  write_rounds
  kill "${bench_pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; bench_pids=(); drop_cgroups
  node_cpu=
  ratios=(); for i in "${!one[@]}"; do ratios+=("$(python3 -c "import sys; print(float(sys.argv[1])/float(sys.argv[2]))" "${three[$i]}" "${one[$i]}")"); done
  printf 'RegisterInstance/s with %s cores per node: 1 node %.0f, 3 nodes %.0f (medians of %d); 3 nodes / 1 node %s (sharing the host: %s)\n' \
    "$NODE_CPU" "$(median "${one[@]}")" "$(median "${three[@]}")" "$ROUNDS" "$(median "${ratios[@]}" | awk '{printf "%.2fx", $1}')" \
    "$(awk '{printf "%.2fx", $1}' <<<"$shared_ratio")"
fi

echo "== 4. cold start with $COLD instances"
url=$(newdb)
read -r pc _ pid < <(start_node "$url"); bench_pids+=("$pid")
python3 bench/register_load.py "http://127.0.0.1:$pc" "$COLD" 32 >/dev/null
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
python3 bench/cluster_coldstart.py "$url" "$work/config.yaml"
