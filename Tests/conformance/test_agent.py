"""`cairn agent` (docs/agent.md): a sidecar that registers a host's instances with leases, pushes their health from
local checks (a real HTTP server, a TCP listener, a command), registers them again when Cairn lost them, deregisters
them on SIGTERM, and — killed with -9 — leaves them to the lease expiry."""
import os
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from cairn_process import BINARY, CairnProcess
from conftest import client_for, free_port, http_namespace
from health_targets import SwitchableHTTP, TCPListener


def until(check, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"never happened: {what}")


class Agent:
    """`cairn agent --config FILE` as a process of its own, its log kept."""

    def __init__(self, endpoint, region, yaml):
        fd, self.path = tempfile.mkstemp(suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            f.write(yaml)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"CAIRN_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": "AKIDCAIRNTEST", "AWS_SECRET_ACCESS_KEY": "any-secret",
                    "AWS_REGION": region, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
        self.proc = subprocess.Popen([BINARY, "agent", "--config", self.path], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines = []
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()

    @property
    def log(self):
        return "".join(self.lines)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(60)
        time.sleep(0.1)  # the log's last lines
        return code


@pytest.fixture
def agents():
    started = []
    yield started
    for agent in started:
        if agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait(30)


def instances(sd, service):
    return {i["Id"]: i["Attributes"] for i in sd.list_instances(ServiceId=service)["Instances"]}


def health(sd, service):
    answer = sd.get_instances_health_status(ServiceId=service)["Status"]
    return answer


def test_registers_pushes_health_from_a_real_http_check_and_deregisters_on_sigterm(cairn, sd, region, name, agents):
    ns = http_namespace(sd, name)
    web = sd.create_service(Name="web", NamespaceId=ns, HealthCheckCustomConfig={"FailureThreshold": 1})["Service"]["Id"]
    app = SwitchableHTTP()
    try:
        agent = Agent(cairn.endpoint, region, f"""
lease: 10
services:
  - namespace: {name}
    service: web
    instanceId: web-1
    ipv4: 127.0.0.1
    port: {app.port}
    attributes: {{version: 7}}
    check: {{http: "http://127.0.0.1:{app.port}/healthz", interval: 0.3, failureThreshold: 2}}
""")
        agents.append(agent)
        until(lambda: "web-1" in instances(sd, web), "the agent registers web-1\n" + agent.log)
        # Registered before its first check: unhealthy until the check passes.
        assert instances(sd, web)["web-1"] == {"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": str(app.port),
                                               "CAIRN_LEASE_SECONDS": "10", "version": "7",
                                               "AWS_INIT_HEALTH_STATUS": "UNHEALTHY"}
        until(lambda: health(sd, web) == {"web-1": "HEALTHY"}, "the passing check makes it HEALTHY\n" + agent.log)
        assert app.last_path == "/healthz"
        # The application starts failing: after two failed checks it is UNHEALTHY, and discovery says so.
        app.status = 503
        until(lambda: health(sd, web) == {"web-1": "UNHEALTHY"}, "the failing check makes it UNHEALTHY\n" + agent.log)
        found = sd.discover_instances(NamespaceName=name, ServiceName="web", HealthStatus="HEALTHY")["Instances"]
        assert found == []
        app.status = 200
        until(lambda: health(sd, web) == {"web-1": "HEALTHY"}, "it recovers\n" + agent.log)
        # Longer than the lease: the agent renews it, so it stays.
        time.sleep(12)
        assert "web-1" in instances(sd, web)
        assert agent.stop() == 0, agent.log
        assert instances(sd, web) == {}, agent.log
        assert "deregistered web-1" in agent.log
    finally:
        app.close()


def test_kill_9_leaves_the_instance_to_its_lease(cairn, sd, region, name, agents):
    ns = http_namespace(sd, name)
    svc = sd.create_service(Name="db", NamespaceId=ns)["Service"]["Id"]
    agent = Agent(cairn.endpoint, region, f"""
lease: 5
services:
  - serviceId: {svc}
    instanceId: db-1
    ipv4: 10.1.2.3
    port: 5432
""")
    agents.append(agent)
    until(lambda: "db-1" in instances(sd, svc), "the agent registers db-1\n" + agent.log)
    time.sleep(7)  # renewed past one lease
    assert "db-1" in instances(sd, svc), agent.log
    assert agent.stop(signal.SIGKILL) == -signal.SIGKILL
    # Nobody deregistered it: Cairn does once the lease runs out.
    until(lambda: instances(sd, svc) == {}, "the lease expires after the agent's death")


def test_tcp_and_command_checks(cairn, sd, region, name, agents, tmp_path):
    ns = http_namespace(sd, name)
    svc = sd.create_service(Name="jobs", NamespaceId=ns, HealthCheckCustomConfig={})["Service"]["Id"]
    listener = TCPListener()  # listening
    ready = tmp_path / "ready"
    ready.write_text("")
    try:
        agent = Agent(cairn.endpoint, region, f"""
services:
  - serviceId: {svc}
    instanceId: tcp
    ipv4: 127.0.0.1
    port: {listener.port}
    check: {{tcp: "127.0.0.1:{listener.port}", interval: 0.3, failureThreshold: 1}}
  - serviceId: {svc}
    instanceId: cmd
    check: {{command: [test, -e, "{ready}"], interval: 0.3, failureThreshold: 1}}
  - serviceId: {svc}
    instanceId: slow
    check: {{command: [sleep, "30"], interval: 0.5, timeout: 0.5}}
""")
        agents.append(agent)
        until(lambda: health(sd, svc) == {"tcp": "HEALTHY", "cmd": "HEALTHY", "slow": "UNHEALTHY"},
              "tcp and cmd pass, the command that outlives its timeout fails\n" + agent.log)
        listener.close()
        ready.unlink()
        until(lambda: health(sd, svc) == {"tcp": "UNHEALTHY", "cmd": "UNHEALTHY", "slow": "UNHEALTHY"},
              "a refused connection and a failing command\n" + agent.log)
        assert agent.stop(signal.SIGINT) == 0
        assert instances(sd, svc) == {}
    finally:
        listener.close()



def test_registers_again_when_cairn_lost_the_instance(agents, tmp_path):
    """Cairn restarted on an empty store, on the same address: the renewal finds no instance, so the agent
    registers it again (and pushes its health again)."""
    port = free_port()
    first = CairnProcess(data_dir=str(tmp_path / "a"), extra_args=["--store", "memory", "--port", str(port)], single=True).start()
    try:
        assert first.port == port
        sd = client_for(first.endpoint, "us-east-1")
        ns = http_namespace(sd, "agentns")
        svc = sd.create_service(Name="web", NamespaceId=ns)["Service"]["Id"]
        agent = Agent(first.endpoint, "us-east-1", f"lease: 6\nservices: [{{namespace: agentns, service: web, instanceId: w, ipv4: 10.0.0.9}}]\n")
        agents.append(agent)
        until(lambda: "w" in instances(sd, svc), "registered\n" + agent.log)
    finally:
        assert first.stop() == 0
    second = CairnProcess(data_dir=str(tmp_path / "b"), extra_args=["--store", "memory", "--port", str(port)], single=True).start()
    try:
        sd = client_for(second.endpoint, "us-east-1")
        ns = http_namespace(sd, "agentns")
        # The same names under new ids: the agent's renewal finds no service, it looks the names up again.
        svc = sd.create_service(Name="web", NamespaceId=ns)["Service"]["Id"]
        until(lambda: "w" in instances(sd, svc), "the agent registers w again in the new registry\n" + agent.log)
        assert "registering again" in agent.log
        assert agent.proc.poll() is None, agent.log
        assert agent.stop() == 0
        assert instances(sd, svc) == {}
    finally:
        agent.stop()
        second.stop()


@pytest.mark.parametrize("yaml,says", [
    ("services: []", "services must list at least one"),
    ("lease: 2\nservices: [{serviceId: srv-x}]", "lease must be from 5"),
    ("services: [{serviceId: srv-x, check: {http: 'http://example.com/'}}]", "must name an IP address"),
    ("services: [{serviceId: srv-x, colour: red}]", "colour is not a known key"),
])
def test_a_bad_file_is_refused_with_its_key(cairn, region, yaml, says):
    agent = Agent(cairn.endpoint, region, yaml)
    assert agent.stop(signal.SIGCONT) == 64
    assert says in agent.log


def test_a_check_on_a_service_without_custom_health_or_an_unknown_service_stops_the_agent(cairn, sd, region, name):
    ns = http_namespace(sd, name)
    plain = sd.create_service(Name="plain", NamespaceId=ns)["Service"]["Id"]
    agent = Agent(cairn.endpoint, region, f"services: [{{serviceId: {plain}, instanceId: a, check: {{tcp: '127.0.0.1:1'}}}}]")
    assert agent.stop(signal.SIGCONT) == 1
    assert "HealthCheckCustomConfig" in agent.log
    agent = Agent(cairn.endpoint, region, f"services: [{{namespace: {name}, service: nothere}}]")
    assert agent.stop(signal.SIGCONT) == 1
    assert "has no service nothere" in agent.log
    assert sd.list_instances(ServiceId=plain)["Instances"] == []
