"""Durability: everything survives a restart, and no acknowledged write is lost to kill -9."""
import concurrent.futures
import os
import threading
import time

from botocore.exceptions import ClientError, EndpointConnectionError, ConnectionClosedError
from urllib3.exceptions import ProtocolError

from cairn_process import CairnProcess
from conftest import client_for, wait_op


def snapshot(sd):
    """Everything a client can read back, in a comparable form."""
    operations = [o for page in sd.get_paginator("list_operations").paginate() for o in page["Operations"]]
    state = {"namespaces": {}, "operations": sorted(sd.get_operation(OperationId=o["Id"])["Operation"]["Id"] for o in operations)}
    for ns in sd.list_namespaces()["Namespaces"]:
        full = sd.get_namespace(Id=ns["Id"])["Namespace"]
        tags = sd.list_tags_for_resource(ResourceARN=full["Arn"])["Tags"]
        state["namespaces"][ns["Id"]] = {"ns": full, "tags": tags, "services": {}}
    for svc in sd.list_services()["Services"]:
        full = sd.get_service(Id=svc["Id"])["Service"]
        instances = {}
        for inst in sd.list_instances(ServiceId=svc["Id"])["Instances"]:
            instances[inst["Id"]] = sd.get_instance(ServiceId=svc["Id"], InstanceId=inst["Id"])["Instance"]
        http_name = state["namespaces"][full["NamespaceId"]]["ns"]["Properties"]["HttpProperties"]["HttpName"]
        state["namespaces"][full["NamespaceId"]]["services"][svc["Id"]] = {
            "service": full,
            "attributes": sd.get_service_attributes(ServiceId=svc["Id"])["ServiceAttributes"],
            "tags": sd.list_tags_for_resource(ResourceARN=full["Arn"])["Tags"],
            "instances": instances,
            "health": sd.get_instances_health_status(ServiceId=svc["Id"])["Status"],
            "revision": sd.discover_instances_revision(NamespaceName=http_name, ServiceName=full["Name"])["InstancesRevision"],
        }
    return state


def populate(sd):
    op = sd.create_http_namespace(Name="persist", Description="kept", Tags=[{"Key": "k", "Value": "v"}])["OperationId"]
    ns = wait_op(sd, op)["Targets"]["NAMESPACE"]
    op = sd.create_private_dns_namespace(Name="persist.local", Vpc="default", Properties={"DnsProperties": {"SOA": {"TTL": 77}}})["OperationId"]
    dns_ns = wait_op(sd, op)["Targets"]["NAMESPACE"]
    s = sd.create_service(Name="api", NamespaceId=ns, HealthCheckCustomConfig={}, Tags=[{"Key": "tier", "Value": "1"}])["Service"]["Id"]
    d = sd.create_service(Name="dns", NamespaceId=dns_ns, DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 5}]})["Service"]["Id"]
    sd.update_service_attributes(ServiceId=s, Attributes={"owner": "team-a"})
    for i in range(5):
        sd.register_instance(ServiceId=s, InstanceId=f"i{i}", Attributes={"n": str(i)})
        sd.register_instance(ServiceId=d, InstanceId=f"d{i}", Attributes={"AWS_INSTANCE_IPV4": f"10.0.0.{i + 1}"})
    sd.update_instance_custom_health_status(ServiceId=s, InstanceId="i2", Status="UNHEALTHY")
    sd.deregister_instance(ServiceId=s, InstanceId="i4")
    return ns, s


def test_restart_brings_everything_back():
    server = CairnProcess().start()
    try:
        sd = client_for(server.endpoint, "us-east-1")
        populate(sd)
        before = snapshot(sd)
        assert server.stop() == 0
        server.start()
        sd = client_for(server.endpoint, "us-east-1")
        assert snapshot(sd) == before
        # Revisions keep moving forward after a restart.
        svc = next(s for s in sd.list_services()["Services"] if s["Name"] == "api")
        old = sd.discover_instances_revision(NamespaceName="persist", ServiceName="api")["InstancesRevision"]
        sd.register_instance(ServiceId=svc["Id"], InstanceId="new", Attributes={})
        assert sd.discover_instances_revision(NamespaceName="persist", ServiceName="api")["InstancesRevision"] > old
        # The same idempotency token still maps to the same operation after the restart.
        ns = sd.list_namespaces()["Namespaces"][0]["Id"]
        a = sd.update_http_namespace(Id=ns, Namespace={"Description": "x"}, UpdaterRequestId="restart-token")["OperationId"]
        assert server.stop() == 0
        server.start()
        sd = client_for(server.endpoint, "us-east-1")
        assert sd.update_http_namespace(Id=ns, Namespace={"Description": "x"}, UpdaterRequestId="restart-token")["OperationId"] == a
    finally:
        server.stop()


def test_kill_minus_9_loses_no_acknowledged_registration():
    server = CairnProcess().start()
    sd = client_for(server.endpoint, "us-east-1")
    ns = wait_op(sd, sd.create_http_namespace(Name="crash")["OperationId"])["Targets"]["NAMESPACE"]
    service = sd.create_service(Name="s", NamespaceId=ns)["Service"]["Id"]
    acknowledged, lock, stop = [], threading.Lock(), threading.Event()

    def writer(worker):
        client = client_for(server.endpoint, "us-east-1", connect_timeout=2, read_timeout=5)
        n = 0
        while not stop.is_set():
            iid = f"w{worker}-{n}"
            try:
                client.register_instance(ServiceId=service, InstanceId=iid, Attributes={"n": str(n)})
            except (ClientError, EndpointConnectionError, ConnectionClosedError, ProtocolError, OSError):
                return
            except Exception:  # any transport failure once the server is gone
                return
            with lock:
                acknowledged.append(iid)
            n += 1

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(writer, w) for w in range(8)]
        deadline = time.time() + 20
        while len(acknowledged) < 300 and time.time() < deadline:
            time.sleep(0.05)
        server.kill()
        stop.set()
        for f in futures:
            f.result(30)
    assert len(acknowledged) >= 100, f"only {len(acknowledged)} registrations before the kill"
    server.start()
    try:
        sd = client_for(server.endpoint, "us-east-1")
        present = set()
        for page in sd.get_paginator("list_instances").paginate(ServiceId=service):
            present |= {i["Id"] for i in page["Instances"]}
        missing = [i for i in acknowledged if i not in present]
        assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged registrations lost: {missing[:5]}"
        # Every instance that exists has its operation too (the change and its record are one transaction).
        ops = set()
        for page in sd.get_paginator("list_operations").paginate(Filters=[{"Name": "SERVICE_ID", "Values": [service]}]):
            ops |= {o["Id"] for o in page["Operations"]}
        assert len(ops) >= len(present)
    finally:
        server.stop()


def test_sigterm_exits_zero_and_keeps_writes():
    server = CairnProcess().start()
    sd = client_for(server.endpoint, "us-east-1")
    wait_op(sd, sd.create_http_namespace(Name="term")["OperationId"])
    assert server.stop() == 0
    server.start()
    try:
        assert [n["Name"] for n in client_for(server.endpoint, "us-east-1").list_namespaces()["Namespaces"]] == ["term"]
    finally:
        server.stop()


def test_data_dir_is_created_and_reused(tmp_path):
    data = tmp_path / "nested" / "dir"
    server = CairnProcess(data_dir=str(data)).start()
    try:
        assert os.path.exists(data / "cairn.sqlite")
    finally:
        server.stop()
