"""Watch streams at scale, driven from one process: opens N server-sent-event streams on one service, measures the
server's memory per stream, then makes one registration a second and measures how long each change takes to reach
every stream and the CPU the server spends on it. Prints `key value` lines for bench/watch.sh.
Usage: watch_load.py HOST PORT PID NAMESPACE SERVICE_NAME SERVICE_ID STREAMS CHANGES"""
import json
import selectors
import socket
import sys
import threading
import time
import urllib.request

host, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
namespace, service_name, service_id = sys.argv[4], sys.argv[5], sys.argv[6]
streams, changes = int(sys.argv[7]), int(sys.argv[8])
AUTH = "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/servicediscovery/aws4_request, SignedHeaders=host, Signature=0"
MARK = b"event: change"


def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def cpu_seconds():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks of 1/100 s


selector = selectors.DefaultSelector()
seen = {}  # stream → [times a change event arrived]
tails = {}
lock = threading.Lock()
running = True


def reader():
    while running:
        for key, _ in selector.select(timeout=0.2):
            sock = key.fileobj
            try:
                data = sock.recv(1 << 16)
            except BlockingIOError:
                continue
            now = time.monotonic()
            if not data:
                selector.unregister(sock)
                continue
            joined = tails.get(sock, b"") + data
            count = joined.count(MARK)
            tails[sock] = joined[-len(MARK):]
            if count:
                with lock:
                    seen[sock].extend([now] * count)


before = rss_kib()
request = (f"GET /cairn/v1/watch?namespace={namespace}&service={service_name}&heartbeat=300 HTTP/1.1\r\n"
           f"Host: {host}:{port}\r\nAuthorization: {AUTH}\r\n\r\n").encode()
socks = []
for i in range(streams):
    s = socket.create_connection((host, port))
    s.sendall(request)
    s.setblocking(False)
    seen[s] = []
    socks.append(s)
    selector.register(s, selectors.EVENT_READ)
thread = threading.Thread(target=reader, daemon=True)
thread.start()
# Every stream got its reset: the server holds them all.
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    text = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=30).read().decode()
    open_now = int(next((l.split()[1] for l in text.splitlines() if l.startswith("cairn_watch_streams ")), "0"))
    if open_now >= streams:
        break
    time.sleep(0.5)
time.sleep(2)
after = rss_kib()
print(f"streams_open {open_now}")
print(f"rss_before_kib {before}")
print(f"rss_after_kib {after}")
print(f"kib_per_stream {(after - before) / max(1, streams):.2f}")

acks = []
cpu0, wall0 = cpu_seconds(), time.monotonic()
for k in range(changes):
    body = json.dumps({"ServiceId": service_id, "InstanceId": f"fanout-{k}",
                       "Attributes": {"AWS_INSTANCE_IPV4": "10.9.9.9", "AWS_INSTANCE_PORT": "80"}}).encode()
    req = urllib.request.Request(f"http://{host}:{port}/", data=body, method="POST", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Route53AutoNaming_v20170314.RegisterInstance",
        "Authorization": AUTH})
    urllib.request.urlopen(req, timeout=30).read()
    acks.append(time.monotonic())
    time.sleep(max(0.0, 1.0 - (time.monotonic() - acks[-1])))
time.sleep(2)
cpu1, wall1 = cpu_seconds(), time.monotonic()
latencies, delivered = [], 0
with lock:
    for times in seen.values():
        delivered += len(times)
        for k, t in enumerate(times[:changes]):
            latencies.append((t - acks[k]) * 1000)
latencies.sort()


def pct(p):
    return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] if latencies else float("nan")


print(f"changes {changes}")
print(f"events_delivered {delivered}")
print(f"events_expected {changes * streams}")
print(f"fanout_p50_ms {pct(50):.2f}")
print(f"fanout_p99_ms {pct(99):.2f}")
print(f"fanout_max_ms {latencies[-1] if latencies else float('nan'):.2f}")
print(f"server_cores_during_fanout {(cpu1 - cpu0) / (wall1 - wall0):.3f}", flush=True)
# The streams stay open (and read) while bench/watch.sh measures writes with them, until it ends this process.
while True:
    time.sleep(60)
