"""Long-poll discovery's wake-up, driven from one process: WAITERS long-polls (DiscoverInstances with X-Cairn-Index and
X-Cairn-Wait) wait on one service; CHANGES times, one registration changes that service and the script measures how
long after the registration was acknowledged each waiting call was answered. Every waiter re-arms with the index it
got once all have answered. Prints `key value` lines for bench/longpoll.sh.
Usage: longpoll_load.py HOST PORT NAMESPACE SERVICE_NAME SERVICE_ID WAITERS CHANGES"""
import json
import selectors
import socket
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
namespace, service_name, service_id = sys.argv[3], sys.argv[4], sys.argv[5]
waiters, changes = int(sys.argv[6]), int(sys.argv[7])
AUTH = "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/servicediscovery/aws4_request, SignedHeaders=host, Signature=0"


def request(target, body, extra=""):
    data = json.dumps(body).encode()
    head = (
        f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/x-amz-json-1.1\r\n"
        f"X-Amz-Target: Route53AutoNaming_v20170314.{target}\r\nAuthorization: {AUTH}\r\n{extra}"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def discover(index):
    return request(
        "DiscoverInstances",
        {"NamespaceName": namespace, "ServiceName": service_name},
        f"X-Cairn-Index: {index}\r\nX-Cairn-Wait: 50\r\n",
    )


def parse(buffer):
    """One whole response at the start of `buffer`: (status, headers, rest) or None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buffer[:end].decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    if len(buffer) < end + 4 + length:
        return None
    return int(lines[0].split()[1]), headers, buffer[end + 4 + length:]


def call(sock, payload):
    sock.sendall(payload)
    buffer = b""
    while True:
        found = parse(buffer)
        if found:
            return found
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("the server closed the connection")
        buffer += chunk


writer = socket.create_connection((host, port))
writer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
status, headers, _ = call(writer, discover(0))
assert status == 200, status
index = headers["x-cairn-index"]

selector = selectors.DefaultSelector()
buffers = {}
for _ in range(waiters):
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(discover(index))
    sock.setblocking(False)
    selector.register(sock, selectors.EVENT_READ)
    buffers[sock] = b""
time.sleep(0.5)

latencies, failures, late = [], 0, 0
rearm = []
for change in range(changes):
    payload = request(
        "RegisterInstance",
        {"ServiceId": service_id, "InstanceId": "longpoll", "Attributes": {"AWS_INSTANCE_IPV4": "10.9.0.1", "n": str(change)}},
    )
    status, _, _ = call(writer, payload)
    acknowledged = time.monotonic()
    if status != 200:
        failures += 1
        continue
    answered = 0
    deadline = acknowledged + 10
    while answered < waiters and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            sock = key.fileobj
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                continue
            now = time.monotonic()
            if not chunk:
                raise SystemExit("a waiting call's connection closed")
            buffers[sock] += chunk
            found = parse(buffers[sock])
            if not found:
                continue
            status, headers, buffers[sock] = found
            if status != 200:
                failures += 1
            latencies.append(max(0.0, now - acknowledged))
            answered += 1
            rearm.append((sock, headers["x-cairn-index"]))
    late += waiters - answered
    # Re-armed only once every answer is read, so sending does not delay reading the others.
    for sock, index in rearm:
        sock.sendall(discover(index))
    rearm.clear()
    time.sleep(0.1)  # every waiter is waiting again before the next change

latencies.sort()


def pct(p):
    return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")


print(f"answers {len(latencies)}")
print(f"expected {waiters * changes}")
print(f"not_answered_within_10s {late}")
print(f"failures {failures}")
print(f"p50_ms {pct(0.50):.2f}")
print(f"p99_ms {pct(0.99):.2f}")
print(f"max_ms {(latencies[-1] * 1000 if latencies else float('nan')):.2f}")
