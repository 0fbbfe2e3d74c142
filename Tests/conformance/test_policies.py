"""IAM-style policies end to end: principals from the configuration, the three policies shipped in docs/policies/,
AccessDeniedException as AWS words it, and nothing changed by a denied call."""
import os

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from cairn_admin import signed_get
from cairn_process import CairnProcess, ROOT

ADMIN = ("AKIDPOLICYADMIN01", "admin-secret-0123456789abcdef")
REGISTRAR = ("AKIDPOLICYREGIST1", "registrar-secret-0123456789abc")
READER = ("AKIDPOLICYREADER1", "reader-secret-0123456789abcdef")
GUARDED = ("AKIDPOLICYGUARD01", "guarded-secret-0123456789abcde")
POLICIES = os.path.join(ROOT, "docs", "policies")

CONFIG = f"""
accessKeys:
  - id: {ADMIN[0]}
    secret: {ADMIN[1]}
principals:
  - name: registrar
    accessKeys: [{{id: {REGISTRAR[0]}, secret: {REGISTRAR[1]}}}]
    policyFiles: [{POLICIES}/registrar.json]
  - name: reader
    accessKeys: [{{id: {READER[0]}, secret: {READER[1]}}}]
    policyFiles: [{POLICIES}/reader.json]
  - name: guarded
    accessKeys: [{{id: {GUARDED[0]}, secret: {GUARDED[1]}}}]
    policies:
      - administrator
      - Version: "2012-10-17"
        Statement:
          - Sid: NeverTouchProduction
            Effect: Deny
            Action: ["servicediscovery:RegisterInstance", "servicediscovery:DeregisterInstance"]
            Resource: "*"
            Condition:
              StringEquals: {{"aws:ResourceTag/stage": prod}}
"""


@pytest.fixture(scope="module")
def server():
    s = CairnProcess(dev=False, config=CONFIG, extra_args=["--health-interval", "3600"]).start()
    yield s
    assert s.stop() == 0


