"""Services through boto3: the CreateService validation matrix, get/list/filters, update, delete, attributes."""
import pytest
from botocore.exceptions import ClientError

from conftest import error_of, http_namespace, private_namespace, public_namespace, wait_op

A = {"Type": "A", "TTL": 60}
AAAA = {"Type": "AAAA", "TTL": 60}
SRV = {"Type": "SRV", "TTL": 60}
CNAME = {"Type": "CNAME", "TTL": 60}


@pytest.fixture
def namespaces(sd, name):
    return {
        "http": http_namespace(sd, name),
        "private": private_namespace(sd, f"{name}.local"),
        "public": public_namespace(sd, f"{name}.example.com"),
    }


# (namespace kind, extra CreateService arguments, expected error code or the service Type on success)
MATRIX = [
    ("http", {}, "HTTP"),
    ("http", {"DnsConfig": {"DnsRecords": [A]}}, "InvalidInput"),
    ("private", {"DnsConfig": {"DnsRecords": [A]}}, "DNS_HTTP"),
    ("private", {"DnsConfig": {"DnsRecords": [A, AAAA]}}, "DNS_HTTP"),
    ("private", {"DnsConfig": {"DnsRecords": [SRV]}}, "DNS_HTTP"),
    ("private", {"DnsConfig": {"DnsRecords": [A, SRV]}}, "DNS_HTTP"),
    ("private", {"DnsConfig": {"DnsRecords": [A, AAAA, SRV]}}, "DNS_HTTP"),
    ("private", {"DnsConfig": {"RoutingPolicy": "WEIGHTED", "DnsRecords": [CNAME]}}, "DNS_HTTP"),
    ("private", {"DnsConfig": {"RoutingPolicy": "MULTIVALUE", "DnsRecords": [CNAME]}}, "InvalidInput"),
    ("private", {"DnsConfig": {"RoutingPolicy": "WEIGHTED", "DnsRecords": [CNAME, A]}}, "InvalidInput"),
    ("private", {"DnsConfig": {"DnsRecords": [A, A]}}, "InvalidInput"),
    ("private", {"DnsConfig": {"DnsRecords": []}}, "InvalidInput"),
    ("private", {"DnsConfig": {"DnsRecords": [{"Type": "MX", "TTL": 1}]}}, "InvalidInput"),
    ("private", {"DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 2147483648}]}}, "InvalidInput"),
    ("private", {"DnsConfig": {"DnsRecords": [{"Type": "A"}]}}, "InvalidInput"),
    ("private", {"DnsConfig": {"RoutingPolicy": "ROUND", "DnsRecords": [A]}}, "InvalidInput"),
    ("private", {}, "HTTP"),
    ("private", {"Type": "HTTP"}, "HTTP"),
    ("private", {"Type": "HTTP", "DnsConfig": {"DnsRecords": [A]}}, "InvalidInput"),
    ("private", {"Type": "DNS"}, "InvalidInput"),
    ("public", {"DnsConfig": {"DnsRecords": [A]}, "HealthCheckConfig": {"Type": "HTTP", "ResourcePath": "/h"}}, "DNS_HTTP"),
    ("public", {"DnsConfig": {"DnsRecords": [A]}, "HealthCheckConfig": {"Type": "TCP", "ResourcePath": "/h"}}, "InvalidInput"),
    ("public", {"DnsConfig": {"DnsRecords": [A]}, "HealthCheckConfig": {"Type": "PING"}}, "InvalidInput"),
    ("public", {"DnsConfig": {"DnsRecords": [A]}, "HealthCheckConfig": {"Type": "HTTP", "FailureThreshold": 11}}, "InvalidInput"),
    ("public", {"DnsConfig": {"RoutingPolicy": "WEIGHTED", "DnsRecords": [CNAME]}, "HealthCheckConfig": {"Type": "HTTP"}}, "InvalidInput"),
    ("public", {"HealthCheckConfig": {"Type": "HTTP"}, "HealthCheckCustomConfig": {"FailureThreshold": 1}}, "InvalidInput"),
    ("http", {"HealthCheckConfig": {"Type": "HTTP"}}, "HTTP"),
    ("http", {"HealthCheckCustomConfig": {"FailureThreshold": 7}}, "HTTP"),
    ("http", {"HealthCheckCustomConfig": {"FailureThreshold": 0}}, "InvalidInput"),
]


@pytest.mark.parametrize("kind,extra,expected", MATRIX)
def test_create_service_validation_matrix(sd, namespaces, kind, extra, expected):
    call = dict(Name="svc", NamespaceId=namespaces[kind], **extra)
    if expected in ("HTTP", "DNS_HTTP"):
        service = sd.create_service(**call)["Service"]
        assert service["Type"] == expected
        if expected == "HTTP":
            assert service["DnsConfig"] == {}
        else:
            assert service["DnsConfig"]["RoutingPolicy"] == extra["DnsConfig"].get("RoutingPolicy", "MULTIVALUE")
            assert service["DnsConfig"]["DnsRecords"] == extra["DnsConfig"]["DnsRecords"]
        if "HealthCheckCustomConfig" in extra:
            assert service["HealthCheckCustomConfig"] == {"FailureThreshold": 1}
    else:
        with pytest.raises(ClientError) as e:
            sd.create_service(**call)
        assert error_of(e)[0] == expected
        assert sd.list_services()["Services"] == []


def test_http_namespace_dns_config_message_is_awss(sd, namespaces):
    with pytest.raises(ClientError) as e:
        sd.create_service(Name="s", NamespaceId=namespaces["http"], DnsConfig={"DnsRecords": [A]})
    assert error_of(e)[1] == "When you specify an HTTP service, you can't include a DnsConfig element."


def test_create_service_resolution_of_the_namespace(sd, namespaces):
    priv = namespaces["private"]
    legacy = sd.create_service(Name="legacy", DnsConfig={"NamespaceId": priv, "DnsRecords": [A]})["Service"]
    assert legacy["NamespaceId"] == priv and legacy["DnsConfig"]["NamespaceId"] == priv
    with pytest.raises(ClientError) as e:
        sd.create_service(Name="both", NamespaceId=priv, DnsConfig={"NamespaceId": namespaces["public"], "DnsRecords": [A]})
    assert error_of(e)[0] == "InvalidInput"
    with pytest.raises(ClientError) as e:
        sd.create_service(Name="none")
    assert error_of(e)[0] == "InvalidInput"
    with pytest.raises(ClientError) as e:
        sd.create_service(Name="ghost", NamespaceId="ns-aaaaaaaaaaaaaaaa")
    assert error_of(e)[0] == "NamespaceNotFound"
    arn = sd.get_namespace(Id=priv)["Namespace"]["Arn"]
    assert sd.create_service(Name="by-arn", NamespaceId=arn)["Service"]["NamespaceId"] == priv


@pytest.mark.parametrize("good", ["orders", "_http._tcp", "a", "a.b-c_d", ".", "x" * 63])
def test_valid_service_names(sd, namespaces, good):
    assert sd.create_service(Name=good, NamespaceId=namespaces["private"])["Service"]["Name"] == good


@pytest.mark.parametrize("bad", ["_", "-a", "a-", "a..b", "x" * 64, "a" * 60 + "." + "b" * 60 + "." + "c" * 10, "with space", ""])
def test_invalid_service_names(sd, namespaces, bad):
    with pytest.raises(ClientError) as e:
        sd.create_service(Name=bad, NamespaceId=namespaces["private"])
    assert error_of(e)[0] == "InvalidInput"


def test_service_name_uniqueness_is_case_insensitive_only_in_dns_namespaces(sd, namespaces):
    first = sd.create_service(Name="Orders", NamespaceId=namespaces["private"], CreatorRequestId="c1")["Service"]
    with pytest.raises(ClientError) as e:
        sd.create_service(Name="orders", NamespaceId=namespaces["private"])
    code, _, resp = error_of(e)
    assert code == "ServiceAlreadyExists"
    assert resp["ServiceId"] == first["Id"] and resp["ServiceArn"] == first["Arn"] and resp["CreatorRequestId"] == "c1"
    sd.create_service(Name="Orders", NamespaceId=namespaces["http"])
    sd.create_service(Name="orders", NamespaceId=namespaces["http"])


def test_create_service_retry_with_the_same_token_returns_the_same_service(sd, namespaces):
    a = sd.create_service(Name="s", NamespaceId=namespaces["http"], CreatorRequestId="same")["Service"]
    b = sd.create_service(Name="s", NamespaceId=namespaces["http"], CreatorRequestId="same")["Service"]
    assert a["Id"] == b["Id"]


def test_get_and_list_services(sd, namespaces):
    a = sd.create_service(Name="a", NamespaceId=namespaces["http"], Description="first", Tags=[{"Key": "t", "Value": "1"}])["Service"]
    b = sd.create_service(Name="b", NamespaceId=namespaces["private"], DnsConfig={"DnsRecords": [A]})["Service"]
    got = sd.get_service(Id=a["Id"])["Service"]
    assert got["Description"] == "first" and got["NamespaceId"] == namespaces["http"] and got["InstanceCount"] == 0
    assert sd.get_service(Id=a["Arn"])["Service"]["Id"] == a["Id"]
    listed = sd.list_services()["Services"]
    assert [s["Id"] for s in listed] == [a["Id"], b["Id"]]
    assert all("NamespaceId" not in s and "CreatorRequestId" not in s for s in listed)
    only = sd.list_services(Filters=[{"Name": "NAMESPACE_ID", "Values": [namespaces["private"]]}])["Services"]
    assert [s["Id"] for s in only] == [b["Id"]]
    arn = sd.get_namespace(Id=namespaces["http"])["Namespace"]["Arn"]
    assert [s["Id"] for s in sd.list_services(Filters=[{"Name": "NAMESPACE_ID", "Values": [arn]}])["Services"]] == [a["Id"]]
    both = sd.list_services(Filters=[{"Name": "NAMESPACE_ID", "Condition": "IN", "Values": [namespaces["http"], namespaces["private"]]}])
    assert len(both["Services"]) == 2
    assert sd.list_services(Filters=[{"Name": "RESOURCE_OWNER", "Values": ["OTHER_ACCOUNTS"]}])["Services"] == []
    with pytest.raises(ClientError) as e:
        sd.list_services(Filters=[{"Name": "NAMESPACE_ID", "Condition": "BEGINS_WITH", "Values": ["ns-"]}])
    assert error_of(e)[0] == "InvalidInput"
    with pytest.raises(ClientError) as e:
        sd.get_service(Id="srv-aaaaaaaaaaaaaaaa")
    assert error_of(e)[0] == "ServiceNotFound"
    assert sd.get_namespace(Id=namespaces["http"])["Namespace"]["ServiceCount"] == 1


def test_update_service(sd, namespaces):
    svc = sd.create_service(
        Name="s", NamespaceId=namespaces["public"], Description="before",
        DnsConfig={"DnsRecords": [A, SRV]}, HealthCheckConfig={"Type": "HTTP", "ResourcePath": "/health"})["Service"]
    op = wait_op(sd, sd.update_service(Id=svc["Id"], Service={
        "Description": "after", "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 5}, {"Type": "SRV", "TTL": 6}]},
        "HealthCheckConfig": {"Type": "HTTP", "ResourcePath": "/ready", "FailureThreshold": 2}})["OperationId"])
    assert op["Type"] == "UPDATE_SERVICE" and op["Targets"] == {"SERVICE": svc["Id"]}
    got = sd.get_service(Id=svc["Id"])["Service"]
    assert got["Description"] == "after"
    assert got["DnsConfig"]["DnsRecords"] == [{"Type": "A", "TTL": 5}, {"Type": "SRV", "TTL": 6}]
    assert got["HealthCheckConfig"] == {"Type": "HTTP", "ResourcePath": "/ready", "FailureThreshold": 2}
    # Leaving HealthCheckConfig out removes it, as in AWS.
    sd.update_service(Id=svc["Id"], Service={"Description": "x"})
    assert "HealthCheckConfig" not in sd.get_service(Id=svc["Id"])["Service"]


@pytest.mark.parametrize(
    "change",
    [
        {"DnsConfig": {"DnsRecords": [A]}},
        {"DnsConfig": {"DnsRecords": [A, SRV, AAAA]}},
        {"DnsConfig": {"DnsRecords": [AAAA, SRV]}},
        {"HealthCheckConfig": {"Type": "TCP"}},
        {"HealthCheckConfig": {"Type": "TCP", "ResourcePath": "/"}},
    ],
)
def test_update_service_rejects_immutable_changes(sd, namespaces, change):
    svc = sd.create_service(Name="s", NamespaceId=namespaces["public"], DnsConfig={"DnsRecords": [A, SRV]},
                            HealthCheckConfig={"Type": "HTTP"})["Service"]
    with pytest.raises(ClientError) as e:
        sd.update_service(Id=svc["Id"], Service=change)
    assert error_of(e)[0] == "InvalidInput"
    assert sd.get_service(Id=svc["Id"])["Service"]["DnsConfig"]["DnsRecords"] == [A, SRV]


def test_update_service_is_not_for_http_namespaces_nor_custom_health(sd, namespaces):
    h = sd.create_service(Name="s", NamespaceId=namespaces["http"])["Service"]
    with pytest.raises(ClientError) as e:
        sd.update_service(Id=h["Id"], Service={"Description": "x"})
    assert error_of(e)[0] == "InvalidInput"
    c = sd.create_service(Name="c", NamespaceId=namespaces["private"], HealthCheckCustomConfig={})["Service"]
    with pytest.raises(ClientError) as e:
        sd.update_service(Id=c["Id"], Service={"HealthCheckConfig": {"Type": "HTTP"}})
    assert error_of(e)[0] == "InvalidInput"
    with pytest.raises(ClientError) as e:
        sd.update_service(Id="srv-aaaaaaaaaaaaaaaa", Service={"Description": "x"})
    assert error_of(e)[0] == "ServiceNotFound"


def test_delete_service(sd, namespaces):
    svc = sd.create_service(Name="s", NamespaceId=namespaces["http"])["Service"]
    sd.register_instance(ServiceId=svc["Id"], InstanceId="i", Attributes={"k": "v"})
    with pytest.raises(ClientError) as e:
        sd.delete_service(Id=svc["Id"])
    assert error_of(e)[0] == "ResourceInUse"
    sd.deregister_instance(ServiceId=svc["Id"], InstanceId="i")
    assert sd.delete_service(Id=svc["Id"])["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as e:
        sd.delete_service(Id=svc["Id"])
    assert error_of(e)[0] == "ServiceNotFound"
    # The name is free again.
    sd.create_service(Name="s", NamespaceId=namespaces["http"])


def test_service_attributes(sd, namespaces):
    svc = sd.create_service(Name="s", NamespaceId=namespaces["http"])["Service"]
    sd.update_service_attributes(ServiceId=svc["Id"], Attributes={"a": "1", "b": "2"})
    sd.update_service_attributes(ServiceId=svc["Id"], Attributes={"b": "3", "c": "4"})
    got = sd.get_service_attributes(ServiceId=svc["Id"])["ServiceAttributes"]
    assert got["Attributes"] == {"a": "1", "b": "3", "c": "4"}
    assert got["ServiceArn"] == svc["Arn"] and got["ResourceOwner"] == "000000000000"
    sd.delete_service_attributes(ServiceId=svc["Id"], Attributes=["a", "missing"])
    assert sd.get_service_attributes(ServiceId=svc["Id"])["ServiceAttributes"]["Attributes"] == {"b": "3", "c": "4"}
    sd.update_service_attributes(ServiceId=svc["Id"], Attributes={f"k{i}": "v" for i in range(28)})
    with pytest.raises(ClientError) as e:
        sd.update_service_attributes(ServiceId=svc["Id"], Attributes={"x1": "1"})
    assert error_of(e)[0] == "ServiceAttributesLimitExceededException"
    assert len(sd.get_service_attributes(ServiceId=svc["Id"])["ServiceAttributes"]["Attributes"]) == 30
    for bad in ({}, {f"k{i}": "v" for i in range(31)}):
        with pytest.raises(ClientError) as e:
            sd.update_service_attributes(ServiceId=svc["Id"], Attributes=bad)
        assert error_of(e)[0] == "InvalidInput"
    with pytest.raises(ClientError) as e:
        sd.delete_service_attributes(ServiceId=svc["Id"], Attributes=[])
    assert error_of(e)[0] == "InvalidInput"
    with pytest.raises(ClientError) as e:
        sd.get_service_attributes(ServiceId="srv-aaaaaaaaaaaaaaaa")
    assert error_of(e)[0] == "ServiceNotFound"
    sd.delete_service(Id=svc["Id"])
    with pytest.raises(ClientError) as e:
        sd.update_service_attributes(ServiceId=svc["Id"], Attributes={"a": "1"})
    assert error_of(e)[0] == "ServiceNotFound"
