"""The operator CLI (`cairn namespaces|services|instances|discover|health|operations|tags|audit|export|import`)
against a running server: output, --output json, exit codes, credentials from the standard AWS sources."""
import json
import os
import subprocess

import pytest

from cairn_process import BINARY, CairnProcess


@pytest.fixture(scope="module")
def server():
    s = CairnProcess(dev=False, extra_args=["--health-interval", "3600"]).start()
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def env(server, tmp_path_factory):
    """Credentials the way users keep them: the generated credentials file and its profile, no keys in the env."""
    home = tmp_path_factory.mktemp("home")
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    e.update({"HOME": str(home), "CAIRN_ENDPOINT": server.endpoint,
              "AWS_SHARED_CREDENTIALS_FILE": os.path.join(server.data_dir, "admin-credentials"), "AWS_PROFILE": "cairn-admin",
              "AWS_CONFIG_FILE": str(home / "config")})
    return e


def cairn(env, *args, code=0, stdin=None):
    out = subprocess.run([BINARY, *args], env=env, capture_output=True, text=True, timeout=120, input=stdin)
    assert out.returncode == code, f"cairn {' '.join(args)} → {out.returncode}\nstdout: {out.stdout}\nstderr: {out.stderr}"
    return out


def js(env, *args):
    return json.loads(cairn(env, *args, "--output", "json").stdout)


def test_the_lab_through_the_cli(env):
    ns = cairn(env, "namespaces", "create", "cli-demo", "--description", "CLI lab", "--tag", "team=platform").stdout.strip()
    assert ns.startswith("ns-")
    table = cairn(env, "namespaces", "list").stdout.splitlines()
    assert table[0].split() == ["ID", "NAME", "TYPE", "SERVICES", "DESCRIPTION"]
    assert any(line.split()[:3] == [ns, "cli-demo", "HTTP"] for line in table[1:])
    svc = cairn(env, "services", "create", "orders", "--namespace", ns, "--custom-health").stdout.strip()
    assert svc.startswith("srv-")
    register = cairn(env, "instances", "register", svc, "orders-1", "AWS_INSTANCE_IPV4=10.0.1.10", "AWS_INSTANCE_PORT=8080", "version=v1")
    assert "SUCCESS" in register.stderr, "waiting shows the operation's progress on stderr"
    op = register.stdout.strip()
    cairn(env, "instances", "register", svc, "orders-2", "AWS_INSTANCE_IPV4=10.0.2.20", "version=v2")
    assert [i["Id"] for i in js(env, "instances", "list", svc)] == ["orders-1", "orders-2"]
    assert js(env, "instances", "get", svc, "orders-1")["Attributes"]["version"] == "v1"

    found = js(env, "discover", "cli-demo", "orders", "--attribute", "version=v2")
    assert [i["InstanceId"] for i in found["Instances"]] == ["orders-2"]
    cairn(env, "health", "set", svc, "orders-1", "unhealthy")
    assert js(env, "health", "status", svc) == {"orders-1": "UNHEALTHY", "orders-2": "HEALTHY"}
    rows = cairn(env, "discover", "cli-demo", "orders", "--health", "healthy").stdout.splitlines()
    assert rows[0].split() == ["INSTANCE", "HEALTH", "ATTRIBUTES"] and [r.split()[0] for r in rows[1:]] == ["orders-2"]

    assert js(env, "operations", "get", op)["Status"] == "SUCCESS"
    assert cairn(env, "operations", "wait", op).stdout.strip() == "SUCCESS"
    assert op in [o["Id"] for o in js(env, "operations", "list", "--type", "register_instance")]

    arn = js(env, "services", "get", svc)["Arn"]
    cairn(env, "tags", "add", arn, "stage=prod", "owner=me")
    assert sorted(t["Key"] for t in js(env, "tags", "list", arn)) == ["owner", "stage"]
    cairn(env, "tags", "remove", arn, "owner")
    assert [t["Key"] for t in js(env, "tags", "list", arn)] == ["stage"]
    assert [t["Key"] for t in js(env, "tags", "list", svc)] == ["stage"]  # an id works as everywhere else
    cairn(env, "tags", "remove", svc, "stage")
    assert cairn(env, "tags", "list", svc, "--output", "json").stdout.strip() == "[]"  # empty on one line
    cairn(env, "services", "attributes", "set", svc, "tier=gold", "color=blue")
    cairn(env, "services", "attributes", "delete", svc, "color")
    assert js(env, "services", "attributes", "get", svc) == {"tier": "gold"}

    cairn(env, "instances", "deregister", svc, "orders-2")
    assert [i["Id"] for i in js(env, "instances", "list", svc)] == ["orders-1"]
    events = js(env, "audit", "lookup", "--event", "RegisterInstance", "--max", "10")
    assert len(events) == 2 and {e["userIdentity"]["userName"] for e in events} == {"administrator"}
    lines = cairn(env, "audit", "export").stdout.splitlines()
    assert len(lines) >= 20 and all(json.loads(line)["eventSource"] == "servicediscovery.amazonaws.com" for line in lines)


def test_exit_codes_scripts_can_trust(env, server):
    out = cairn(env, "services", "get", "srv-doesnotexist0000", code=1)
    assert out.stderr.startswith("cairn: ServiceNotFound:") and out.stdout == ""
    assert "must be KEY=VALUE" in cairn(env, "instances", "register", "srv-x", "i", "novalue", code=64).stderr
    cairn(env, "namespaces", "frobnicate", code=64)  # ArgumentParser: unknown subcommand
    unreachable = dict(env, CAIRN_ENDPOINT="http://127.0.0.1:1")
    assert "cannot reach Cairn" in cairn(unreachable, "namespaces", "list", code=3).stderr
    no_keys = {k: v for k, v in env.items() if k not in ("AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE")}
    assert "no credentials were found" in cairn(no_keys, "namespaces", "list", code=1).stderr
    wrong = dict(env, AWS_ACCESS_KEY_ID="AKIDWRONG", AWS_SECRET_ACCESS_KEY="wrong-secret-0123456789")
    del wrong["AWS_PROFILE"]
    assert "UnrecognizedClientException" in cairn(wrong, "namespaces", "list", code=1).stderr
    assert "OperationNotFound" in cairn(env, "operations", "wait", "nope", "--timeout", "1", code=1).stderr


