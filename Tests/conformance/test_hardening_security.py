"""Regression tests for the security defects of the hardening issue (#10), each through a real client: raw signed
HTTP, boto3, dig and dnspython against a running cairn outside dev mode."""
import hashlib
import http.client
import json
import subprocess
import urllib.parse
import uuid

import boto3
import dns.message
import dns.query
import dns.rdatatype
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from cairn_admin import plain_get, signed_get
from cairn_process import CairnProcess

ADMIN = ("AKIDHARDENADMIN01", "harden-admin-secret-0123456789")
READER = ("AKIDHARDENREADER1", "harden-reader-secret-012345678")
CONFIG = f"""
accessKeys:
  - {{id: {ADMIN[0]}, secret: {ADMIN[1]}}}
regions: [us-east-1, eu-west-1, zz-evil-9]
principals:
  - name: reader
    accessKeys: [{{id: {READER[0]}, secret: {READER[1]}}}]
    policies:
      - Version: "2012-10-17"
        Statement:
          - {{Effect: Allow, Action: ["servicediscovery:Get*", "servicediscovery:List*"], Resource: "*"}}
"""
TARGET = "Route53AutoNaming_v20170314."


@pytest.fixture(scope="module")
def server():
    s = CairnProcess(dev=False, config=CONFIG, extra_args=["--health-interval", "3600"]).start()
    yield s
    assert s.stop() == 0


def client(server, who=ADMIN, region="us-east-1"):
    return boto3.client("servicediscovery", endpoint_url=server.endpoint, region_name=region, aws_access_key_id=who[0],
                        aws_secret_access_key=who[1], config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))


def signed_post(server, operation, body, who=ADMIN, region="us-east-1", content_sha=None):
    """A POST signed by botocore's own signer; `content_sha` adds x-amz-content-sha256 before signing."""
    url = f"{server.endpoint}/"
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + operation}
    if content_sha:
        headers["X-Amz-Content-SHA256"] = content_sha
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials(*who), "servicediscovery", region).add_auth(request)
    return dict(request.headers.items())


def raw_post(server, headers, body, path="/"):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", path, body, headers)
    r = conn.getresponse()
    body = json.loads(r.read() or b"{}")
    if "Message" in body:
        body["message"] = body["Message"]
    return r.status, body


def dns_port(server):
    return server.dns_port


def namespace(sd, kind, name, **kw):
    op = getattr(sd, f"create_{kind}_namespace")(Name=name, **kw)["OperationId"]
    return sd.get_operation(OperationId=op)["Operation"]


@pytest.mark.parametrize("query", ["StartTime=1e300", "EndTime=inf", "StartTime=nan", "StartTime=-1e30",
                                   "EndTime=9223372036854776", "StartTime=-inf"])
def test_an_absurd_audit_time_is_invalid_input_and_the_server_lives(server, query):
    key, value = query.split("=")
    status, body = signed_get(server.endpoint, "/cairn/v1/audit", *ADMIN, **{key: value})
    assert status == 400 and json.loads(body)["__type"] == "InvalidInput", body
    assert server.alive()
    # DNS is in the same process: it still answers.
    reply = dns.query.udp(dns.message.make_query("nothing.invalid", "A"), "127.0.0.1", port=dns_port(server), timeout=5)
    assert reply.rcode() == dns.rcode.REFUSED


def test_out_of_range_audit_cursors_do_not_trap(server):
    status, body = signed_get(server.endpoint, "/cairn/v1/audit", *ADMIN, NextToken=str(2**64 - 1))
    assert status == 200, body
    status, _ = signed_get(server.endpoint, "/cairn/v1/audit/export", *ADMIN, after=str(2**64 - 1))
    assert status == 200 and server.alive()


def test_the_console_audit_page_refuses_an_absurd_time(server):
    import http.cookiejar
    import urllib.request
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{server.endpoint}/console/login", data=urllib.parse.urlencode({"accessKeyId": ADMIN[0], "secretAccessKey": ADMIN[1]}).encode())
    try:
        opener.open(f"{server.endpoint}/console/audit?StartTime=1e300")
    except urllib.error.HTTPError as error:
        assert error.code == 400
    assert server.alive()


def test_a_replayed_signature_with_another_body_is_refused(server):
    sd = client(server)
    ns = namespace(sd, "http", f"replay-{uuid.uuid4().hex[:6]}")["Targets"]["NAMESPACE"]
    svc = sd.create_service(Name="orders", NamespaceId=ns)["Service"]["Id"]
    original = json.dumps({"ServiceId": svc, "InstanceId": "good", "Attributes": {"AWS_INSTANCE_IPV4": "10.0.0.1"}}).encode()
    digest = hashlib.sha256(original).hexdigest()
    headers = signed_post(server, "RegisterInstance", original, content_sha=digest)
    forged = json.dumps({"ServiceId": svc, "InstanceId": "evil", "Attributes": {"AWS_INSTANCE_IPV4": "6.6.6.6"}}).encode()
    status, body = raw_post(server, headers, forged)
    assert status == 403 and body["__type"] == "InvalidSignatureException", body
    assert [i["Id"] for i in sd.list_instances(ServiceId=svc)["Instances"]] == []
    # The same headers with the body they were made for still work: the declared hash is allowed when it is true.
    status, body = raw_post(server, headers, original)
    assert status == 200, body
    # UNSIGNED-PAYLOAD is refused even with a correct signature over it.
    headers = signed_post(server, "RegisterInstance", forged, content_sha="UNSIGNED-PAYLOAD")
    status, body = raw_post(server, headers, forged)
    assert status == 403 and "unsigned" in body["message"], body
    assert [i["Id"] for i in sd.list_instances(ServiceId=svc)["Instances"]] == ["good"]


