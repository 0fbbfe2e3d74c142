"""Zone transfers to secondaries (docs/dns.md, "Zone transfers"): AXFR and IXFR over TCP to the networks in
`dns.transfer.allow`, NOTIFY to `dns.transfer.notify` on every change of a zone, read by dig and dnspython and
followed by real NSD and Knot DNS secondaries."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import dns.exception
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.xfr
import dns.zone
import pytest

from cairn_process import CairnProcess
from conftest import client_for, free_port, public_namespace



NSD_PORT = free_port()
KNOT_PORT = free_port()
CONFIG = f"""
dns:
  nameServers: [ns2.secondary.test]
  transfer:
    allow: [127.0.0.1/32]
    notify: ["127.0.0.1:{NSD_PORT}", "127.0.0.1:{KNOT_PORT}"]
"""


@pytest.fixture(scope="module")
def server():
    s = CairnProcess(config=CONFIG, extra_args=["--health-interval", "3600"]).start()
    yield s
    assert s.stop() == 0


def primary_port(server):
    """The DNS port secondaries transfer from: the first node's on a cluster."""
    return server.nodes[0].dns_port if server.nodes else server.dns_port


@pytest.fixture
def sd(server, region):
    return client_for(server.endpoint, region)


def make_zone(sd, name, instances=3):
    zone = f"{name}.transfer.test"
    ns = public_namespace(sd, zone)
    svc = sd.create_service(Name="web", NamespaceId=ns, DnsConfig={
        "RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": 60}, {"Type": "SRV", "TTL": 60}]})["Service"]["Id"]
    for n in range(instances):
        sd.register_instance(ServiceId=svc, InstanceId=f"i{n}",
                             Attributes={"AWS_INSTANCE_IPV4": f"10.7.{n // 250}.{n % 250 + 1}", "AWS_INSTANCE_PORT": "8080"})
    return zone, svc


def axfr(server, zone, source="127.0.0.1"):
    """The transfer's messages (dnspython reads it as a secondary would)."""
    query = dns.message.make_query(zone, "AXFR")
    with socket.create_connection(("127.0.0.1", primary_port(server)), timeout=10, source_address=(source, 0)) as sock:
        dns.query.send_tcp(sock, query, time.time() + 10)
        messages = []
        soas = 0
        while soas < 2:
            reply, _ = dns.query.receive_tcp(sock, time.time() + 10, one_rr_per_rrset=True)
            messages.append(reply)
            if reply.rcode() != dns.rcode.NOERROR:
                return messages
            soas += sum(1 for rrset in reply.answer if rrset.rdtype == dns.rdatatype.SOA)
        return messages


def settled(server, zone, ready, source="127.0.0.1"):
    """The transfer once `ready(records)` holds: on a cluster the first node applies writes made on the others a
    moment later."""
    deadline = time.monotonic() + 30
    while True:
        messages = axfr(server, zone, source)
        if ready(records(messages)) or time.monotonic() > deadline:
            return messages
        time.sleep(0.1)


def records(messages):
    return [(rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), r.to_text())
            for m in messages for rrset in m.answer for r in rrset]