def test_credentials_from_the_environment_and_a_named_profile(env, server, tmp_path):
    import configparser
    parser = configparser.ConfigParser()
    parser.read(os.path.join(server.data_dir, "admin-credentials"))
    key, secret = parser["cairn-admin"]["aws_access_key_id"], parser["cairn-admin"]["aws_secret_access_key"]
    plain = {k: v for k, v in env.items() if k not in ("AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE")}
    assert cairn(dict(plain, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret), "namespaces", "list").returncode == 0
    (tmp_path / "credentials").write_text(f"[ops]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n")
    (tmp_path / "config").write_text("[profile ops]\nregion = eu-west-1\n")
    profiled = dict(plain, AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"), AWS_CONFIG_FILE=str(tmp_path / "config"))
    ns = cairn(profiled, "--help").returncode == 0 and cairn(profiled, "namespaces", "create", "in-eu", "--profile", "ops").stdout.strip()
    names = [n["Name"] for n in js(profiled, "namespaces", "list", "--profile", "ops")]
    assert names == ["in-eu"], "the profile's region (eu-west-1) scopes the call"
    assert "in-eu" not in [n["Name"] for n in js(env, "namespaces", "list")]
    assert "--endpoint" in cairn(env, "instances", "register", "--help").stdout


def test_shell_completion_scripts(env):
    for shell in ("bash", "zsh", "fish"):
        script = cairn(env, "--generate-completion-script", shell).stdout
        assert "namespaces" in script and "discover" in script


def test_export_wipe_import_round_trip(env, server, tmp_path):
    ns = cairn(env, "namespaces", "create", "rt.internal", "--type", "private", "--soa-ttl", "30", "--tag", "k=v").stdout.strip()
    svc = cairn(env, "services", "create", "api", "--namespace", ns, "--dns", "A:30,SRV:30", "--routing", "MULTIVALUE",
                "--health-check", "HTTP:/health:2", "--tag", "tier=1", "--description", "the api").stdout.strip()
    cairn(env, "services", "attributes", "set", svc, "owner=team-a")
    for i in range(3):
        cairn(env, "instances", "register", svc, f"api-{i}", f"AWS_INSTANCE_IPV4=10.1.0.{i}", "AWS_INSTANCE_PORT=80")
    web = cairn(env, "namespaces", "create", "rt-web.example", "--type", "public").stdout.strip()
    custom = cairn(env, "services", "create", "www", "--namespace", web, "--custom-health", "--dns", "CNAME:300", "--routing", "weighted").stdout.strip()
    cairn(env, "instances", "register", custom, "edge", "AWS_INSTANCE_CNAME=edge.example.com")
    cairn(env, "health", "set", custom, "edge", "unhealthy")
    exported = tmp_path / "registry.json"
    cairn(env, "export", "--file", str(exported))
    before = json.loads(exported.read_text())
    before.pop("source")

    fresh = CairnProcess(dev=True, extra_args=["--health-interval", "3600"]).start()
    try:
        fenv = dict(env, CAIRN_ENDPOINT=fresh.endpoint, AWS_ACCESS_KEY_ID="AKIDFRESH", AWS_SECRET_ACCESS_KEY="x")
        fenv.pop("AWS_PROFILE")
        plan = cairn(fenv, "import", str(exported), "--dry-run").stdout.splitlines()
        assert any("create namespace rt.internal (DNS_PRIVATE)" in line for line in plan)
        assert js(fenv, "namespaces", "list") == [], "a dry run changes nothing"
        applied = cairn(fenv, "import", str(exported))
        assert f"[{len(plan)}/{len(plan)}]" in applied.stderr, "progress names each step"
        after = json.loads(cairn(fenv, "export").stdout)
        after.pop("source")
        assert after == before
        assert cairn(fenv, "import", str(exported), "--dry-run").stdout.startswith("nothing to do"), "importing again is a no-op"
        # Importing into a registry that already has some of it only adds what is missing.
        svc2 = [s["Id"] for s in js(fenv, "services", "list") if s["Name"] == "api"][0]
        cairn(fenv, "instances", "deregister", svc2, "api-1")
        plan = cairn(fenv, "import", str(exported), "--dry-run").stdout.splitlines()
        assert len(plan) == 1 and "register rt.internal/api/api-1" in plan[0]
        cairn(fenv, "import", str(exported))
        again = json.loads(cairn(fenv, "export").stdout)
        again.pop("source")
        assert again == before
    finally:
        assert fresh.stop() == 0


def test_a_dev_server_needs_no_credentials(tmp_path):
    dev = CairnProcess(extra_args=["--no-dns", "--health-interval", "3600"]).start()
    try:
        bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        bare.update(CAIRN_ENDPOINT=dev.endpoint, HOME=str(tmp_path))
        out = subprocess.run([BINARY, "namespaces", "create", "no-keys"], env=bare, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        out = subprocess.run([BINARY, "namespaces", "list", "--output", "json"], env=bare, capture_output=True, text=True, timeout=60)
        assert [n["Name"] for n in json.loads(out.stdout)] == ["no-keys"]
    finally:
        assert dev.stop() == 0
