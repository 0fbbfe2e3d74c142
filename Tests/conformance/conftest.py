import itertools
import os
import socket
import uuid

import boto3
import pytest
from botocore.config import Config

import cairn_process
from cairn_process import CairnProcess

_regions = itertools.count(1)

# Every (operation, error code or "OK") that boto3 saw in this run; test_zz_coverage checks it covers the model.
SEEN = set()


def _record(http_response, parsed, model, **kwargs):
    SEEN.add((model.name, parsed.get("Error", {}).get("Code", "OK")))


def client_for(endpoint, region, **config):
    client = boto3.client(
        "servicediscovery",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="AKIDCAIRNTEST",
        aws_secret_access_key="any-secret-works-in-dev-mode",
        config=Config(**{"inject_host_prefix": False, "parameter_validation": False, "retries": {"max_attempts": 1}, **config}),
    )
    client.meta.events.register("after-call.servicediscovery", _record)
    return client


# Not collected in the cluster pass (CAIRN_TEST_CLUSTER): tests of one process's own files, signals and start-up.
SINGLE_NODE = {
    "test_durability.py": "kills one process and reads its SQLite files",
    "test_hardening_store.py": "damages SQLite files",
    "test_lifecycle.py": "signals one process and restarts it on its data directory",
    "test_configuration.py": "checks one process's start-up settings",
    "test_cluster.py": "starts clusters of its own",
    "test_zz_coverage.py": "checks what the whole single-node pass covered",
    "test_audit.py::test_verify_detects_an_edited_record": "edits the SQLite audit trail",
    "test_audit.py::test_kill_9_never_leaves_a_change_without_its_record": "kills one process and restarts it on its files",
    "test_hardening_connections.py::test_sigterm_ends_although_a_client_holds_a_half_sent_body": "signals one process",
    "test_longpoll.py::test_sigterm_answers_a_waiting_call_and_the_server_exits_cleanly": "signals one process",
}


def pytest_collection_modifyitems(config, items):
    if cairn_process.CLUSTER < 2:
        return
    kept, dropped = [], []
    for item in items:
        module, _, name = item.nodeid.rpartition("/")[2].partition("::")
        single = module in SINGLE_NODE or f"{module}::{name.split('[')[0]}" in SINGLE_NODE
        (dropped if single else kept).append(item)
    items[:] = kept
    config.hook.pytest_deselected(items=dropped)


@pytest.fixture(autouse=True)
def _next_cluster_node():
    """In the cluster pass each test talks to the next node, once every node has applied what came before."""
    if cairn_process.CLUSTER >= 2:
        cairn_process.next_node()
    yield


@pytest.fixture(scope="session")
def cairn():
    """The shared server. Limits are AWS's defaults; tests isolate themselves by region. It probes hourly, so a
    check never races an assertion about the state before the first probe (test_health.py probes every second)."""
    server = CairnProcess(extra_args=["--health-interval", "3600"]).start()
    yield server
    code = server.stop()
    assert code == 0, "cairn did not exit cleanly on SIGTERM:\n" + "".join(server.log_lines[-30:])


@pytest.fixture
def region():
    """A region of this test's own: Cairn scopes every resource per SigV4 region, as AWS does."""
    return f"test-{next(_regions)}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def sd(cairn, region):
    return client_for(cairn.endpoint, region)


@pytest.fixture
def name():
    return f"n{uuid.uuid4().hex[:10]}"


def wait_op(sd, op_id):
    op = sd.get_operation(OperationId=op_id)["Operation"]
    assert op["Status"] in ("SUCCESS", "FAIL"), op
    return op


def http_namespace(sd, name, **kw):
    op = sd.create_http_namespace(Name=name, **kw)["OperationId"]
    return wait_op(sd, op)["Targets"]["NAMESPACE"]


def private_namespace(sd, name, **kw):
    kw.setdefault("Vpc", "default")
    op = sd.create_private_dns_namespace(Name=name, **kw)["OperationId"]
    return wait_op(sd, op)["Targets"]["NAMESPACE"]


def public_namespace(sd, name, **kw):
    op = sd.create_public_dns_namespace(Name=name, **kw)["OperationId"]
    return wait_op(sd, op)["Targets"]["NAMESPACE"]


def error_of(excinfo):
    """(code, message, full error dict) of a botocore ClientError."""
    err = excinfo.value.response["Error"]
    return err["Code"], err.get("Message", ""), excinfo.value.response


def free_port():
    """A loopback port free for both UDP and TCP (a DNS server binds both)."""
    while True:
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            u.close()
            t.close()
        return port
