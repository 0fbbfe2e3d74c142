"""Outside dev mode every request is verified as SigV4: boto3 and the aws CLI with the right key succeed; wrong
secret, unknown key, stale date, modified body and modified header each fail with AWS's error."""
import configparser
import datetime
import hashlib
import hmac
import http.client
import json
import os
import stat
import subprocess

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from cairn_process import CairnProcess


@pytest.fixture(scope="module")
def server():
    s = CairnProcess(dev=False, extra_args=["--health-interval", "3600"]).start()
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def admin(server):
    path = os.path.join(server.data_dir, "admin-credentials")
    parser = configparser.ConfigParser()
    parser.read(path)
    return path, parser["cairn-admin"]["aws_access_key_id"], parser["cairn-admin"]["aws_secret_access_key"]


def client(server, key, secret, region="us-east-1"):
    return boto3.client("servicediscovery", endpoint_url=server.endpoint, region_name=region, aws_access_key_id=key,
                        aws_secret_access_key=secret, config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))


def sign(key, secret, body, target="ListNamespaces", when=None, region="us-east-1", host="127.0.0.1"):
    """SigV4 as documented, written here independently of botocore and of Cairn."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = when.strftime("%Y%m%dT%H%M%SZ"), when.strftime("%Y%m%d")
    headers = {"content-type": "application/x-amz-json-1.1", "host": host, "x-amz-date": amz_date,
               "x-amz-target": f"Route53AutoNaming_v20170314.{target}"}
    names = sorted(headers)
    canonical = "\n".join(["POST", "/", "", "".join(f"{n}:{headers[n]}\n" for n in names), ";".join(names),
                           hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{region}/servicediscovery/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (day, region, "servicediscovery", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = f"AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
    return headers


def post(server, headers, body):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = dict(headers)
    headers["host"] = f"127.0.0.1:{server.port}" if headers.get("host") == "use-port" else headers["host"]
    conn.request("POST", "/", body, headers)
    r = conn.getresponse()
    return r.status, json.loads(r.read() or b"{}")


def test_an_administrator_key_is_created_0600_and_works(server, admin):
    path, key, secret = admin
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert key.startswith("AKCA") and len(secret) == 40
    assert not any(secret in line for line in server.log_lines), "the secret must never be logged"
    assert any(key in line for line in server.log_lines)
    sd = client(server, key, secret)
    op = sd.create_http_namespace(Name="signed")["OperationId"]
    assert sd.get_operation(OperationId=op)["Operation"]["Status"] == "SUCCESS"
    assert [n["Name"] for n in sd.list_namespaces()["Namespaces"]] == ["signed"]


def test_the_aws_cli_signs_with_the_credentials_file(server, admin):
    path = admin[0]
    env = {**os.environ, "AWS_SHARED_CREDENTIALS_FILE": path, "AWS_PROFILE": "cairn-admin", "AWS_CONFIG_FILE": "/dev/null",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": server.endpoint}
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(var, None)
    out = subprocess.run(["aws", "servicediscovery", "list-namespaces", "--output", "json"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Namespaces" in json.loads(out.stdout)


@pytest.mark.parametrize("how,code", [("wrong secret", "InvalidSignatureException"), ("unknown key", "UnrecognizedClientException")])
def test_bad_credentials_through_boto3(server, admin, how, code):
    _, key, secret = admin
    sd = client(server, key, secret + "x") if how == "wrong secret" else client(server, "AKCAUNKNOWN0000000", secret)
    with pytest.raises(ClientError) as e:
        sd.list_namespaces()
    assert e.value.response["Error"]["Code"] == code
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_signed_requests_and_their_tampering(server, admin):
    _, key, secret = admin
    body = json.dumps({"Name": "tamper-check"}).encode()
    host = f"127.0.0.1:{server.port}"
    good = sign(key, secret, body, target="CreateHttpNamespace", host=host)
    cases = {
        "modified body": (good, json.dumps({"Name": "tamper-checks"}).encode(), "InvalidSignatureException"),
        "modified header": ({**good, "x-amz-target": "Route53AutoNaming_v20170314.CreatePublicDnsNamespace"}, body, "InvalidSignatureException"),
        "stale date": (sign(key, secret, body, target="CreateHttpNamespace", host=host,
                            when=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)), body, "InvalidSignatureException"),
        "no signature": ({k: v for k, v in good.items() if k != "authorization"}, body, "MissingAuthenticationTokenException"),
        "another service": ({**good, "authorization": good["authorization"].replace("/servicediscovery/", "/s3/")}, body, "InvalidSignatureException"),
    }
    for label, (headers, payload, code) in cases.items():
        status, error = post(server, headers, payload)
        assert (status, error.get("__type")) == (403, code), label
        if label == "stale date":
            assert "expired" in error["Message"].lower()
    sd = client(server, key, secret)
    assert "tamper-check" not in [n["Name"] for n in sd.list_namespaces()["Namespaces"]], "nothing was applied"
    status, reply = post(server, good, body)
    assert status == 200 and reply["OperationId"]


def test_region_comes_from_the_verified_scope(server, admin):
    _, key, secret = admin
    eu = client(server, key, secret, region="eu-west-3")
    eu.create_http_namespace(Name="in-paris")
    assert [n["Name"] for n in eu.list_namespaces()["Namespaces"]] == ["in-paris"]
    assert "in-paris" not in [n["Name"] for n in client(server, key, secret).list_namespaces()["Namespaces"]]


def test_the_key_survives_restarts_and_configured_keys_replace_it(tmp_path):
    s = CairnProcess(dev=False, data_dir=str(tmp_path / "d")).start()
    first = open(tmp_path / "d" / "admin-credentials").read()
    assert s.stop() == 0
    s.start()
    try:
        assert open(tmp_path / "d" / "admin-credentials").read() == first
    finally:
        s.stop()
    configured = CairnProcess(dev=False, data_dir=str(tmp_path / "e"),
                              config="accessKeys:\n  - id: AKCACONFIGURED000001\n    secret: configured-secret-0123456789\n").start()
    try:
        assert not os.path.exists(tmp_path / "e" / "admin-credentials")
        assert client(configured, "AKCACONFIGURED000001", "configured-secret-0123456789").list_namespaces()["Namespaces"] == []
        with pytest.raises(ClientError):
            client(configured, "AKCACONFIGURED000001", "wrong-secret-0123456789000").list_namespaces()
    finally:
        configured.stop()
