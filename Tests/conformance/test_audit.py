"""The audit trail: one CloudTrail-shaped record per call, written in the same transaction as the change it
describes; look-up, export, `cairn audit verify`, and what a kill -9 leaves behind."""
import json
import os
import sqlite3
import subprocess
import threading
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from cairn_admin import lookup, signed_get
from cairn_process import BINARY, CairnProcess

ADMIN = ("AKIDAUDITADMIN001", "audit-admin-secret-0123456789")
READER = ("AKIDAUDITREADER01", "audit-reader-secret-012345678")
CONFIG = f"""
accessKeys:
  - {{id: {ADMIN[0]}, secret: {ADMIN[1]}}}
principals:
  - name: reader
    accessKeys: [{{id: {READER[0]}, secret: {READER[1]}}}]
    policies: [reader]
"""


def client(server, who=ADMIN, **config):
    return boto3.client("servicediscovery", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=who[0],
                        aws_secret_access_key=who[1],
                        config=Config(inject_host_prefix=False, retries={"max_attempts": 1}, **config))


def verify(data_dir):
    out = subprocess.run([BINARY, "audit", "verify", "--data-dir", data_dir, "--json"], capture_output=True, text=True, timeout=60)
    return out.returncode, json.loads(out.stdout) if out.stdout.strip() else out.stderr


