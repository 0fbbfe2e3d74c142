"""DNSSEC for public DNS namespaces (docs/dns.md, "DNSSEC"): `cairn dnssec enable` signs a zone online with ECDSA
P-256 (algorithm 13); names and types that do not exist are proved with compact denial (one NSEC). Checked by
validators that are not Cairn's: delv (BIND), unbound with the zone's DS as trust anchor (`ad` answers, SERVFAIL for
an answer tampered with on the way), dnsviz (no errors, every RRSIG valid), and ldns-key2ds for the DS."""
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from cairn_admin import lookup, signed_get, signed_post
from cairn_process import BINARY, CairnProcess
from conftest import client_for, free_port, http_namespace, public_namespace

KEY, SECRET = "AKIDCAIRNTEST", "any-secret-works-in-dev-mode"
UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"


def cli(server, region, *args, code=0):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"CAIRN_ENDPOINT": server.endpoint, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_REGION": region, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    out = subprocess.run([BINARY, *args], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == code, f"cairn {' '.join(args)} → {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out


def api(server, region, ns, action=None, **params):
    """GET (no action) or POST /cairn/v1/dnssec; (status, parsed body)."""
    if action is None:
        status, body = signed_get(server.endpoint, "/cairn/v1/dnssec", KEY, SECRET, region=region, NamespaceId=ns, **params)
    else:
        status, body = signed_post(server.endpoint, "/cairn/v1/dnssec", KEY, SECRET, region=region, NamespaceId=ns, Action=action,
                                   **params)
    return status, json.loads(body)


def message(body):
    return body.get("Message") or body.get("message") or ""


def signed_zone(server, sd, region, zone):
    """A public zone with a MULTIVALUE A+SRV service `web` of three instances, signed with `cairn dnssec enable`."""
    ns = public_namespace(sd, zone)
    svc = sd.create_service(Name="web", NamespaceId=ns, DnsConfig={
        "RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": 60}, {"Type": "SRV", "TTL": 60}]})["Service"]["Id"]
    for i in range(3):
        sd.register_instance(ServiceId=svc, InstanceId=f"i{i}",
                             Attributes={"AWS_INSTANCE_IPV4": f"192.0.2.{10 + i}", "AWS_INSTANCE_PORT": "80"})
    shown = json.loads(cli(server, region, "dnssec", "enable", ns, "--output", "json").stdout)
    assert shown["Signed"] is True and len(shown["Keys"]) == 1, shown
    return ns, svc, shown["Keys"][0]


def query(server, name, rdtype, do=True, port=None):
    q = dns.message.make_query(name, rdtype, want_dnssec=do)
    return dns.query.udp(q, "127.0.0.1", port=port or server.dns_port, timeout=5)


