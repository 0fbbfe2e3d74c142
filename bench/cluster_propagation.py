"""Propagation across cluster nodes: register on A, then poll B's DiscoverInstances and B's DNS until the instance is
there; prints p50/p99/max of both over N registrations. Usage: cluster_propagation.py A_URL B_URL B_DNS_PORT N"""
import sys
import time

import boto3
import dns.message
import dns.query
from botocore.config import Config

a_url, b_url, b_dns, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
config = Config(inject_host_prefix=False, retries={"max_attempts": 1})
a, b = (boto3.client("servicediscovery", endpoint_url=u, region_name="us-east-1", aws_access_key_id="bench",
                     aws_secret_access_key="bench", config=config) for u in (a_url, b_url))
op = a.create_private_dns_namespace(Name="prop.bench.internal", Vpc="default")["OperationId"]
ns = a.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
svc = a.create_service(Name="api", NamespaceId=ns, DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 1}]})["Service"]["Id"]
while not any(s["Id"] == svc for s in b.list_services()["Services"]):
    time.sleep(0.01)


def in_dns(address):
    reply = dns.query.udp(dns.message.make_query("api.prop.bench.internal", "A"), "127.0.0.1", port=b_dns, timeout=2)
    return any(address in r.to_text() for r in reply.answer)


api, dns_times = [], []
for i in range(count):
    address = f"10.{i // 250}.{i % 250}.7"
    a.register_instance(ServiceId=svc, InstanceId=f"p-{i}", Attributes={"AWS_INSTANCE_IPV4": address})
    acknowledged = time.perf_counter()
    seen_api = seen_dns = None
    while seen_api is None or seen_dns is None:
        now = time.perf_counter()
        if seen_api is None and any(x["InstanceId"] == f"p-{i}" for x in
                                    b.discover_instances(NamespaceName="prop.bench.internal", ServiceName="api", MaxResults=1000)["Instances"]):
            seen_api = now - acknowledged
        if seen_dns is None and in_dns(address):
            seen_dns = now - acknowledged
    api.append(seen_api * 1000)
    dns_times.append(seen_dns * 1000)
    a.deregister_instance(ServiceId=svc, InstanceId=f"p-{i}")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


for label, values in (("DiscoverInstances", api), ("DNS", dns_times)):
    print(f"A acknowledged -> visible on B via {label}: p50 {pct(values, 0.5):.1f} ms  p99 {pct(values, 0.99):.1f} ms  "
          f"max {max(values):.1f} ms  ({len(values)} registrations; includes B's own answer time)")
