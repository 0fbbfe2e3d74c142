"""GetOperation / ListOperations with every filter, and the tagging operations."""
import time

import pytest
from botocore.exceptions import ClientError

from conftest import error_of, http_namespace, wait_op


def test_operation_id_shape_and_shared_target_prefix(sd, name):
    ns = http_namespace(sd, name)
    s = sd.create_service(Name="s", NamespaceId=ns)["Service"]["Id"]
    reg = sd.register_instance(ServiceId=s, InstanceId="i", Attributes={})["OperationId"]
    dereg = sd.deregister_instance(ServiceId=s, InstanceId="i")["OperationId"]
    prefix, suffix = reg.split("-")
    assert len(prefix) == 32 and set(prefix) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert dereg.split("-")[0] == prefix and dereg != reg
    created = wait_op(sd, reg)["CreateDate"]
    assert abs(int(suffix, 36) / 1000 - created.timestamp()) < 1


def test_get_operation_not_found(sd):
    for op_id in ("nope", "a" * 32 + "-k9302yzd"):
        with pytest.raises(ClientError) as e:
            sd.get_operation(OperationId=op_id)
        assert error_of(e)[0] == "OperationNotFound"


def test_list_operations_filters(sd, name):
    start = int(time.time() * 1000) - 1
    ns = http_namespace(sd, name)
    other = http_namespace(sd, name + "-2")
    s = sd.create_service(Name="s", NamespaceId=ns)["Service"]["Id"]
    reg = sd.register_instance(ServiceId=s, InstanceId="i", Attributes={})["OperationId"]
    dereg = sd.deregister_instance(ServiceId=s, InstanceId="i")["OperationId"]
    end = int(time.time() * 1000) + 1

    def listed(filters):
        return [o["Id"] for o in sd.list_operations(Filters=filters)["Operations"]]

    everything = sd.list_operations()["Operations"]
    assert len(everything) == 4 and all(set(o) == {"Id", "Status"} for o in everything)
    assert listed([{"Name": "SERVICE_ID", "Values": [s]}]) == [reg, dereg]
    assert len(listed([{"Name": "NAMESPACE_ID", "Values": [other]}])) == 1
    assert listed([{"Name": "TYPE", "Values": ["DEREGISTER_INSTANCE"]}]) == [dereg]
    assert len(listed([{"Name": "TYPE", "Condition": "IN", "Values": ["REGISTER_INSTANCE", "CREATE_NAMESPACE"]}])) == 3
    assert len(listed([{"Name": "STATUS", "Values": ["SUCCESS"]}])) == 4
    assert listed([{"Name": "STATUS", "Condition": "IN", "Values": ["FAIL", "PENDING"]}]) == []
    assert len(listed([{"Name": "UPDATE_DATE", "Condition": "BETWEEN", "Values": [str(start), str(end)]}])) == 4
    assert listed([{"Name": "UPDATE_DATE", "Condition": "BETWEEN", "Values": ["0", str(start - 10)]}]) == []
    assert listed([{"Name": "SERVICE_ID", "Values": [s]}, {"Name": "TYPE", "Values": ["REGISTER_INSTANCE"]},
                   {"Name": "STATUS", "Values": ["SUCCESS"]}, {"Name": "NAMESPACE_ID", "Values": [ns]}]) == []


@pytest.mark.parametrize(
    "filters",
    [
        [{"Name": "STATUS", "Condition": "BETWEEN", "Values": ["SUCCESS", "FAIL"]}],
        [{"Name": "STATUS", "Values": ["DONE"]}],
        [{"Name": "TYPE", "Values": ["REGISTER_INSTANCE", "DEREGISTER_INSTANCE"]}],
        [{"Name": "UPDATE_DATE", "Condition": "BETWEEN", "Values": ["1"]}],
        [{"Name": "UPDATE_DATE", "Condition": "BETWEEN", "Values": ["yesterday", "today"]}],
        [{"Name": "NAMESPACE_ID", "Condition": "BEGINS_WITH", "Values": ["ns-"]}],
        [{"Name": "SERVICE_ID", "Condition": "IN", "Values": ["a", "b"]}],
        [{"Name": "TARGET", "Values": ["x"]}],
    ],
)
def test_bad_operation_filters(sd, filters):
    with pytest.raises(ClientError) as e:
        sd.list_operations(Filters=filters)
    assert error_of(e)[0] == "InvalidInput"


