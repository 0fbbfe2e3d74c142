"""/metrics in Prometheus text format, parsed by prometheus_client's own parser after real traffic: API calls by
operation and code with latency, DNS queries by type and rcode, health probes by result, instances by namespace and
health, store commits, throttled requests."""
import json
import os
import re
import time
import urllib.request

import dns.message
import dns.query
import dns.rcode
import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

import conftest
from cairn_process import CairnProcess
from health_targets import SwitchableHTTP

CONFIG = """
throttling:
  discoverInstances: {burst: 5, perSecond: 0.01}
"""


@pytest.fixture(scope="module")
def server():
    s = CairnProcess(config=CONFIG, extra_args=["--health-interval", "1", "--health-allow-loopback"]).start()
    yield s
    assert s.stop() == 0


def scrape(server):
    with urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return families, samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def ask(server, name, rdtype):
    q = dns.message.make_query(name, rdtype)
    return dns.query.udp(q, "127.0.0.1", port=server.dns_port, timeout=3)


def test_metrics_follow_traffic(server):
    target = SwitchableHTTP()
    try:
        sd = conftest.client_for(server.endpoint, "us-east-1")
        op = sd.create_public_dns_namespace(Name="metrics.example")["OperationId"]
        ns = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
        svc = sd.create_service(Name="web", NamespaceId=ns, DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 5}]},
                                HealthCheckConfig={"Type": "HTTP", "ResourcePath": "/", "FailureThreshold": 1})["Service"]["Id"]
        for i in range(3):
            sd.register_instance(ServiceId=svc, InstanceId=f"w{i}",
                                 Attributes={"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": str(target.port)})
        before_families, before = scrape(server)
        with pytest.raises(ClientError):
            sd.get_service(Id="srv-doesnotexist00000")
        for _ in range(4):
            sd.list_services()
        throttled = 0
        for _ in range(8):
            try:
                sd.discover_instances(NamespaceName="metrics.example", ServiceName="web")
            except ClientError as e:
                assert e.response["Error"]["Code"] == "RequestLimitExceeded"
                throttled += 1
        assert throttled >= 3
        assert ask(server, "web.metrics.example", "A").rcode() == dns.rcode.NOERROR
        assert ask(server, "nothing.metrics.example", "A").rcode() == dns.rcode.NXDOMAIN
        assert ask(server, "metrics.example", "SOA").rcode() == dns.rcode.NOERROR
        assert ask(server, "elsewhere.invalid", "AAAA").rcode() == dns.rcode.REFUSED
        deadline = time.time() + 15
        while target.requests < 6 and time.time() < deadline:
            time.sleep(0.2)
        target.status = 500
        time.sleep(2.5)
        families, after = scrape(server)
    finally:
        target.close()

    assert value(after, "cairn_api_requests_total", operation="GetService", code="ServiceNotFound") == \
        value(before, "cairn_api_requests_total", operation="GetService", code="ServiceNotFound") + 1
    assert value(after, "cairn_api_requests_total", operation="ListServices", code="OK") - \
        value(before, "cairn_api_requests_total", operation="ListServices", code="OK") == 4
    assert value(after, "cairn_api_requests_total", operation="RegisterInstance", code="OK") == 3
    assert value(after, "cairn_api_requests_total", operation="DiscoverInstances", code="RequestLimitExceeded") == throttled
    assert value(after, "cairn_throttled_requests_total") == throttled
    assert families["cairn_api_request_duration_seconds"].type == "histogram"
    assert value(after, "cairn_api_request_duration_seconds_count", operation="ListServices") >= 4

    assert value(after, "cairn_dns_queries_total", type="A", rcode="NOERROR") >= 1
    assert value(after, "cairn_dns_queries_total", type="A", rcode="NXDOMAIN") >= 1
    assert value(after, "cairn_dns_queries_total", type="SOA", rcode="NOERROR") >= 1
    assert value(after, "cairn_dns_queries_total", type="AAAA", rcode="REFUSED") >= 1
    assert value(after, "cairn_dns_query_duration_seconds_count") >= 4

    # In a cluster the live nodes divide the probes: count them over every node.
    probes = after
    if server.nodes:
        probes = {}
        for node in server.nodes:
            for key, v in scrape(node)[1].items():
                if key[0].startswith("cairn_health_probe"):
                    probes[key] = probes.get(key, 0) + v
    assert value(probes, "cairn_health_probes_total", type="HTTP", result="healthy") >= 3
    assert value(probes, "cairn_health_probes_total", type="HTTP", result="unhealthy") >= 3
    assert value(probes, "cairn_health_probe_duration_seconds_count") >= 6
    assert value(after, "cairn_instances", namespace="metrics.example", namespace_id=ns, region="us-east-1", health="UNHEALTHY") == 3

    assert value(after, "cairn_store_commit_duration_seconds_count") > value(before, "cairn_store_commit_duration_seconds_count")
    assert value(after, "cairn_store_commit_batch_entries_sum") >= 5
    assert value(after, "cairn_store_commit_audit_records_sum") >= 5
    assert value(after, "cairn_change_log_sequence") >= 5

    # The Grafana dashboard in docs/ asks only for series this scrape has, by labels they carry.
    dashboard = json.load(open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "grafana", "cairn-dashboard.json")))
    labels_of = {}
    for name, labels in after:
        labels_of.setdefault(name, set()).update(k for k, _ in labels)
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 12
    for expr in exprs:
        names = re.findall(r"\bcairn_[a-z_]+", expr)
        assert names, expr
        for name in names:
            assert name in labels_of, f"{name} (in {expr}) is not exported"
            grouped = [label.strip() for group in re.findall(r"by \(([^)]*)\)", expr) for label in group.split(",")]
            selected = re.findall(r"([a-z_]+)!?=\"", expr)
            for label in grouped + selected:
                assert label == "le" or label in labels_of[name], f"{name} has no label {label} (in {expr})"


def test_healthz_and_readyz(server):
    with urllib.request.urlopen(f"{server.endpoint}/healthz", timeout=5) as r:
        assert r.status == 200 and r.read() == b"ok\n"
    with urllib.request.urlopen(f"{server.endpoint}/readyz", timeout=5) as r:
        assert r.status == 200 and r.read().startswith(b"ready sequence=")