def test_axfr_sends_the_whole_zone_between_two_soas_and_every_instance_not_eight(server, sd, name):
    zone, _ = make_zone(sd, name, instances=12)
    got = records(settled(server, zone, lambda got: sum(1 for r in got if r[1] == "SRV") == 12))
    assert got[0][1] == "SOA" and got[-1][1] == "SOA" and got[0] == got[-1]
    assert sum(1 for r in got if r[1] == "SOA") == 2
    # The apex NS: Cairn's name and the secondaries' (dns.nameServers), in the transfer and in answers.
    assert sorted(r[2] for r in got if r[1] == "NS") == ["ns1.cairn.internal.", "ns2.secondary.test."]
    reply = dns.query.udp(dns.message.make_query(zone, "NS"), "127.0.0.1", port=primary_port(server), timeout=5)
    assert sorted(r.target.to_text() for rrset in reply.answer for r in rrset) == ["ns1.cairn.internal.", "ns2.secondary.test."]
    # Every instance's records, not the 8 a MULTIVALUE answer carries.
    addresses = sorted(r[2] for r in got if r[0] == f"web.{zone}." and r[1] == "A")
    assert addresses == sorted(f"10.7.0.{n + 1}" for n in range(12))
    assert sum(1 for r in got if r[0] == f"web.{zone}." and r[1] == "SRV") == 12
    assert (f"i3.web.{zone}.", "A", "10.7.0.4") in got
    # dig reads it too.
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(primary_port(server)), zone, "AXFR", "+nocmd", "+nostats"],
                         capture_output=True, text=True, timeout=20).stdout
    lines = [line.split() for line in out.splitlines() if line and not line.startswith(";")]
    assert sum(1 for f in lines if f[3] == "SOA") == 2, out
    assert sum(1 for f in lines if f[0] == f"web.{zone}." and f[3] == "A") == 12, out


def test_a_large_zone_comes_in_several_messages_that_a_secondary_reads_as_one_zone(server, sd, name):
    zone, _ = make_zone(sd, name, instances=400)
    messages = settled(server, zone, lambda got: sum(1 for r in got if r[1] == "SRV") == 400)
    assert len(messages) > 1
    assert len(messages[0].question) == 1 and all(m.id == messages[0].id for m in messages)
    got = records(messages)
    assert sum(1 for r in got if r[1] == "SRV") == 400 and sum(1 for r in got if r[1] == "SOA") == 2
    # dnspython's secondary-side reader builds a zone from it.
    built = dns.zone.Zone(zone)
    dns.query.inbound_xfr("127.0.0.1", built, port=primary_port(server), timeout=20)
    assert len(built.find_rdataset("web", "SRV")) == 400


def test_ixfr_from_a_transferred_serial_is_the_difference_and_from_the_current_serial_one_soa(server, sd, name):
    zone, svc = make_zone(sd, name)
    first = settled(server, zone, lambda got: sum(1 for r in got if r[1] == "SRV") == 3)
    before = first[0].answer[0][0].serial  # the serial this transfer gave, as a secondary would hold it
    sd.register_instance(ServiceId=svc, InstanceId="new", Attributes={"AWS_INSTANCE_IPV4": "10.7.9.9", "AWS_INSTANCE_PORT": "1"})
    latest = settled(server, zone, lambda got: (f"web.{zone}.", "A", "10.7.9.9") in got)
    current = latest[0].answer[0][0].serial
    assert current != before and (current - before) % 2**32 < 2**31

    def ixfr(serial):
        query = dns.message.make_query(zone, "IXFR")
        query.authority.append(dns.rrset.from_text(zone + ".", 0, "IN", "SOA", f"ns1.cairn.internal. hostmaster.cairn.internal. {serial} 1 1 1 1"))
        with socket.create_connection(("127.0.0.1", primary_port(server)), timeout=10) as sock:
            dns.query.send_tcp(sock, query, time.time() + 10)
            reply, _ = dns.query.receive_tcp(sock, time.time() + 10, one_rr_per_rrset=True)
            return reply

    # Up to date, or a serial from the future (RFC 1995 section 2): the SOA alone.
    for asked in (current, (current + 1000) % 2**32):
        reply = ixfr(asked)
        assert reply.rcode() == dns.rcode.NOERROR
        assert [rrset.rdtype for rrset in reply.answer] == [dns.rdatatype.SOA] and reply.answer[0][0].serial == current
    # From the earlier transfer's serial: the difference (new SOA, old SOA, removed, new SOA, added, new SOA).
    got = records([ixfr(before)])
    soas = [i for i, r in enumerate(got) if r[1] == "SOA"]
    assert len(soas) == 4 and [got[i][2].split()[2] for i in soas] == [str(current), str(before), str(current), str(current)], got
    added = got[soas[2] + 1:soas[3]]
    assert got[soas[1] + 1:soas[2]] == []  # nothing removed
    assert sorted(added) == sorted([(f"web.{zone}.", "A", "10.7.9.9"), (f"web.{zone}.", "SRV", f"1 1 1 new.web.{zone}."),
                                    (f"new.web.{zone}.", "A", "10.7.9.9")]), got
    # From a serial no transfer gave: the whole zone in AXFR form (SOA, the records, SOA), as RFC 1995 allows.
    got = records([ixfr((before - 100000) % 2**32)])
    assert got[0][1] == "SOA" and got[-1][1] == "SOA" and got[1][1] == "NS" and (f"web.{zone}.", "A", "10.7.9.9") in got


