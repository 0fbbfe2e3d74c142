"""DNS end to end: dig and dnspython against a running cairn, records created through boto3 and the aws CLI."""
import collections
import socket
import subprocess
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from cairn_admin import signed_post
from cairn_process import CairnProcess
from conftest import client_for, private_namespace, public_namespace
from test_walkthrough_cli import aws, poll

CONFIG = """
networks:
  default: [127.0.0.0/8, "::1/128"]
  lab: [127.0.0.1/32]
dns:
  queryLog: {log}
"""


# Every test runs twice: with the query log on, every UDP query takes the full path (parse, resolve, encode); with it
# off, repeated questions are answered from the event loop's ready answers (docs/dns.md), so both paths are held to
# the same behaviour through dig and dnspython.
@pytest.fixture(scope="module", params=["full-path", "ready-answers"])
def server(request):
    s = CairnProcess(config=CONFIG.format(log="true" if request.param == "full-path" else "false")).start()
    s.query_log = request.param == "full-path"
    yield s
    assert s.stop() == 0


@pytest.fixture
def sd(server, region):
    return client_for(server.endpoint, region)


def dig(server, *args, source=None):
    cmd = ["dig", "@127.0.0.1", "-p", str(server.dns_port), "+time=2", "+tries=1", *args]
    if source:
        cmd[1:1] = ["-b", source]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout


def ask(server, name, rdtype="A", tcp=False, source="127.0.0.1", **kw):
    q = dns.message.make_query(name, rdtype, **kw)
    fn = dns.query.tcp if tcp else dns.query.udp
    return fn(q, "127.0.0.1", port=server.dns_port, timeout=3, source=source)


def addresses(response):
    return sorted(r.address for rrset in response.answer for r in rrset if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA))


def service(sd, ns, name, records=("A",), policy="MULTIVALUE", custom=False, ttl=10):
    kw = {"HealthCheckCustomConfig": {}} if custom else {}
    return sd.create_service(Name=name, NamespaceId=ns, DnsConfig={
        "RoutingPolicy": policy, "DnsRecords": [{"Type": t, "TTL": ttl} for t in records]}, **kw)["Service"]["Id"]


def test_walkthrough_dns_part(server):
    """The DNS lab of the first-run walkthrough, with the aws CLI and dig."""
    op = poll(server, aws(server, "create-private-dns-namespace", "--name", "corp.local", "--vpc", "default")["OperationId"])
    ns = op["Targets"]["NAMESPACE"]
    svc = aws(server, "create-service", "--name", "orders", "--namespace-id", ns, "--health-check-custom-config", "FailureThreshold=1",
              "--dns-config", "RoutingPolicy=MULTIVALUE,DnsRecords=[{Type=A,TTL=10},{Type=SRV,TTL=10}]")["Service"]["Id"]
    for i in (1, 2):
        aws(server, "register-instance", "--service-id", svc, "--instance-id", f"orders-{i}",
            "--attributes", f"AWS_INSTANCE_IPV4=10.0.{i}.{i}0,AWS_INSTANCE_PORT=808{i}")
    out = dig(server, "orders.corp.local", "A", "+short")
    assert sorted(out.split()) == ["10.0.1.10", "10.0.2.20"]
    srv = sorted(dig(server, "orders.corp.local", "SRV", "+short").strip().splitlines())
    assert srv == ["1 1 8081 orders-1.orders.corp.local.", "1 1 8082 orders-2.orders.corp.local."]
    assert dig(server, "orders-1.orders.corp.local", "A", "+short").split() == ["10.0.1.10"]
    aws(server, "update-instance-custom-health-status", "--service-id", svc, "--instance-id", "orders-1", "--status", "UNHEALTHY")
    assert dig(server, "orders.corp.local", "A", "+short").split() == ["10.0.2.20"]


def test_multivalue_caps_at_eight_with_random_subsets(server, sd, name):
    ns = private_namespace(sd, f"{name}.internal")
    s = service(sd, ns, "many")
    for i in range(20):
        sd.register_instance(ServiceId=s, InstanceId=f"m{i}", Attributes={"AWS_INSTANCE_IPV4": f"10.9.0.{i + 1}"})
    subsets, seen = set(), set()
    for _ in range(30):
        r = ask(server, f"many.{name}.internal")
        got = addresses(r)
        assert len(got) == 8 and r.flags & dns.flags.AA
        subsets.add(tuple(got))
        seen |= set(got)
    assert len(subsets) > 10 and len(seen) == 20