def test_a_presigned_post_cannot_act_as_another_operation(server):
    sd = client(server)
    ns = namespace(sd, "http", f"presign-{uuid.uuid4().hex[:6]}")["Targets"]["NAMESPACE"]
    svc = sd.create_service(Name="victim", NamespaceId=ns)["Service"]["Id"]
    request = AWSRequest(method="POST", url=f"{server.endpoint}/")
    SigV4QueryAuth(Credentials(*ADMIN), "servicediscovery", "us-east-1", expires=300).add_auth(request)
    path = request.url[len(server.endpoint):]
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + "DeleteService"}
    status, body = raw_post(server, headers, json.dumps({"Id": svc}).encode(), path=path)
    assert status == 403 and "only for GET" in body["message"], body
    assert sd.get_service(Id=svc)["Service"]["Id"] == svc


def test_a_public_zone_from_another_region_cannot_take_over_a_private_zone(server):
    victim = client(server, region="us-east-1")
    zone = f"corp{uuid.uuid4().hex[:6]}.internal"
    ns = namespace(victim, "private_dns", zone, Vpc="default")["Targets"]["NAMESPACE"]
    svc = victim.create_service(Name="orders", NamespaceId=ns, DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 5}]})["Service"]["Id"]
    victim.register_instance(ServiceId=svc, InstanceId="o1", Attributes={"AWS_INSTANCE_IPV4": "10.0.1.10"})
    attacker = client(server, region="zz-evil-9")
    op = namespace(attacker, "public_dns", f"orders.{zone}")
    assert op["Status"] == "SUCCESS", op  # a public zone below another's private one is public DNS, as in Route 53
    evil_svc = attacker.create_service(Name=".", NamespaceId=op["Targets"]["NAMESPACE"],
                                       DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 5}]})["Service"]["Id"]
    attacker.register_instance(ServiceId=evil_svc, InstanceId="x", Attributes={"AWS_INSTANCE_IPV4": "6.6.6.6"})
    answer = subprocess.run(["dig", "@127.0.0.1", "-p", str(dns_port(server)), f"orders.{zone}", "A", "+short"],
                            capture_output=True, text=True, timeout=10).stdout.split()
    assert answer == ["10.0.1.10"], answer
    # A private zone of another region overlapping this one on the same network is refused.
    op = namespace(attacker, "private_dns", f"orders.{zone}", Vpc="default")
    assert op["Status"] == "FAIL" and op["ErrorCode"] == "CANNOT_CREATE_HOSTED_ZONE", op
    reply = dns.query.udp(dns.message.make_query(f"orders.{zone}", "A"), "127.0.0.1", port=dns_port(server), timeout=5)
    assert [r.address for rr in reply.answer for r in rr] == ["10.0.1.10"]


def test_a_second_public_zone_of_one_name_fails_in_any_region(server):
    name = f"pub{uuid.uuid4().hex[:6]}.example"
    assert namespace(client(server, region="us-east-1"), "public_dns", name)["Status"] == "SUCCESS"
    op = namespace(client(server, region="eu-west-1"), "public_dns", name)
    assert op["Status"] == "FAIL" and op["ErrorCode"] == "CANNOT_CREATE_HOSTED_ZONE", op
    op = namespace(client(server, region="eu-west-1"), "public_dns", f"api.{name}")
    assert op["Status"] == "FAIL" and op["ErrorCode"] == "CANNOT_CREATE_HOSTED_ZONE", op
    # The owner may nest its own zones.
    assert namespace(client(server, region="us-east-1"), "public_dns", f"api.{name}")["Status"] == "SUCCESS"


@pytest.mark.parametrize("region", ["a:b", "*", "us-east-1 ", "x" * 300, "ap-nowhere-9", "US-EAST-1"])
def test_an_unconfigured_region_is_refused(server, region):
    headers = signed_post(server, "ListNamespaces", b"{}", region=region)
    status, body = raw_post(server, headers, b"{}")
    assert status == 403 and body["__type"] == "InvalidSignatureException", body
    assert "valid region" in body["message"]


