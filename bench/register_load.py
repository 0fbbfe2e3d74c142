"""Register N instances (six attributes each) into one service of a Cloud Map endpoint as fast as C keep-alive
connections allow, every request a durable acknowledged write, and print the rate for each block of 10,000 (or N/10),
the server's RSS, and at the end its RSS growth per instance (issue 12's target: at most 2 KiB at 100,000).

Usage: register_load.py ENDPOINT COUNT [CONNECTIONS] [PID]
       register_load.py --first-answer ENDPOINT STARTED  (after a restart: seconds from STARTED, a Unix time, to the
       first DiscoverInstances answer that holds instances)"""
import asyncio
import json
import os
import sys
import time
import urllib.request

if sys.argv[1] == "--first-answer":
    endpoint, count, connections, pid = sys.argv[2], 0, 0, None
else:
    endpoint, count = sys.argv[1], int(sys.argv[2])
    connections = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    pid = sys.argv[4] if len(sys.argv) > 4 else None
host, port = endpoint.split("//")[1].split(":")
port = int(port)
TARGET = "Route53AutoNaming_v20170314."


def call(operation, body):
    request = urllib.request.Request(endpoint + "/", data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + operation,
        "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/servicediscovery/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def rss_mb():
    if not pid:
        return float("nan")
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def worker(queue, done, failures):
    reader, writer = await asyncio.open_connection(host, port)
    while True:
        i = await queue.get()
        if i is None:
            writer.close()
            return
        body = json.dumps({"ServiceId": SERVICE, "InstanceId": f"i-{i:06d}", "Attributes": {
            "AWS_INSTANCE_IPV4": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}", "AWS_INSTANCE_PORT": "8080",
            "version": f"v{i % 3}", "az": f"us-east-1{'abc'[i % 3]}", "team": f"team-{i % 10}",
            "build": f"{i:08x}"}}).encode()
        writer.write(b"POST / HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-amz-json-1.1\r\n"
                     b"X-Amz-Target: " + (TARGET + "RegisterInstance").encode() + b"\r\n"
                     b"Authorization: AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/servicediscovery/aws4_request, "
                     b"SignedHeaders=host, Signature=0\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int([line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")][0].split(b":")[1])
        await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200"):
            failures.append(head[:40])
        done.append(1)


async def main():
    queue = asyncio.Queue()
    done, failures = [], []
    block = max(1, count // 10)
    workers = [asyncio.create_task(worker(queue, done, failures)) for _ in range(connections)]
    rss_before = rss_mb()
    started = last = time.monotonic()
    for i in range(count):
        queue.put_nowait(i)
    for _ in workers:
        queue.put_nowait(None)
    reported = 0
    while reported < count:
        await asyncio.sleep(0.05)
        while len(done) >= reported + block:
            now = time.monotonic()
            reported += block
            print(f"  instances {reported - block + 1:>7}-{reported:<7} {block / (now - last):8.0f} registrations/s   "
                  f"server RSS {rss_mb():6.0f} MB", flush=True)
            last = now
        if all(w.done() for w in workers) and len(done) < reported + block:
            break
    await asyncio.gather(*workers)
    total = time.monotonic() - started
    print(f"  all {len(done)}: {len(done) / total:.0f} registrations/s overall, {len(failures)} failed", flush=True)
    growth = rss_mb() - rss_before
    print(f"  memory: RSS {rss_before:.0f} MB before -> {rss_before + growth:.0f} MB after {len(done)} instances with six "
          f"attributes: {growth * 1024 / max(1, len(done)):.2f} KiB per instance (target <= 2 KiB)", flush=True)
    if failures:
        print("  first failure:", failures[0], flush=True)
        sys.exit(1)


def first_answer(started):
    """Polls DiscoverInstances every 10 ms until it answers with instances; prints the seconds since `started`."""
    while True:
        try:
            request = urllib.request.Request(endpoint + "/", data=json.dumps(
                {"NamespaceName": "writes", "ServiceName": "svc", "MaxResults": 1, "HealthStatus": "ALL"}).encode(),
                method="POST", headers={
                    "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + "DiscoverInstances",
                    "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/servicediscovery/aws4_"
                                     "request, SignedHeaders=host, Signature=0"})
            with urllib.request.urlopen(request, timeout=5) as response:
                if json.loads(response.read()).get("Instances"):
                    return time.time() - started
        except OSError:
            pass
        if time.time() - started > 600:
            return float("nan")
        time.sleep(0.01)


if sys.argv[1] == "--first-answer":
    started = float(sys.argv[3])
    print(f"{first_answer(started):.2f}")
    sys.exit(0)
op = call("CreateHttpNamespace", {"Name": "writes"})["OperationId"]
ns = call("GetOperation", {"OperationId": op})["Operation"]["Targets"]["NAMESPACE"]
SERVICE = call("CreateService", {"Name": "svc", "NamespaceId": ns})["Service"]["Id"]
asyncio.run(main())