def test_weighted_answers_exactly_one(server, sd, name):
    ns = public_namespace(sd, f"{name}.example.com")
    s = service(sd, ns, "www", policy="WEIGHTED")
    for i in range(4):
        sd.register_instance(ServiceId=s, InstanceId=f"w{i}", Attributes={"AWS_INSTANCE_IPV4": f"192.0.2.{i + 1}"})
    picks = collections.Counter()
    for _ in range(60):
        got = addresses(ask(server, f"www.{name}.example.com", source="127.0.0.2"))
        assert len(got) == 1
        picks[got[0]] += 1
    assert len(picks) == 4


def test_unhealthy_drop_out_and_all_unhealthy_fail_open(server, sd, name):
    ns = private_namespace(sd, f"{name}.internal")
    s = service(sd, ns, "api", custom=True)
    for i in range(3):
        sd.register_instance(ServiceId=s, InstanceId=f"a{i}", Attributes={"AWS_INSTANCE_IPV4": f"10.8.0.{i + 1}"})
    sd.update_instance_custom_health_status(ServiceId=s, InstanceId="a0", Status="UNHEALTHY")
    assert addresses(ask(server, f"api.{name}.internal")) == ["10.8.0.2", "10.8.0.3"]
    for i in (1, 2):
        sd.update_instance_custom_health_status(ServiceId=s, InstanceId=f"a{i}", Status="UNHEALTHY")
    assert addresses(ask(server, f"api.{name}.internal")) == ["10.8.0.1", "10.8.0.2", "10.8.0.3"]


def test_nxdomain_and_nodata_carry_the_soa(server, sd, name):
    ns = private_namespace(sd, f"{name}.internal", Properties={"DnsProperties": {"SOA": {"TTL": 60}}})
    s = service(sd, ns, "v4only")
    service(sd, ns, "empty")
    sd.register_instance(ServiceId=s, InstanceId="x", Attributes={"AWS_INSTANCE_IPV4": "10.7.0.1"})
    for qname, qtype, rcode in [(f"missing.{name}.internal", "A", dns.rcode.NXDOMAIN), (f"empty.{name}.internal", "A", dns.rcode.NXDOMAIN),
                                (f"v4only.{name}.internal", "AAAA", dns.rcode.NOERROR), (f"v4only.{name}.internal", "TXT", dns.rcode.NOERROR)]:
        r = ask(server, qname, qtype)
        assert r.rcode() == rcode and not r.answer, qname
        soa = r.authority[0]
        assert soa.rdtype == dns.rdatatype.SOA and soa.ttl == 60 and soa[0].minimum == 86400
    out = dig(server, f"missing.{name}.internal", "A", "+noall", "+comments", "+authority")
    assert "NXDOMAIN" in out and "SOA" in out


def test_tcp_fallback_for_an_answer_too_big_for_udp(tmp_path):
    """100 instances with dns.maxAnswers 100: UDP without EDNS gets TC, dig retries over TCP and gets all 100."""
    s = CairnProcess(config="dns:\n  maxAnswers: 100\n").start()
    try:
        sd = client_for(s.endpoint, "us-east-1")
        ns = private_namespace(sd, "big.internal")
        svc = service(sd, ns, "fleet", records=("A", "AAAA"))
        for i in range(100):
            sd.register_instance(ServiceId=svc, InstanceId=f"f{i}", Attributes={
                "AWS_INSTANCE_IPV4": f"10.6.{i // 250}.{i % 250 + 1}", "AWS_INSTANCE_IPV6": f"2001:db8::{i + 1:x}"})
        udp = ask(s, "fleet.big.internal", "AAAA")
        assert udp.flags & dns.flags.TC and not udp.answer
        assert len(addresses(ask(s, "fleet.big.internal", "AAAA", tcp=True))) == 100
        edns = ask(s, "fleet.big.internal", "A", use_edns=0, payload=4096)
        assert edns.flags & dns.flags.TC or len(addresses(edns)) == 100
        out = subprocess.run(["dig", "@127.0.0.1", "-p", str(s.dns_port), "+noedns", "+time=2", "fleet.big.internal", "AAAA"],
                             capture_output=True, text=True, timeout=20).stdout
        assert "Truncated, retrying in TCP mode" in out and "ANSWER: 100" in out
    finally:
        s.stop()


