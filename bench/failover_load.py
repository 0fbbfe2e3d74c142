"""Write load and verifier for bench/failover.sh: writers register unique instances through every node and record
each acknowledged one; readers call DiscoverInstances on every node. When the events file says `stop`, it waits for
the nodes to agree and checks every acknowledged write is there. Usage: failover_load.py EVENTS PORT..."""
import os
import sys
import threading
import time

import boto3
from botocore.config import Config

events, ports = sys.argv[1], sys.argv[2:]
config = Config(inject_host_prefix=False, retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10)


def client(port):
    return boto3.client("servicediscovery", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id="failover", aws_secret_access_key="x", config=config)


setup = client(ports[0])
op = setup.create_http_namespace(Name="failover")["OperationId"]
ns = setup.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
service = setup.create_service(Name="api", NamespaceId=ns)["Service"]["Id"]
time.sleep(1)
acknowledged, failed_writes, failed_reads, reads = [], [], [], [0]
lock = threading.Lock()
stop = threading.Event()


def writer(port, tag):
    c = client(port)
    i = 0
    while not stop.is_set():
        i += 1
        instance = f"{tag}-{i}"
        try:
            c.register_instance(ServiceId=service, InstanceId=instance, Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1"})
            with lock:
                acknowledged.append((time.time(), instance))
        except Exception as e:
            code = ((getattr(e, "response", None) or {}).get("Error") or {}).get("Code", type(e).__name__)
            with lock:
                failed_writes.append((time.time(), code))
            time.sleep(0.05)


def reader(port):
    c = client(port)
    while not stop.is_set():
        try:
            c.discover_instances(NamespaceName="failover", ServiceName="api", MaxResults=1)
            with lock:
                reads[0] += 1
        except Exception as e:
            with lock:
                failed_reads.append((time.time(), port, str(e)[:120]))
        time.sleep(0.02)


threads = [threading.Thread(target=writer, args=(p, f"w{n}-{p}")) for p in ports for n in range(3)]
threads += [threading.Thread(target=reader, args=(p,)) for p in ports]
for t in threads:
    t.start()
while "stop" not in open(events).read() if os.path.exists(events) else True:
    time.sleep(0.2)
stop.set()
for t in threads:
    t.join()


def everything(port):
    c, found, token = client(port), set(), None
    while True:
        page = c.list_instances(ServiceId=service, **({"NextToken": token} if token else {}))
        found.update(i["Id"] for i in page["Instances"])
        token = page.get("NextToken")
        if not token:
            return found


wanted = {i for _, i in acknowledged}
deadline = time.time() + 60
while True:
    seen = [everything(p) for p in ports]
    if all(wanted <= s for s in seen) or time.time() > deadline:
        break
    time.sleep(0.5)
lost = [len(wanted - s) for s in seen]
times = sorted(t for t, _ in acknowledged)
gaps = [b - a for a, b in zip(times, times[1:])]
print(f"acknowledged writes: {len(wanted)}; lost on each node: {lost} (must be 0)")
codes = sorted({c for _, c in failed_writes})
print(f"writes refused during the run: {len(failed_writes)} ({', '.join(codes) or 'none'}); "
      f"longest gap between acknowledged writes: {max(gaps or [0]):.1f} s")
marks = {line.split()[0]: float(line.split()[1]) for line in open(events) if len(line.split()) == 2}
for event, at in sorted(marks.items(), key=lambda kv: kv[1]):
    after = [t for t in times if t > at]
    refused = [t for t, _ in failed_writes if t >= at]
    print(f"{event}: first acknowledged write {((after[0] - at) if after else float('nan')):.1f} s after it; "
          f"last refused write {((max(refused) - at) if refused else 0):.1f} s after it")
print(f"reads: {reads[0]} answered, {len(failed_reads)} failed (must be 0)")
for entry in failed_reads[:5]:
    print("  failed read:", entry)
import urllib.request  # noqa: E402

last = marks.get("kill") or max(marks.values(), default=0)
for p in ports:
    late = sum(1 for t, i in acknowledged if t > last and f"-{p}-" in i)
    try:
        ready = urllib.request.urlopen(f"http://127.0.0.1:{p}/readyz", timeout=5).read().decode().strip()
    except Exception as e:  # an unready node answers 503 with its reason
        ready = (e.read().decode().strip() if hasattr(e, "read") else str(e))[:200]
    print(f"node :{p}: {late} writes acknowledged after the last event; /readyz: {ready}")
