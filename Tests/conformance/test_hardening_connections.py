"""Connections no client can hold forever (hardening issue #10, items 7 and 12): idle, slow-head and slow-body
deadlines, a connection cap that fits the descriptor limit, a shutdown that ends while a body is half-sent, and
AWS-shaped 400s for malformed framing."""
import json
import signal
import socket
import subprocess
import time

import pytest

from cairn_process import BINARY, CairnProcess
from conftest import client_for

FAST = """
api:
  timeouts: {idleSeconds: 1, bodySeconds: 2, drainSeconds: 2}
"""


@pytest.fixture
def server():
    s = CairnProcess(config=FAST, extra_args=["--no-dns", "--health-interval", "3600"]).start()
    yield s
    if s.alive():
        s.stop()


def connect(server):
    return socket.create_connection(("127.0.0.1", server.port), timeout=30)


def closed_by_server(sock, limit=30):
    """True once the server closes the connection (recv returns b'' or the connection is reset)."""
    sock.settimeout(limit)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_an_idle_connection_is_closed(server):
    sock = connect(server)
    assert closed_by_server(sock)


def test_a_request_head_sent_a_byte_at_a_time_is_closed(server):
    sock = connect(server)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: Route53AutoNaming_v20170314.ListNamespaces\r\n"
    closed = False
    for byte in head * 20:
        try:
            sock.send(bytes([byte]))
        except OSError:
            closed = True
            break
        time.sleep(0.05)
    assert closed or closed_by_server(sock)


def test_a_body_trickled_past_its_deadline_is_closed(server):
    sock = connect(server)
    sock.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
              b"X-Amz-Target: Route53AutoNaming_v20170314.ListNamespaces\r\nContent-Length: 100\r\n\r\n{")
    closed = False
    for _ in range(200):  # one byte every 0.1 s keeps the connection "active" for the idle deadline, not the body's
        try:
            sock.send(b" ")
        except OSError:
            closed = True
            break
        time.sleep(0.1)
    assert closed or closed_by_server(sock, limit=5)
    # The server goes on answering.
    assert client_for(server.endpoint, "us-east-1").list_namespaces()["Namespaces"] == []


def test_sigterm_ends_although_a_client_holds_a_half_sent_body(server):
    sock = connect(server)
    sock.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
              b"X-Amz-Target: Route53AutoNaming_v20170314.ListNamespaces\r\nContent-Length: 100\r\n\r\n{")
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(60) == 0
    sock.close()


def test_past_the_connection_cap_new_connections_wait_instead_of_failing():
    s = CairnProcess(config="api:\n  maxConnections: 4\n  timeouts: {idleSeconds: 3}\n",
                     extra_args=["--no-dns", "--health-interval", "3600"]).start()
    try:
        held = [connect(s) for _ in range(4)]
        time.sleep(0.5)
        late = connect(s)  # accepted by the kernel's backlog, served once a slot frees
        late.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        late.settimeout(60)
        reply = late.recv(4096)
        assert reply.startswith(b"HTTP/1.1 200"), reply
        for sock in held:
            sock.close()
    finally:
        s.stop()


def test_under_a_small_descriptor_limit_idle_connections_do_not_stop_the_api():
    s = CairnProcess(config="api:\n  timeouts: {idleSeconds: 1}\n", extra_args=["--no-dns", "--health-interval", "3600"],
                     launcher=["prlimit", "--nofile=256:256"]).start()
    try:
        held = []
        for _ in range(400):
            try:
                held.append(connect(s))
            except OSError:
                break
        # The cap (256 - 64) keeps descriptors for the store and the log; the idle deadline frees slots for the
        # connections waiting in the backlog, so the API answers again.
        sd = client_for(s.endpoint, "us-east-1", connect_timeout=60, read_timeout=60)
        assert sd.list_namespaces()["Namespaces"] == []
        for sock in held:
            sock.close()
        sd.create_http_namespace(Name="still-writes")
        assert s.alive()
    finally:
        assert s.stop() == 0


def raw(server, payload):
    sock = connect(server)
    sock.sendall(payload)
    data = b""
    sock.settimeout(30)
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    sock.close()
    return int(head.split(b" ")[1]), body


def test_a_malformed_chunk_size_is_a_400_with_an_aws_error(server):
    status, body = raw(server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
                               b"X-Amz-Target: Route53AutoNaming_v20170314.ListNamespaces\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"zz\r\n{}\r\n0\r\n\r\n")
    assert status == 400, (status, body)
    assert json.loads(body)["__type"] in ("SerializationException", "BadRequestException"), body


def test_a_malformed_request_line_gets_an_aws_error_body(server):
    status, body = raw(server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
    assert status == 400, (status, body)
    assert "__type" in json.loads(body), body