def test_private_namespaces_answer_only_their_network(server, sd, name):
    ns = private_namespace(sd, f"{name}.lab", Vpc="lab")
    s = service(sd, ns, "secret")
    sd.register_instance(ServiceId=s, InstanceId="s1", Attributes={"AWS_INSTANCE_IPV4": "10.5.0.1"})
    for _ in range(3):  # the lab client's answer is ready now; it must not reach anyone outside the lab
        assert addresses(ask(server, f"secret.{name}.lab", source="127.0.0.1")) == ["10.5.0.1"]
    outside = ask(server, f"secret.{name}.lab", source="127.0.0.2")
    assert outside.rcode() == dns.rcode.REFUSED and not outside.answer
    assert "REFUSED" in dig(server, f"secret.{name}.lab", "A", source="127.0.0.2")
    assert ask(server, "www.not-ours.example").rcode() == dns.rcode.REFUSED


def test_changes_are_visible_in_the_very_next_query(server, sd, name):
    ns = private_namespace(sd, f"{name}.internal")
    s = service(sd, ns, "live", custom=True)
    expected = []
    for i in range(15):
        sd.register_instance(ServiceId=s, InstanceId=f"l{i}", Attributes={"AWS_INSTANCE_IPV4": f"10.4.0.{i + 1}"})
        expected.append(f"10.4.0.{i + 1}")
        for _ in range(3):  # the first after the write works the answer out, the others repeat it
            got = addresses(ask(server, f"live.{name}.internal"))
            assert len(got) == min(8, len(expected)) and set(got) <= set(expected) and got, i
    for i in range(14):
        sd.update_instance_custom_health_status(ServiceId=s, InstanceId=f"l{i}", Status="UNHEALTHY")
    for _ in range(3):
        assert addresses(ask(server, f"live.{name}.internal")) == ["10.4.0.15"]
    sd.deregister_instance(ServiceId=s, InstanceId="l14")
    assert len(addresses(ask(server, f"live.{name}.internal"))) == 8  # the rest are unhealthy: fail open
    sd.update_service(Id=s, Service={"DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 77}]}})
    assert ask(server, f"live.{name}.internal").answer[0].ttl == 77


def test_case_is_preserved_and_names_compressed(server, sd, name):
    ns = private_namespace(sd, f"{name}.internal")
    s = service(sd, ns, "mixed", records=("SRV",))
    sd.register_instance(ServiceId=s, InstanceId="m1", Attributes={"AWS_INSTANCE_IPV4": "10.3.0.1", "AWS_INSTANCE_PORT": "443"})
    ask(server, f"mixed.{name}.internal", "SRV")  # another case of the same question first
    qname = f"MiXeD.{name.upper()}.internal"
    for _ in range(2):
        r = ask(server, qname, "SRV")
        assert r.question[0].name.to_text() == qname + "." and r.answer[0].name.to_text() == qname + "."
        assert str(r.answer[0][0].target) == f"m1.{qname}."
    assert addresses(ask(server, f"M1.mixed.{name}.internal")) == ["10.3.0.1"]


def test_apex_soa_ns_and_minimal_any(server, sd, name):
    private_namespace(sd, f"{name}.internal")
    soa = ask(server, f"{name}.internal", "SOA")
    assert soa.answer[0].rdtype == dns.rdatatype.SOA and soa.flags & dns.flags.AA
    assert str(ask(server, f"{name}.internal", "NS").answer[0][0].target) == "ns1.cairn.internal."
    anyr = ask(server, f"{name}.internal", "ANY")
    assert len(anyr.answer) == 1 and anyr.answer[0].rdtype == dns.rdatatype.HINFO
    before = soa.answer[0][0].serial
    s = service(sd, private_namespace(sd, f"{name}-2.internal"), "x")
    sd.register_instance(ServiceId=s, InstanceId="x", Attributes={"AWS_INSTANCE_IPV4": "10.2.0.1"})
    assert ask(server, f"{name}.internal", "SOA").answer[0][0].serial > before


@pytest.mark.parametrize("packet", [b"", b"\x00", b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
                                    b"\x12\x34\x01\x00\x00\x05\x00\x00\x00\x00\x00\x00\x01a\x00", b"\xff" * 600])
def test_malformed_packets_get_formerr_or_nothing(server, packet):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        s.sendto(packet, ("127.0.0.1", server.dns_port))
        try:
            reply = s.recv(4096)
            assert reply[:2] == packet[:2] and reply[3] & 0x0F == 1  # same id, FORMERR
        except socket.timeout:
            assert len(packet) < 12 or packet[2] & 0x80  # dropped: no header, or a response
    assert ask(server, "ping.not-ours.example").rcode() == dns.rcode.REFUSED


def test_bursts_from_many_clients_are_each_answered_to_their_sender(server, sd, name):
    # UDP queries are taken in batches (one recvmmsg, one sendmmsg): every reply must go to the socket that asked,
    # with its id and its question, however the queries of several clients interleave in a batch.
    s = service(sd, private_namespace(sd, f"{name}.internal"), "burst")
    for i in range(3):
        sd.register_instance(ServiceId=s, InstanceId=f"b{i}", Attributes={"AWS_INSTANCE_IPV4": f"10.7.0.{i + 1}"})
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(8)]
    # A client that asks and is gone before the reply: the ICMP error that comes back must not stop the socket.
    gone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for c in clients:
            c.bind(("127.0.0.1", 0))
            c.settimeout(3)
        gone.sendto(dns.message.make_query(f"burst.{name}.internal", "A").to_wire(), ("127.0.0.1", server.dns_port))
        gone.close()
        names = [f"burst.{name}.internal", f"nothing.{name}.internal", f"BURST.{name}.INTERNAL"]
        sent = {}
        for round_ in range(40):
            for k, c in enumerate(clients):
                q = dns.message.make_query(names[(round_ + k) % 3], "A")
                q.id = (round_ * 8 + k) & 0xFFFF
                sent[(k, q.id)] = q
                c.sendto(q.to_wire(), ("127.0.0.1", server.dns_port))
        # 320 queries in flight at once, well inside the 4 MiB socket buffers: each is answered, and only to its sender.
        for k, c in enumerate(clients):
            for _ in range(40):
                reply = dns.message.from_wire(c.recv(4096))
                q = sent.pop((k, reply.id))
                assert reply.question == q.question
                if "nothing" in str(q.question[0].name):
                    assert reply.rcode() == dns.rcode.NXDOMAIN
                else:
                    assert addresses(reply) == ["10.7.0.1", "10.7.0.2", "10.7.0.3"]
                    assert reply.answer[0].name == q.question[0].name  # the case as asked
        assert not sent
    finally:
        for c in clients:
            c.close()
    # A datagram larger than the server keeps of a query is cut and refused as malformed, not half-read.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(1)
        big = dns.message.make_query(f"burst.{name}.internal", "A").to_wire() + b"\x00" * 9000
        c.sendto(big, ("127.0.0.1", server.dns_port))
        try:
            reply = c.recv(4096)
            assert reply[:2] == big[:2] and reply[3] & 0x0F == dns.rcode.FORMERR
        except socket.timeout:
            pass
    assert addresses(ask(server, f"burst.{name}.internal")) == ["10.7.0.1", "10.7.0.2", "10.7.0.3"]


def test_opcodes_and_edns(server):
    q = dns.message.make_query("x.example", "A")
    q.set_opcode(dns.opcode.STATUS)
    assert dns.query.udp(q, "127.0.0.1", port=server.dns_port, timeout=3).rcode() == dns.rcode.NOTIMP
    q = dns.message.make_query("x.example", "A", use_edns=1)
    assert dns.query.udp(q, "127.0.0.1", port=server.dns_port, timeout=3).rcode() == dns.rcode.BADVERS
    q = dns.message.make_query("x.example", "A", use_edns=0, payload=4000)
    assert dns.query.udp(q, "127.0.0.1", port=server.dns_port, timeout=3).payload == 1232


def dig_reply(out):
    """(status, header flags, EDNS line or None, answer lines) of one dig answer in its default format."""
    status = out.split("status: ", 1)[1].split(",", 1)[0]
    flags = out.split(";; flags:", 1)[1].split(";", 1)[0].split()
    edns = next((line for line in out.splitlines() if line.startswith("; EDNS:")), None)
    answer = out.split(";; ANSWER SECTION:\n", 1)[1].split("\n\n", 1)[0].splitlines() if ";; ANSWER SECTION:" in out else []
    return status, flags, edns, answer


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_rfc8906_edns_checks(server, sd, name, tcp):
    """RFC 8906 section 8's checks, each with the dig command the RFC gives, against a public zone's SOA."""
    zone = f"{name}.example.net"
    namespace_id = public_namespace(sd, zone)
    via = ["+tcp"] if tcp else []

    def check(*args):
        out = dig(server, zone, "SOA", "+norec", *via, *args)
        assert "status: " in out, out
        return dig_reply(out)

    # 8.2.1 DNS: no OPT in, none out; the SOA, authoritative.
    status, flags, edns, answer = check("+noedns")
    assert (status, edns) == ("NOERROR", None) and "aa" in flags and "SOA" in answer[0]
    # 8.2.2 EDNS: an OPT record back, version 0.
    status, flags, edns, answer = check("+edns=0", "+nocookie")
    assert status == "NOERROR" and edns.startswith("; EDNS: version: 0") and "SOA" in answer[0]
    # 8.2.3 unknown EDNS version: BADVERS, an OPT of version 0, no answer.
    status, flags, edns, answer = check("+edns=1", "+noednsneg", "+nocookie")
    assert status == "BADVERS" and edns.startswith("; EDNS: version: 0") and answer == []
    # 8.2.4 and 8.2.5 unknown option (empty and with data): answered, the option not echoed.
    for option in ("+ednsopt=100", "+ednsopt=100:abcd"):
        out = dig(server, zone, "SOA", "+norec", *via, "+edns=0", "+nocookie", option)
        status, flags, edns, answer = dig_reply(out)
        assert status == "NOERROR" and "SOA" in answer[0] and "OPT=100" not in out
    # 8.2.6 unknown EDNS flag: answered, the flag cleared (must be zero).
    status, flags, edns, answer = check("+edns=0", "+nocookie", "+ednsflags=0x80")
    assert status == "NOERROR" and "SOA" in answer[0] and "MBZ" not in edns
    # 8.2.7 DO=1: answered, the DO bit copied back (RFC 3225); an unsigned zone adds no RRSIG.
    status, flags, edns, answer = check("+edns=0", "+nocookie", "+dnssec")
    assert status == "NOERROR" and "SOA" in answer[0] and all("RRSIG" not in line for line in answer)
    assert "flags: do" in edns, edns
    # 8.2.8 unknown version with an unknown option: BADVERS, no option echoed.
    out = dig(server, zone, "SOA", "+norec", *via, "+edns=1", "+noednsneg", "+nocookie", "+ednsopt=100")
    status, flags, edns, answer = dig_reply(out)
    assert status == "BADVERS" and edns.startswith("; EDNS: version: 0") and "OPT=100" not in out
    # 8.2.9 a response that must fit 512 bytes when asked for it (DNSKEY +dnssec +bufsize=512 +ignore).
    out = dig(server, zone, "DNSKEY", "+norec", *via, "+dnssec", "+bufsize=512", "+ignore", "+nocookie")
    status, flags, edns, answer = dig_reply(out)
    assert status == "NOERROR" and "aa" in flags
    # The same zone signed (docs/dns.md, "DNSSEC"): DO=1 gets the SOA's RRSIG, and the DNSKEY answer fits 512 bytes.
    status_code, body = signed_post(server.endpoint, "/cairn/v1/dnssec", "AKIDCAIRNTEST", "any", region=sd.meta.region_name,
                                    NamespaceId=namespace_id, Action="Enable")
    assert status_code == 200, body
    status, flags, edns, answer = check("+edns=0", "+nocookie", "+dnssec")
    assert status == "NOERROR" and any("RRSIG" in line and "SOA 13" in line for line in answer) and "flags: do" in edns, answer
    out = dig(server, zone, "DNSKEY", "+norec", *via, "+dnssec", "+bufsize=512", "+ignore", "+nocookie")
    status, flags, edns, answer = dig_reply(out)
    assert status == "NOERROR" and "aa" in flags and "tc" not in flags and any("DNSKEY" in line for line in answer), out


def test_query_log_lines(server):
    if not server.query_log:
        pytest.skip("the query log is off in this run")
    ask(server, "logged.not-ours.example")
    time.sleep(0.2)
    assert any("logged.not-ours.example." in line and "rcode=5" in line for line in server.log_lines)
