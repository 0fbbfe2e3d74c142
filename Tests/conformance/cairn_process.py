"""Start and stop a real `cairn serve` process for the conformance tests."""
import glob
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("CAIRN_BIN", os.path.join(ROOT, ".build", "debug", "cairn"))
LISTENING = re.compile(r"cairn API listening on [^ ]+:(\d+)")
DNS_LISTENING = re.compile(r"cairn DNS listening on [^ ]+:(\d+)")
# Tests isolate themselves in regions of their own (conftest's `region` fixture: test-N-xxxxxx), which a server
# accepts only when told to; AWS's usual regions stay accepted beside them.
def _test_regions():
    import botocore.session
    session = botocore.session.get_session()
    names = set()
    for partition in session.get_available_partitions():
        names.update(session.get_available_regions("servicediscovery", partition))
    return ",".join(sorted(names) + ["test-*"])


TEST_REGIONS = _test_regions()


# The cluster pass (scripts/test.sh runs the suite a second time with CAIRN_TEST_CLUSTER=3): every CairnProcess a test
# starts is then that many nodes on a fresh PostgreSQL database, and each test talks to one of them in turn (see
# `next_node`), so the suite's requests are spread over the nodes. Tests of one process's own files and signals are
# not collected in that pass (conftest.SINGLE_NODE).
CLUSTER = int(os.environ.get("CAIRN_TEST_CLUSTER") or 0)
POSTGRES = os.environ.get("CAIRN_TEST_POSTGRES", "")
_clusters = []
_turn = [0]
_databases = {}  # a cluster's first data directory → (its database URL, its other nodes' data directories)


