"""Throttling: per-principal token buckets. A burst above the bucket gets RequestLimitExceeded (discovery) or
ThrottlingException (everything else), and boto3's own retries then get through."""
import concurrent.futures

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import conftest
from cairn_process import CairnProcess

CONFIG = """
throttling:
  discoverInstances: {burst: 20, perSecond: 10}
  discoverInstancesRevision: {burst: 20, perSecond: 10}
  controlPlane: {burst: 10, perSecond: 5}
"""


@pytest.fixture(scope="module")
def server():
    s = CairnProcess(config=CONFIG, extra_args=["--health-interval", "3600", "--no-dns"]).start()
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def world(server):
    sd = conftest.client_for(server.endpoint, "us-east-1", retries={"max_attempts": 10, "mode": "standard"})
    ns = sd.get_operation(OperationId=sd.create_http_namespace(Name="throttled")["OperationId"])["Operation"]["Targets"]["NAMESPACE"]
    svc = sd.create_service(Name="s", NamespaceId=ns)["Service"]["Id"]
    sd.register_instance(ServiceId=svc, InstanceId="i-1", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1"})
    return svc


def burst(call, n):
    """n calls at once; returns (successes, error codes)."""
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(call) for _ in range(n)]
    ok, errors = 0, []
    for f in futures:
        try:
            f.result()
            ok += 1
        except ClientError as e:
            errors.append((e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]))
    return ok, errors


def test_a_discovery_burst_above_the_bucket_is_refused_then_retries_succeed(server, world):
    once = conftest.client_for(server.endpoint, "eu-west-1")
    ok, errors = burst(lambda: once.discover_instances(NamespaceName="throttled", ServiceName="s"), 60)
    # The namespace lives in us-east-1, so these are NamespaceNotFound when admitted; what matters is the refusals.
    assert errors.count(("RequestLimitExceeded", 400)) >= 25, errors
    sd = conftest.client_for(server.endpoint, "us-east-1")
    ok, errors = burst(lambda: sd.discover_instances(NamespaceName="throttled", ServiceName="s"), 60)
    assert ok >= 20 and set(errors) == {("RequestLimitExceeded", 400)}, errors
    ok, errors = burst(lambda: sd.discover_instances_revision(NamespaceName="throttled", ServiceName="s"), 60)
    assert set(errors) == {("RequestLimitExceeded", 400)}, errors
    retrying = conftest.client_for(server.endpoint, "us-east-1", retries={"max_attempts": 10, "mode": "standard"})
    ok, errors = burst(lambda: retrying.discover_instances(NamespaceName="throttled", ServiceName="s"), 40)
    assert (ok, errors) == (40, [])


def test_control_plane_calls_get_throttling_exception_and_boto3_retries(server, world):
    sd = conftest.client_for(server.endpoint, "us-east-1")
    ok, errors = burst(lambda: sd.list_instances(ServiceId=world), 40)
    assert errors and set(errors) == {("ThrottlingException", 400)}, errors
    retrying = conftest.client_for(server.endpoint, "us-east-1", retries={"max_attempts": 10, "mode": "standard"})
    ok, errors = burst(lambda: retrying.get_service(Id=world), 25)
    assert (ok, errors) == (25, [])


def test_buckets_are_per_principal(server, world):
    drained = conftest.client_for(server.endpoint, "us-east-1")
    burst(lambda: drained.get_service(Id=world), 30)
    other = boto3.client("servicediscovery", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id="AKIDSOMEONEELSE",
                         aws_secret_access_key="x", config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))
    ok, errors = burst(lambda: other.get_service(Id=world), 5)
    assert (ok, errors) == (5, [])