def delv(server, anchor_dnskey, zone, name, rdtype):
    """delv's output for `name`, validating from the zone's DNSKEY as its trust anchor."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        flags, protocol, algorithm, key = anchor_dnskey.split()[4:8]
        f.write(f'trust-anchors {{ "{zone}." static-key {flags} {protocol} {algorithm} "{key}"; }};\n')
    try:
        out = subprocess.run(["delv", "@127.0.0.1", "-p", str(server.dns_port), "-a", f.name, f"+root={zone}", name, rdtype],
                             capture_output=True, text=True, timeout=60)
        return out.stdout + out.stderr
    finally:
        os.unlink(f.name)


class Unbound:
    """A validating unbound on a free port, sending the zone's queries to `upstream` with the DS as trust anchor."""

    def __init__(self, zone, ds_records, upstream_port):
        self.dir = tempfile.mkdtemp(prefix="cairn-unbound-")
        self.port = free_port()
        anchors = "\n".join(f'  trust-anchor: "{ds}"' for ds in ds_records)
        with open(os.path.join(self.dir, "unbound.conf"), "w") as f:
            f.write(f"""server:
  interface: 127.0.0.1
  port: {self.port}
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{self.dir}"
  pidfile: "{self.dir}/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 1
  val-log-level: 2
  do-not-query-localhost: no
  qname-minimisation: no
  module-config: "validator iterator"
  local-zone: "{zone}." nodefault
{anchors}
stub-zone:
  name: "{zone}."
  stub-addr: 127.0.0.1@{upstream_port}
""")
        self.process = subprocess.Popen([UNBOUND, "-d", "-c", os.path.join(self.dir, "unbound.conf")],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                dns.query.udp(dns.message.make_query("localhost.", "A"), "127.0.0.1", port=self.port, timeout=1)
                return
            except Exception:
                assert self.process.poll() is None, self.process.stdout.read()
                assert time.monotonic() < deadline, "unbound did not start"
                time.sleep(0.2)

    def ask(self, name, rdtype):
        q = dns.message.make_query(name, rdtype, want_dnssec=True)
        return dns.query.udp(q, "127.0.0.1", port=self.port, timeout=20)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class TamperingProxy:
    """A UDP relay to Cairn that changes every 192.0.2.10 in an answer to 192.0.2.66: what an attacker on the path
    would do. The signatures no longer match."""

    def __init__(self, upstream_port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.upstream = upstream_port
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.sock.settimeout(0.2)
        while self.running:
            try:
                data, client = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
                up.settimeout(5)
                up.sendto(data, ("127.0.0.1", self.upstream))
                try:
                    answer, _ = up.recvfrom(65535)
                except socket.timeout:
                    continue
            self.sock.sendto(answer.replace(bytes([192, 0, 2, 10]), bytes([192, 0, 2, 66])), client)

    def stop(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()


def ds_of(key):
    """`zone. IN DS tag 13 2 HEX` from the API's `DS` line (`zone. TTL IN DS ...`)."""
    parts = key["DS"].split()
    return " ".join([parts[0], "IN", "DS"] + parts[4:])


def test_signed_answers_validate_in_delv_including_compact_denial(cairn, region, name):
    sd = client_for(cairn.endpoint, region)
    zone = f"{name}.example"
    _, _, key = signed_zone(cairn, sd, region, zone)
    positive = delv(cairn, key["DNSKEY"], zone, f"web.{zone}", "A")
    assert "; fully validated" in positive and "192.0.2.10" in positive, positive
    for rdtype in ("SRV", "SOA", "DNSKEY"):
        out = delv(cairn, key["DNSKEY"], zone, f"web.{zone}" if rdtype == "SRV" else zone, rdtype)
        assert "; fully validated" in out, out
    companion = delv(cairn, key["DNSKEY"], zone, f"i1.web.{zone}", "A")
    assert "; fully validated" in companion and "192.0.2.11" in companion, companion
    # A name that does not exist and a type the name does not have: both proved, both validated.
    for qname, rdtype in ((f"nothere.{zone}", "A"), (f"web.{zone}", "AAAA"), (f"i1.web.{zone}", "TXT")):
        out = delv(cairn, key["DNSKEY"], zone, qname, rdtype)
        assert "negative response, fully validated" in out, out
    # A wrong trust anchor: nothing validates.
    other = key["DNSKEY"].rsplit(" ", 1)[0] + " " + "A" * 86 + "=="
    assert "fully validated" not in delv(cairn, other, zone, f"web.{zone}", "A")


def test_the_answers_carry_rrsigs_and_one_nsec_for_denial(cairn, region, name):
    sd = client_for(cairn.endpoint, region)
    zone = f"{name}.example"
    _, _, key = signed_zone(cairn, sd, region, zone)
    reply = query(cairn, f"web.{zone}", "A")
    assert reply.ednsflags & dns.flags.DO  # RFC 3225: the DO bit is copied into the response
    types = {rrset.rdtype for rrset in reply.answer}
    assert types == {dns.rdatatype.A, dns.rdatatype.RRSIG}, reply
    rrsig = next(r for rrset in reply.answer if rrset.rdtype == dns.rdatatype.RRSIG for r in rrset)
    assert rrsig.algorithm == 13 and rrsig.key_tag == key["KeyTag"] and rrsig.signer.to_text() == f"{zone}."
    assert rrsig.type_covered == dns.rdatatype.A and rrsig.labels == 3
    # NXDOMAIN under compact denial: NOERROR, the SOA and one NSEC at the name, NXNAME in its types, both signed.
    missing = query(cairn, f"nothere.{zone}", "A")
    assert missing.rcode() == dns.rcode.NOERROR and not missing.answer
    nsec = [rrset for rrset in missing.authority if rrset.rdtype == dns.rdatatype.NSEC]
    assert len(nsec) == 1 and nsec[0].name.to_text() == f"nothere.{zone}."
    text = nsec[0][0].to_text()
    assert text.startswith(f"\\000.nothere.{zone}.") and ("NXNAME" in text or "TYPE128" in text), text
    assert sum(1 for rrset in missing.authority if rrset.rdtype == dns.rdatatype.RRSIG) == 2
    # NODATA: the NSEC lists the types the name has.
    nodata = query(cairn, f"web.{zone}", "AAAA")
    bitmap = next(rrset for rrset in nodata.authority if rrset.rdtype == dns.rdatatype.NSEC)[0].to_text()
    assert " A " in bitmap + " " and "SRV" in bitmap and "AAAA" not in bitmap, bitmap
    # Without DO: no signatures, NXDOMAIN as always; the DNSKEY is there for anyone who asks.
    plain = query(cairn, f"web.{zone}", "A", do=False)
    assert {rrset.rdtype for rrset in plain.answer} == {dns.rdatatype.A}
    assert query(cairn, f"nothere.{zone}", "A", do=False).rcode() == dns.rcode.NXDOMAIN
    dnskey = query(cairn, zone, "DNSKEY", do=False)
    assert [base64.b64encode(r.key).decode() for rrset in dnskey.answer for r in rrset] == [key["DNSKEY"].split()[-1]]


def test_an_unsigned_zone_answers_do_queries_without_signatures(cairn, sd, name):
    zone = f"{name}.example"
    ns = public_namespace(sd, zone)
    svc = sd.create_service(Name="web", NamespaceId=ns, DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 60}]})["Service"]["Id"]
    sd.register_instance(ServiceId=svc, InstanceId="a", Attributes={"AWS_INSTANCE_IPV4": "192.0.2.1"})
    for _ in range(2):  # the second from the ready-answer cache
        reply = query(cairn, f"web.{zone}", "A")
        assert reply.ednsflags & dns.flags.DO
        assert {rrset.rdtype for rrset in reply.answer} == {dns.rdatatype.A}
    assert query(cairn, f"nothere.{zone}", "A").rcode() == dns.rcode.NXDOMAIN
    dnskey = query(cairn, zone, "DNSKEY")
    assert dnskey.rcode() == dns.rcode.NOERROR and not dnskey.answer


