"""Namespaces through boto3: create (3 kinds), get, list with filters, update (3 kinds), delete, and their errors."""
import pytest
from botocore.exceptions import ClientError

from conftest import error_of, http_namespace, private_namespace, public_namespace, wait_op


def test_create_http_namespace_is_an_operation_whose_target_is_the_namespace(sd, name):
    op_id = sd.create_http_namespace(Name=name, Description="d")["OperationId"]
    op = sd.get_operation(OperationId=op_id)["Operation"]
    assert op["Type"] == "CREATE_NAMESPACE" and op["Status"] == "SUCCESS"
    assert op["CreateDate"] <= op["UpdateDate"]
    ns_id = op["Targets"]["NAMESPACE"]
    assert ns_id.startswith("ns-") and len(ns_id) == 19
    ns = sd.get_namespace(Id=ns_id)["Namespace"]
    assert ns["Name"] == name and ns["Type"] == "HTTP" and ns["Description"] == "d"
    assert ns["Properties"]["HttpProperties"]["HttpName"] == name
    assert ns["Arn"].endswith(f":namespace/{ns_id}") and ns["Arn"].startswith("arn:aws:servicediscovery:")
    assert ns["CreatorRequestId"]


def test_namespace_arn_works_wherever_an_id_does(sd, name):
    ns_id = http_namespace(sd, name)
    arn = sd.get_namespace(Id=ns_id)["Namespace"]["Arn"]
    assert sd.get_namespace(Id=arn)["Namespace"]["Id"] == ns_id


def test_dns_namespaces_carry_hosted_zone_and_soa(sd, name):
    priv = private_namespace(sd, f"{name}.local", Properties={"DnsProperties": {"SOA": {"TTL": 60}}})
    pub = public_namespace(sd, f"{name}.example.com")
    p = sd.get_namespace(Id=priv)["Namespace"]
    assert p["Type"] == "DNS_PRIVATE"
    assert p["Properties"]["DnsProperties"]["SOA"] == {"TTL": 60}
    assert p["Properties"]["DnsProperties"]["HostedZoneId"].startswith("Z")
    q = sd.get_namespace(Id=pub)["Namespace"]
    assert q["Type"] == "DNS_PUBLIC" and q["Properties"]["DnsProperties"]["SOA"] == {}


def test_an_http_namespace_lists_with_an_empty_soa_and_gets_without_one(sd, name):
    ns_id = http_namespace(sd, name)
    assert sd.get_namespace(Id=ns_id)["Namespace"]["Properties"]["DnsProperties"] == {}
    listed = [n for n in sd.list_namespaces()["Namespaces"] if n["Id"] == ns_id][0]
    assert listed["Properties"]["DnsProperties"] == {"SOA": {}}


def test_http_name_collision_is_namespace_already_exists_with_the_existing_ids(sd, name):
    first_token = "token-first"
    ns_id = http_namespace(sd, name, CreatorRequestId=first_token)
    with pytest.raises(ClientError) as e:
        sd.create_http_namespace(Name=name)
    code, _, resp = error_of(e)
    assert code == "NamespaceAlreadyExists"
    assert resp["NamespaceId"] == ns_id and resp["CreatorRequestId"] == first_token
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_reused_dns_name_gets_a_distinct_http_name(sd, name):
    http_namespace(sd, f"{name}.local")
    other = private_namespace(sd, f"{name}.local")
    http_name = sd.get_namespace(Id=other)["Namespace"]["Properties"]["HttpProperties"]["HttpName"]
    assert http_name != f"{name}.local" and http_name.startswith(f"{name}.local-")


def test_same_private_zone_on_the_same_network_fails_the_operation(sd, name):
    private_namespace(sd, f"{name}.local")
    op_id = sd.create_private_dns_namespace(Name=f"{name}.local", Vpc="default")["OperationId"]
    op = wait_op(sd, op_id)
    assert op["Status"] == "FAIL" and op["ErrorCode"] == "CANNOT_CREATE_HOSTED_ZONE" and op["ErrorMessage"]
    names = [n["Name"] for n in sd.list_namespaces()["Namespaces"]]
    assert names.count(f"{name}.local") == 1


def test_unknown_network_is_invalid_input(sd, name):
    with pytest.raises(ClientError) as e:
        sd.create_private_dns_namespace(Name=f"{name}.local", Vpc="vpc-0123456789")
    code, message, _ = error_of(e)
    assert code == "InvalidInput" and "network" in message


