"""Instances through boto3: register (upsert), deregister, get, list, attributes rules, custom health, revisions."""
import pytest
from botocore.exceptions import ClientError

from conftest import error_of, http_namespace, private_namespace, wait_op

IP = {"AWS_INSTANCE_IPV4": "10.0.0.1"}


@pytest.fixture
def http_service(sd, name):
    ns = http_namespace(sd, name)
    return sd.create_service(Name="orders", NamespaceId=ns, HealthCheckCustomConfig={"FailureThreshold": 1})["Service"]


def dns_service(sd, name, records, policy="MULTIVALUE", **extra):
    ns = private_namespace(sd, f"{name}.local")
    return sd.create_service(Name="svc", NamespaceId=ns,
                             DnsConfig={"RoutingPolicy": policy, "DnsRecords": [{"Type": t, "TTL": 10} for t in records]},
                             **extra)["Service"]


def test_register_is_an_operation_targeting_instance_and_service(sd, http_service):
    op_id = sd.register_instance(ServiceId=http_service["Id"], InstanceId="i-1", Attributes={"a": "b"})["OperationId"]
    op = wait_op(sd, op_id)
    assert op["Type"] == "REGISTER_INSTANCE" and op["Status"] == "SUCCESS"
    assert op["Targets"] == {"INSTANCE": "i-1", "SERVICE": http_service["Id"]}
    got = sd.get_instance(ServiceId=http_service["Id"], InstanceId="i-1")
    assert got["Instance"]["Id"] == "i-1" and got["Instance"]["Attributes"] == {"a": "b"}
    assert got["Instance"]["CreatorRequestId"] and got["ResourceOwner"] == "000000000000"
    assert got["Instance"]["CreatedByAccount"] == "000000000000"
    assert sd.get_service(Id=http_service["Id"])["Service"]["InstanceCount"] == 1


def test_register_by_service_arn(sd, http_service):
    sd.register_instance(ServiceId=http_service["Arn"], InstanceId="i-1", Attributes={})
    assert sd.list_instances(ServiceId=http_service["Arn"])["Instances"][0]["Id"] == "i-1"


def test_reregistration_replaces_the_attributes_and_moves_the_revision(sd, http_service):
    s = http_service
    ns_name = sd.get_namespace(Id=s["NamespaceId"])["Namespace"]["Properties"]["HttpProperties"]["HttpName"]
    rev0 = sd.discover_instances_revision(NamespaceName=ns_name, ServiceName="orders")["InstancesRevision"]
    sd.register_instance(ServiceId=s["Id"], InstanceId="i", Attributes={"a": "1", "b": "2"})
    rev1 = sd.discover_instances_revision(NamespaceName=ns_name, ServiceName="orders")["InstancesRevision"]
    sd.register_instance(ServiceId=s["Id"], InstanceId="i", Attributes={"c": "3"})
    rev2 = sd.discover_instances_revision(NamespaceName=ns_name, ServiceName="orders")["InstancesRevision"]
    assert sd.get_instance(ServiceId=s["Id"], InstanceId="i")["Instance"]["Attributes"] == {"c": "3"}
    assert rev0 < rev1 < rev2
    sd.update_instance_custom_health_status(ServiceId=s["Id"], InstanceId="i", Status="UNHEALTHY")
    assert sd.discover_instances_revision(NamespaceName=ns_name, ServiceName="orders")["InstancesRevision"] == rev2
    sd.deregister_instance(ServiceId=s["Id"], InstanceId="i")
    assert sd.discover_instances_revision(NamespaceName=ns_name, ServiceName="orders")["InstancesRevision"] > rev2


