import itertools
import os
import uuid

import boto3
import pytest
from botocore.config import Config

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