@pytest.mark.parametrize(
    "call,kwargs,member",
    [
        ("create_http_namespace", {"Name": "arn:foo"}, "name"),
        ("create_http_namespace", {"Name": "has space"}, "name"),
        ("create_http_namespace", {"Name": "x" * 1025}, "name"),
        ("create_http_namespace", {"Name": "ok", "Description": "d" * 1025}, "description"),
        ("create_public_dns_namespace", {"Name": "nodots"}, "name"),
        ("create_public_dns_namespace", {"Name": "under_score.com"}, "name"),
        ("create_public_dns_namespace", {"Name": "-bad.com"}, "name"),
        ("create_private_dns_namespace", {"Name": "x" * 254, "Vpc": "default"}, "name"),
        ("create_private_dns_namespace", {"Name": "ok.local", "Vpc": "default", "Properties": {"DnsProperties": {"SOA": {"TTL": -1}}}}, "TTL"),
        ("create_http_namespace", {"Name": "ok", "Tags": [{"Key": "", "Value": "v"}]}, "tags"),
        ("create_http_namespace", {"Name": "ok", "CreatorRequestId": "t" * 65}, "creatorRequestId"),
    ],
)
def test_model_constraints_are_invalid_input_naming_the_member(sd, call, kwargs, member):
    with pytest.raises(ClientError) as e:
        getattr(sd, call)(**kwargs)
    code, message, _ = error_of(e)
    assert code == "InvalidInput"
    assert member.lower() in message.lower()
    assert sd.list_namespaces()["Namespaces"] == []  # nothing half-applied


def test_private_dns_name_with_an_empty_label_is_invalid(sd):
    with pytest.raises(ClientError) as e:
        sd.create_private_dns_namespace(Name="a..local", Vpc="default")
    assert error_of(e)[0] == "InvalidInput"


def test_same_creator_request_id_returns_the_same_operation(sd, name):
    a = sd.create_http_namespace(Name=name, CreatorRequestId="retry-me")["OperationId"]
    b = sd.create_http_namespace(Name=name, CreatorRequestId="retry-me")["OperationId"]
    assert a == b
    assert len(sd.list_namespaces()["Namespaces"]) == 1


def test_same_creator_request_id_with_other_parameters_is_duplicate_request(sd, name):
    a = sd.create_http_namespace(Name=name, CreatorRequestId="tok")["OperationId"]
    with pytest.raises(ClientError) as e:
        sd.create_http_namespace(Name=name + "x", CreatorRequestId="tok")
    code, _, resp = error_of(e)
    assert code == "DuplicateRequest" and resp["DuplicateOperationId"] == a


def test_update_namespaces_of_each_kind(sd, name):
    h = http_namespace(sd, name)
    p = private_namespace(sd, f"{name}.local")
    q = public_namespace(sd, f"{name}.example.org")
    op = sd.update_http_namespace(Id=h, Namespace={"Description": "new"})["OperationId"]
    assert wait_op(sd, op)["Type"] == "UPDATE_NAMESPACE"
    assert sd.get_namespace(Id=h)["Namespace"]["Description"] == "new"
    sd.update_private_dns_namespace(Id=p, Namespace={"Properties": {"DnsProperties": {"SOA": {"TTL": 30}}}})
    assert sd.get_namespace(Id=p)["Namespace"]["Properties"]["DnsProperties"]["SOA"]["TTL"] == 30
    sd.update_public_dns_namespace(Id=q, Namespace={"Description": "pub"})
    assert sd.get_namespace(Id=q)["Namespace"]["Description"] == "pub"
    with pytest.raises(ClientError) as e:
        sd.update_http_namespace(Id=p, Namespace={"Description": "x"})
    assert error_of(e)[0] == "InvalidInput"
    u1 = sd.update_http_namespace(Id=h, Namespace={"Description": "again"}, UpdaterRequestId="u")["OperationId"]
    u2 = sd.update_http_namespace(Id=h, Namespace={"Description": "again"}, UpdaterRequestId="u")["OperationId"]
    assert u1 == u2


def test_update_of_a_missing_namespace_is_namespace_not_found(sd):
    with pytest.raises(ClientError) as e:
        sd.update_http_namespace(Id="ns-aaaaaaaaaaaaaaaa", Namespace={"Description": "x"})
    assert error_of(e)[0] == "NamespaceNotFound"


