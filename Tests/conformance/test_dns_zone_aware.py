"""Zone-aware DNS answers (docs/dns.md, "Zone-aware answers"): `dns.availabilityZones` maps client networks to
availability zones; a service tagged `cairn:zone-aware=true` answers a client in a mapped network with its healthy
instances whose AVAILABILITY_ZONE is the client's, and with the others when none there is healthy. Clients are dig and
dnspython bound to different loopback addresses."""
import dns.message
import dns.query
import dns.rdatatype
import pytest

from cairn_process import CairnProcess
from conftest import client_for, private_namespace

CONFIG = """
dns:
  availabilityZones:
    zone-a: [127.0.0.2/32]
    zone-b: [127.0.0.3/32, 127.0.3.0/24]
"""


@pytest.fixture(scope="module")
def server():
    s = CairnProcess(config=CONFIG, extra_args=["--health-interval", "3600"]).start()
    yield s
    assert s.stop() == 0


def addresses(server, name, source, rdtype="A"):
    """Every address in ten answers (a MULTIVALUE answer draws up to 8 at random)."""
    seen = set()
    for _ in range(10):
        reply = dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=server.dns_port, timeout=3, source=source)
        seen |= {r.address for rrset in reply.answer for r in rrset if rrset.rdtype == dns.rdatatype.from_text(rdtype)}
    return seen


def make(sd, ns, name, aware=True):
    arn_and_id = sd.create_service(
        Name=name, NamespaceId=ns, HealthCheckCustomConfig={"FailureThreshold": 1},
        DnsConfig={"RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": 5}]},
        Tags=[{"Key": "cairn:zone-aware", "Value": "true"}] if aware else [])["Service"]
    for n, zone in [(1, "zone-a"), (2, "zone-a"), (3, "zone-b"), (4, "zone-b"), (5, None)]:
        attributes = {"AWS_INSTANCE_IPV4": f"10.9.0.{n}"}
        if zone:
            attributes["AVAILABILITY_ZONE"] = zone
        sd.register_instance(ServiceId=arn_and_id["Id"], InstanceId=f"i{n}", Attributes=attributes)
    return arn_and_id


def test_a_client_gets_its_zones_healthy_instances_and_the_others_when_none_there_is_healthy(server, region, name):
    sd = client_for(server.endpoint, region)
    ns = private_namespace(sd, f"{name}.zones.internal")
    svc = make(sd, ns, "api")
    host = f"api.{name}.zones.internal"
    every = {f"10.9.0.{n}" for n in range(1, 6)}
    assert addresses(server, host, "127.0.0.2") == {"10.9.0.1", "10.9.0.2"}
    assert addresses(server, host, "127.0.0.3") == {"10.9.0.3", "10.9.0.4"}
    assert addresses(server, host, "127.0.3.7") == {"10.9.0.3", "10.9.0.4"}  # a block of zone-b
    assert addresses(server, host, "127.0.0.1") == every  # not in a mapped network: every healthy instance
    # One unhealthy instance in zone-a: the other one answers alone.
    sd.update_instance_custom_health_status(ServiceId=svc["Id"], InstanceId="i1", Status="UNHEALTHY")
    assert addresses(server, host, "127.0.0.2") == {"10.9.0.2"}
    # None healthy in zone-a: the healthy instances elsewhere.
    sd.update_instance_custom_health_status(ServiceId=svc["Id"], InstanceId="i2", Status="UNHEALTHY")
    assert addresses(server, host, "127.0.0.2") == {"10.9.0.3", "10.9.0.4", "10.9.0.5"}
    assert addresses(server, host, "127.0.0.3") == {"10.9.0.3", "10.9.0.4"}
    # Healthy again: back to the zone.
    sd.update_instance_custom_health_status(ServiceId=svc["Id"], InstanceId="i2", Status="HEALTHY")
    assert addresses(server, host, "127.0.0.2") == {"10.9.0.2"}


def test_a_service_without_the_tag_answers_every_client_alike_and_tagging_it_turns_it_on(server, region, name):
    sd = client_for(server.endpoint, region)
    ns = private_namespace(sd, f"{name}.plain.internal")
    svc = make(sd, ns, "api", aware=False)
    host = f"api.{name}.plain.internal"
    every = {f"10.9.0.{n}" for n in range(1, 6)}
    assert addresses(server, host, "127.0.0.2") == every
    sd.tag_resource(ResourceARN=svc["Arn"], Tags=[{"Key": "cairn:zone-aware", "Value": "true"}])
    assert addresses(server, host, "127.0.0.2") == {"10.9.0.1", "10.9.0.2"}
    sd.untag_resource(ResourceARN=svc["Arn"], TagKeys=["cairn:zone-aware"])
    assert addresses(server, host, "127.0.0.2") == every