def test_unbound_validates_the_zone_and_refuses_a_tampered_answer(cairn, region, name):
    if not os.path.exists(UNBOUND):
        pytest.fail("unbound is not installed (scripts/test.sh installs it)")
    sd = client_for(cairn.endpoint, region)
    zone = f"{name}.example"
    _, _, key = signed_zone(cairn, sd, region, zone)
    resolver = Unbound(zone, [ds_of(key)], cairn.dns_port)
    try:
        good = resolver.ask(f"web.{zone}", "A")
        assert good.rcode() == dns.rcode.NOERROR and good.flags & dns.flags.AD, good
        assert {r.address for rrset in good.answer if rrset.rdtype == dns.rdatatype.A for r in rrset} == {
            "192.0.2.10", "192.0.2.11", "192.0.2.12"}
        missing = resolver.ask(f"nothere.{zone}", "A")
        assert missing.flags & dns.flags.AD and not missing.answer, missing
        srv = resolver.ask(f"web.{zone}", "SRV")
        assert srv.flags & dns.flags.AD and srv.answer
    finally:
        resolver.stop()
    proxy = TamperingProxy(cairn.dns_port)
    resolver = Unbound(zone, [ds_of(key)], proxy.port)
    try:
        assert resolver.ask(f"web.{zone}", "A").rcode() == dns.rcode.SERVFAIL
        # The answers that were not changed still validate through the same path.
        untouched = resolver.ask(f"i1.web.{zone}", "A")
        assert untouched.rcode() == dns.rcode.NOERROR and untouched.flags & dns.flags.AD
    finally:
        resolver.stop()
        proxy.stop()


