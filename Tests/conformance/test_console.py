"""The web console in a real headless Chromium: sign in, see the walkthrough's namespace, service and instances,
watch the page follow a health change made elsewhere without reloading, act from the page, and see a denied
action's error. Screenshots land in the test's directory (CAIRN_SCREENSHOTS=dir keeps them; docs/console.png is
the service page of the first test)."""
import http.cookiejar
import json
import os
import urllib.error
import urllib.parse
import urllib.request

import boto3
import pytest
from botocore.config import Config

from browser import Browser, chromium_binary
from cairn_process import CairnProcess, node_endpoint
from health_targets import SwitchableHTTP

ADMIN = ("AKIDCONSOLEADMIN1", "console-admin-secret-0123456")
READER = ("AKIDCONSOLEREADR1", "console-reader-secret-012345")
CONFIG = f"""
accessKeys:
  - {{id: {ADMIN[0]}, secret: {ADMIN[1]}}}
principals:
  - name: viewer
    accessKeys: [{{id: {READER[0]}, secret: {READER[1]}}}]
    policies:
      - Version: "2012-10-17"
        Statement:
          - {{Effect: Allow, Action: ["servicediscovery:Get*", "servicediscovery:List*", "servicediscovery:Discover*"], Resource: "*"}}
"""

# scripts/test.sh installs Chromium and runs the whole suite with CAIRN_FULL_SUITE=1: there, no browser is a failure.
pytestmark = pytest.mark.skipif(chromium_binary() is None and os.environ.get("CAIRN_FULL_SUITE") != "1",
                                reason="needs chromium (scripts/test.sh installs it)")


@pytest.fixture(scope="module")
def server():
    s = CairnProcess(dev=False, config=CONFIG, extra_args=["--health-interval", "1", "--health-allow-loopback"]).start()
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def world(server):
    sd = boto3.client("servicediscovery", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=ADMIN[0],
                      aws_secret_access_key=ADMIN[1], config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))
    op = sd.create_private_dns_namespace(Name="demo.internal", Vpc="default", Description="the walkthrough's lab")["OperationId"]
    ns = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
    svc = sd.create_service(Name="orders", NamespaceId=ns, DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 60}, {"Type": "SRV", "TTL": 60}]},
                            HealthCheckCustomConfig={"FailureThreshold": 1})["Service"]["Id"]
    sd.register_instance(ServiceId=svc, InstanceId="orders-1", Attributes={"AWS_INSTANCE_IPV4": "10.0.1.10", "AWS_INSTANCE_PORT": "8080", "version": "v1"})
    sd.register_instance(ServiceId=svc, InstanceId="orders-2", Attributes={"AWS_INSTANCE_IPV4": "10.0.2.20", "AWS_INSTANCE_PORT": "8080", "version": "v2"})
    return sd, ns, svc


@pytest.fixture
def shots(tmp_path):
    directory = os.environ.get("CAIRN_SCREENSHOTS") or str(tmp_path)
    os.makedirs(directory, exist_ok=True)
    return directory


def sign_in(browser, server, who, endpoint=None):
    browser.goto(f"{endpoint or server.endpoint}/console")
    assert browser.evaluate("location.pathname") == "/console/login"
    browser.fill("accessKeyId", who[0])
    browser.fill("secretAccessKey", who[1])
    browser.click("signin")


