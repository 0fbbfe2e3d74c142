"""SIGTERM under load: the server stops accepting, answers every request it had accepted, stores what it
acknowledged and exits 0 within a bound; a restart finds every acknowledged change."""
import http.client
import json
import signal
import threading
import time

from cairn_process import CairnProcess

TARGET = "Route53AutoNaming_v20170314."


def call(conn, operation, body):
    conn.request("POST", "/", json.dumps(body), {"X-Amz-Target": TARGET + operation, "Content-Type": "application/x-amz-json-1.1",
                                                 "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDTERM/20260101/us-east-1/servicediscovery/aws4_request, SignedHeaders=host, Signature=0"})
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def test_sigterm_during_load_loses_nothing_acknowledged(tmp_path):
    server = CairnProcess(data_dir=str(tmp_path / "data"), extra_args=["--health-interval", "3600", "--no-dns"]).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    status, op = call(conn, "CreateHttpNamespace", {"Name": "term"})
    assert status == 200
    status, body = call(conn, "GetOperation", {"OperationId": op["OperationId"]})
    ns = body["Operation"]["Targets"]["NAMESPACE"]
    status, body = call(conn, "CreateService", {"Name": "s", "NamespaceId": ns})
    service = body["Service"]["Id"]

    acknowledged, ambiguous, answered_errors, refused = [], [], [], []
    stop = threading.Event()

    def writer(n):
        c, i = None, 0
        while not stop.is_set():
            instance = f"w{n}-{i}"
            i += 1
            try:
                c = c or http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                status, body = call(c, "RegisterInstance", {"ServiceId": service, "InstanceId": instance,
                                                            "Attributes": {"AWS_INSTANCE_IPV4": "10.0.0.1"}})
                (acknowledged if status == 200 else answered_errors).append((instance, status, body))
            except ConnectionRefusedError:
                refused.append(instance)
                return
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected, http.client.BadStatusLine) as e:
                ambiguous.append(instance)  # did the server take it? the restart will tell
                c = None

    def reader():
        c = None
        while not stop.is_set():
            try:
                c = c or http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                call(c, "DiscoverInstances", {"NamespaceName": "term", "ServiceName": "s"})
            except OSError:
                c = None
                if not server.alive():
                    return
            except http.client.HTTPException:
                c = None

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    while len(acknowledged) < 200:
        time.sleep(0.01)
    started = time.time()
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(30)
    took = time.time() - started
    stop.set()
    for t in threads:
        t.join()
    assert code == 0, "".join(server.log_lines[-20:])
    assert took < 10, f"shutdown took {took:.1f}s"
    assert any("registry stopped at sequence" in line for line in server.log_lines)
    assert not [e for e in answered_errors if e[1] != 503], answered_errors[:3]

    again = CairnProcess(data_dir=server.data_dir, extra_args=["--health-interval", "3600", "--no-dns"]).start()
    try:
        c = http.client.HTTPConnection("127.0.0.1", again.port, timeout=10)
        stored, token = set(), None
        while True:
            body = {"ServiceId": service, **({"NextToken": token} if token else {})}
            status, page = call(c, "ListInstances", body)
            stored |= {i["Id"] for i in page["Instances"]}
            token = page.get("NextToken")
            if not token:
                break
    finally:
        assert again.stop() == 0
    missing = {i for i, *_ in acknowledged} - stored
    assert not missing, f"{len(missing)} acknowledged registrations lost"
    taken_but_reset = [i for i in ambiguous if i in stored]
    assert not taken_but_reset, f"requests the server carried out but answered with a reset: {taken_but_reset}"


def test_every_api_call_is_logged_at_debug_under_its_request_id():
    server = CairnProcess(extra_args=["--log-level", "debug", "--no-dns", "--health-interval", "3600"]).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("POST", "/", "{}", {"X-Amz-Target": TARGET + "GetService", "Content-Type": "application/x-amz-json-1.1"})
        response = conn.getresponse()
        response.read()
        request_id = response.getheader("x-amzn-RequestId")
        assert response.status == 400 and request_id
        deadline = time.time() + 5
        while time.time() < deadline and not any(request_id in line for line in server.log_lines):
            time.sleep(0.05)
        line = next(line for line in server.log_lines if request_id in line)
        for field in ("api call", f"requestId={request_id}", "operation=GetService", "status=400", "code=InvalidInput", "peer=127.0.0.1"):
            assert field in line, line
    finally:
        assert server.stop() == 0