def test_dnsviz_finds_no_errors(cairn, region, name, tmp_path):
    if not shutil.which("dnsviz"):
        pytest.fail("dnsviz is not installed (scripts/test.sh installs it)")
    sd = client_for(cairn.endpoint, region)
    zone = f"{name}.example"
    _, _, key = signed_zone(cairn, sd, region, zone)
    probe = subprocess.run(
        ["/usr/bin/dnsviz", "probe", "-4", "-A", "-x", f"{zone}+:ns1.cairn.internal=127.0.0.1:{cairn.dns_port}",
         zone, f"web.{zone}", f"i0.web.{zone}", f"nothere.{zone}"], capture_output=True, timeout=300)
    assert probe.returncode == 0, probe.stderr.decode()
    (tmp_path / "probe.json").write_bytes(probe.stdout)
    (tmp_path / "anchor.txt").write_text(f"{zone}. IN DNSKEY {' '.join(key['DNSKEY'].split()[4:])}\n")
    # Debian 12's dnsviz asks pygraphviz for a `release` module that pygraphviz 1.10 no longer has.
    shim = ("import sys, types, pygraphviz\n"
            "release = types.ModuleType('pygraphviz.release'); release.version = pygraphviz.__version__\n"
            "sys.modules['pygraphviz.release'] = release; pygraphviz.release = release\n"
            "from dnsviz.commands import grok\n"
            "grok.main(['grok'] + sys.argv[1:])\n")
    grok = subprocess.run(["/usr/bin/python3", "-c", shim, "-t", str(tmp_path / "anchor.txt"), "-r", str(tmp_path / "probe.json")],
                          capture_output=True, text=True, timeout=300)
    assert grok.returncode == 0, grok.stderr
    report = json.loads(grok.stdout)
    statuses, problems = [], []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "status" and isinstance(v, str):
                    statuses.append(v)
                if k in ("errors", "warnings"):
                    problems.append((path, k, v))
                walk(v, f"{path}/{k}")
        elif isinstance(node, list):
            for v in node:
                walk(v, path)

    walk(report, "")
    assert not problems, problems
    assert "SECURE" in statuses and "VALID" in statuses
    assert not {"BOGUS", "INVALID", "INDETERMINATE", "INSECURE"} & set(statuses), sorted(set(statuses))


