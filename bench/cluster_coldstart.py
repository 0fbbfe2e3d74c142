"""Starts a fresh node on a cluster database and times it: process start -> API listening -> /readyz 200 -> a
DiscoverInstances answer. Usage: cluster_coldstart.py STORE_URL CONFIG"""
import os
import socket
import subprocess
import sys
import time
import urllib.request

url, config = sys.argv[1], sys.argv[2]
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
started = time.perf_counter()
binary = os.environ.get("CAIRN_BIN") or os.path.join(os.path.dirname(__file__), "..", ".build", "release", "cairn")
proc = subprocess.Popen([binary, "serve", "--dev", "--store", url,
                         "--port", str(port), "--no-dns", "--health-interval", "3600", "--config", config, "--log-level", "warning",
                         "--data-dir", "/tmp/cairn-coldstart"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
try:
    deadline = time.time() + 300
    while True:
        if proc.poll() is not None:
            sys.exit(f"the node exited with {proc.returncode} before it was ready: {proc.stderr.read()[-2000:]}")
        if time.time() > deadline:
            sys.exit("the node was not ready within 300 s")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                if r.status == 200:
                    break
        except Exception:
            time.sleep(0.02)
    ready = time.perf_counter() - started
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", method="POST", data=b'{"NamespaceName":"writes","ServiceName":"svc","MaxResults":1}',
                                     headers={"Content-Type": "application/x-amz-json-1.1",
                                              "X-Amz-Target": "Route53AutoNaming_v20170314.DiscoverInstances"})
    with urllib.request.urlopen(request, timeout=30) as r:
        r.read()
    answered = time.perf_counter() - started
    print(f"cold start: /readyz 200 after {ready:.2f} s, first DiscoverInstances answer after {answered:.2f} s")
finally:
    proc.terminate()
    proc.wait(30)
