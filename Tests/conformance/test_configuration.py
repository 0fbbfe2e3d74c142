"""`cairn serve` settings from the config file, the environment and flags; refusals name the key and exit 2."""
import os
import subprocess

import pytest

from cairn_process import BINARY
from conftest import client_for


def serve(args, env=None, timeout=20):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([BINARY, "serve", *args], capture_output=True, text=True, timeout=timeout, env=full_env)


@pytest.mark.parametrize(
    "args,config,fragment",
    [
        (["--dev", "--host", "0.0.0.0", "--port", "0"], None, "api.host"),
        (["--dev", "--port", "70000"], None, "api.port"),
        (["--dev", "--log-level", "loud"], None, "logLevel"),
        (["--dev"], "dataDir: /tmp/x\nbogus: 1\n", "bogus"),
        (["--dev"], "api:\n  prot: 1\n", "api.prot"),
        (["--dev"], "limits:\n  instancesPerService: 0\n", "limits.instancesPerService"),
        (["--dev"], "account: '12'\n", "account"),
        (["--dev"], "api: [1, 2]\n", "api"),
        (["--dev"], "dev: maybe\n", "dev"),
        (["--dev"], ": : :\n", "YAML"),
        (["--dev", "--host", "127.attacker.invalid", "--port", "0"], None, "api.host"),  # loopback by address, not prefix
        (["--dev", "--dns-host", "127.0.0.1,10.1.2.3"], None, "dns.host"),
        (["--dev", "--regions", "us-east-1,Bad_Region"], None, "regions"),
        (["--dev", "--region", "eu-west-1", "--regions", "us-east-1"], None, "region"),
        (["--dev"], "api:\n  timeouts: {idleSeconds: 0}\n", "api.timeouts.idleSeconds"),
        (["--dev"], "dns:\n  rateLimit: {slip: 99}\n", "dns.rateLimit.slip"),
        (["--dev"], "api:\n  watch: {maxEventsPerSecond: 0}\n", "api.watch.maxEventsPerSecond"),
        (["--dev"], "api:\n  watch: {maxBytesPerSecond: 1000}\n", "api.watch.maxBytesPerSecond"),
        (["--dev"], "dns:\n  transfer: {allow: [10.0.0.0/33]}\n", "dns.transfer.allow"),
        (["--dev"], "dns:\n  transfer: {notify: [ns2.example.com:53]}\n", "dns.transfer.notify"),
        (["--dev"], "dns:\n  transfer: {notify: 127.0.0.1:53}\n", "dns.transfer.notify"),
        (["--dev"], "dns:\n  transfer: {key: {name: k, secret: c2hvcnQ=}}\n", "dns.transfer.key"),
        (["--dev"], "dns:\n  transfer: {key: {name: k, secret: 'not base64!', algorithm: hmac-sha256}}\n", "dns.transfer.key"),
        (["--dev"], "dns:\n  transfer: {key: {name: k, algorithm: hmac-md5}}\n", "dns.transfer.key.algorithm"),
        (["--dev"], "dns:\n  availabilityZones: {us-east-1a: [10.0.0.0/99]}\n", "dns.availabilityZones.us-east-1a"),
        (["--dev"], "dns:\n  availabilityZones: {us-east-1a: []}\n", "dns.availabilityZones"),
        (["--dev"], "dns:\n  nameServers: [bad..name]\n", "dns.nameServers"),
    ],
)
def test_bad_settings_stop_the_server_with_the_key_named(tmp_path, args, config, fragment):
    if config is not None:
        path = tmp_path / "cairn.yaml"
        path.write_text(config)
        args = [*args, "--config", str(path)]
    out = serve([*args, "--data-dir", str(tmp_path / "data")])
    assert out.returncode == 2, out.stderr
    assert fragment in out.stderr, out.stderr
    assert not (tmp_path / "data" / "cairn.sqlite").exists()


def test_environment_and_config_file_fill_the_same_settings(tmp_path):
    config = tmp_path / "cairn.yaml"
    config.write_text(f"dataDir: {tmp_path / 'from-file'}\nregion: eu-central-1\n")
    # The environment overrides the file; flags (here --port and --dev from CairnProcess) override both.
    os.environ["CAIRN_DATA_DIR"] = str(tmp_path / "from-env")
    try:
        proc = subprocess.Popen([BINARY, "serve", "--dev", "--port", "0", "--dns-port", "0", "--config", str(config)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = ""
        for line in proc.stdout:
            if "cairn API listening on" in line:
                break
        port = int(line.rsplit(":", 1)[1])
        sd = client_for(f"http://127.0.0.1:{port}", "us-west-2")
        # A request without a credential scope lands in the configured region.
        import http.client, json
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/", json.dumps({"Name": "cfg"}), {
            "X-Amz-Target": "Route53AutoNaming_v20170314.CreateHttpNamespace", "Content-Type": "application/x-amz-json-1.1"})
        assert conn.getresponse().status == 200
        assert [n["Name"] for n in client_for(f"http://127.0.0.1:{port}", "eu-central-1").list_namespaces()["Namespaces"]] == ["cfg"]
        assert sd.list_namespaces()["Namespaces"] == []
        proc.terminate()
        assert proc.wait(20) == 0
    finally:
        del os.environ["CAIRN_DATA_DIR"]
    assert (tmp_path / "from-env" / "cairn.sqlite").exists()
    assert not (tmp_path / "from-file").exists()


def test_port_flag_and_environment_port(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen([BINARY, "serve", "--dev", "--dns-port", "0", "--data-dir", str(tmp_path)], env={**os.environ, "CAIRN_API_PORT": str(port)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:
            if "cairn API listening on" in line:
                assert line.strip().endswith(f":{port}")
                break
        assert client_for(f"http://127.0.0.1:{port}", "us-east-1").list_namespaces()["Namespaces"] == []
    finally:
        proc.terminate()
        proc.wait(20)


def test_a_second_server_on_a_taken_port_fails_cleanly(cairn, tmp_path):
    out = serve(["--dev", "--port", str(cairn.port), "--dns-port", "0", "--data-dir", str(tmp_path)])
    assert out.returncode != 0 and cairn.alive()
