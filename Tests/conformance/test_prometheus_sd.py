"""Prometheus discovers its targets through Cairn (a Cairn extension, docs/api-compatibility.md): a real Prometheus
(Debian's `prometheus`) with `http_sd_configs` pointing at /cairn/v1/prometheus-sd scrapes real HTTP servers registered
in Cairn, and drops them when they are deregistered or turn unhealthy."""
import base64
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3
import pytest
from botocore.config import Config

from cairn_admin import signed_get
from cairn_process import CairnProcess, ROOT
from conftest import free_port, http_namespace

ADMIN = ("AKIDPROMADMIN0001", "prom-admin-secret-0123456789abcd")
SCRAPER = ("AKIDPROMSCRAPER01", "prom-scraper-secret-0123456789ab")
LISTER = ("AKIDPROMLISTER001", "prom-lister-secret-0123456789abc")

CONFIG = f"""
accessKeys:
  - id: {ADMIN[0]}
    secret: {ADMIN[1]}
principals:
  - name: scraper
    accessKeys: [{{id: {SCRAPER[0]}, secret: {SCRAPER[1]}}}]
    policyFiles: [{os.path.join(ROOT, "docs", "policies", "reader.json")}]
  - name: lister
    accessKeys: [{{id: {LISTER[0]}, secret: {LISTER[1]}}}]
    policies:
      - Version: "2012-10-17"
        Statement:
          - {{Effect: Allow, Action: "servicediscovery:DiscoverInstances", Resource: "*",
              Condition: {{StringEquals: {{"servicediscovery:ServiceName": "api"}}}}}}
"""


@pytest.fixture(scope="module")
def server():
    s = CairnProcess(dev=False, config=CONFIG, extra_args=["--health-interval", "3600"]).start()
    yield s
    assert s.stop() == 0


def admin_client(server):
    return boto3.client("servicediscovery", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=ADMIN[0],
                        aws_secret_access_key=ADMIN[1], config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))