def test_deregister(sd, http_service):
    s = http_service
    sd.register_instance(ServiceId=s["Id"], InstanceId="i", Attributes={})
    op = wait_op(sd, sd.deregister_instance(ServiceId=s["Id"], InstanceId="i")["OperationId"])
    assert op["Type"] == "DEREGISTER_INSTANCE" and op["Targets"] == {"INSTANCE": "i", "SERVICE": s["Id"]}
    for call in (lambda: sd.get_instance(ServiceId=s["Id"], InstanceId="i"),
                 lambda: sd.deregister_instance(ServiceId=s["Id"], InstanceId="i")):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e)[0] == "InstanceNotFound"
    with pytest.raises(ClientError) as e:
        sd.deregister_instance(ServiceId="srv-aaaaaaaaaaaaaaaa", InstanceId="i")
    assert error_of(e)[0] == "ServiceNotFound"


def test_register_idempotency(sd, http_service):
    s = http_service
    a = sd.register_instance(ServiceId=s["Id"], InstanceId="i", Attributes={"k": "v"}, CreatorRequestId="r1")["OperationId"]
    b = sd.register_instance(ServiceId=s["Id"], InstanceId="i", Attributes={"k": "v"}, CreatorRequestId="r1")["OperationId"]
    assert a == b
    with pytest.raises(ClientError) as e:
        sd.register_instance(ServiceId=s["Id"], InstanceId="other", Attributes={"k": "v"}, CreatorRequestId="r1")
    code, _, resp = error_of(e)
    assert code == "DuplicateRequest" and resp["DuplicateOperationId"] == a
    assert [i["Id"] for i in sd.list_instances(ServiceId=s["Id"])["Instances"]] == ["i"]


# (record types, routing, attributes, instance id, expected: None = accepted, else the error code)
ATTRIBUTE_RULES = [
    (["A"], "MULTIVALUE", {}, "i", "InvalidInput"),
    (["A"], "MULTIVALUE", IP, "i", None),
    (["A"], "MULTIVALUE", {"AWS_INSTANCE_IPV4": "10.0.0.256"}, "i", "InvalidInput"),
    (["A"], "MULTIVALUE", {"AWS_INSTANCE_IPV4": "10.0.0"}, "i", "InvalidInput"),
    (["AAAA"], "MULTIVALUE", IP, "i", "InvalidInput"),
    (["AAAA"], "MULTIVALUE", {"AWS_INSTANCE_IPV6": "2001:db8::1"}, "i", None),
    (["AAAA"], "MULTIVALUE", {"AWS_INSTANCE_IPV6": "2001:db8:::1"}, "i", "InvalidInput"),
    (["A", "AAAA"], "MULTIVALUE", {"AWS_INSTANCE_IPV6": "::1"}, "i", None),
    (["A", "AAAA"], "MULTIVALUE", {"x": "y"}, "i", "InvalidInput"),
    (["SRV"], "MULTIVALUE", IP, "i", "InvalidInput"),
    (["SRV"], "MULTIVALUE", {**IP, "AWS_INSTANCE_PORT": "80"}, "i", None),
    (["SRV"], "MULTIVALUE", {**IP, "AWS_INSTANCE_PORT": "70000"}, "i", "InvalidInput"),
    (["SRV"], "MULTIVALUE", {**IP, "AWS_INSTANCE_PORT": "http"}, "i", "InvalidInput"),
    (["SRV"], "MULTIVALUE", {**IP, "AWS_INSTANCE_PORT": "80"}, "host:1", "InvalidInput"),
    (["CNAME"], "WEIGHTED", {}, "i", "InvalidInput"),
    (["CNAME"], "WEIGHTED", {"AWS_INSTANCE_CNAME": "example.com"}, "i", None),
    (["A"], "WEIGHTED", {"AWS_ALIAS_DNS_NAME": "lb.example.com"}, "i", None),
    (["A"], "MULTIVALUE", {"AWS_ALIAS_DNS_NAME": "lb.example.com"}, "i", "InvalidInput"),
    (["A"], "WEIGHTED", {"AWS_ALIAS_DNS_NAME": "lb.example.com", **IP}, "i", "InvalidInput"),
    (["A"], "MULTIVALUE", {**IP, "AWS_INIT_HEALTH_STATUS": "MAYBE"}, "i", "InvalidInput"),
    (["A"], "MULTIVALUE", {**IP, **{f"c{i}": "v" for i in range(30)}}, "i", None),
    (["A"], "MULTIVALUE", {**IP, **{f"c{i}": "v" for i in range(31)}}, "i", "InvalidInput"),
    (["A"], "MULTIVALUE", {**IP, "big1": "x" * 1000, "big2": "x" * 1000, "big3": "x" * 1000, "big4": "x" * 1000, "big5": "x" * 1000}, "i", "InvalidInput"),
    (["A"], "MULTIVALUE", {**IP, "v": "x" * 1025}, "i", "InvalidInput"),
    (["A"], "MULTIVALUE", {**IP, "v": " leading"}, "i", "InvalidInput"),
    (["A"], "MULTIVALUE", {**IP, "v": "trailing \t"}, "i", None),
    (["A"], "MULTIVALUE", {**IP, "v": ""}, "i", None),
    (["A"], "MULTIVALUE", {**IP, "bad key": "v"}, "i", "InvalidInput"),
    (["A"], "MULTIVALUE", {**IP, "é": "v"}, "i", "InvalidInput"),
    (["A"], "MULTIVALUE", IP, "bad id", "InvalidInput"),
    (["A"], "MULTIVALUE", IP, "x" * 65, "InvalidInput"),
    (["A"], "MULTIVALUE", IP, "a/b:c@d.e_f-g", None),
]