def test_transfers_are_refused_to_networks_not_allowed_over_udp_and_for_names_that_are_not_zones(server, sd, name):
    zone, _ = make_zone(sd, name)
    [reply] = axfr(server, zone, source="127.0.0.2")  # allow lists 127.0.0.1/32 only
    assert reply.rcode() == dns.rcode.REFUSED and not reply.answer
    reply = dns.query.udp(dns.message.make_query(zone, "AXFR"), "127.0.0.1", port=primary_port(server), timeout=5)
    assert reply.rcode() == dns.rcode.REFUSED
    [reply] = axfr(server, f"web.{zone}")  # a name inside a zone, not its apex
    assert reply.rcode() == dns.rcode.REFUSED
    [reply] = axfr(server, "nowhere.invalid")
    assert reply.rcode() == dns.rcode.REFUSED
    # A NOTIFY sent to Cairn (a primary) is not implemented; the server carries on answering.
    notify = dns.message.make_query(zone, "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    reply = dns.query.udp(notify, "127.0.0.1", port=primary_port(server), timeout=5)
    assert reply.rcode() == dns.rcode.NOTIMP
    assert dns.query.udp(dns.message.make_query(f"web.{zone}", "A"), "127.0.0.1", port=primary_port(server), timeout=5).answer


def test_transfers_are_refused_by_default():
    s = CairnProcess(extra_args=["--health-interval", "3600"]).start()
    try:
        sd = client_for(s.endpoint, "us-east-1")
        zone, _ = make_zone(sd, "closed")
        [reply] = axfr(s, zone)
        assert reply.rcode() == dns.rcode.REFUSED
    finally:
        s.stop()


def until(check, what, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def ask(port, name, rdtype="A"):
    try:
        reply = dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=1)
    except dns.exception.Timeout:
        return None
    return sorted(r.to_text() for rrset in reply.answer for r in rrset if rrset.rdtype == dns.rdatatype.from_text(rdtype))


class Secondary:
    """A real secondary, NSD or Knot DNS, in a temp directory, transferring one zone from Cairn."""

    def __init__(self, kind, port, primary, zone, key=None):
        self.kind, self.port = kind, port
        self.dir = tempfile.mkdtemp(prefix=f"cairn-{kind}-")
        os.chmod(self.dir, 0o777)
        conf = os.path.join(self.dir, f"{kind}.conf")
        name = key[0] if key else "NOKEY"
        if kind == "nsd":
            keys = f"""key:
  name: {key[0]}
  algorithm: hmac-sha256
  secret: "{key[1]}"
""" if key else ""
            text = keys + f"""server:
  ip-address: 127.0.0.1
  port: {port}
  username: ""
  zonesdir: "{self.dir}"
  pidfile: "{self.dir}/nsd.pid"
  xfrdfile: "{self.dir}/xfrd.state"
  zonelistfile: "{self.dir}/zone.list"
  database: ""
  logfile: "{self.dir}/server.log"
  verbosity: 2
remote-control:
  control-enable: no
zone:
  name: {zone}
  zonefile: "{zone}.zone"
  request-xfr: 127.0.0.1@{primary} {name}
  allow-notify: 127.0.0.1 {name}
"""
            command = [shutil.which("nsd") or "/usr/sbin/nsd", "-d", "-c", conf]
        else:
            keys = f"""key:
  - id: {key[0]}
    algorithm: hmac-sha256
    secret: {key[1]}
""" if key else ""
            with_key = f"\n    key: {key[0]}" if key else ""
            text = keys + f"""server:
    listen: 127.0.0.1@{port}
    rundir: "{self.dir}"
log:
  - target: "{self.dir}/server.log"
    any: info
database:
    storage: "{self.dir}"
remote:
  - id: primary
    address: 127.0.0.1@{primary}{with_key}
acl:
  - id: from_primary
    address: 127.0.0.1
    action: notify{with_key}
template:
  - id: default
    storage: "{self.dir}"
zone:
  - domain: {zone}
    master: primary
    acl: from_primary
"""
            command = [shutil.which("knotd") or "/usr/sbin/knotd", "-c", conf]
        with open(conf, "w") as f:
            f.write(text)
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def log(self):
        try:
            with open(os.path.join(self.dir, "server.log")) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


SIGNED_NSD_PORT = free_port()
SIGNED_KNOT_PORT = free_port()
KEY = ("cairn-xfer", "9LsqVTC2lSg2YF5aWk4C0ZJbw0uoknNGEBBpsgOhpXY=")
SIGNED_CONFIG = f"""
dns:
  transfer:
    allow: [127.0.0.1/32]
    notify: ["127.0.0.1:{SIGNED_NSD_PORT}", "127.0.0.1:{SIGNED_KNOT_PORT}"]
    key: {{name: {KEY[0]}, secret: "{KEY[1]}"}}
"""


@pytest.fixture(scope="module")
def signed_server():
    s = CairnProcess(config=SIGNED_CONFIG, extra_args=["--health-interval", "3600"]).start()
    yield s
    assert s.stop() == 0


def dig_axfr(server, zone, *args):
    return subprocess.run(["dig", "@127.0.0.1", "-p", str(primary_port(server)), zone, "AXFR", "+nocmd", *args],
                          capture_output=True, text=True, timeout=20).stdout


def test_with_a_key_transfers_must_be_signed_and_every_message_of_the_answer_is(signed_server, region, name):
    sd = client_for(signed_server.endpoint, region)
    zone, _ = make_zone(sd, name, instances=400)
    deadline = time.monotonic() + 30
    while True:  # on a cluster the first node applies writes made on the others a moment later
        out = dig_axfr(signed_server, zone, "-y", f"hmac-sha256:{KEY[0]}:{KEY[1]}")
        if out.count("\tSRV\t") + out.count(" SRV ") >= 400 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    # dig checks the TSIG of every message (the later ones chained to the one before) and says when one fails.
    assert "Couldn't verify" not in out and "messages 1," not in out and out.count("\tSRV\t") + out.count(" SRV ") >= 400, out
    assert "Transfer failed" in dig_axfr(signed_server, zone)  # unsigned: REFUSED
    wrong = dig_axfr(signed_server, zone, "-y", f"hmac-sha256:{KEY[0]}:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0")
    assert "BADSIG" in wrong and "Transfer failed" in wrong, wrong
    other = dig_axfr(signed_server, zone, "-y", f"hmac-sha256:someone-else:{KEY[1]}")
    assert "BADKEY" in other and "Transfer failed" in other, other


@pytest.mark.parametrize("kind,port,signed", [("nsd", NSD_PORT, False), ("knot", KNOT_PORT, False),
                                              ("nsd", SIGNED_NSD_PORT, True), ("knot", SIGNED_KNOT_PORT, True)],
                         ids=["nsd", "knot", "nsd-tsig", "knot-tsig"])
def test_a_real_secondary_transfers_the_zone_and_follows_each_change_by_notify(request, name, region, kind, port, signed):
    """Unsigned, and with TSIG: the secondary signs its SOA queries and transfers and checks Cairn's signed answers
    and NOTIFYs (a NOTIFY that is not signed with its key is ignored)."""
    if not shutil.which(kind if kind == "nsd" else "knotd") and not os.path.exists(f"/usr/sbin/{'nsd' if kind == 'nsd' else 'knotd'}"):
        pytest.fail(f"{kind} is not installed (scripts/test.sh installs it)")
    server = request.getfixturevalue("signed_server" if signed else "server")
    sd = client_for(server.endpoint, region)
    zone, svc = make_zone(sd, f"{name}-{kind}")
    secondary = Secondary(kind, port, primary_port(server), zone, key=KEY if signed else None)
    try:
        # The zone arrives by the secondary's first transfer (and the NOTIFY Cairn sends for a new zone).
        until(lambda: ask(port, f"web.{zone}") == ["10.7.0.1", "10.7.0.2", "10.7.0.3"],
              f"{kind} never served the zone:\n{secondary.log()}")
        # A registration: Cairn's NOTIFY makes the secondary transfer again (its refresh is two hours away).
        sd.register_instance(ServiceId=svc, InstanceId="late", Attributes={"AWS_INSTANCE_IPV4": "10.7.5.5", "AWS_INSTANCE_PORT": "1"})
        until(lambda: ask(port, f"late.web.{zone}") == ["10.7.5.5"], f"{kind} never served the new instance:\n{secondary.log()}")
        if kind == "knot":
            # Knot says how each refresh came: after the first AXFR, an IXFR answered with the difference (it logs
            # "receiving AXFR-style IXFR" when a primary answers an IXFR with the whole zone).
            log = secondary.log()
            assert "IXFR, incoming" in log and "AXFR-style" not in log, log
        # A deregistration too.
        sd.deregister_instance(ServiceId=svc, InstanceId="i0")
        until(lambda: ask(port, f"web.{zone}") == ["10.7.0.2", "10.7.0.3", "10.7.5.5"],
              f"{kind} still served the deregistered instance:\n{secondary.log()}")
        # What the secondary serves is what Cairn's transfer holds: the SOA serials agree.
        def caught_up():
            serial = dns.query.tcp(dns.message.make_query(zone, "SOA"), "127.0.0.1", port=primary_port(server),
                                   timeout=5).answer[0][0].serial
            until(lambda: ask(port, zone, "SOA") and int(ask(port, zone, "SOA")[0].split()[2]) == serial,
                  f"{kind} is not at Cairn's serial {serial}:\n{secondary.log()}")
        caught_up()
        # A record two services publish: a service named like web's SRV target, with the same address (and another
        # TTL). Its IXFR adds a record the secondary has (NSD then takes the whole zone instead, docs/dns.md);
        # dropping it from that service removes nothing, since web still publishes it.
        twin = sd.create_service(Name="late.web", NamespaceId=sd.get_service(Id=svc)["Service"]["NamespaceId"],
                                 DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 10}]})["Service"]["Id"]
        sd.register_instance(ServiceId=twin, InstanceId="dup", Attributes={"AWS_INSTANCE_IPV4": "10.7.5.5"})
        sd.register_instance(ServiceId=twin, InstanceId="other", Attributes={"AWS_INSTANCE_IPV4": "10.7.6.6"})
        until(lambda: ask(port, f"late.web.{zone}") == ["10.7.5.5", "10.7.6.6"], f"{kind} never served the twin:\n{secondary.log()}")
        sd.deregister_instance(ServiceId=twin, InstanceId="dup")
        caught_up()
        assert ask(port, f"late.web.{zone}") == ["10.7.5.5", "10.7.6.6"], secondary.log()
    finally:
        secondary.stop()