@pytest.fixture(scope="module")
def server():
    s = CairnProcess(dev=False, config=CONFIG, extra_args=["--health-interval", "3600"]).start()
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def walkthrough(server):
    """The walkthrough's calls through boto3, each with its request id; returns the calls in order."""
    sd = client(server)
    calls = []

    def call(name, **kwargs):
        method = getattr(sd, name)
        try:
            response = method(**kwargs)
            calls.append((name, response["ResponseMetadata"]["RequestId"], None, kwargs))
            return response
        except ClientError as e:
            calls.append((name, e.response["ResponseMetadata"]["RequestId"], e.response["Error"]["Code"], kwargs))
            raise

    op = call("create_http_namespace", Name="audit-demo", Description="audited")["OperationId"]
    ns = call("get_operation", OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
    svc = call("create_service", Name="orders", NamespaceId=ns, HealthCheckCustomConfig={"FailureThreshold": 1})["Service"]
    call("register_instance", ServiceId=svc["Id"], InstanceId="orders-1", Attributes={"AWS_INSTANCE_IPV4": "10.0.1.10", "version": "v1"})
    call("register_instance", ServiceId=svc["Id"], InstanceId="orders-2", Attributes={"AWS_INSTANCE_IPV4": "10.0.2.20", "version": "v2"})
    call("list_instances", ServiceId=svc["Id"])
    sd.discover_instances(NamespaceName="audit-demo", ServiceName="orders")  # not recorded, as in AWS
    call("update_instance_custom_health_status", ServiceId=svc["Id"], InstanceId="orders-1", Status="UNHEALTHY")
    with pytest.raises(ClientError):
        call("get_instance", ServiceId=svc["Id"], InstanceId="missing")
    call("deregister_instance", ServiceId=svc["Id"], InstanceId="orders-2")
    with pytest.raises(ClientError):
        call("register_instance", ServiceId=svc["Id"], InstanceId="bad id!", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1"})
    with pytest.raises(ClientError):
        client(server, READER).register_instance(ServiceId=svc["Id"], InstanceId="r", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1"})
    calls.append(("register_instance", None, "AccessDeniedException", {}))
    return calls, ns, svc


def camel(name):
    return "".join(part.capitalize() for part in name.split("_"))


def test_one_record_per_call_with_cloudtrail_fields(server, walkthrough):
    calls, ns, svc = walkthrough
    events = list(reversed(lookup(server.endpoint, *ADMIN)))
    assert [e["eventName"] for e in events] == [camel(name) for name, *_ in calls]
    assert "DiscoverInstances" not in {e["eventName"] for e in events}
    for event, (name, request_id, error, kwargs) in zip(events, calls):
        assert event["eventVersion"] == "1.09" and event["eventSource"] == "servicediscovery.amazonaws.com"
        assert event["eventType"] == "AwsApiCall" and event["awsRegion"] == "us-east-1"
        assert event["sourceIPAddress"] == "127.0.0.1"
        assert "Boto3" in event["userAgent"]
        assert event["recipientAccountId"] == "000000000000"
        assert uuid.UUID(event["eventID"])
        assert event["eventTime"].endswith("Z") and event["eventTime"][:2] == "20"
        if request_id:
            assert event["requestID"] == request_id
        assert event.get("errorCode") == error
        assert event["readOnly"] == name.startswith(("get_", "list_"))
    by_name = {}
    for event in events:
        by_name.setdefault(event["eventName"], []).append(event)

    create = by_name["CreateHttpNamespace"][0]
    # boto3 fills CreatorRequestId (an idempotency token) itself; it is recorded like any member.
    assert uuid.UUID(create["requestParameters"].pop("creatorRequestId"))
    assert create["requestParameters"] == {"name": "audit-demo", "description": "audited"}
    assert set(create["responseElements"]) == {"operationId"}
    assert create["userIdentity"] == {"type": "IAMUser", "principalId": ADMIN[0], "arn": "arn:aws:iam::000000000000:user/administrator",
                                      "accountId": "000000000000", "accessKeyId": ADMIN[0], "userName": "administrator"}
    register = by_name["RegisterInstance"][0]
    assert uuid.UUID(register["requestParameters"].pop("creatorRequestId"))
    # Member names go lower camel; attribute keys are data and stay as given.
    assert register["requestParameters"] == {"serviceId": svc["Id"], "instanceId": "orders-1",
                                             "attributes": {"AWS_INSTANCE_IPV4": "10.0.1.10", "version": "v1"}}
    assert register["responseElements"]["operationId"]
    assert {r["ARN"] for r in register["resources"]} == {svc["Arn"], svc["Arn"].replace(f"service/{svc['Id']}", f"namespace/{ns}")}
    created = by_name["CreateService"][0]
    assert created["responseElements"]["service"]["id"] == svc["Id"]
    assert created["requestParameters"]["healthCheckCustomConfig"] == {"failureThreshold": 1}
    assert by_name["GetInstance"][0]["errorCode"] == "InstanceNotFound"
    invalid = by_name["RegisterInstance"][2]
    assert invalid["errorCode"] == "InvalidInput" and invalid["responseElements"] is None
    refused = by_name["RegisterInstance"][3]
    assert refused["errorCode"] == "AccessDeniedException" and refused["userIdentity"]["userName"] == "reader"
    assert by_name["UpdateInstanceCustomHealthStatus"][0]["requestParameters"]["status"] == "UNHEALTHY"
    secret_free = json.dumps(events)
    assert ADMIN[1] not in secret_free and READER[1] not in secret_free


def test_look_up_filters_and_pages(server, walkthrough):
    calls, ns, svc = walkthrough
    everything = lookup(server.endpoint, *ADMIN)
    assert len(lookup(server.endpoint, *ADMIN, EventName="RegisterInstance")) == 4
    assert [e["userIdentity"]["userName"] for e in lookup(server.endpoint, *ADMIN, Principal="reader")] == ["reader"]
    assert len(lookup(server.endpoint, *ADMIN, Principal=ADMIN[0])) == len(everything) - 1
    about_service = lookup(server.endpoint, *ADMIN, Resource=svc["Id"])
    assert {e["eventName"] for e in about_service} >= {"RegisterInstance", "DeregisterInstance", "ListInstances", "CreateService"}
    assert lookup(server.endpoint, *ADMIN, Resource=svc["Arn"]) == about_service
    status, body = signed_get(server.endpoint, "/cairn/v1/audit", *ADMIN, MaxResults="3")
    page = json.loads(body)
    assert len(page["Events"]) == 3 and page["NextToken"]
    assert [e["eventID"] for e in page["Events"]] == [e["eventID"] for e in everything[:3]]
    assert lookup(server.endpoint, *ADMIN, StartTime="2999-01-01T00:00:00Z") == []
    assert len(lookup(server.endpoint, *ADMIN, StartTime="0", EndTime="4102444800")) == len(everything)
    assert signed_get(server.endpoint, "/cairn/v1/audit", *ADMIN, MaxResults="0")[0] == 400
    assert signed_get(server.endpoint, "/cairn/v1/audit", *ADMIN, StartTime="yesterday")[0] == 400
    assert signed_get(server.endpoint, "/cairn/v1/audit", ADMIN[0], "wrong-secret-0123456789")[0] == 403


def test_export_is_every_record_oldest_first_as_json_lines(server, walkthrough):
    status, body = signed_get(server.endpoint, "/cairn/v1/audit/export", *ADMIN)
    assert status == 200
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert [e["cairnSequence"] for e in lines] == list(range(lines[0]["cairnSequence"], lines[0]["cairnSequence"] + len(lines)))
    assert [e["eventID"] for e in lines] == [e["eventID"] for e in reversed(lookup(server.endpoint, *ADMIN))]
    for before, after in zip(lines, lines[1:]):
        assert len(after["cairnPreviousHash"]) == 64 and after["cairnPreviousHash"] != before["cairnPreviousHash"]


def test_verify_detects_an_edited_record(server, walkthrough, tmp_path):
    code, result = verify(server.data_dir)
    assert code == 0 and result["intact"] and result["records"] >= 10, result
    # Tamper with a copy of the store: change what one RegisterInstance record says.
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", server.data_dir, str(copy)], check=True)
    db = sqlite3.connect(copy / "cairn.sqlite")
    seq, record = db.execute("SELECT seq, record FROM audit_log WHERE event_name = 'RegisterInstance' ORDER BY seq LIMIT 1").fetchone()
    db.execute("UPDATE audit_log SET record = ? WHERE seq = ?", (bytes(record).replace(b"10.0.1.10", b"10.6.6.6"), seq))
    db.commit()
    db.close()
    code, result = verify(str(copy))
    assert code == 1 and not result["intact"] and result["firstBroken"] == seq
    text = subprocess.run([BINARY, "audit", "verify", "--data-dir", str(copy)], capture_output=True, text=True).stdout
    assert f"record {seq} was changed" in text


def test_kill_9_never_leaves_a_change_without_its_record(tmp_path):
    server = CairnProcess(dev=True, data_dir=str(tmp_path / "data"), extra_args=["--health-interval", "3600", "--no-dns"]).start()
    sd = boto3.client("servicediscovery", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id="AKIDKILL",
                      aws_secret_access_key="x", config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))
    ns = sd.get_operation(OperationId=sd.create_http_namespace(Name="crash")["OperationId"])["Operation"]["Targets"]["NAMESPACE"]
    svc = sd.create_service(Name="s", NamespaceId=ns)["Service"]["Id"]
    acknowledged, stop = [], threading.Event()

    def writer(n):
        own = boto3.client("servicediscovery", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id="AKIDKILL",
                           aws_secret_access_key="x", config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))
        i = 0
        while not stop.is_set():
            try:
                own.register_instance(ServiceId=svc, InstanceId=f"w{n}-{i}", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1"})
                acknowledged.append(f"w{n}-{i}")
            except Exception:
                return
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    while len(acknowledged) < 150:
        threading.Event().wait(0.02)
    server.kill()
    stop.set()
    for t in threads:
        t.join()

    again = CairnProcess(dev=True, data_dir=server.data_dir, extra_args=["--health-interval", "3600", "--no-dns"]).start()
    try:
        sd = boto3.client("servicediscovery", endpoint_url=again.endpoint, region_name="us-east-1", aws_access_key_id="AKIDKILL",
                          aws_secret_access_key="x", config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))
        stored = set()
        for page in sd.get_paginator("list_instances").paginate(ServiceId=svc):
            stored |= {i["Id"] for i in page["Instances"]}
        assert set(acknowledged) <= stored
        records = lookup(again.endpoint, "AKIDKILL", "x", EventName="RegisterInstance")
        recorded = {e["requestParameters"]["instanceId"] for e in records if "errorCode" not in e}
        assert stored == recorded, "every stored change has its record, and no record claims a change that is not stored"
        operations = {e["responseElements"]["operationId"] for e in records if "errorCode" not in e}
        assert len(operations) == len(recorded)
    finally:
        assert again.stop() == 0
    code, result = verify(server.data_dir)
    assert code == 0 and result["intact"], result


def test_a_presigned_url_exports_the_trail_without_headers(server, walkthrough):
    from cairn_admin import plain_get, presigned_url
    url = presigned_url(server.endpoint, "/cairn/v1/audit/export", *ADMIN)
    status, body = plain_get(url)
    assert status == 200 and len(body.splitlines()) >= 10
    assert plain_get(url.replace("X-Amz-Expires=300", "X-Amz-Expires=301"))[0] == 403
    status, body = plain_get(presigned_url(server.endpoint, "/cairn/v1/audit/export", ADMIN[0], "not-the-secret-0123456789"))
    assert status == 403 and b"InvalidSignatureException" in body
    short = presigned_url(server.endpoint, "/cairn/v1/audit", *ADMIN, expires=1)
    time.sleep(2.2)
    status, body = plain_get(short)
    assert status == 403 and b"Request has expired" in body
    status, body = plain_get(presigned_url(server.endpoint, "/cairn/v1/audit", *READER))
    assert status == 400 and b"AccessDeniedException" in body