def test_sign_in_browse_and_watch_health_change_live(server, world, shots):
    sd, ns, svc = world
    browser = Browser()
    try:
        browser.goto(f"{server.endpoint}/console")
        browser.fill("accessKeyId", ADMIN[0])
        browser.fill("secretAccessKey", "not-the-secret-0000000000")
        browser.click("signin")
        assert "Unknown access key or wrong secret" in browser.text()

        sign_in(browser, server, ADMIN)
        assert browser.evaluate("location.pathname") == "/console"
        assert "demo.internal" in browser.text("namespaces")
        browser.screenshot(os.path.join(shots, "console-namespaces.png"))
        browser.evaluate(f"document.querySelector('a[href=\"/console/namespaces/{ns}\"]').click()")
        browser.wait_for("location.pathname.startsWith('/console/namespaces/') && document.readyState === 'complete'")
        assert "orders" in browser.text("services")
        browser.goto(f"{server.endpoint}/console/services/{svc}")
        assert browser.text("health-orders-1") == "HEALTHY" and browser.text("health-orders-2") == "HEALTHY"
        assert "version=v2" in browser.text("instance-orders-2")
        dns = browser.text("dns")
        assert "orders.demo.internal. 60 IN A 10.0.1.10" in dns and "SRV 1 1 8080 orders-2.orders.demo.internal." in dns
        assert "orders-2.orders.demo.internal. 60 IN A 10.0.2.20" in dns

        # A change made elsewhere shows up without a reload, in the table and in the DNS records.
        browser.evaluate("window.notReloaded = true")
        sd.update_instance_custom_health_status(ServiceId=svc, InstanceId="orders-1", Status="UNHEALTHY")
        browser.wait_for("document.getElementById('health-orders-1').innerText === 'UNHEALTHY'")
        assert browser.evaluate("window.notReloaded === true && window.cairnLive.updates >= 1")
        assert "10.0.1.10" not in browser.text("dns") and "IN A 10.0.2.20" in browser.text("dns")
        browser.screenshot(os.path.join(shots, "console-service.png"))

        # Acting from the page goes through the API as the signed-in administrator.
        browser.click("mark-orders-1")
        assert "orders-1 is now HEALTHY" in browser.text("flash-notice")
        assert sd.get_instances_health_status(ServiceId=svc)["Status"]["orders-1"] == "HEALTHY"
        browser.fill("register-id", "orders-3")
        browser.fill("register-attributes", "AWS_INSTANCE_IPV4=10.0.3.30\nAWS_INSTANCE_PORT=8080")
        browser.click("register")
        assert "Registered orders-3" in browser.text("flash-notice")
        assert "orders-3" in [i["Id"] for i in sd.list_instances(ServiceId=svc)["Instances"]]
        browser.click("deregister-orders-3")
        assert "orders-3" not in [i["Id"] for i in sd.list_instances(ServiceId=svc)["Instances"]]

        browser.goto(f"{server.endpoint}/console/audit")
        browser.fill("audit-event", "UpdateInstanceCustomHealthStatus")
        browser.click("audit-filter")
        audit = browser.text("audit")
        assert "administrator" in audit and "UpdateInstanceCustomHealthStatus" in audit
        assert "RegisterInstance" not in audit and "CreateService" not in audit, "the filter applies"
        browser.goto(f"{server.endpoint}/console/operations")
        assert "REGISTER_INSTANCE" in browser.text("operations")
    finally:
        browser.close()


def test_a_denied_action_shows_the_error(server, world, shots):
    sd, ns, svc = world
    browser = Browser()
    try:
        sign_in(browser, server, READER)
        browser.goto(f"{server.endpoint}/console/services/{svc}")
        assert "orders-2" in browser.text("instances")
        browser.click("deregister-orders-2")
        error = browser.text("flash-error")
        assert "AccessDeniedException" in error and "user/viewer is not authorized to perform: servicediscovery:DeregisterInstance" in error
        browser.screenshot(os.path.join(shots, "console-denied.png"))
        assert "orders-2" in [i["Id"] for i in sd.list_instances(ServiceId=svc)["Instances"]]
        browser.goto(f"{server.endpoint}/console/audit")
        assert "cairn:LookupAuditEvents" in browser.text("denied")
    finally:
        browser.close()


def test_reading_works_without_javascript(server, world):
    sd, ns, svc = world
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{server.endpoint}/console/login", data=urllib.parse.urlencode({"accessKeyId": ADMIN[0], "secretAccessKey": ADMIN[1]}).encode())
    cookie = next(c for c in jar if c.name == "cairn_session")
    browser = Browser(javascript=False)
    try:
        browser.send("Network.enable")
        browser.send("Network.setCookie", name=cookie.name, value=cookie.value, url=f"{server.endpoint}/console", httpOnly=True)
        browser.goto(f"{server.endpoint}/console/services/{svc}")
        assert browser.evaluate("window.cairnLive === undefined"), "page scripts are off"
        assert "orders-1" in browser.text("instances") and "version=v1" in browser.text("instance-orders-1")
        assert "IN A 10.0.1.10" in browser.text("dns")
    finally:
        browser.close()


def test_session_cookie_and_csrf(server, world):
    sd, ns, svc = world
    request = urllib.request.Request(f"{server.endpoint}/console/login", method="POST",
                                     data=urllib.parse.urlencode({"accessKeyId": ADMIN[0], "secretAccessKey": ADMIN[1]}).encode())

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(request)
    assert e.value.code == 303
    cookie = e.value.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    session = cookie.split(";")[0]
    tampered = session[:-1] + ("0" if session[-1] != "0" else "1")
    for value in (tampered, "cairn_session=garbage"):
        with pytest.raises(urllib.error.HTTPError) as e:
            opener.open(urllib.request.Request(f"{server.endpoint}/console", headers={"Cookie": value}))
        assert e.value.code == 303 and e.value.headers["Location"] == "/console/login"
    # A change without the form's CSRF token is refused and changes nothing.
    forged = urllib.request.Request(f"{server.endpoint}/console/services/{svc}/deregister", method="POST", headers={"Cookie": session},
                                    data=urllib.parse.urlencode({"instanceId": "orders-1", "csrf": "0" * 64}).encode())
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(forged)
    assert e.value.code == 403
    assert "orders-1" in [i["Id"] for i in sd.list_instances(ServiceId=svc)["Instances"]]


