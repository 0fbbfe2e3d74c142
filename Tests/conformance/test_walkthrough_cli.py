"""The first-run walkthrough (HTTP part) with the real aws CLI, as the README shows it."""
import json
import os
import subprocess
import time

import pytest


def aws(cairn, *args, env_extra=None):
    env = dict(os.environ)
    env.update({
        "AWS_ACCESS_KEY_ID": "AKIDWALKTHROUGH", "AWS_SECRET_ACCESS_KEY": "walkthrough-secret",
        # awscli 1.x reads AWS_DEFAULT_REGION; AWS_REGION is what the walkthrough exports (awscli 2 reads it).
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": cairn.endpoint, "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
        "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_PAGER": "",
    })
    env.update(env_extra or {})
    out = subprocess.run(["aws", "servicediscovery", *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip() else {}


def poll(cairn, op_id):
    for _ in range(50):
        op = aws(cairn, "get-operation", "--operation-id", op_id)["Operation"]
        if op["Status"] in ("SUCCESS", "FAIL"):
            return op
        time.sleep(0.1)
    pytest.fail(f"operation {op_id} did not finish")


def discovered(cairn, *extra):
    out = aws(cairn, "discover-instances", "--namespace-name", "demo", "--service-name", "orders", *extra)
    return sorted(i["InstanceId"] for i in out["Instances"]), out


def test_walkthrough(cairn):
    op = poll(cairn, aws(cairn, "create-http-namespace", "--name", "demo", "--description", "HTTP namespace for the lab")["OperationId"])
    assert op["Status"] == "SUCCESS"
    namespace_id = op["Targets"]["NAMESPACE"]

    service_id = aws(cairn, "create-service", "--name", "orders", "--namespace-id", namespace_id, "--description", "Orders",
                     "--health-check-custom-config", "FailureThreshold=1")["Service"]["Id"]
    assert aws(cairn, "get-service", "--id", service_id)["Service"]["Name"] == "orders"

    aws(cairn, "register-instance", "--service-id", service_id, "--instance-id", "orders-1",
        "--attributes", "AWS_INSTANCE_IPV4=10.0.1.10,AWS_INSTANCE_PORT=8080,version=v1,az=us-east-1a")
    aws(cairn, "register-instance", "--service-id", service_id, "--instance-id", "orders-2",
        "--attributes", "AWS_INSTANCE_IPV4=10.0.2.20,AWS_INSTANCE_PORT=8080,version=v2,az=us-east-1b")
    listed = aws(cairn, "list-instances", "--service-id", service_id)["Instances"]
    assert sorted(i["Id"] for i in listed) == ["orders-1", "orders-2"]

    ids, out = discovered(cairn)
    assert ids == ["orders-1", "orders-2"]
    attrs = {i["InstanceId"]: i["Attributes"] for i in out["Instances"]}
    assert attrs["orders-1"] == {"AWS_INSTANCE_IPV4": "10.0.1.10", "AWS_INSTANCE_PORT": "8080", "version": "v1", "az": "us-east-1a"}
    # The walkthrough writes --health-status-filter; the aws CLI's flag for DiscoverInstances.HealthStatus is --health-status.
    assert discovered(cairn, "--health-status", "HEALTHY")[0] == ["orders-1", "orders-2"]

    aws(cairn, "update-instance-custom-health-status", "--service-id", service_id, "--instance-id", "orders-1", "--status", "UNHEALTHY")
    assert discovered(cairn, "--health-status", "HEALTHY")[0] == ["orders-2"]
    aws(cairn, "update-instance-custom-health-status", "--service-id", service_id, "--instance-id", "orders-1", "--status", "HEALTHY")
    assert discovered(cairn, "--health-status", "HEALTHY")[0] == ["orders-1", "orders-2"]

    for instance in ("orders-1", "orders-2"):
        poll(cairn, aws(cairn, "deregister-instance", "--service-id", service_id, "--instance-id", instance)["OperationId"])
    aws(cairn, "delete-service", "--id", service_id)
    assert poll(cairn, aws(cairn, "delete-namespace", "--id", namespace_id)["OperationId"])["Status"] == "SUCCESS"
    assert "demo" not in [n["Name"] for n in aws(cairn, "list-namespaces")["Namespaces"]]


def test_cli_paginates_list_operations(cairn):
    """The aws CLI follows NextToken across short (cut-then-filter) pages."""
    for i in range(3):
        aws(cairn, "create-http-namespace", "--name", f"cli-page-{i}", env_extra={"AWS_DEFAULT_REGION": "test-cli-pages"})
    ops = aws(cairn, "list-operations", "--max-items", "10", "--page-size", "1", env_extra={"AWS_DEFAULT_REGION": "test-cli-pages"})
    assert len(ops["Operations"]) == 3
