"""Start and stop a real `cairn serve` process for the conformance tests."""
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

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


class CairnProcess:
    """One cairn server on a free loopback port, with its own data directory unless one is given."""

    def __init__(self, data_dir=None, config=None, extra_args=(), dev=True, launcher=()):
        self.dev = dev
        self.launcher = list(launcher)
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="cairn-test-")
        self.config = config
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = None
        self.dns_port = None
        self.log_lines = []

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=60):
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
                self.log_lines.append(line)
                d = DNS_LISTENING.search(line)
                if d:
                    self.dns_port = int(d.group(1))
                m = LISTENING.search(line)
                if m and not ready.is_set():
                    port_box.append(int(m.group(1)))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(max(0.1, deadline - time.time())) or not port_box:
            self.kill()
            raise RuntimeError("cairn did not start:\n" + "".join(self.log_lines))
        self.port = port_box[0]
        return self

    def stop(self, timeout=30):
        """SIGTERM and wait: the graceful path."""
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
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None