def _psql(url, statement):
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    out = subprocess.run([found[-1] if found else "psql", url, "-Atqc", statement], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return out.stdout.strip()


def fresh_database():
    """A database of its own on the test command's PostgreSQL."""
    name = "cairn_s_" + uuid.uuid4().hex[:12]
    _psql(POSTGRES, f"CREATE DATABASE {name}")
    return f"{POSTGRES.rpartition('/')[0]}/{name}"


def _sequence(node):
    """A node's applied sequence from /readyz ("ready sequence=N database=M lag=L nodes=K"), None if it cannot say."""
    m = re.search(r"sequence=(\d+)", _readiness(node))
    return int(m.group(1)) if m else None


def _readiness(node):
    """What a node's /readyz says."""
    text = ""
    for url, context in ((f"{node.endpoint}/readyz", None), (f"https://127.0.0.1:{node.port}/readyz", ssl._create_unverified_context())):
        try:
            text = urllib.request.urlopen(url, timeout=5, context=context).read().decode()
            break
        except Exception as e:  # an unready node answers 503 with its reason; a TLS node only speaks https
            text = e.read().decode() if hasattr(e, "read") else ""
            if text:
                break
    return text.strip()


def next_node(limit=60):
    """Moves every running cluster on to its next node, once each of its nodes has applied everything written so
    far: a test then reads on its node what earlier tests (and module fixtures) wrote on another. A generous bound,
    so a node that stopped following fails the suite instead of blocking it."""
    _turn[0] += 1
    for cluster in list(_clusters):
        if not cluster.alive():
            continue
        deadline = time.time() + limit
        while True:
            seen = [_sequence(n) for n in cluster.nodes]
            if None not in seen and len(set(seen)) == 1:
                break
            if time.time() > deadline:
                raise RuntimeError(f"the cluster's nodes did not converge: sequences {seen}")
            time.sleep(0.02)


def node_endpoint(server, node_id):
    """The endpoint of the cluster node named `node_id` (a node's id is host/pid/random, as in /readyz and
    `ProbedBy`)."""
    pid = int(node_id.split("/")[1])
    return next(n.endpoint for n in server.nodes if n.proc.pid == pid)


class CairnProcess:
    """One cairn server on a free loopback port, with its own data directory unless one is given. In the cluster
    pass, `CLUSTER` nodes on one fresh database behind the same attributes (`single=True` keeps one process)."""

    def __init__(self, data_dir=None, config=None, extra_args=(), dev=True, launcher=(), single=False):
        self.nodes = []
        self.single = single or CLUSTER < 2 or "--store" in extra_args
        self.dev = dev
        self.launcher = list(launcher)
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="cairn-test-")
        self.config = config
        self.extra_args = list(extra_args)
        self.proc = None
        self._port = None
        self._dns_port = None
        self._log_lines = []

    def _current(self):
        return self.nodes[_turn[0] % len(self.nodes)] if self.nodes else None

    @property
    def port(self):
        return self._current().port if self.nodes else self._port

    @property
    def dns_port(self):
        return self._current().dns_port if self.nodes else self._dns_port

    @property
    def log_lines(self):
        if self.nodes:
            return [line for n in self.nodes for line in n.log_lines]
        return self._log_lines

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=60):
        if not self.single:
            return self._start_cluster(timeout)
        args = [BINARY, "serve", *(["--dev"] if self.dev else []), "--port", "0", "--dns-port", "0", "--data-dir", self.data_dir, "--log-level", "notice"]
        if self.config:
            path = os.path.join(self.data_dir, "test-config.yaml")
            os.makedirs(self.data_dir, exist_ok=True)
            with open(path, "w") as f:
                f.write(self.config)
            args += ["--config", path]
        if "--regions" not in self.extra_args and "regions:" not in (self.config or ""):
            args += ["--regions", TEST_REGIONS]
        self.proc = subprocess.Popen(self.launcher + args + self.extra_args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + timeout
        port_box = []
        ready = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self._log_lines.append(line)
                d = DNS_LISTENING.search(line)
                if d:
                    self._dns_port = int(d.group(1))
                m = LISTENING.search(line)
                if m and not ready.is_set():
                    port_box.append(int(m.group(1)))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(max(0.1, deadline - time.time())) or not port_box:
            self.kill()
            raise RuntimeError("cairn did not start:\n" + "".join(self._log_lines))
        self._port = port_box[0]
        return self

    def _start_cluster(self, timeout):
        # A restart on the same data directory is a restart of the same cluster: same database, same node directories.
        if self.data_dir not in _databases:
            _databases[self.data_dir] = (fresh_database(), [tempfile.mkdtemp(prefix=f"cairn-test-node{n}-") for n in range(1, CLUSTER)])
        url, others = _databases[self.data_dir]
        self.nodes = []
        for n in range(CLUSTER):
            data_dir = self.data_dir if n == 0 else others[n - 1]
            if n > 0:
                # One administrator key for the cluster: the first node made it.
                made = os.path.join(self.data_dir, "admin-credentials")
                if os.path.exists(made):
                    shutil.copy2(made, os.path.join(data_dir, "admin-credentials"))
            node = CairnProcess(data_dir=data_dir, config=self.config, extra_args=[*self.extra_args, "--store", url],
                                dev=self.dev, launcher=self.launcher, single=True)
            try:
                node.start(timeout)
            except Exception:
                for started in self.nodes:
                    started.kill()
                raise
            self.nodes.append(node)
        self.proc = self.nodes[0].proc
        # Every node sees every other live before a test runs: until then each divides the health checks as if
        # alone, and a check whose owner moves mid-test starts its thresholds afresh on the new owner.
        deadline = time.time() + timeout
        while not all(_readiness(n).endswith(f"nodes={CLUSTER}") for n in self.nodes):
            if time.time() > deadline:
                self.kill()
                raise RuntimeError("the cluster's nodes never all saw each other: " + str([_readiness(n) for n in self.nodes]))
            time.sleep(0.05)
        _clusters.append(self)
        return self

    def stop(self, timeout=30):
        """SIGTERM and wait: the graceful path (every node of a cluster; the worst exit code)."""
        if self.nodes:
            if self in _clusters:
                _clusters.remove(self)
            codes = [n.stop(timeout) for n in self.nodes]
            return next((c for c in codes if c != 0), 0)
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise
        return self.proc.returncode if self.proc else None

    def kill(self):
        """SIGKILL: no chance to flush anything."""
        if self.nodes:
            if self in _clusters:
                _clusters.remove(self)
            for n in self.nodes:
                n.kill()
            return
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def alive(self):
        if self.nodes:
            return all(n.alive() for n in self.nodes)
        return self.proc is not None and self.proc.poll() is None
