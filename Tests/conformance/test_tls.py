"""HTTPS: with api.tls set, the API serves TLS (swift-nio-ssl) with the configured certificate and key; boto3
verifies the certificate; plain HTTP on that port is refused."""
import http.client
import os
import subprocess

import boto3
import pytest
from botocore.config import Config

from cairn_process import CairnProcess


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    cert, key = str(directory / "cert.pem"), str(directory / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    server = CairnProcess(config=f"api:\n  tls:\n    certificate: {cert}\n    key: {key}\n",
                          extra_args=["--health-interval", "3600", "--no-dns"]).start()
    yield server, cert
    assert server.stop() == 0


def test_boto3_over_https_with_a_verified_certificate(tls_server):
    server, cert = tls_server
    assert any("scheme=https" in line for line in server.log_lines)
    sd = boto3.client("servicediscovery", endpoint_url=f"https://127.0.0.1:{server.port}", region_name="us-east-1",
                      aws_access_key_id="AKIDTLS", aws_secret_access_key="x", verify=cert,
                      config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))
    op = sd.create_http_namespace(Name="over-tls")["OperationId"]
    assert sd.get_operation(OperationId=op)["Operation"]["Status"] == "SUCCESS"
    assert [n["Name"] for n in sd.list_namespaces()["Namespaces"]] == ["over-tls"]


def test_plain_http_gets_no_api(tls_server):
    server, _ = tls_server
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("POST", "/", b"{}", {"X-Amz-Target": "Route53AutoNaming_v20170314.ListNamespaces"})
        conn.getresponse().read()


def test_a_missing_key_file_is_a_configuration_error(tmp_path):
    proc = CairnProcess(config=f"api:\n  tls:\n    certificate: {tmp_path}/nope.pem\n    key: {tmp_path}/nope.key\n", data_dir=str(tmp_path / "d"))
    with pytest.raises(RuntimeError) as e:
        proc.start(timeout=20)
    assert "api.tls.certificate" in str(e.value)


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls_before_1_2_is_refused(tls_server, version):
    import socket
    import ssl
    server, _ = tls_server
    if not getattr(ssl, f"HAS_{version}", False):
        pytest.skip(f"this Python's OpenSSL cannot speak {version}")

    def handshake(v):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, v)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            with ctx.wrap_socket(raw) as tls:
                return tls.version()

    assert handshake("TLSv1_2") == "TLSv1.2"  # the same client settings work at 1.2
    with pytest.raises((ssl.SSLError, ConnectionResetError)) as e:
        handshake(version)
    assert "NO_PROTOCOLS_AVAILABLE" not in str(e.value), "the client, not the server, refused"