def exporter(name):
    """A real HTTP server with a /metrics page, on a free port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"# TYPE cairn_test_up gauge\ncairn_test_up{{exporter=\"{name}\"}} 1\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def basic_get(server, path, who, **params):
    request = urllib.request.Request(f"{server.endpoint}{path}?{urllib.parse.urlencode(params)}")
    if who:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{who[0]}:{who[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), response.headers.get("Content-Type")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), None


def until(check, what, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture(scope="module")
def registry(server):
    """shop: web (two exporters, custom health) and api (one instance with no port)."""
    sd = admin_client(server)
    ns = http_namespace(sd, "shop")
    web = sd.create_service(Name="web", NamespaceId=ns, HealthCheckCustomConfig={"FailureThreshold": 1})["Service"]["Id"]
    api = sd.create_service(Name="api", NamespaceId=ns)["Service"]["Id"]
    exporters = [exporter("a"), exporter("b")]
    for n, e in enumerate(exporters):
        sd.register_instance(ServiceId=web, InstanceId=f"web-{n}", Attributes={
            "AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": str(e.server_address[1]), "zone": f"z{n}", "build.id": "7"})
    sd.register_instance(ServiceId=api, InstanceId="api-0", Attributes={"AWS_INSTANCE_IPV6": "::1"})
    yield sd, web, api, exporters
    for e in exporters:
        e.shutdown()


def test_the_route_answers_in_prometheus_http_sd_format(server, registry):
    sd, web, api, exporters = registry
    status, groups, content_type = basic_get(server, "/cairn/v1/prometheus-sd", SCRAPER, namespace="shop")
    assert status == 200 and content_type == "application/json"
    by_id = {g["labels"]["__meta_cairn_instance_id"]: g for g in groups}
    assert set(by_id) == {"web-0", "web-1", "api-0"}
    web0 = by_id["web-0"]
    assert web0["targets"] == [f"127.0.0.1:{exporters[0].server_address[1]}"]
    assert web0["labels"] == {
        "__meta_cairn_namespace": "shop", "__meta_cairn_namespace_id": web0["labels"]["__meta_cairn_namespace_id"],
        "__meta_cairn_service": "web", "__meta_cairn_service_id": web, "__meta_cairn_instance_id": "web-0",
        "__meta_cairn_health_status": "HEALTHY", "__meta_cairn_attribute_AWS_INSTANCE_IPV4": "127.0.0.1",
        "__meta_cairn_attribute_AWS_INSTANCE_PORT": str(exporters[0].server_address[1]), "__meta_cairn_attribute_zone": "z0",
        "__meta_cairn_attribute_build_id": "7"}
    assert by_id["api-0"]["targets"] == ["[::1]"]  # no port: Prometheus adds the scheme's
    status, groups, _ = basic_get(server, "/cairn/v1/prometheus-sd", SCRAPER, namespace="shop", service="api")
    assert [g["labels"]["__meta_cairn_instance_id"] for g in groups] == ["api-0"]
    # SigV4 works as on every Cairn route.
    status, body = signed_get(server.endpoint, "/cairn/v1/prometheus-sd", *SCRAPER, namespace="shop", service="web")
    assert status == 200 and len(json.loads(body)) == 2


@pytest.mark.parametrize("who,params,status,code", [
    (None, {"namespace": "shop"}, 403, None),
    ((SCRAPER[0], "not-the-secret-0123456789"), {"namespace": "shop"}, 403, "UnrecognizedClientException"),
    (("AKIDNOSUCHKEY0001", SCRAPER[1]), {"namespace": "shop"}, 403, "UnrecognizedClientException"),
    (SCRAPER, {}, 400, "InvalidInput"),
    (SCRAPER, {"namespace": "shop", "health": "GREEN"}, 400, "InvalidInput"),
    (SCRAPER, {"namespace": "nowhere"}, 400, "NamespaceNotFound"),
    (SCRAPER, {"namespace": "shop", "service": "nope"}, 400, "ServiceNotFound"),
    (SCRAPER, {"namespace": "shop", "region": "xx-nowhere-9"}, 400, "InvalidInput"),
    (LISTER, {"namespace": "shop", "service": "web"}, 400, "AccessDeniedException"),
])
def test_bad_requests_and_callers_get_clear_errors(server, registry, who, params, status, code):
    got, body, _ = basic_get(server, "/cairn/v1/prometheus-sd", who, **params)
    assert got == status, body
    assert body["Message"] and (code is None or body["__type"] == code)


def test_a_caller_sees_only_the_services_its_policies_let_it_discover(server, registry):
    status, groups, _ = basic_get(server, "/cairn/v1/prometheus-sd", LISTER, namespace="shop")
    assert status == 200 and [g["labels"]["__meta_cairn_instance_id"] for g in groups] == ["api-0"]


@pytest.fixture
def prometheus(server):
    if not shutil.which("prometheus"):
        pytest.fail("prometheus is not installed (scripts/test.sh installs Debian's package)")
    work = tempfile.mkdtemp(prefix="cairn-prometheus-")
    port = free_port()
    query = urllib.parse.urlencode({"namespace": "shop", "service": "web"})
    with open(os.path.join(work, "prometheus.yml"), "w") as f:
        f.write(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: cairn
    scrape_interval: 1s
    http_sd_configs:
      - url: "{server.endpoint}/cairn/v1/prometheus-sd?{query}"
        refresh_interval: 1s
        basic_auth: {{username: {SCRAPER[0]}, password: {SCRAPER[1]}}}
    relabel_configs:
      - {{source_labels: [__meta_cairn_instance_id], target_label: instance_id}}
      - {{source_labels: [__meta_cairn_attribute_zone], target_label: zone}}
""")
    log = open(os.path.join(work, "prometheus.log"), "w")
    process = subprocess.Popen(
        ["prometheus", f"--config.file={work}/prometheus.yml", f"--storage.tsdb.path={work}/data",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    yield f"http://127.0.0.1:{port}", work
    process.terminate()
    process.wait(30)
    log.close()
    shutil.rmtree(work, ignore_errors=True)


def active(prometheus_url):
    """instance_id → health of Prometheus' active targets (None while Prometheus is starting)."""
    try:
        with urllib.request.urlopen(f"{prometheus_url}/api/v1/targets?state=active", timeout=10) as response:
            targets = json.loads(response.read())["data"]["activeTargets"]
    except (OSError, ValueError, KeyError):
        return None
    return {t["labels"].get("instance_id"): t["health"] for t in targets}


def test_a_real_prometheus_scrapes_what_cairn_lists_and_drops_what_leaves(server, registry, prometheus):
    sd, web, api, exporters = registry
    url, work = prometheus
    until(lambda: active(url) == {"web-0": "up", "web-1": "up"}, "Prometheus scrapes both registered exporters")
    # The labels came through relabelling from Cairn's __meta_cairn_* labels, and the scrape itself worked.
    with urllib.request.urlopen(f"{url}/api/v1/query?query=cairn_test_up", timeout=10) as response:
        series = json.loads(response.read())["data"]["result"]
    assert {(s["metric"]["instance_id"], s["metric"]["zone"], s["metric"]["exporter"]) for s in series} == {
        ("web-0", "z0", "a"), ("web-1", "z1", "b")}

    sd.update_instance_custom_health_status(ServiceId=web, InstanceId="web-1", Status="UNHEALTHY")
    until(lambda: active(url) == {"web-0": "up"}, "Prometheus drops the unhealthy instance")
    sd.update_instance_custom_health_status(ServiceId=web, InstanceId="web-1", Status="HEALTHY")
    until(lambda: active(url) == {"web-0": "up", "web-1": "up"}, "Prometheus takes it back when healthy")
    sd.deregister_instance(ServiceId=web, InstanceId="web-0")
    until(lambda: active(url) == {"web-1": "up"}, "Prometheus drops the deregistered instance")