def test_registered_text_is_shown_never_run(server, world):
    """Attribute values are whatever a registrar sent: the console must show markup as text."""
    sd, ns, svc = world
    evil = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    sd.register_instance(ServiceId=svc, InstanceId="evil", Attributes={"AWS_INSTANCE_IPV4": "10.9.9.9", "AWS_INSTANCE_PORT": "80", "note": evil})
    browser = Browser()
    try:
        sign_in(browser, server, ADMIN)
        browser.goto(f"{server.endpoint}/console/services/{svc}")
        assert evil in browser.text("instance-evil")
        assert browser.evaluate("window.pwned === undefined && document.querySelectorAll('#instances img, #instances script').length === 0")
    finally:
        sd.deregister_instance(ServiceId=svc, InstanceId="evil")
        browser.close()


def test_probe_history_and_probe_driven_health_live(server, world):
    sd, ns, svc = world
    target = SwitchableHTTP()
    checked = sd.create_service(Name="checked", NamespaceId=ns, DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 5}]},
                                HealthCheckConfig={"Type": "HTTP", "ResourcePath": "/health", "FailureThreshold": 1})["Service"]["Id"]
    sd.register_instance(ServiceId=checked, InstanceId="web-1",
                         Attributes={"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": str(target.port)})
    browser = Browser()
    try:
        sign_in(browser, server, READER)
        browser.goto(f"{server.endpoint}/console/services/{checked}")
        browser.wait_for("document.getElementById('health-web-1').innerText === 'HEALTHY'")
        target.status = 500
        browser.wait_for("document.getElementById('health-web-1').innerText === 'UNHEALTHY'")
        assert "fail open" in browser.text("dns") and "IN A 127.0.0.1" in browser.text("dns")
        browser.evaluate("document.querySelector('#instance-web-1 a').click()")
        browser.wait_for("location.pathname.endsWith('/probes') && document.readyState === 'complete'")
        prober = browser.evaluate("document.querySelector('#prober b') ? document.querySelector('#prober b').innerText : ''")
        if prober:
            # A cluster: another node probes web-1 and keeps its history; this page names it. Read it there.
            sign_in(browser, server, READER, endpoint=node_endpoint(server, prober))
            browser.goto(f"{node_endpoint(server, prober)}/console/services/{checked}/instances/web-1/probes")
            browser.wait_for("document.readyState === 'complete' && document.getElementById('probes') !== null")
        probes = browser.text("probes")
        assert "status 500" in probes and "status 200" in probes and "unhealthy" in probes and "healthy" in probes
    finally:
        browser.close()
        sd.deregister_instance(ServiceId=checked, InstanceId="web-1")
        sd.delete_service(Id=checked)
        target.close()


def test_the_region_is_chosen_at_sign_in_and_switched_in_the_header(server, world):
    sd, ns, svc = world
    eu = boto3.client("servicediscovery", endpoint_url=server.endpoint, region_name="eu-west-1", aws_access_key_id=ADMIN[0],
                      aws_secret_access_key=ADMIN[1], config=Config(retries={"max_attempts": 1}))
    eu.create_http_namespace(Name="paris-only")
    browser = Browser()
    try:
        sign_in(browser, server, ADMIN)
        assert "demo.internal" in browser.text("namespaces") and "paris-only" not in browser.text("namespaces")
        browser.fill("region", "eu-west-1")
        browser.click("switch-region")
        assert "paris-only" in browser.text("namespaces") and "demo.internal" not in browser.text("namespaces")
        browser.fill("region", "not a region")
        browser.click("switch-region")
        assert "is not a region this server accepts" in browser.text("flash-error")
    finally:
        browser.close()


def test_a_signed_zone_shows_its_dnskey_and_ds(server, world):
    sd, _, _ = world
    op = sd.create_public_dns_namespace(Name="signed-console.example")["OperationId"]
    ns = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
    from cairn_admin import signed_post
    browser = Browser()
    try:
        sign_in(browser, server, ADMIN)
        browser.goto(f"{server.endpoint}/console/namespaces/{ns}")
        assert "Not signed" in browser.text("dnssec")
        status, body = signed_post(server.endpoint, "/cairn/v1/dnssec", *ADMIN, NamespaceId=ns, Action="Enable")
        assert status == 200, body
        key = json.loads(body)["Keys"][0]
        browser.goto(f"{server.endpoint}/console/namespaces/{ns}")
        shown = browser.text("dnssec")
        assert "Signed (ECDSA P-256" in shown and key["DS"] in shown and key["DNSKEY"] in shown, shown
    finally:
        browser.close()
    browser = Browser()
    try:
        sign_in(browser, server, READER)  # GetNamespace is enough to see it; changing it is not
        browser.goto(f"{server.endpoint}/console/namespaces/{ns}")
        assert key["DS"] in browser.text("dnssec")
        status, body = signed_post(server.endpoint, "/cairn/v1/dnssec", *READER, NamespaceId=ns, Action="Disable")
        assert status == 400 and json.loads(body)["__type"] == "AccessDeniedException", body
    finally:
        browser.close()