def test_delete_namespace_lifecycle(sd, name):
    ns = http_namespace(sd, name)
    srv = sd.create_service(Name="s", NamespaceId=ns)["Service"]["Id"]
    with pytest.raises(ClientError) as e:
        sd.delete_namespace(Id=ns)
    assert error_of(e)[0] == "ResourceInUse"
    sd.delete_service(Id=srv)
    op = wait_op(sd, sd.delete_namespace(Id=ns)["OperationId"])
    assert op["Type"] == "DELETE_NAMESPACE" and op["Targets"] == {"NAMESPACE": ns}
    with pytest.raises(ClientError) as e:
        sd.get_namespace(Id=ns)
    assert error_of(e)[0] == "NamespaceNotFound"
    with pytest.raises(ClientError) as e:
        sd.delete_namespace(Id=ns)
    assert error_of(e)[0] == "NamespaceNotFound"


def test_namespaces_are_scoped_by_region(cairn, sd, name):
    from conftest import client_for

    ns = http_namespace(sd, name)
    other = client_for(cairn.endpoint, "test-elsewhere-9")
    with pytest.raises(ClientError) as e:
        other.get_namespace(Id=ns)
    assert error_of(e)[0] == "NamespaceNotFound"
    assert name not in [n["Name"] for n in other.list_namespaces()["Namespaces"]]


def test_list_namespaces_filters(sd, name):
    http_namespace(sd, f"{name}-a")
    http_namespace(sd, f"{name}-b")
    private_namespace(sd, f"{name}.local")
    public_namespace(sd, f"{name}.example.net")

    def names(filters):
        return sorted(n["Name"] for n in sd.list_namespaces(Filters=filters)["Namespaces"])

    assert names([{"Name": "TYPE", "Values": ["HTTP"]}]) == [f"{name}-a", f"{name}-b"]
    assert names([{"Name": "TYPE", "Values": ["DNS_PRIVATE", "DNS_PUBLIC"], "Condition": "IN"}]) == [
        f"{name}.example.net", f"{name}.local"]
    assert names([{"Name": "TYPE", "Values": ["DNS_"], "Condition": "BEGINS_WITH"}]) == [f"{name}.example.net", f"{name}.local"]
    assert names([{"Name": "NAME", "Values": [f"{name}-a"]}]) == [f"{name}-a"]
    assert names([{"Name": "HTTP_NAME", "Values": [f"{name}-"], "Condition": "BEGINS_WITH"}]) == [f"{name}-a", f"{name}-b"]
    assert len(names([{"Name": "RESOURCE_OWNER", "Values": ["SELF"]}])) == 4
    assert names([{"Name": "RESOURCE_OWNER", "Values": ["OTHER_ACCOUNTS"]}]) == []
    assert names([{"Name": "TYPE", "Values": ["HTTP"]}, {"Name": "NAME", "Values": [f"{name}-b"]}]) == [f"{name}-b"]
    summary = sd.list_namespaces()["Namespaces"][0]
    assert "CreatorRequestId" not in summary and "Arn" in summary and "CreateDate" in summary


@pytest.mark.parametrize(
    "filters",
    [
        [{"Name": "NAME", "Values": ["a", "b"]}],
        [{"Name": "NAME", "Values": ["a"], "Condition": "IN"}],
        [{"Name": "RESOURCE_OWNER", "Values": ["ME"]}],
        [{"Name": "TYPE", "Values": ["HTTP"], "Condition": "BETWEEN"}],
        [{"Name": "TYPE", "Values": ["BOGUS"]}],
        [{"Name": "TYPE", "Values": []}],
    ],
)
def test_bad_namespace_filters_are_invalid_input(sd, filters):
    with pytest.raises(ClientError) as e:
        sd.list_namespaces(Filters=filters)
    assert error_of(e)[0] == "InvalidInput"


def test_namespaces_per_region_quota_is_resource_limit_exceeded(sd, name):
    for i in range(50):
        http_namespace(sd, f"{name}-{i}")
    with pytest.raises(ClientError) as e:
        sd.create_http_namespace(Name=f"{name}-50")
    assert error_of(e)[0] == "ResourceLimitExceeded"


def test_more_than_50_tags_on_create_is_too_many_tags(sd, name):
    tags = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    with pytest.raises(ClientError) as e:
        sd.create_http_namespace(Name=name, Tags=tags)
    code, _, resp = error_of(e)
    assert code == "TooManyTagsException" and resp["ResourceName"]
    assert sd.list_namespaces()["Namespaces"] == []
