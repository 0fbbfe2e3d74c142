"""Each modelled error of each operation that other tests do not reach, as one table."""
import pytest
from botocore.exceptions import ClientError

from conftest import error_of, http_namespace

GHOST_SERVICE = "srv-aaaaaaaaaaaaaaaa"
GHOST_NAMESPACE = "ns-aaaaaaaaaaaaaaaa"

NOT_FOUND = [
    ("delete_service_attributes", {"ServiceId": GHOST_SERVICE, "Attributes": ["a"]}, "ServiceNotFound"),
    ("get_instance", {"ServiceId": GHOST_SERVICE, "InstanceId": "i"}, "ServiceNotFound"),
    ("get_instances_health_status", {"ServiceId": GHOST_SERVICE}, "ServiceNotFound"),
    ("list_instances", {"ServiceId": GHOST_SERVICE}, "ServiceNotFound"),
    ("register_instance", {"ServiceId": GHOST_SERVICE, "InstanceId": "i", "Attributes": {}}, "ServiceNotFound"),
    ("update_instance_custom_health_status", {"ServiceId": GHOST_SERVICE, "InstanceId": "i", "Status": "HEALTHY"}, "ServiceNotFound"),
    ("update_private_dns_namespace", {"Id": GHOST_NAMESPACE, "Namespace": {"Description": "x"}}, "NamespaceNotFound"),
    ("update_public_dns_namespace", {"Id": GHOST_NAMESPACE, "Namespace": {"Description": "x"}}, "NamespaceNotFound"),
    ("discover_instances_revision", {"NamespaceName": "no-such-namespace", "ServiceName": "s"}, "NamespaceNotFound"),
    ("get_namespace", {"Id": f"arn:aws:servicediscovery:elsewhere-1:000000000000:namespace/{GHOST_NAMESPACE}"}, "NamespaceNotFound"),
    ("get_service", {"Id": f"arn:aws:servicediscovery:us-east-1:000000000000:namespace/{GHOST_NAMESPACE}"}, "ServiceNotFound"),
]


@pytest.mark.parametrize("call,kwargs,code", NOT_FOUND, ids=[c[0] + "-" + c[2] for c in NOT_FOUND])
def test_not_found(sd, call, kwargs, code):
    with pytest.raises(ClientError) as e:
        getattr(sd, call)(**kwargs)
    assert error_of(e)[0] == code


@pytest.mark.parametrize("kind", ["private", "public"])
def test_dns_namespace_creation_errors(sd, name, kind):
    create = sd.create_private_dns_namespace if kind == "private" else sd.create_public_dns_namespace
    extra = {"Vpc": "default"} if kind == "private" else {}
    first = create(Name=f"{name}.example.com", CreatorRequestId="t", **extra)["OperationId"]
    with pytest.raises(ClientError) as e:
        create(Name=f"{name}-other.example.com", CreatorRequestId="t", **extra)
    code, _, resp = error_of(e)
    assert code == "DuplicateRequest" and resp["DuplicateOperationId"] == first
    with pytest.raises(ClientError) as e:
        create(Name=f"{name}-tags.example.com", Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)], **extra)
    assert error_of(e)[0] == "TooManyTagsException"
    for i in range(49):
        create(Name=f"{name}-{i}.example.com", **extra)
    with pytest.raises(ClientError) as e:
        create(Name=f"{name}-last.example.com", **extra)
    assert error_of(e)[0] == "ResourceLimitExceeded"


def test_create_service_with_too_many_tags(sd, name):
    ns = http_namespace(sd, name)
    with pytest.raises(ClientError) as e:
        sd.create_service(Name="s", NamespaceId=ns, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
    assert error_of(e)[0] == "TooManyTagsException"
    assert sd.list_services()["Services"] == []
