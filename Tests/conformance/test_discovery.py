"""DiscoverInstances / DiscoverInstancesRevision: filters, health filter rules, random subsets, the data- host."""
import http.client
import json
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from conftest import client_for, error_of, http_namespace, private_namespace


@pytest.fixture
def fleet(sd, name):
    """A custom-health service with six instances: az a/b × version v1/v2, two of them unhealthy."""
    ns = http_namespace(sd, name)
    s = sd.create_service(Name="web", NamespaceId=ns, HealthCheckCustomConfig={})["Service"]
    specs = [("w1", "a", "v1", "HEALTHY"), ("w2", "a", "v2", "HEALTHY"), ("w3", "b", "v1", "UNHEALTHY"),
             ("w4", "b", "v2", "HEALTHY"), ("w5", "a", "v1", "UNHEALTHY"), ("w6", "b", "v1", "HEALTHY")]
    for iid, az, version, health in specs:
        sd.register_instance(ServiceId=s["Id"], InstanceId=iid,
                             Attributes={"az": az, "version": version, "AWS_INIT_HEALTH_STATUS": health})
    return name, s


def ids(result):
    return sorted(i["InstanceId"] for i in result["Instances"])


def test_default_filter_is_healthy_and_results_carry_every_attribute(sd, fleet):
    ns, s = fleet
    out = sd.discover_instances(NamespaceName=ns, ServiceName="web")
    assert ids(out) == ["w1", "w2", "w4", "w6"]
    one = next(i for i in out["Instances"] if i["InstanceId"] == "w1")
    assert one == {"InstanceId": "w1", "NamespaceName": ns, "ServiceName": "web", "HealthStatus": "HEALTHY",
                   "Attributes": {"az": "a", "version": "v1", "AWS_INIT_HEALTH_STATUS": "HEALTHY"}}
    assert out["InstancesRevision"] == sd.discover_instances_revision(NamespaceName=ns, ServiceName="web")["InstancesRevision"]


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({"HealthStatus": "ALL"}, ["w1", "w2", "w3", "w4", "w5", "w6"]),
        ({"HealthStatus": "UNHEALTHY"}, ["w3", "w5"]),
        ({"HealthStatus": "HEALTHY_OR_ELSE_ALL"}, ["w1", "w2", "w4", "w6"]),
        ({"QueryParameters": {"az": "a"}}, ["w1", "w2"]),
        ({"QueryParameters": {"az": "b", "version": "v1"}, "HealthStatus": "ALL"}, ["w3", "w6"]),
        ({"QueryParameters": {"az": "c"}}, []),
        ({"QueryParameters": {"az": "a"}, "OptionalParameters": {"version": "v2"}}, ["w2"]),
        ({"QueryParameters": {"az": "a"}, "OptionalParameters": {"version": "v9"}}, ["w1", "w2"]),
        ({"OptionalParameters": {"version": "v1"}, "HealthStatus": "ALL"}, ["w1", "w3", "w5", "w6"]),
        ({"QueryParameters": {"az": "b"}, "OptionalParameters": {"version": "v1"}, "HealthStatus": "UNHEALTHY"}, ["w3"]),
    ],
)
def test_filters(sd, fleet, kwargs, expected):
    ns, _ = fleet
    assert ids(sd.discover_instances(NamespaceName=ns, ServiceName="web", **kwargs)) == expected


def test_healthy_or_else_all_fails_open(sd, fleet):
    ns, s = fleet
    for iid in ("w1", "w2", "w4", "w6"):
        sd.update_instance_custom_health_status(ServiceId=s["Id"], InstanceId=iid, Status="UNHEALTHY")
    assert ids(sd.discover_instances(NamespaceName=ns, ServiceName="web")) == []
    assert len(ids(sd.discover_instances(NamespaceName=ns, ServiceName="web", HealthStatus="HEALTHY_OR_ELSE_ALL"))) == 6


def test_health_filter_is_ignored_without_health_checking(sd, name):
    ns = http_namespace(sd, name)
    s = sd.create_service(Name="plain", NamespaceId=ns)["Service"]
    sd.register_instance(ServiceId=s["Id"], InstanceId="p1", Attributes={})
    sd.register_instance(ServiceId=s["Id"], InstanceId="p2", Attributes={})
    for status in ("HEALTHY", "UNHEALTHY", "ALL", "HEALTHY_OR_ELSE_ALL"):
        out = sd.discover_instances(NamespaceName=name, ServiceName="plain", HealthStatus=status)
        assert ids(out) == ["p1", "p2"] and {i["HealthStatus"] for i in out["Instances"]} == {"UNKNOWN"}


def test_health_checked_service_instances_start_unknown(sd, name):
    ns = http_namespace(sd, name)
    s = sd.create_service(Name="probed", NamespaceId=ns, HealthCheckConfig={"Type": "TCP"})["Service"]
    sd.register_instance(ServiceId=s["Id"], InstanceId="x", Attributes={"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": "9"})
    assert sd.get_instances_health_status(ServiceId=s["Id"])["Status"] == {"x": "UNKNOWN"}
    assert ids(sd.discover_instances(NamespaceName=name, ServiceName="probed")) == []
    assert ids(sd.discover_instances(NamespaceName=name, ServiceName="probed", HealthStatus="ALL")) == ["x"]


