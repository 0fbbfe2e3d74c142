#!/usr/bin/env bash
# Signed against unsigned answers, in one run (issue 14): Cairn pinned to core 0 with bench/dns.sh's data (1,000
# services x 3 instances, A + SRV; 80% A, 15% SRV, 5% names that do not exist), dnsperf on core 1. Cairn is measured
# with plain queries and with the DO bit before the zone is signed, then with the DO bit and without it after
# `cairn dnssec enable`; NSD serving the same zone signed ahead of time by ldns-signzone (ECDSA P-256, NSEC) is the
# peer. Prints queries/s, lost queries and the ratios.
# Usage: bench/dnssec.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
export DNS_SERVICES=${DNS_SERVICES:-1000} DNS_INSTANCES=${DNS_INSTANCES:-3}

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v nsd >/dev/null || need+=(nsd)
command -v ldns-signzone >/dev/null || need+=(ldnsutils)
command -v dig >/dev/null || need+=(bind9-dnsutils)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${need[@]}"; }
fi
python3 -c 'import boto3' 2>/dev/null || python3 -m pip install --quiet boto3

[ -n "${CAIRN_SKIP_BUILD:-}${CAIRN_BIN:-}" ] || swift build -c release --product cairn >/dev/null
CAIRN_BIN=${CAIRN_BIN:-.build/release/cairn}
source bench/lib.sh
api_port=$(free_port); cairn_dns=$(free_port); nsd_port=$(free_port)

python3 bench/dns_data.py queries "$work/queries.txt"
python3 bench/dns_data.py zone "$work/bench.test.zone"
# The peer's zone, signed once with its own ECDSA P-256 key (NSEC, the default).
(cd "$work" && key=$(ldns-keygen -a ECDSAP256SHA256 -k bench.test) && ldns-signzone bench.test.zone "$key" >/dev/null)

start_nsd "$nsd_port" bench.test bench.test.zone.signed

cat >"$work/cairn.yaml" <<CONF
limits:
  instancesPerNamespace: $((DNS_SERVICES * DNS_INSTANCES + 1000))
dns:
  rateLimit: {responsesPerSecond: 0}
CONF
taskset -c 0 "$CAIRN_BIN" serve --dev --no-throttling --port "$api_port" --dns-port "$cairn_dns" --data-dir "$work/data" \
  --config "$work/cairn.yaml" --log-level warning &
bench_pids+=($!)
wait_for_tcp "$api_port"
python3 bench/dns_data.py cairn "http://127.0.0.1:$api_port"
for _ in $(seq 50); do dig @127.0.0.1 -p "$nsd_port" +short svc1.bench.test A | grep -q . && break; sleep 0.1; done

throughput() { # port, extra dnsperf flags -> "qps lost"
  local port=$1
  shift
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -l "$SECONDS_EACH" -c 16 -q 500 -T 1 "$@" 2>&1 |
    awk '/Queries per second/ {q=$4} /Queries lost/ {l=$3} END {print q, l}'
}

read -r plain plain_lost < <(throughput "$cairn_dns")
read -r do_unsigned do_unsigned_lost < <(throughput "$cairn_dns" -D)
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 CAIRN_ENDPOINT="http://127.0.0.1:$api_port"
ns=$(python3 - "$api_port" <<'PY'
import sys, boto3
sd = boto3.client("servicediscovery", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                  aws_access_key_id="bench", aws_secret_access_key="bench")
print(sd.list_namespaces()["Namespaces"][0]["Id"])
PY
)
"$CAIRN_BIN" dnssec enable "$ns" >/dev/null
dig @127.0.0.1 -p "$cairn_dns" +dnssec svc1.bench.test A | grep -q RRSIG || { echo "the zone is not signed"; exit 1; }
read -r signed signed_lost < <(throughput "$cairn_dns" -D)
read -r signed_plain signed_plain_lost < <(throughput "$cairn_dns")
read -r nsd_signed nsd_lost < <(throughput "$nsd_port" -D)

printf 'DNSSEC, Cairn on 1 core (%s services x %s): plain %.0f q/s, DO unsigned %.0f, DO signed %.0f, plain to the signed zone %.0f\n' \
  "$DNS_SERVICES" "$DNS_INSTANCES" "$plain" "$do_unsigned" "$signed" "$signed_plain"
printf 'DNSSEC ratios: signed/unsigned (DO) %s, signed/plain %s; NSD with a pre-signed zone %.0f q/s, cairn signed/nsd signed %s\n' \
  "$(ratio "$signed" "$do_unsigned")" "$(ratio "$signed" "$plain")" "$nsd_signed" "$(ratio "$signed" "$nsd_signed")"
printf 'DNSSEC lost queries: plain %s, DO unsigned %s, signed %s, plain to signed %s, nsd %s\n' \
  "$plain_lost" "$do_unsigned_lost" "$signed_lost" "$signed_plain_lost" "$nsd_lost"
