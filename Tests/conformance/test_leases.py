"""Ephemeral instances (a Cairn extension, docs/api-compatibility.md): an instance registered with
CAIRN_LEASE_SECONDS stays while its lease is renewed (`cairn instances renew`, or POST /cairn/v1/leases/renew) and is
deregistered by Cairn, with an audit record naming Cairn, when it is not. Other instances are never touched."""
import json
import os
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from cairn_admin import lookup
from cairn_process import BINARY, CairnProcess
from conftest import client_for, error_of, http_namespace


def cli(cairn, region, *args, code=0):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"CAIRN_ENDPOINT": cairn.endpoint, "AWS_ACCESS_KEY_ID": "AKIDCAIRNTEST",
                "AWS_SECRET_ACCESS_KEY": "any-secret-works-in-dev-mode", "AWS_REGION": region,
                "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    out = subprocess.run([BINARY, *args], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == code, f"cairn {' '.join(args)} → {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out


def present(sd, service):
    return {i["Id"] for i in sd.list_instances(ServiceId=service)["Instances"]}


def until(check, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
def web(sd, name):
    ns = http_namespace(sd, name)
    return sd.create_service(Name="web", NamespaceId=ns)["Service"]["Id"]


def test_a_renewed_lease_keeps_the_instance_and_an_expired_one_is_deregistered_and_audited(cairn, sd, region, web):
    sd.register_instance(ServiceId=web, InstanceId="ephemeral", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1", "CAIRN_LEASE_SECONDS": "10"})
    sd.register_instance(ServiceId=web, InstanceId="permanent", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.2"})
    # Renewed every 2 s for longer than the lease: it stays.
    started = time.monotonic()
    while time.monotonic() - started < 15:
        out = cli(cairn, region, "instances", "renew", web, "ephemeral")
        assert "renewed" in out.stdout
        assert present(sd, web) == {"ephemeral", "permanent"}
        time.sleep(2)
    # Not renewed any more: Cairn deregisters it, and only it.
    until(lambda: present(sd, web) == {"permanent"}, "the expired instance is deregistered")
    events = [e for e in lookup(cairn.endpoint, "AKIDCAIRNTEST", "any", EventName="DeregisterInstance")
              if e["awsRegion"] == region]
    assert len(events) == 1, events
    [event] = events
    assert event["userIdentity"] == {"type": "AWSService", "invokedBy": "cairn.lease-expiry"}
    assert event["requestParameters"] == {"serviceId": web, "instanceId": "ephemeral"}
    operation = sd.get_operation(OperationId=event["responseElements"]["operationId"])["Operation"]
    assert operation["Type"] == "DEREGISTER_INSTANCE" and operation["Status"] == "SUCCESS"
    assert operation["Targets"] == {"INSTANCE": "ephemeral", "SERVICE": web}
    # The trail names Cairn as the principal, so it can be looked up by it.
    assert any(e["eventID"] == event["eventID"] for e in lookup(cairn.endpoint, "AKIDCAIRNTEST", "any", Principal="cairn.lease-expiry"))
    time.sleep(12)  # longer than any lease here: the instance without one is still there
    assert present(sd, web) == {"permanent"}


def test_registering_again_retakes_the_lease(cairn, sd, region, web):
    attributes = {"AWS_INSTANCE_IPV4": "10.0.0.1", "CAIRN_LEASE_SECONDS": "10"}
    sd.register_instance(ServiceId=web, InstanceId="again", Attributes=attributes)
    started = time.monotonic()
    while time.monotonic() - started < 15:
        sd.register_instance(ServiceId=web, InstanceId="again", Attributes=attributes)
        assert present(sd, web) == {"again"}
        time.sleep(2)
    # Registered again without the attribute: an ordinary instance, never expired.
    sd.register_instance(ServiceId=web, InstanceId="again", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1"})
    time.sleep(12)
    assert present(sd, web) == {"again"}
    out = cli(cairn, region, "instances", "renew", web, "again", code=1)
    assert "InvalidInput" in out.stderr and "no lease" in out.stderr


@pytest.mark.parametrize("lease", ["0", "4", "86401", "315360000", "abc", "-5", "1e3", " 10", ""])
def test_a_lease_out_of_range_is_refused(sd, web, lease):
    with pytest.raises(ClientError) as e:
        sd.register_instance(ServiceId=web, InstanceId="bad", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1", "CAIRN_LEASE_SECONDS": lease})
    code, message, _ = error_of(e)
    assert code == "InvalidInput" and "CAIRN_LEASE_SECONDS" in message, message
    assert present(sd, web) == set()


def test_renewing_something_that_is_not_there_gets_a_clear_error(cairn, sd, region, web):
    out = cli(cairn, region, "instances", "renew", web, "nobody", code=1)
    assert "InstanceNotFound" in out.stderr
    out = cli(cairn, region, "instances", "renew", "srv-doesnotexist1", "nobody", code=1)
    assert "ServiceNotFound" in out.stderr
    from cairn_admin import signed_get  # a GET is not a renewal
    status, _ = signed_get(cairn.endpoint, "/cairn/v1/leases/renew", "AKIDCAIRNTEST", "any", region=region, ServiceId=web, InstanceId="x")
    assert status in (404, 405)


def test_a_restart_gives_every_lease_a_full_length_before_it_can_expire(tmp_path):
    """Renewals are not in checkpoints, so after a start Cairn waits one lease before expiring anything: an instance
    whose lease ran out while Cairn was down is still there at once after the restart, and goes a lease later."""
    server = CairnProcess(data_dir=str(tmp_path), extra_args=["--health-interval", "3600"], single=True).start()
    sd = client_for(server.endpoint, "us-east-1")
    ns = http_namespace(sd, "restarted")
    web = sd.create_service(Name="web", NamespaceId=ns)["Service"]["Id"]
    sd.register_instance(ServiceId=web, InstanceId="e", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1", "CAIRN_LEASE_SECONDS": "8"})
    assert server.stop() == 0
    time.sleep(9)  # the lease ran out while the server was down
    server = CairnProcess(data_dir=str(tmp_path), extra_args=["--health-interval", "3600"], single=True).start()
    try:
        sd = client_for(server.endpoint, "us-east-1")
        assert present(sd, web) == {"e"}
        until(lambda: present(sd, web) == set(), "the lease expires a full lease after the start")
    finally:
        assert server.stop() == 0
