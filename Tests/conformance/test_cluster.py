"""Cluster mode: several cairn nodes on one real PostgreSQL (started by the test command, CAIRN_TEST_POSTGRES)."""

import glob
import json
import os
import subprocess
import threading
import time
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from cairn_process import BINARY, CairnProcess
from conftest import client_for, http_namespace, private_namespace, wait_op

BASE_URL = os.environ.get("CAIRN_TEST_POSTGRES", "")
pytestmark = pytest.mark.skipif(not BASE_URL, reason="needs CAIRN_TEST_POSTGRES (scripts/test.sh starts a PostgreSQL)")
REGION = "us-east-1"


def psql_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    return found[-1] if found else "psql"


def sql(url, statement):
    out = subprocess.run([psql_bin(), url, "-Atqc", statement], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def fresh_database():
    name = "cairn_c_" + uuid.uuid4().hex[:12]
    sql(BASE_URL, f"CREATE DATABASE {name}")
    head, _, _ = BASE_URL.rpartition("/")
    return f"{head}/{name}"


def node(url, *extra):
    return CairnProcess(extra_args=["--store", url, "--health-interval", "3600", *extra]).start()


def until(predicate, what, limit=20):
    """Waits for another node to catch up (a generous bound so a hang fails instead of blocking the suite)."""
    deadline = time.time() + limit
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def dig(server, name, rdtype="A"):
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(server.dns_port), "+time=2", "+tries=1", "+short", name, rdtype],
                         capture_output=True, text=True, timeout=20).stdout
    return sorted(out.split())


def readyz(server):
    try:
        with urllib.request.urlopen(server.endpoint + "/readyz", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def cluster():
    url = fresh_database()
    nodes = [node(url) for _ in range(3)]
    yield url, nodes
    for n in nodes:
        n.kill()


def test_a_registration_on_one_node_is_discovered_and_answered_in_dns_on_the_others(cluster):
    url, (a, b, c) = cluster
    sa, sb, sc = (client_for(n.endpoint, REGION) for n in (a, b, c))
    ns = private_namespace(sa, "orders.cluster.internal")
    until(lambda: any(n["Id"] == ns for n in sb.list_namespaces()["Namespaces"]), "the namespace on b")
    svc = sb.create_service(Name="api", NamespaceId=ns, DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 5}]},
                            HealthCheckCustomConfig={})["Service"]
    until(lambda: any(s["Id"] == svc["Id"] for s in sc.list_services()["Services"]), "the service on c")
    for i in (1, 2):
        wait_op(sa, sa.register_instance(ServiceId=svc["Id"], InstanceId=f"i-{i}", Attributes={"AWS_INSTANCE_IPV4": f"10.1.0.{i}"})["OperationId"])
    for client, server in ((sb, b), (sc, c)):
        until(lambda: len(client.discover_instances(NamespaceName="orders.cluster.internal", ServiceName="api")["Instances"]) == 2,
              "discovery on another node")
        assert until(lambda: dig(server, "api.orders.cluster.internal"), "dns on another node") == ["10.1.0.1", "10.1.0.2"]
    # A health transition made on c reaches a and b, in the API and in DNS.
    sc.update_instance_custom_health_status(ServiceId=svc["Id"], InstanceId="i-1", Status="UNHEALTHY")
    for client, server in ((sa, a), (sb, b)):
        until(lambda: client.get_instances_health_status(ServiceId=svc["Id"])["Status"].get("i-1") == "UNHEALTHY", "health elsewhere")
        until(lambda: dig(server, "api.orders.cluster.internal") == ["10.1.0.2"], "the unhealthy instance leaves dns")
    revisions = {n.port: client_for(n.endpoint, REGION).discover_instances_revision(
        NamespaceName="orders.cluster.internal", ServiceName="api")["InstancesRevision"] for n in (a, b, c)}
    assert len(set(revisions.values())) == 1, revisions
    status, text = readyz(b)
    assert status == 200 and "lag=" in text, text
    until(lambda: "nodes=3" in readyz(c)[1], "c counts three live nodes")


