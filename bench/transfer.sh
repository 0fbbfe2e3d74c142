#!/usr/bin/env bash
# Zone transfers (issue 14): a release Cairn loaded with DNS_SERVICES services x DNS_INSTANCES instances (default
# 10,000 x 1) in one public zone, a real NSD secondary following it by NOTIFY and IXFR. Prints:
#  1. a full AXFR of the zone by dig: seconds, records, bytes (three runs), and the same for NSD's own AXFR of the
#     zone it holds (the peer, serving from memory);
#  2. change -> answered by the NSD secondary: a registration acknowledged by Cairn until NSD answers the new name
#     (polled over UDP every millisecond), p50 / p99 / max over CHANGES registrations (default 50), half a second apart.
# Usage: bench/transfer.sh   (env DNS_SERVICES, DNS_INSTANCES, CHANGES)
set -euo pipefail
cd "$(dirname "$0")/.."
export DNS_SERVICES=${DNS_SERVICES:-10000} DNS_INSTANCES=${DNS_INSTANCES:-1}
CHANGES=${CHANGES:-50}
command -v dig >/dev/null || { apt-get update -qq && apt-get install -y -qq bind9-dnsutils; }
command -v nsd >/dev/null || [ -x /usr/sbin/nsd ] || { apt-get update -qq && apt-get install -y -qq nsd; }
python3 -c 'import boto3, dns.message' 2>/dev/null || python3 -m pip install --quiet boto3 dnspython
[ -n "${CAIRN_SKIP_BUILD:-}${CAIRN_BIN:-}" ] || swift build -c release --product cairn >/dev/null
CAIRN_BIN=${CAIRN_BIN:-.build/release/cairn}
source bench/lib.sh
api_port=$(free_port); cairn_dns=$(free_port); nsd_port=$(free_port)
cat >"$work/cairn.yaml" <<CONF
limits:
  instancesPerNamespace: $((DNS_SERVICES * DNS_INSTANCES + 10000))
dns:
  rateLimit: {responsesPerSecond: 0}
  transfer:
    allow: [127.0.0.1/32]
    notify: ["127.0.0.1:$nsd_port"]
CONF
"$CAIRN_BIN" serve --dev --no-throttling --port "$api_port" --dns-port "$cairn_dns" --data-dir "$work/data" \
  --config "$work/cairn.yaml" --log-level warning &
bench_pids+=($!)
wait_for_tcp "$api_port"
echo "loading $DNS_SERVICES services x $DNS_INSTANCES instances"
python3 bench/dns_data.py cairn "http://127.0.0.1:$api_port"

echo "== 1. full AXFR of bench.test ($DNS_SERVICES services)"
axfr() { # port -> "seconds records bytes"
  local start end out
  start=$(date +%s.%N)
  out=$(dig @127.0.0.1 -p "$1" bench.test AXFR +nocmd +noall +stats)
  end=$(date +%s.%N)
  python3 -c "import sys, re; s = sys.argv[3]; m = re.search(r'XFR size: (\d+) records \(messages (\d+), bytes (\d+)\)', s); print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f} {m[1]} {m[3]} {m[2]}' if m else 'failed 0 0 0')" "$start" "$end" "$out"
}
mkdir -p "$work/nsd"; chmod 777 "$work/nsd"
cat >"$work/nsd/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1
  port: $nsd_port
  username: ""
  zonesdir: "$work/nsd"
  pidfile: "$work/nsd/nsd.pid"
  xfrdfile: "$work/nsd/xfrd.state"
  zonelistfile: "$work/nsd/zone.list"
  database: ""
  logfile: "$work/nsd/nsd.log"
  verbosity: 1
  # Measure the transfer path, not NSD's throttles: reload at once after a transfer (default: at most once a
  # second), and no response-rate limiting of the one client polling for the new name.
  xfrd-reload-timeout: 0
  rrl-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: bench.test
  zonefile: "bench.test.zone"
  request-xfr: 127.0.0.1@$cairn_dns NOKEY
  allow-notify: 127.0.0.1 NOKEY
  provide-xfr: 127.0.0.1 NOKEY
CONF
for run in 1 2 3; do read -r s r b m < <(axfr "$cairn_dns"); printf 'cairn AXFR run %d: %s s, %s records, %s bytes in %s messages\n' "$run" "$s" "$r" "$b" "$m"; done
nsd -d -c "$work/nsd/nsd.conf" >"$work/nsd/out" 2>&1 &
bench_pids+=($!)
for _ in $(seq 600); do [ "$(dig @127.0.0.1 -p "$nsd_port" +short svc1.bench.test A)" != "" ] && break; sleep 0.1; done
for run in 1 2 3; do read -r s r b m < <(axfr "$nsd_port"); printf 'nsd AXFR run %d (the peer, from memory): %s s, %s records, %s bytes in %s messages\n' "$run" "$s" "$r" "$b" "$m"; done

echo "== 2. registration acknowledged by Cairn -> answered by the NSD secondary ($CHANGES changes, half a second apart)"
python3 - "$api_port" "$nsd_port" "$CHANGES" <<'PY'
import sys, time
import boto3, dns.exception, dns.message, dns.query
from botocore.config import Config
api, nsd, changes = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sd = boto3.client("servicediscovery", endpoint_url=f"http://127.0.0.1:{api}", region_name="us-east-1", aws_access_key_id="bench",
                  aws_secret_access_key="bench", config=Config(inject_host_prefix=False))
service = next(s["Id"] for s in sd.list_services(MaxResults=100)["Services"] if s["Name"] == "svc0")
delays, lost = [], 0
for n in range(changes):
    time.sleep(0.5)  # after a quiet spell: Cairn looks for changed zones at most five times a second
    name = f"late{n}.svc0.bench.test"
    sd.register_instance(ServiceId=service, InstanceId=f"late{n}", Attributes={"AWS_INSTANCE_IPV4": "10.250.0.1", "AWS_INSTANCE_PORT": "1"})
    acked = time.monotonic()
    while time.monotonic() - acked < 30:
        try:
            reply = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=nsd, timeout=1)
        except dns.exception.Timeout:  # NSD swaps in a reloaded zone by restarting its server process
            continue
        if reply.answer:
            delays.append((time.monotonic() - acked) * 1000)
            break
        time.sleep(0.001)
    else:
        lost += 1
delays.sort()
pct = lambda p: delays[min(len(delays) - 1, int(p * len(delays)))] if delays else float("nan")
print(f"change -> answered by NSD: p50 {pct(0.5):.1f} ms  p99 {pct(0.99):.1f} ms  max {delays[-1] if delays else float('nan'):.1f} ms  ({len(delays)} of {changes}; not seen within 30 s: {lost})")
PY