@pytest.mark.parametrize("records,policy,attributes,instance_id,expected", ATTRIBUTE_RULES)
def test_reserved_attribute_rules(sd, name, records, policy, attributes, instance_id, expected):
    s = dns_service(sd, name, records, policy)
    if expected is None:
        sd.register_instance(ServiceId=s["Id"], InstanceId=instance_id, Attributes=attributes)
        assert sd.get_instance(ServiceId=s["Id"], InstanceId=instance_id)["Instance"]["Attributes"] == attributes
    else:
        with pytest.raises(ClientError) as e:
            sd.register_instance(ServiceId=s["Id"], InstanceId=instance_id, Attributes=attributes)
        assert error_of(e)[0] == expected
        assert sd.list_instances(ServiceId=s["Id"])["Instances"] == []


def test_health_check_config_requires_port_and_address(sd, name):
    ns = http_namespace(sd, name)
    s = sd.create_service(Name="s", NamespaceId=ns, HealthCheckConfig={"Type": "TCP"})["Service"]
    with pytest.raises(ClientError) as e:
        sd.register_instance(ServiceId=s["Id"], InstanceId="i", Attributes=IP)
    assert error_of(e)[0] == "InvalidInput"
    sd.register_instance(ServiceId=s["Id"], InstanceId="i", Attributes={**IP, "AWS_INSTANCE_PORT": "9"})


def test_ec2_instance_id_only_in_http_namespaces_and_alone(sd, name):
    ns = http_namespace(sd, name)
    s = sd.create_service(Name="s", NamespaceId=ns)["Service"]
    sd.register_instance(ServiceId=s["Id"], InstanceId="i", Attributes={"AWS_EC2_INSTANCE_ID": "i-0abc", "AWS_INIT_HEALTH_STATUS": "HEALTHY"})
    with pytest.raises(ClientError) as e:
        sd.register_instance(ServiceId=s["Id"], InstanceId="j", Attributes={"AWS_EC2_INSTANCE_ID": "i-0abc", **IP})
    assert error_of(e)[0] == "InvalidInput"