def test_max_results_takes_a_random_subset_in_random_order(sd, name):
    ns = http_namespace(sd, name)
    s = sd.create_service(Name="many", NamespaceId=ns)["Service"]
    for i in range(20):
        sd.register_instance(ServiceId=s["Id"], InstanceId=f"m{i:02}", Attributes={})
    firsts, members = Counter(), Counter()
    for _ in range(60):
        out = sd.discover_instances(NamespaceName=name, ServiceName="many", MaxResults=5)
        assert len(out["Instances"]) == 5 and len(set(ids(out))) == 5
        firsts[out["Instances"][0]["InstanceId"]] += 1
        members.update(ids(out))
    assert len(firsts) > 5, f"order is not random: {firsts}"
    assert len(members) > 15, f"subsets are not random: {members}"
    assert len(sd.discover_instances(NamespaceName=name, ServiceName="many")["Instances"]) == 20
    orders = {tuple(i["InstanceId"] for i in sd.discover_instances(NamespaceName=name, ServiceName="many")["Instances"]) for _ in range(10)}
    assert len(orders) > 1


@pytest.mark.parametrize("max_results", [0, 1001])
def test_discover_max_results_bounds(sd, fleet, max_results):
    ns, _ = fleet
    with pytest.raises(ClientError) as e:
        sd.discover_instances(NamespaceName=ns, ServiceName="web", MaxResults=max_results)
    assert error_of(e)[0] == "InvalidInput"


def test_discovery_keys_on_http_name_and_service_name(sd, fleet, name):
    ns, _ = fleet
    with pytest.raises(ClientError) as e:
        sd.discover_instances(NamespaceName=ns + "-missing", ServiceName="web")
    assert error_of(e)[0] == "NamespaceNotFound"
    with pytest.raises(ClientError) as e:
        sd.discover_instances(NamespaceName=ns, ServiceName="nope")
    assert error_of(e)[0] == "ServiceNotFound"
    with pytest.raises(ClientError) as e:
        sd.discover_instances_revision(NamespaceName=ns, ServiceName="nope")
    assert error_of(e)[0] == "ServiceNotFound"
    with pytest.raises(ClientError) as e:
        sd.discover_instances(NamespaceName=ns, ServiceName="web", OwnerAccount="111111111111")
    assert error_of(e)[0] == "NamespaceNotFound"
    assert ids(sd.discover_instances(NamespaceName=ns, ServiceName="web", OwnerAccount="000000000000"))


def test_reused_dns_name_is_discovered_by_its_http_name(sd, name):
    http_namespace(sd, f"{name}.local")
    other = private_namespace(sd, f"{name}.local")
    http_name = sd.get_namespace(Id=other)["Namespace"]["Properties"]["HttpProperties"]["HttpName"]
    s = sd.create_service(Name="svc", NamespaceId=other)["Service"]
    sd.register_instance(ServiceId=s["Id"], InstanceId="z", Attributes={})
    out = sd.discover_instances(NamespaceName=http_name, ServiceName="svc")
    assert ids(out) == ["z"] and out["Instances"][0]["NamespaceName"] == http_name
    with pytest.raises(ClientError):
        sd.discover_instances(NamespaceName=f"{name}.local", ServiceName="svc")


def test_dns_service_names_match_case_insensitively(sd, name):
    ns = private_namespace(sd, f"{name}.local")
    s = sd.create_service(Name="Orders", NamespaceId=ns)["Service"]
    sd.register_instance(ServiceId=s["Id"], InstanceId="o", Attributes={})
    assert ids(sd.discover_instances(NamespaceName=f"{name}.local", ServiceName="orders")) == ["o"]


def test_data_host_prefix_is_answered(cairn, fleet, region):
    """botocore sends the Discover calls to data-<host>; Cairn answers whatever the Host header says."""
    ns, _ = fleet
    conn = http.client.HTTPConnection("127.0.0.1", cairn.port, timeout=10)
    body = json.dumps({"NamespaceName": ns, "ServiceName": "web"})
    auth = f"AWS4-HMAC-SHA256 Credential=AKID/20260101/{region}/servicediscovery/aws4_request, SignedHeaders=host, Signature=00"
    conn.request("POST", "/", body, {"Host": f"data-servicediscovery.{region}.amazonaws.com",
                                      "X-Amz-Target": "Route53AutoNaming_v20170314.DiscoverInstances",
                                      "Content-Type": "application/x-amz-json-1.1", "Authorization": auth})
    resp = conn.getresponse()
    payload = json.loads(resp.read())
    assert resp.status == 200 and len(payload["Instances"]) == 4 and resp.getheader("x-amzn-RequestId")


def test_botocore_with_host_prefix_injection_reaches_a_data_alias(cairn, fleet, region):
    """With the default client config botocore prefixes the host; a data-localhost alias resolves on loopback."""
    import socket

    try:
        socket.gethostbyname("data-localhost")
    except OSError:
        pytest.skip("data-localhost does not resolve on this machine")
    ns, _ = fleet
    import boto3
    from botocore.config import Config

    client = boto3.client("servicediscovery", endpoint_url=f"http://localhost:{cairn.port}", region_name=region,
                          aws_access_key_id="a", aws_secret_access_key="b", config=Config(retries={"max_attempts": 1}))
    assert len(client.discover_instances(NamespaceName=ns, ServiceName="web")["Instances"]) == 4
