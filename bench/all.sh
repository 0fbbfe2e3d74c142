#!/usr/bin/env bash
# Every bench in one command, so a regression in any hot path shows before it lands: the API (beside moto), DNS
# (beside NSD), the cluster (beside pgbench), durable writes (beside etcd, and as the registry grows), the health
# checker, watch streams, long-poll wake-ups, zone transfers (beside NSD) and DNSSEC (signed against unsigned, and NSD). Each script's full output goes to a log in OUT (default a temp
# dir); at the end the lines with figures and ratios are
# printed together. Run it before stopping whenever DNS, discovery, the writer or a store changed, and quote the
# summary in the closing note. CAIRN_BIN measures another binary (a before-build); the scripts build otherwise.
# Usage: bench/all.sh [seconds per measurement, default 10]
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
OUT=${OUT:-$(mktemp -d /tmp/cairn-bench.XXXXXX)}
mkdir -p "$OUT"
[ -n "${CAIRN_SKIP_BUILD:-}${CAIRN_BIN:-}" ] || swift build -c release --product cairn >/dev/null || exit 1
export CAIRN_SKIP_BUILD=1
failed=()
run() { # name command...
  local name=$1; shift
  echo "== $name: $* (log $OUT/$name.log)"
  if ! "$@" >"$OUT/$name.log" 2>&1; then
    failed+=("$name")
    echo "   FAILED, last lines:"; tail -5 "$OUT/$name.log" | sed 's/^/   /'
  fi
}
run api bash bench/api.sh "$SECONDS_EACH"
run dns bash bench/dns.sh "$SECONDS_EACH"
run cluster bash bench/cluster.sh "$SECONDS_EACH"
run durable bash bench/durable.sh "$SECONDS_EACH"
run writes bash bench/writes.sh "${WRITES_COUNT:-100000}"
run health bash bench/health.sh "$SECONDS_EACH" 1000
run watch bash bench/watch.sh "$SECONDS_EACH"
run longpoll bash bench/longpoll.sh
run transfer bash bench/transfer.sh
run dnssec bash bench/dnssec.sh "$SECONDS_EACH"
echo
echo "== summary ($(date -u +%FT%TZ), $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes'), ${CAIRN_BIN:-.build/release/cairn})"
for name in api dns cluster durable writes health watch longpoll transfer dnssec; do
  [ -f "$OUT/$name.log" ] || continue
  echo "-- $name"
  grep -E 'durable writes|server CPU|lock held|ratio|req/s|queries/s|latency|RegisterInstance|visible on|per idle node|cold start|probes|RSS|KiB per instance|first DiscoverInstances|instances/s|lost|streams|long-poll|batches|AXFR|answered by NSD|DNSSEC' "$OUT/$name.log" \
    | grep -v -E '^(Requirement|Collecting|Downloading|Installing|Successfully|WARNING)' | sed 's/^/   /'
done
[ ${#failed[@]} -eq 0 ] || { echo "FAILED: ${failed[*]}"; exit 1; }