def test_custom_health(sd, http_service):
    s = http_service
    sd.register_instance(ServiceId=s["Id"], InstanceId="a", Attributes={})
    sd.register_instance(ServiceId=s["Id"], InstanceId="b", Attributes={"AWS_INIT_HEALTH_STATUS": "UNHEALTHY"})
    status = sd.get_instances_health_status(ServiceId=s["Id"])["Status"]
    assert status == {"a": "HEALTHY", "b": "UNHEALTHY"}
    sd.update_instance_custom_health_status(ServiceId=s["Id"], InstanceId="a", Status="UNHEALTHY")
    assert sd.get_instances_health_status(ServiceId=s["Id"], Instances=["a"])["Status"] == {"a": "UNHEALTHY"}
    with pytest.raises(ClientError) as e:
        sd.update_instance_custom_health_status(ServiceId=s["Id"], InstanceId="zz", Status="HEALTHY")
    assert error_of(e)[0] == "InstanceNotFound"
    with pytest.raises(ClientError) as e:
        sd.update_instance_custom_health_status(ServiceId=s["Id"], InstanceId="a", Status="UNKNOWN")
    assert error_of(e)[0] == "InvalidInput"
    with pytest.raises(ClientError) as e:
        sd.get_instances_health_status(ServiceId=s["Id"], Instances=["a", "zz"])
    assert error_of(e)[0] == "InstanceNotFound"
    with pytest.raises(ClientError) as e:
        sd.get_instances_health_status(ServiceId=s["Id"], Instances=[])
    assert error_of(e)[0] == "InvalidInput"


def test_custom_health_needs_a_custom_health_config(sd, name):
    ns = http_namespace(sd, name)
    plain = sd.create_service(Name="plain", NamespaceId=ns)["Service"]
    sd.register_instance(ServiceId=plain["Id"], InstanceId="i", Attributes={})
    with pytest.raises(ClientError) as e:
        sd.update_instance_custom_health_status(ServiceId=plain["Id"], InstanceId="i", Status="HEALTHY")
    assert error_of(e)[0] == "CustomHealthNotFound"
    # Services without health checking report UNKNOWN.
    assert sd.get_instances_health_status(ServiceId=plain["Id"])["Status"] == {"i": "UNKNOWN"}


def test_list_instances_pages(sd, http_service):
    s = http_service
    for i in range(7):
        sd.register_instance(ServiceId=s["Id"], InstanceId=f"i{i}", Attributes={"n": str(i)})
    seen, token, pages = [], None, 0
    while True:
        kw = {"NextToken": token} if token else {}
        page = sd.list_instances(ServiceId=s["Id"], MaxResults=3, **kw)
        pages += 1
        seen += [i["Id"] for i in page["Instances"]]
        assert all("CreatorRequestId" not in i for i in page["Instances"])
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [f"i{i}" for i in range(7)] and pages == 3
    paginator = sd.get_paginator("list_instances")
    assert sum(len(p["Instances"]) for p in paginator.paginate(ServiceId=s["Id"], PaginationConfig={"PageSize": 2})) == 7
    health = sd.get_instances_health_status(ServiceId=s["Id"], MaxResults=5)
    assert len(health["Status"]) == 5 and health["NextToken"]
    rest = sd.get_instances_health_status(ServiceId=s["Id"], MaxResults=5, NextToken=health["NextToken"])
    assert len(rest["Status"]) == 2 and "NextToken" not in rest


@pytest.mark.parametrize("token", ["garbage", "Y2Fpcm4xfG5hbWVzcGFjZXN8MDAw", "x" * 4097])
def test_bad_next_token_is_invalid_input(sd, http_service, token):
    with pytest.raises(ClientError) as e:
        sd.list_instances(ServiceId=http_service["Id"], NextToken=token)
    assert error_of(e)[0] == "InvalidInput"


@pytest.mark.parametrize("max_results", [0, 101, -1])
def test_max_results_out_of_range_is_invalid_input(sd, http_service, max_results):
    with pytest.raises(ClientError) as e:
        sd.list_instances(ServiceId=http_service["Id"], MaxResults=max_results)
    assert error_of(e)[0] == "InvalidInput"