def test_dev_mode_refuses_unconfigured_regions_and_invented_principals_share_one_bucket():
    s = CairnProcess(extra_args=["--health-interval", "3600", "--regions", "us-east-1"],
                     config="throttling:\n  controlPlane: {burst: 5, perSecond: 0.001}\n").start()
    try:
        bad = boto3.client("servicediscovery", endpoint_url=s.endpoint, region_name="zz-evil-9", aws_access_key_id="k",
                           aws_secret_access_key="s", config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))
        with pytest.raises(ClientError) as e:
            bad.list_namespaces()
        assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
        # Each invented access key gets its own bucket of 5 only while the table has room; past that (65,536) they
        # share one. Here: 5 calls of one key pass, the 6th is throttled; the region cannot be used to escape.
        sd = boto3.client("servicediscovery", endpoint_url=s.endpoint, region_name="us-east-1", aws_access_key_id="k1",
                          aws_secret_access_key="s", config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))
        for _ in range(5):
            sd.list_namespaces()
        with pytest.raises(ClientError) as e:
            sd.list_namespaces()
        assert e.value.response["Error"]["Code"] == "ThrottlingException"
    finally:
        assert s.stop() == 0


def test_a_denied_large_request_costs_a_bounded_audit_record(server):
    sd = client(server)
    big = {"ServiceId": "srv-" + "a" * 20, "InstanceId": "i", "Attributes": {f"k{i}": "v" * 1000 for i in range(150)}}
    body = json.dumps(big).encode()
    assert len(body) > 100_000
    status, reply = raw_post(server, signed_post(server, "RegisterInstance", body, who=READER), body)
    assert status == 400 or status == 403, reply
    events = json.loads(signed_get(server.endpoint, "/cairn/v1/audit", *ADMIN, EventName="RegisterInstance", MaxResults="5")[1])["Events"]
    record = json.dumps(events[0])
    assert len(record) < 16_000, len(record)
    assert events[0]["requestParameters"]["cairnTruncated"] is True
    assert events[0]["requestParameters"]["originalBytes"] > 100_000


def test_validation_errors_are_capped_and_bodies_are_bounded(server):
    keys = json.dumps({"ResourceARN": "arn:aws:servicediscovery:us-east-1:000000000000:namespace/ns-x", "TagKeys": [""] * 20_000}).encode()
    status, reply = raw_post(server, signed_post(server, "UntagResource", keys, who=READER), keys)
    assert status == 400 and reply["__type"] == "InvalidInput"
    assert len(reply["message"]) < 4000 and "more" in reply["message"], reply["message"][:200]
    huge = b'{"Name": "' + b"x" * (300 << 10) + b'"}'
    status, reply = raw_post(server, signed_post(server, "CreateHttpNamespace", huge), huge)
    assert status == 413 and reply["__type"] == "RequestEntityTooLargeException"


class NoRedirect(__import__("urllib.request").request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def console_post(server, path, fields, cookie=None):
    """(status, Location, Set-Cookie) of a console form post, redirects not followed."""
    import urllib.error
    import urllib.request
    headers = {"Cookie": cookie} if cookie else {}
    request = urllib.request.Request(f"{server.endpoint}{path}", method="POST", headers=headers,
                                     data=urllib.parse.urlencode(fields).encode())
    try:
        response = urllib.request.build_opener(NoRedirect).open(request)
        return response.status, response.headers.get("Location"), response.headers.get("Set-Cookie")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location"), error.headers.get("Set-Cookie")


def test_console_sign_in_backs_off_after_failures():
    s = CairnProcess(dev=False, config=CONFIG, extra_args=["--health-interval", "3600", "--no-dns"]).start()
    try:
        for _ in range(8):
            console_post(s, "/console/login", {"accessKeyId": ADMIN[0], "secretAccessKey": "wrong-secret-0123456789"})
        status, location, cookie = console_post(s, "/console/login", {"accessKeyId": ADMIN[0], "secretAccessKey": ADMIN[1]})
        assert status == 303 and "Too%20many%20failed%20sign-ins" in location and not cookie, (location, cookie)
    finally:
        assert s.stop() == 0


def test_console_sign_out_ends_the_session_and_needs_the_csrf_token(server):
    import re
    import urllib.error
    import urllib.request
    status, _, set_cookie = console_post(server, "/console/login", {"accessKeyId": ADMIN[0], "secretAccessKey": ADMIN[1]})
    assert status == 303 and set_cookie
    cookie = set_cookie.split(";")[0]
    page = urllib.request.urlopen(urllib.request.Request(f"{server.endpoint}/console", headers={"Cookie": cookie})).read().decode()
    csrf = re.search(r'name=csrf value="([0-9a-f]+)"', page).group(1)
    assert console_post(server, "/console/logout", {}, cookie)[0] == 403  # no token: refused, still signed in
    assert console_post(server, "/console/logout", {"csrf": csrf}, cookie)[:2] == (303, "/console/login")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.build_opener(NoRedirect).open(urllib.request.Request(f"{server.endpoint}/console", headers={"Cookie": cookie}))
    assert e.value.code == 303 and e.value.headers["Location"] == "/console/login"


def test_the_endpoint_in_a_browser_says_what_it_is(server):
    import urllib.request
    with urllib.request.urlopen(f"{server.endpoint}/") as r:
        page = r.read().decode()
    assert r.status == 200 and "Cloud Map" in page and 'href="/console"' in page