def test_the_ds_is_the_one_ldns_computes_from_the_dnskey(cairn, region, name, tmp_path):
    if not shutil.which("ldns-key2ds"):
        pytest.fail("ldns-key2ds is not installed (ldnsutils; scripts/test.sh installs it)")
    sd = client_for(cairn.endpoint, region)
    zone = f"{name}.example"
    _, _, key = signed_zone(cairn, sd, region, zone)
    (tmp_path / "k.key").write_text(key["DNSKEY"] + "\n")
    out = subprocess.run(["ldns-key2ds", "-n", "-2", str(tmp_path / "k.key")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    theirs = out.stdout.split()
    ours = key["DS"].split()
    assert theirs[-4:-1] == ours[-4:-1] and theirs[-1].lower() == ours[-1].lower(), (theirs, ours)


def test_a_key_roll_signs_with_both_keys_until_the_old_one_is_retired(cairn, region, name):
    sd = client_for(cairn.endpoint, region)
    zone = f"{name}.example"
    ns, _, old = signed_zone(cairn, sd, region, zone)
    status, rolled = api(cairn, region, ns, "Roll")
    assert status == 200 and len(rolled["Keys"]) == 2, rolled
    new = next(k for k in rolled["Keys"] if k["KeyTag"] != old["KeyTag"])
    reply = query(cairn, f"web.{zone}", "A")
    tags = {r.key_tag for rrset in reply.answer if rrset.rdtype == dns.rdatatype.RRSIG for r in rrset}
    assert tags == {old["KeyTag"], new["KeyTag"]}
    keys = query(cairn, zone, "DNSKEY")
    assert sum(len(rrset) for rrset in keys.answer if rrset.rdtype == dns.rdatatype.DNSKEY) == 2
    for anchor in (old, new):  # resolvers that trust either DS validate during the roll
        assert "; fully validated" in delv(cairn, anchor["DNSKEY"], zone, f"web.{zone}", "A")
    status, body = api(cairn, region, ns, "Roll")  # one roll at a time
    assert status == 400 and body["__type"] == "InvalidInput" and "retire" in message(body), body
    out = cli(cairn, region, "dnssec", "retire", ns, "--key-tag", str(old["KeyTag"]))
    assert f"key {new['KeyTag']}" in out.stdout and f"key {old['KeyTag']}" not in out.stdout, out.stdout
    assert "; fully validated" in delv(cairn, new["DNSKEY"], zone, f"web.{zone}", "A")
    assert "fully validated" not in delv(cairn, old["DNSKEY"], zone, f"web.{zone}", "A")
    # Disable: no keys, no signatures.
    status, body = api(cairn, region, ns, "Disable")
    assert status == 200 and body["Signed"] is False and body["Keys"] == []
    assert {rrset.rdtype for rrset in query(cairn, f"web.{zone}", "A").answer} == {dns.rdatatype.A}


def test_key_changes_are_audited_and_no_answer_carries_the_private_key(cairn, region, name):
    sd = client_for(cairn.endpoint, region)
    zone = f"{name}.example"
    ns, _, _ = signed_zone(cairn, sd, region, zone)
    arn = sd.get_namespace(Id=ns)["Namespace"]["Arn"]
    events = lookup(cairn.endpoint, KEY, SECRET, EventName="EnableDNSSEC", Resource=arn)
    assert len(events) == 1 and events[0]["readOnly"] is False, events
    assert events[0]["requestParameters"] == {"namespaceId": ns, "action": "Enable"}, events[0]  # CloudTrail casing
    api(cairn, region, ns, "Roll")
    assert len(lookup(cairn.endpoint, KEY, SECRET, EventName="RollDNSSECKey", Resource=arn)) == 1
    status, body = api(cairn, region, ns)
    assert status == 200 and set(body["Keys"][0]) == {"KeyTag", "Algorithm", "Flags", "CreatedAt", "DNSKEY", "DS"}
    assert "private" not in json.dumps(sd.get_namespace(Id=ns)["Namespace"], default=str).lower()


def test_bad_requests_get_clear_errors(cairn, region, name):
    sd = client_for(cairn.endpoint, region)
    http = http_namespace(sd, f"{name}-http")
    status, body = api(cairn, region, http, "Enable")
    assert status == 400 and body["__type"] == "InvalidInput" and "public DNS" in message(body), body
    status, body = api(cairn, region, "ns-doesnotexist00000", "Enable")
    assert status == 400 and body["__type"] == "NamespaceNotFound", body
    zone = f"{name}.example"
    ns = public_namespace(sd, zone)
    status, body = api(cairn, region, ns)
    assert status == 200 and body["Signed"] is False and body["Zone"] == f"{zone}."
    status, body = api(cairn, region, ns, "Roll")
    assert status == 400 and "not signed" in message(body), body
    status, body = api(cairn, region, ns, "Enable")
    assert status == 200 and len(body["Keys"]) == 1
    tag = body["Keys"][0]["KeyTag"]
    status, again = api(cairn, region, ns, "Enable")  # enabling a signed zone changes nothing
    assert status == 200 and again["Keys"] == body["Keys"]
    status, body = api(cairn, region, ns, "Retire", KeyTag=str(tag))
    assert status == 400 and "only key" in message(body), body
    status, body = api(cairn, region, ns, "Retire", KeyTag=str((tag + 1) % 65536))
    assert status == 400 and "no DNSSEC key" in message(body), body
    for bad in ("-1", "65536", "x", ""):
        status, body = api(cairn, region, ns, "Retire", KeyTag=bad)
        assert status == 400 and body["__type"] == "InvalidInput", (bad, body)
    status, body = api(cairn, region, ns, "Rotate")
    assert status == 400 and "Action must be" in message(body), body
    status, body = signed_get(cairn.endpoint, "/cairn/v1/dnssec", KEY, SECRET, region=region)
    assert status == 400 and json.loads(body)["__type"] == "InvalidInput"
    out = cli(cairn, region, "dnssec", "show", http)
    assert "is not signed" in out.stdout


def test_keys_survive_a_restart(tmp_path):
    server = CairnProcess(data_dir=str(tmp_path), extra_args=["--health-interval", "3600"], single=True).start()
    try:
        sd = client_for(server.endpoint, "us-east-1")
        _, _, key = signed_zone(server, sd, "us-east-1", "restart.example")
        assert server.stop() == 0
        server.start()
        assert "; fully validated" in delv(server, key["DNSKEY"], "restart.example", "web.restart.example", "A")
    finally:
        server.stop()


def test_export_and_import_carry_a_signed_zones_keys(region, name, tmp_path):
    """A zone moved with `cairn export` / `cairn import` keeps its keys: the DS at its parent stays right. Both
    servers are this test's own, so the export holds only its zone."""
    source = CairnProcess(extra_args=["--health-interval", "3600"], single=True).start()
    try:
        sd = client_for(source.endpoint, region)
        zone = f"{name}.example"
        ns, _, key = signed_zone(source, sd, region, zone)
        api(source, region, ns, "Roll")  # both keys of a roll travel
        _, before = api(source, region, ns)
        exported = tmp_path / "registry.json"
        cli(source, region, "export", "--file", str(exported))
    finally:
        assert source.stop() == 0
    document = json.loads(exported.read_text())
    [moved] = [n for n in document["regions"][region]["namespaces"] if n["name"] == zone]
    assert len(moved["dnssecKeys"]) == 2 and all(len(base64.b64decode(k["privateKey"])) == 32 for k in moved["dnssecKeys"])
    fresh = CairnProcess(extra_args=["--health-interval", "3600"], single=True).start()
    try:
        plan = cli(fresh, region, "import", str(exported), "--dry-run").stdout
        assert f"sign namespace {zone} with its 2 DNSSEC key(s)" in plan, plan
        cli(fresh, region, "import", str(exported))
        fsd = client_for(fresh.endpoint, region)
        fresh_ns = next(n["Id"] for n in fsd.list_namespaces()["Namespaces"] if n["Name"] == zone)
        status, after = api(fresh, region, fresh_ns)
        assert status == 200 and [k["DS"] for k in after["Keys"]] == [k["DS"] for k in before["Keys"]]
        assert "; fully validated" in delv(fresh, key["DNSKEY"], zone, f"web.{zone}", "A")
        assert "nothing to do" in cli(fresh, region, "import", str(exported), "--dry-run").stdout
        # A Restore body the server cannot use is refused, and changes nothing.
        for body in (b"", b"{}", b'{"Keys": []}', b'{"Keys": [{"PrivateKey": "AAAA"}]}',
                     json.dumps({"Keys": [{"PrivateKey": base64.b64encode(b"\xff" * 32).decode()}]}).encode()):
            status, answer = signed_post(fresh.endpoint, "/cairn/v1/dnssec", KEY, SECRET, region=region, body=body,
                                         NamespaceId=fresh_ns, Action="Restore")
            assert status == 400 and json.loads(answer)["__type"] == "InvalidInput", (body, answer)
        assert api(fresh, region, fresh_ns)[1]["Keys"] == after["Keys"]
    finally:
        fresh.stop()