def test_list_operations_cuts_the_page_before_filtering(sd, name):
    for i in range(5):
        http_namespace(sd, f"{name}-{i}")
    ns = sd.list_namespaces()["Namespaces"][0]["Id"]
    s = sd.create_service(Name="s", NamespaceId=ns)["Service"]["Id"]
    sd.register_instance(ServiceId=s, InstanceId="i", Attributes={})
    first = sd.list_operations(MaxResults=2, Filters=[{"Name": "TYPE", "Values": ["REGISTER_INSTANCE"]}])
    assert first["Operations"] == [] and first["NextToken"]
    found = []
    for page in sd.get_paginator("list_operations").paginate(
            Filters=[{"Name": "TYPE", "Values": ["REGISTER_INSTANCE"]}], PaginationConfig={"PageSize": 2}):
        found += page["Operations"]
    assert len(found) == 1


def test_tags_on_namespaces_and_services(sd, name):
    ns = http_namespace(sd, name, Tags=[{"Key": "team", "Value": "core"}])
    ns_arn = sd.get_namespace(Id=ns)["Namespace"]["Arn"]
    svc = sd.create_service(Name="s", NamespaceId=ns, Tags=[{"Key": "tier", "Value": ""}])["Service"]
    assert sd.list_tags_for_resource(ResourceARN=ns_arn)["Tags"] == [{"Key": "team", "Value": "core"}]
    assert sd.list_tags_for_resource(ResourceARN=svc["Arn"])["Tags"] == [{"Key": "tier", "Value": ""}]
    sd.tag_resource(ResourceARN=svc["Arn"], Tags=[{"Key": "tier", "Value": "web"}, {"Key": "Tier", "Value": "case-sensitive"}])
    assert sorted((t["Key"], t["Value"]) for t in sd.list_tags_for_resource(ResourceARN=svc["Arn"])["Tags"]) == [
        ("Tier", "case-sensitive"), ("tier", "web")]
    sd.untag_resource(ResourceARN=svc["Arn"], TagKeys=["tier", "not-there"])
    assert sd.list_tags_for_resource(ResourceARN=svc["Arn"])["Tags"] == [{"Key": "Tier", "Value": "case-sensitive"}]
    with pytest.raises(ClientError) as e:
        sd.tag_resource(ResourceARN=ns_arn, Tags=[{"Key": "aws:reserved", "Value": "x"}])
    assert error_of(e)[0] == "InvalidInput"
    with pytest.raises(ClientError) as e:
        sd.tag_resource(ResourceARN=ns_arn, Tags=[{"Key": "k" * 129, "Value": "x"}])
    assert error_of(e)[0] == "InvalidInput"
    with pytest.raises(ClientError) as e:
        sd.tag_resource(ResourceARN=ns_arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert error_of(e)[0] == "TooManyTagsException"
    assert len(sd.list_tags_for_resource(ResourceARN=ns_arn)["Tags"]) == 1


@pytest.mark.parametrize("call", ["list_tags_for_resource", "tag_resource", "untag_resource"])
def test_tag_errors(sd, region, call):
    args = {"tag_resource": {"Tags": [{"Key": "a", "Value": "b"}]}, "untag_resource": {"TagKeys": ["a"]}}.get(call, {})
    missing = f"arn:aws:servicediscovery:{region}:000000000000:namespace/ns-aaaaaaaaaaaaaaaa"
    with pytest.raises(ClientError) as e:
        getattr(sd, call)(ResourceARN=missing, **args)
    assert error_of(e)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        getattr(sd, call)(ResourceARN="not-an-arn", **args)
    assert error_of(e)[0] == "InvalidInput"