def test_a_long_poll_on_one_node_returns_on_a_registration_made_on_another(cluster):
    from test_longpoll import discover, polling_client
    url, (a, b, c) = cluster
    sa = client_for(a.endpoint, REGION)
    ns = http_namespace(sa, "longpoll")
    service = sa.create_service(Name="web", NamespaceId=ns)["Service"]["Id"]
    waiting = polling_client(b, REGION)

    def index_on_b():
        try:
            return discover(waiting, "longpoll", index=0, wait=1)[1]
        except ClientError:  # b has not applied the service yet
            return None

    index = until(index_on_b, "the service on b")
    done = {}
    thread = threading.Thread(target=lambda: done.update(zip(("answer", "index", "took"), discover(waiting, "longpoll", index=index, wait=50))))
    thread.start()
    time.sleep(1)
    wait_op(sa, sa.register_instance(ServiceId=service, InstanceId="i-1", Attributes={"AWS_INSTANCE_IPV4": "10.2.0.1"})["OperationId"])
    thread.join(60)
    assert [i["InstanceId"] for i in done["answer"]["Instances"]] == ["i-1"] and done["index"] != index and done["took"] < 45, done


def test_conflicting_writes_from_two_nodes_have_exactly_one_winner_each(cluster):
    url, (a, b, _) = cluster
    sa, sb = client_for(a.endpoint, REGION), client_for(b.endpoint, REGION)
    ns = http_namespace(sa, "race")
    until(lambda: any(n["Id"] == ns for n in sb.list_namespaces()["Namespaces"]), "the namespace on b")
    names = 150
    outcomes = {"created": [], "exists": 0, "other": []}
    lock = threading.Lock()

    def create(client, start):
        for i in range(names):
            try:
                service = client.create_service(Name=f"svc-{(i + start) % names}", NamespaceId=ns)["Service"]
                with lock:
                    outcomes["created"].append(service["Name"])
            except ClientError as e:
                with lock:
                    if e.response["Error"]["Code"] == "ServiceAlreadyExists":
                        outcomes["exists"] += 1
                    else:
                        outcomes["other"].append(e.response["Error"])

    token = "same-token-" + uuid.uuid4().hex[:6]
    ops = []

    def idempotent(client):
        # The same CreatorRequestId on both nodes: one namespace, the same operation for both callers.
        for _ in range(25):
            try:
                ops.append(client.create_http_namespace(Name="idem", CreatorRequestId=token)["OperationId"])
            except ClientError as e:
                with lock:
                    outcomes["other"].append(e.response["Error"])

    threads = [threading.Thread(target=create, args=(client, start)) for client, start in ((sa, 0), (sb, 0), (sa, 75), (sb, 75))]
    threads += [threading.Thread(target=idempotent, args=(client,)) for client in (sa, sb)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes["other"] == []
    assert sorted(outcomes["created"]) == sorted(f"svc-{i}" for i in range(names))
    assert outcomes["exists"] == 3 * names
    assert len(set(ops)) == 1, set(ops)
    assert [n["Name"] for n in sa.list_namespaces()["Namespaces"]].count("idem") == 1

    # One instance id registered from both nodes at once: every registration lands, revisions strictly increase.
    svc = sa.list_services()["Services"][0]["Id"]
    until(lambda: any(s["Id"] == svc for s in sb.list_services(MaxResults=100)["Services"]) or sb.get_service(Id=svc), "service on b")
    service_name = sa.get_service(Id=svc)["Service"]["Name"]
    revisions = {"a": [], "b": []}

    def register(client, tag):
        for i in range(40):
            client.register_instance(ServiceId=svc, InstanceId="shared", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1", "by": f"{tag}{i}"})
            revisions[tag].append(client.discover_instances_revision(NamespaceName="race", ServiceName=service_name)["InstancesRevision"])

    workers = [threading.Thread(target=register, args=(c, t)) for c, t in ((sa, "a"), (sb, "b"))]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    for tag, seen in revisions.items():
        # Each node reads its own writes: every registration it acknowledged moved the service's revision on.
        assert all(x < y for x, y in zip(seen, seen[1:])), (tag, seen)
    instances = sa.list_instances(ServiceId=svc)["Instances"]
    assert [i["Id"] for i in instances] == ["shared"]
    verify = subprocess.run([BINARY, "audit", "verify", "--store", url, "--json"], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads(verify.stdout)
    assert report["intact"] is True and report["records"] > 4 * names
    # Batches are proposed (cairn_propose) and only those that lost take the lock on the node: fewer batches held the
    # lock than were committed (the upserts of "shared" from both nodes never read what the other wrote).
    with urllib.request.urlopen(a.endpoint + "/metrics", timeout=10) as r:
        metrics = dict(line.rsplit(" ", 1) for line in r.read().decode().splitlines() if line and not line.startswith("#"))
    held, committed = float(metrics["cairn_store_lock_held_seconds_count"]), float(metrics["cairn_store_commit_batch_entries_count"])
    assert held < committed, (held, committed)


def test_kill_9_of_a_node_under_write_load_loses_no_acknowledged_write(cluster):
    url, (a, b, c) = cluster
    sa = client_for(a.endpoint, REGION)
    ns = http_namespace(sa, "load")
    svc = sa.create_service(Name="api", NamespaceId=ns)["Service"]["Id"]
    acknowledged = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(server, tag):
        client = client_for(server.endpoint, REGION, connect_timeout=2, read_timeout=5)
        i = 0
        while not stop.is_set():
            i += 1
            try:
                client.register_instance(ServiceId=svc, InstanceId=f"{tag}-{i}", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.2"})
                with lock:
                    acknowledged.append(f"{tag}-{i}")
            except Exception:
                if not server.alive():
                    return

    threads = [threading.Thread(target=load, args=(n, t)) for n, t in ((a, "a"), (b, "b"), (a, "a2"))]
    for t in threads:
        t.start()
    until(lambda: len(acknowledged) >= 60, "some acknowledged writes", limit=60)
    a.kill()
    until(lambda: len(acknowledged) >= 120, "writes on the surviving node", limit=60)
    stop.set()
    for t in threads:
        t.join()
    sc = client_for(c.endpoint, REGION)

    def everything():
        found = set()
        token = None
        while True:
            page = sc.list_instances(ServiceId=svc, **({"NextToken": token} if token else {}))
            found.update(i["Id"] for i in page["Instances"])
            token = page.get("NextToken")
            if not token:
                return found

    until(lambda: set(acknowledged) <= everything(), "every acknowledged write on node c")
    # A node started afterwards loads them all from the database.
    d = node(url)
    try:
        sc = client_for(d.endpoint, REGION)
        assert set(acknowledged) <= everything()
    finally:
        d.kill()


def test_losing_postgresql_keeps_reads_refuses_writes_clearly_and_recovers():
    started = subprocess.run([os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "postgres.sh")],
                             capture_output=True, text=True, timeout=120, check=True).stdout.split()
    pg_dir, url = started[0], started[1]
    bindir = os.path.dirname(psql_bin())
    owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    a = b = None
    try:
        a, b = node(url), node(url)
        sa, sb = client_for(a.endpoint, REGION), client_for(b.endpoint, REGION)
        ns = http_namespace(sa, "survive")
        svc = sa.create_service(Name="api", NamespaceId=ns)["Service"]["Id"]
        sa.register_instance(ServiceId=svc, InstanceId="before", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.3"})
        until(lambda: sb.discover_instances(NamespaceName="survive", ServiceName="api")["Instances"], "b sees the instance")

        subprocess.run(owner + [os.path.join(bindir, "pg_ctl"), "-D", os.path.join(pg_dir, "data"), "-m", "immediate", "-w", "stop"],
                       check=True, capture_output=True, timeout=60)
        for client in (sa, sb):
            assert [i["InstanceId"] for i in client.discover_instances(NamespaceName="survive", ServiceName="api")["Instances"]] == ["before"]
        with pytest.raises(ClientError) as e:
            sa.register_instance(ServiceId=svc, InstanceId="during", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.4"})
        assert e.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        until(lambda: readyz(a)[0] == 503, "a is unready without its database")

        subprocess.run(owner + [os.path.join(bindir, "pg_ctl"), "-D", os.path.join(pg_dir, "data"), "-l", os.path.join(pg_dir, "server.log"),
                                "-w", "start"], check=True, capture_output=True, timeout=60)
        until(lambda: readyz(a)[0] == 200, "a is ready again", limit=60)

        def write_after():
            try:
                sa.register_instance(ServiceId=svc, InstanceId="after", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.5"})
                return True
            except ClientError:
                return False

        until(write_after, "a write succeeds again", limit=60)
        until(lambda: {"before", "after"} == {i["InstanceId"] for i in
                                               sb.discover_instances(NamespaceName="survive", ServiceName="api")["Instances"]},
              "b follows again after the restart")
        assert "during" not in {i["Id"] for i in sa.list_instances(ServiceId=svc)["Instances"]}

        # A follower whose LISTEN connection is killed catches up too.
        sql(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()")
        sa.register_instance(ServiceId=svc, InstanceId="after-listen", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.6"})
        until(lambda: "after-listen" in {i["InstanceId"] for i in
                                         sb.discover_instances(NamespaceName="survive", ServiceName="api")["Instances"]},
              "b catches up after its LISTEN connection died")
    finally:
        for n in (a, b):
            if n:
                n.kill()
        subprocess.run([os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "postgres.sh"), "stop", pg_dir], timeout=60)


def test_a_listen_connection_that_goes_silent_is_noticed_and_replaced():
    """A LISTEN session whose server process stops answering without closing the socket (SIGSTOP here; a dead host
    or a partition in production) looks like an idle database. The poll finds the commits no notification announced,
    and the node replaces the session: no query of its own is needed to check it."""
    url = fresh_database()
    a = b = None
    frozen = []
    try:
        a, b = node(url), node(url)
        sa, sb = client_for(a.endpoint, REGION), client_for(b.endpoint, REGION)
        ns = http_namespace(sa, "hush")
        svc = sa.create_service(Name="api", NamespaceId=ns)["Service"]["Id"]
        until(lambda: any(s["Id"] == svc for s in sb.list_services()["Services"]), "the service on b")
        listening = "SELECT pid FROM pg_stat_activity WHERE query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()"
        frozen = [int(p) for p in until(lambda: sql(url, listening).split() if len(sql(url, listening).split()) == 2 else None,
                                        "both nodes listening")]
        for pid in frozen:
            os.kill(pid, 19)  # SIGSTOP: the socket stays open, nothing more comes from it
        for i in range(3):
            sa.register_instance(ServiceId=svc, InstanceId=f"quiet-{i}", Attributes={"AWS_INSTANCE_IPV4": f"10.0.1.{i}"})
            until(lambda: f"quiet-{i}" in {x["InstanceId"] for x in
                                            sb.discover_instances(NamespaceName="hush", ServiceName="api")["Instances"]},
                  "b finds the change by its poll")
            time.sleep(0.6)
        until(lambda: any("missed notifications" in line for line in b.log_lines), "b notices its deaf LISTEN session")
        until(lambda: [p for p in sql(url, listening).split() if int(p) not in frozen], "a new LISTEN session")
        sa.register_instance(ServiceId=svc, InstanceId="heard", Attributes={"AWS_INSTANCE_IPV4": "10.0.1.9"})
        until(lambda: "heard" in {x["InstanceId"] for x in sb.discover_instances(NamespaceName="hush", ServiceName="api")["Instances"]},
              "b follows again")
    finally:
        for pid in frozen:
            try:
                os.kill(pid, 18)  # SIGCONT, so the server can stop
            except ProcessLookupError:
                pass
        for n in (a, b):
            if n:
                n.kill()


@pytest.mark.parametrize("kind", ["syntax", "password", "unreachable", "newer-schema"])
def test_a_bad_store_is_refused_at_start_with_a_clear_message_and_no_partial_schema(kind):
    url = fresh_database()
    head, _, database = url.rpartition("/")
    if kind == "syntax":
        target, expected = "postgres://nobody@/x", "names no host"
    elif kind == "password":
        user_host = head.split("://", 1)[1].split("@", 1)[1]
        target, expected = f"postgres://cairn:wrong@{user_host}/{database}", "password authentication failed"
    elif kind == "unreachable":
        target, expected = f"postgres://cairn:cairn@127.0.0.1:1/{database}", "cannot connect to PostgreSQL"
    else:
        n = node(url)
        n.stop()
        sql(url, "INSERT INTO cairn_schema (version) VALUES (999)")
        target, expected = url, "newer than this binary"
    out = subprocess.run([BINARY, "serve", "--dev", "--store", target, "--port", "0", "--no-dns"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert expected in out.stderr, out.stderr
    assert "wrong" not in out.stderr and ":cairn@" not in out.stderr  # no password in the message
    if kind in ("password", "unreachable"):
        assert sql(url, "SELECT to_regclass('cairn_schema') IS NULL") == "t"


def test_a_sqlite_registry_moves_into_a_cluster_with_export_and_import():
    single = CairnProcess().start()
    url = fresh_database()
    try:
        s = client_for(single.endpoint, REGION)
        ns = http_namespace(s, "moving")
        svc = s.create_service(Name="api", NamespaceId=ns, Tags=[{"Key": "team", "Value": "blue"}])["Service"]["Id"]
        for i in range(5):
            s.register_instance(ServiceId=svc, InstanceId=f"i-{i}", Attributes={"AWS_INSTANCE_IPV4": f"10.2.0.{i}"})
        document = os.path.join(single.data_dir, "export.json")
        env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDCAIRNTEST", AWS_SECRET_ACCESS_KEY="x", AWS_REGION=REGION)
        subprocess.run([BINARY, "export", "--endpoint", single.endpoint, "--file", document], check=True, env=env, timeout=60,
                       capture_output=True)
        a, b = node(url), node(url)
        try:
            subprocess.run([BINARY, "import", "--endpoint", a.endpoint, document], check=True, env=env, timeout=120, capture_output=True)
            sb = client_for(b.endpoint, REGION)
            found = until(lambda: {i["InstanceId"] for i in sb.discover_instances(NamespaceName="moving", ServiceName="api")["Instances"]}
                          == {f"i-{i}" for i in range(5)}, "the imported instances on the other node")
            assert found
            again = subprocess.run([BINARY, "import", "--endpoint", b.endpoint, document], env=env, timeout=120, capture_output=True, text=True)
            assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout + again.stderr
        finally:
            a.kill()
            b.kill()
    finally:
        single.kill()


def checked(server):
    with urllib.request.urlopen(server.endpoint + "/cairn/v1/health-checker", timeout=10) as r:
        return json.loads(r.read())["Instances"]


def test_active_health_checks_are_divided_among_live_nodes_and_taken_over_when_one_dies():
    from health_targets import SwitchableHTTP

    url = fresh_database()
    target = SwitchableHTTP()
    args = ["--health-interval", "1", "--health-allow-loopback"]
    a = CairnProcess(extra_args=["--store", url, *args]).start()
    b = CairnProcess(extra_args=["--store", url, *args]).start()
    try:
        sa = client_for(a.endpoint, REGION)
        ns = http_namespace(sa, "probed")
        svc = sa.create_service(Name="web", NamespaceId=ns, HealthCheckConfig={"Type": "HTTP", "ResourcePath": "/", "FailureThreshold": 1})["Service"]["Id"]
        count = 40
        for i in range(count):
            sa.register_instance(ServiceId=svc, InstanceId=f"i-{i}",
                                 Attributes={"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": str(target.port)})
        for n in (a, b):
            until(lambda: "nodes=2" in readyz(n)[1], "both nodes see two live nodes")
        # Each instance is probed by exactly one node; both nodes have a share.
        until(lambda: checked(a) + checked(b) == count and checked(a) > 0 and checked(b) > 0, "the checks divided between a and b")
        with urllib.request.urlopen(a.endpoint + "/metrics", timeout=10) as r:
            metrics = r.read().decode()
        assert "cairn_cluster_live_nodes 2" in metrics and "cairn_cluster_lag_revisions" in metrics

        b.kill()
        # Within the member timeout (10 s by the database's clock) plus a heartbeat, a takes over b's share.
        until(lambda: checked(a) == count, "a checks every instance after b died", limit=60)
        target.status = 500
        until(lambda: set(sa.get_instances_health_status(ServiceId=svc)["Status"].values()) == {"UNHEALTHY"},
              "every instance reported unhealthy by the surviving node", limit=60)
    finally:
        a.kill()
        b.kill()
        target.close()