def client(server, who):
    return boto3.client("servicediscovery", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=who[0],
                        aws_secret_access_key=who[1], config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def prepared(server):
    """example.internal with web, api (stage=prod) and db, set up by the administrator."""
    admin = client(server, ADMIN)
    op = admin.create_http_namespace(Name="example.internal")["OperationId"]
    ns = admin.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
    ids = {}
    for name in ("web", "api", "db"):
        tags = [{"Key": "stage", "Value": "prod"}] if name == "api" else []
        ids[name] = admin.create_service(Name=name, NamespaceId=ns, Tags=tags)["Service"]["Id"]
    return admin, ns, ids


@pytest.fixture
def world(server, prepared):
    """The administrator's client made for this test, so it talks to this test's node (in the cluster pass, reads
    after the test's own writes then see them)."""
    _, ns, ids = prepared
    return client(server, ADMIN), ns, ids


def denied(excinfo, action, principal):
    error = excinfo.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert f"User: arn:aws:iam::000000000000:user/{principal} is not authorized to perform: servicediscovery:{action}" in error["Message"]
    return error["Message"]


def test_registrar_registers_on_its_named_services_only(server, world):
    admin, ns, ids = world
    registrar = client(server, REGISTRAR)
    op = registrar.register_instance(ServiceId=ids["web"], InstanceId="web-1", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1"})
    assert registrar.get_operation(OperationId=op["OperationId"])["Operation"]["Status"] == "SUCCESS"
    assert [i["Id"] for i in registrar.list_instances(ServiceId=ids["web"])["Instances"]] == ["web-1"]
    assert [i["InstanceId"] for i in registrar.discover_instances(NamespaceName="example.internal", ServiceName="web")["Instances"]] == ["web-1"]

    with pytest.raises(ClientError) as e:
        registrar.register_instance(ServiceId=ids["db"], InstanceId="db-1", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.2"})
    message = denied(e, "RegisterInstance", "registrar")
    assert f"service/{ids['db']}" in message and "because no identity-based policy allows" in message
    assert admin.list_instances(ServiceId=ids["db"])["Instances"] == [], "a denied call changes nothing"

    with pytest.raises(ClientError) as e:
        registrar.delete_service(Id=ids["web"])
    denied(e, "DeleteService", "registrar")
    with pytest.raises(ClientError) as e:
        registrar.create_http_namespace(Name="mine")
    denied(e, "CreateHttpNamespace", "registrar")
    with pytest.raises(ClientError) as e:
        registrar.list_namespaces()
    denied(e, "ListNamespaces", "registrar")
    assert admin.get_service(Id=ids["web"])["Service"]["Name"] == "web"

    registrar.deregister_instance(ServiceId=ids["web"], InstanceId="web-1")
    assert admin.list_instances(ServiceId=ids["web"])["Instances"] == []


def test_reader_discovers_and_nothing_else(server, world):
    admin, ns, ids = world
    admin.register_instance(ServiceId=ids["db"], InstanceId="db-r", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.9"})
    reader = client(server, READER)
    found = reader.discover_instances(NamespaceName="example.internal", ServiceName="db")["Instances"]
    assert [i["InstanceId"] for i in found] == ["db-r"]
    assert reader.discover_instances_revision(NamespaceName="example.internal", ServiceName="db")["InstancesRevision"] > 0
    for call, action in [
        (lambda: reader.register_instance(ServiceId=ids["db"], InstanceId="x", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.3"}), "RegisterInstance"),
        (lambda: reader.get_service(Id=ids["db"]), "GetService"),
        (lambda: reader.list_services(), "ListServices"),
        (lambda: reader.delete_namespace(Id=ns), "DeleteNamespace"),
        (lambda: reader.tag_resource(ResourceARN=f"arn:aws:servicediscovery:us-east-1:000000000000:service/{ids['db']}",
                                     Tags=[{"Key": "k", "Value": "v"}]), "TagResource"),
    ]:
        with pytest.raises(ClientError) as e:
            call()
        denied(e, action, "reader")
    assert [i["Id"] for i in admin.list_instances(ServiceId=ids["db"])["Instances"]] == ["db-r"]
    assert admin.list_tags_for_resource(ResourceARN=f"arn:aws:servicediscovery:us-east-1:000000000000:service/{ids['db']}")["Tags"] == []
    # Cairn's own routes are actions too (cairn:*): the reader may not read the audit trail; the administrator may.
    status, body = signed_get(server.endpoint, "/cairn/v1/audit", *READER)
    assert status == 400 and b"AccessDeniedException" in body and b"cairn:LookupAuditEvents" in body
    assert signed_get(server.endpoint, "/cairn/v1/audit", *ADMIN)[0] == 200


def test_an_explicit_deny_beats_the_administrator_policy(server, world):
    admin, ns, ids = world
    guarded = client(server, GUARDED)
    guarded.register_instance(ServiceId=ids["web"], InstanceId="g-1", Attributes={"AWS_INSTANCE_IPV4": "10.0.1.1"})
    with pytest.raises(ClientError) as e:
        guarded.register_instance(ServiceId=ids["api"], InstanceId="g-2", Attributes={"AWS_INSTANCE_IPV4": "10.0.1.2"})
    assert "with an explicit deny in an identity-based policy" in denied(e, "RegisterInstance", "guarded")
    assert admin.list_instances(ServiceId=ids["api"])["Instances"] == []
    # The tag decides: once api is no longer prod, the same call goes through.
    arn = f"arn:aws:servicediscovery:us-east-1:000000000000:service/{ids['api']}"
    admin.untag_resource(ResourceARN=arn, TagKeys=["stage"])
    guarded.register_instance(ServiceId=ids["api"], InstanceId="g-2", Attributes={"AWS_INSTANCE_IPV4": "10.0.1.2"})
    assert [i["Id"] for i in admin.list_instances(ServiceId=ids["api"])["Instances"]] == ["g-2"]
    assert guarded.list_namespaces()["Namespaces"][0]["Name"] == "example.internal"


def test_a_bad_policy_stops_the_server_naming_the_key(tmp_path):
    config = f"""
principals:
  - name: broken
    accessKeys: [{{id: AKIDBROKEN0000001, secret: broken-secret-0123456789}}]
    policies:
      - Statement: {{Effect: Allow, Action: DiscoverInstances, Resource: "*"}}
"""
    proc = CairnProcess(dev=False, config=config, data_dir=str(tmp_path))
    with pytest.raises(RuntimeError) as e:
        proc.start(timeout=20)
    assert "principals[0].policies[0]" in str(e.value) and "service:Action" in str(e.value)
