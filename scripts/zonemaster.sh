#!/usr/bin/env bash
# Zonemaster (zonemaster-cli, Debian) against a Cairn public zone, as docs/dns.md "Checked by others' tools" reports:
# Cairn serves DNS on 127.0.0.1:53 inside a network namespace of its own (so nothing else on the host is touched and
# no privileged port is taken outside it), as the hidden primary of an NSD secondary on 127.0.0.2:53 (zone transfers
# and NOTIFY, as docs/dns.md describes); the zone `zm.test` lists both as name servers (`dns.nameServers`), each with
# an address in the zone (Cairn services `ns1` and `ns2`), and holds a few services. zonemaster runs an undelegated
# test (`--ns`: there is no parent to delegate from) inside the same namespace, where nothing else is reachable, and
# prints every message of level NOTICE and above. Needs root (ip netns) and NSD.
# SIGNED=1: the zone signed with DNSSEC (`cairn dnssec enable`) and served by Cairn alone (a secondary would serve it
# unsigned, docs/dns.md), with its DS given to zonemaster (`--ds`) as a parent would publish it.
# Usage: [SIGNED=1] scripts/zonemaster.sh [level, default NOTICE]
set -euo pipefail
cd "$(dirname "$0")/.."
LEVEL=${1:-NOTICE}
SIGNED=${SIGNED:-}
command -v zonemaster-cli >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zonemaster-cli; }
[ -x .build/release/cairn ] || swift build -c release --product cairn >/dev/null
CAIRN_BIN=${CAIRN_BIN:-$PWD/.build/release/cairn}
ns=cairn-zm-$$
work=$(mktemp -d)
cleanup() { ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true; ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
if [ -n "$SIGNED" ]; then
  printf 'dns:\n  serverName: ns1.zm.test\n  hostmaster: hostmaster.zm.test\n' >"$work/cairn.yaml"
else
  cat >"$work/cairn.yaml" <<YAML
dns:
  serverName: ns1.zm.test
  nameServers: [ns2.zm.test]
  hostmaster: hostmaster.zm.test
  transfer: {allow: [127.0.0.0/8], notify: ["127.0.0.2:53"]}
YAML
fi
mkdir -p "$work/nsd"; chmod 777 "$work" "$work/nsd"
cat >"$work/nsd/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.2
  port: 53
  username: ""
  zonesdir: "$work/nsd"
  pidfile: "$work/nsd/nsd.pid"
  xfrdfile: "$work/nsd/xfrd.state"
  zonelistfile: "$work/nsd/zone.list"
  database: ""
  logfile: "$work/nsd/nsd.log"
remote-control:
  control-enable: no
zone:
  name: zm.test
  zonefile: "zm.test.zone"
  request-xfr: 127.0.0.1@53 NOKEY
  allow-notify: 127.0.0.1 NOKEY
CONF
ip netns exec "$ns" "$CAIRN_BIN" serve --dev --port 8787 --dns-host 127.0.0.1 --dns-port 53 --data-dir "$work/data" \
  --config "$work/cairn.yaml" --log-level warning >"$work/cairn.log" 2>&1 &
for _ in $(seq 100); do ip netns exec "$ns" bash -c 'echo > /dev/tcp/127.0.0.1/8787' 2>/dev/null && break; sleep 0.1; done
ip netns exec "$ns" python3 - <<'PY'
import boto3, time
sd = boto3.client("servicediscovery", endpoint_url="http://127.0.0.1:8787", region_name="us-east-1",
                  aws_access_key_id="zonemaster", aws_secret_access_key="zonemaster")
op = sd.create_public_dns_namespace(Name="zm.test")["OperationId"]
while sd.get_operation(OperationId=op)["Operation"]["Status"] != "SUCCESS":
    time.sleep(0.05)
ns = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
def service(name, records):
    return sd.create_service(Name=name, NamespaceId=ns, DnsConfig={"RoutingPolicy": "MULTIVALUE",
                             "DnsRecords": [{"Type": t, "TTL": 300} for t in records]})["Service"]["Id"]
sd.register_instance(ServiceId=service("ns1", ["A"]), InstanceId="cairn", Attributes={"AWS_INSTANCE_IPV4": "127.0.0.1"})
sd.register_instance(ServiceId=service("ns2", ["A"]), InstanceId="nsd", Attributes={"AWS_INSTANCE_IPV4": "127.0.0.2"})
web = service("web", ["A", "SRV"])
for n in (1, 2):
    sd.register_instance(ServiceId=web, InstanceId=f"web-{n}", Attributes={"AWS_INSTANCE_IPV4": f"192.0.2.{n}", "AWS_INSTANCE_PORT": "443"})
print(ns, file=open("/dev/shm/cairn-zm-namespace", "w"))
PY
namespace_id=$(cat /dev/shm/cairn-zm-namespace); rm -f /dev/shm/cairn-zm-namespace
if [ -n "$SIGNED" ]; then
  ds=$(ip netns exec "$ns" env CAIRN_ENDPOINT=http://127.0.0.1:8787 AWS_ACCESS_KEY_ID=zonemaster AWS_SECRET_ACCESS_KEY=zonemaster \
    AWS_REGION=us-east-1 "$CAIRN_BIN" dnssec enable "$namespace_id" --output json |
    python3 -c 'import json, sys; print(",".join(json.load(sys.stdin)["Keys"][0]["DS"].split()[4:]))')
  echo "signed; DS $ds"
  echo "== zonemaster-cli zm.test --ns ns1.zm.test/127.0.0.1 --ds $ds --no-ipv6 --level $LEVEL"
  ip netns exec "$ns" zonemaster-cli zm.test --ns ns1.zm.test/127.0.0.1 --ds "$ds" --no-ipv6 --level "$LEVEL" \
    --show-testcase --no-progress --raw 2>&1 || true
  exit 0
fi
ip netns exec "$ns" "$(command -v nsd || echo /usr/sbin/nsd)" -c "$work/nsd/nsd.conf" &
for _ in $(seq 100); do
  [ -n "$(ip netns exec "$ns" dig @127.0.0.2 +short +time=1 +tries=1 web.zm.test A 2>/dev/null)" ] && break
  sleep 0.1
done
echo "NSD (ns2) serves web.zm.test: $(ip netns exec "$ns" dig @127.0.0.2 +short web.zm.test A | sort | tr '\n' ' ')"
echo "== zonemaster-cli zm.test --ns ns1.zm.test/127.0.0.1 --ns ns2.zm.test/127.0.0.2 --no-ipv6 --level $LEVEL"
ip netns exec "$ns" zonemaster-cli zm.test --ns ns1.zm.test/127.0.0.1 --ns ns2.zm.test/127.0.0.2 --no-ipv6 --level "$LEVEL" \
  --show-testcase --no-progress --raw 2>&1 || true
