"""DNS hardening (issue #10, items 7 and 17): response-rate limiting on UDP, zone transfers refused, answers on
::1 as well as 127.0.0.1 for the default network — through dig and dnspython against a running cairn."""
import socket
import subprocess

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from cairn_process import CairnProcess
from conftest import client_for, private_namespace


@pytest.fixture(scope="module")
def server():
    s = CairnProcess(config="dns:\n  rateLimit: {responsesPerSecond: 5, slip: 2}\n", extra_args=["--health-interval", "3600"]).start()
    sd = client_for(s.endpoint, "us-east-1")
    ns = private_namespace(sd, "rrl.internal")
    svc = sd.create_service(Name="orders", NamespaceId=ns, DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 5}]})["Service"]["Id"]
    sd.register_instance(ServiceId=svc, InstanceId="o1", Attributes={"AWS_INSTANCE_IPV4": "10.0.1.10"})
    yield s
    assert s.stop() == 0


def test_udp_answers_past_the_rate_are_dropped_or_truncated(server):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2)
    query = dns.message.make_query("orders.rrl.internal", "A", use_edns=True)
    for i in range(60):
        query.id = i
        sock.sendto(query.to_wire(), ("127.0.0.1", server.dns_port))
    full = truncated = 0
    try:
        while True:
            reply = dns.message.from_wire(sock.recv(4096))
            if reply.flags & dns.flags.TC:
                assert not reply.answer
                truncated += 1
            else:
                full += 1
    except socket.timeout:
        pass
    assert full < 60 and truncated > 0, (full, truncated)
    # A client told to retry over TCP gets the whole answer there: TCP is not limited.
    reply = dns.query.tcp(dns.message.make_query("orders.rrl.internal", "A"), "127.0.0.1", port=server.dns_port, timeout=5)
    assert [r.address for rr in reply.answer for r in rr] == ["10.0.1.10"]


@pytest.mark.parametrize("kind", ["AXFR", "IXFR=1"])
def test_zone_transfers_are_refused(server, kind):
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(server.dns_port), "rrl.internal", kind, "+tcp"],
                         capture_output=True, text=True, timeout=20).stdout
    assert "REFUSED" in out or "Transfer failed" in out, out
    reply = dns.query.tcp(dns.message.make_query("rrl.internal", kind.split("=")[0]), "127.0.0.1", port=server.dns_port, timeout=5)
    assert reply.rcode() == dns.rcode.REFUSED


def test_the_default_network_is_answered_on_ipv6_loopback_too(server):
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("this host has no IPv6 loopback")
    reply = dns.query.tcp(dns.message.make_query("orders.rrl.internal", "A"), "::1", port=server.dns_port, timeout=5)
    assert [r.address for rr in reply.answer for r in rr] == ["10.0.1.10"]
