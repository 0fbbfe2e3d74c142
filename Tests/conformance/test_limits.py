"""Resource quotas are configurable: a server with small limits shows each one as ResourceLimitExceeded."""
import pytest
from botocore.exceptions import ClientError

from cairn_process import CairnProcess
from conftest import client_for, error_of, http_namespace

CONFIG = """
limits:
  instancesPerService: 3
  instancesPerNamespace: 4
  tagsPerResource: 2
"""


@pytest.fixture(scope="module")
def small():
    server = CairnProcess(config=CONFIG).start()
    yield server
    server.stop()


def test_instances_per_service_and_per_namespace(small, name):
    sd = client_for(small.endpoint, "us-east-1")
    ns = http_namespace(sd, name)
    a = sd.create_service(Name="a", NamespaceId=ns)["Service"]["Id"]
    b = sd.create_service(Name="b", NamespaceId=ns)["Service"]["Id"]
    for i in range(3):
        sd.register_instance(ServiceId=a, InstanceId=f"i{i}", Attributes={})
    with pytest.raises(ClientError) as e:
        sd.register_instance(ServiceId=a, InstanceId="i3", Attributes={})
    assert error_of(e)[0] == "ResourceLimitExceeded"
    # Re-registering an existing instance is an update, not a new one.
    sd.register_instance(ServiceId=a, InstanceId="i0", Attributes={"v": "2"})
    sd.register_instance(ServiceId=b, InstanceId="j0", Attributes={})
    with pytest.raises(ClientError) as e:
        sd.register_instance(ServiceId=b, InstanceId="j1", Attributes={})
    assert error_of(e)[0] == "ResourceLimitExceeded"
    sd.deregister_instance(ServiceId=a, InstanceId="i0")
    sd.register_instance(ServiceId=b, InstanceId="j1", Attributes={})


def test_tags_per_resource(small, name):
    sd = client_for(small.endpoint, "us-east-1")
    ns = http_namespace(sd, name, Tags=[{"Key": "a", "Value": "1"}])
    arn = sd.get_namespace(Id=ns)["Namespace"]["Arn"]
    sd.tag_resource(ResourceARN=arn, Tags=[{"Key": "b", "Value": "2"}])
    with pytest.raises(ClientError) as e:
        sd.tag_resource(ResourceARN=arn, Tags=[{"Key": "c", "Value": "3"}])
    code, _, resp = error_of(e)
    assert code == "TooManyTagsException" and resp["ResourceName"] == arn
    sd.tag_resource(ResourceARN=arn, Tags=[{"Key": "a", "Value": "overwritten"}])
    assert sorted((t["Key"], t["Value"]) for t in sd.list_tags_for_resource(ResourceARN=arn)["Tags"]) == [("a", "overwritten"), ("b", "2")]
