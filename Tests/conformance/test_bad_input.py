"""Bad input never breaks the server: every malformed request gets a 4xx AWS-style error, nothing is applied."""
import http.client
import json
import random
import socket

import pytest

TARGET = "Route53AutoNaming_v20170314."


def raw(cairn, body, target="CreateHttpNamespace", content_type="application/x-amz-json-1.1", region="test-bad-input-1", extra=None):
    conn = http.client.HTTPConnection("127.0.0.1", cairn.port, timeout=20)
    headers = {"Authorization": f"AWS4-HMAC-SHA256 Credential=AKID/20260101/{region}/servicediscovery/aws4_request, Signature=0"}
    if target is not None:
        headers["X-Amz-Target"] = TARGET + target if not target.startswith("!") else target[1:]
    if content_type is not None:
        headers["Content-Type"] = content_type
    headers.update(extra or {})
    conn.request("POST", "/", body if isinstance(body, (bytes, str)) else json.dumps(body), headers)
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    return resp, payload


def assert_aws_error(resp, payload, code, status=400):
    assert resp.status == status, payload
    assert resp.getheader("x-amzn-RequestId")
    body = json.loads(payload)
    assert body["__type"] == code, body
    assert body["Message"]
    return body


def namespaces_in(cairn, region="test-bad-input-1"):
    resp, payload = raw(cairn, {}, target="ListNamespaces", region=region)
    assert resp.status == 200
    return json.loads(payload)["Namespaces"]


CASES = [
    ("malformed json", b'{"Name": ', "CreateHttpNamespace", "SerializationException"),
    ("json array", b"[1,2]", "CreateHttpNamespace", "SerializationException"),
    ("json string", b'"Name"', "CreateHttpNamespace", "SerializationException"),
    ("trailing garbage", b'{"Name": "a"} x', "CreateHttpNamespace", "SerializationException"),
    ("number for string", {"Name": 5}, "CreateHttpNamespace", "SerializationException"),
    ("object for string", {"Name": {"x": 1}}, "CreateHttpNamespace", "SerializationException"),
    ("bool for int", {"MaxResults": True}, "ListNamespaces", "SerializationException"),
    ("string for int", {"MaxResults": "5"}, "ListNamespaces", "SerializationException"),
    ("float for int", {"MaxResults": 5.5}, "ListNamespaces", "SerializationException"),
    ("huge number", {"MaxResults": 10 ** 30}, "ListNamespaces", "SerializationException"),
    ("huge exponent", b'{"MaxResults": 1e99999}', "ListNamespaces", "SerializationException"),
    ("list for map", {"ServiceId": "srv-x", "InstanceId": "i", "Attributes": ["a"]}, "RegisterInstance", "SerializationException"),
    ("map value not string", {"ServiceId": "srv-x", "InstanceId": "i", "Attributes": {"a": 1}}, "RegisterInstance", "SerializationException"),
    ("null list member", {"ServiceId": "srv-x", "Attributes": [None]}, "DeleteServiceAttributes", "SerializationException"),
    ("tags not a list", {"Name": "n", "Tags": {"Key": "a"}}, "CreateHttpNamespace", "SerializationException"),
    ("missing required", {}, "CreateHttpNamespace", "InvalidInput"),
    ("null required", {"Name": None}, "CreateHttpNamespace", "InvalidInput"),
    ("control characters", {"Name": "a\u0000b"}, "CreateHttpNamespace", "InvalidInput"),
    ("emoji name", {"Name": "\U0001F600"}, "CreateHttpNamespace", "InvalidInput"),
    ("lone surrogate", b'{"Name": "\\ud800"}', "CreateHttpNamespace", None),
    ("rtl override", {"Name": "abc\u202edef"}, "CreateHttpNamespace", "InvalidInput"),
    ("invalid utf8", b'{"Name": "\xff\xfe"}', "CreateHttpNamespace", "SerializationException"),
    ("deep nesting", ("[" * 5000 + "]" * 5000).encode(), "CreateHttpNamespace", "SerializationException"),
    ("deep nesting in member", ('{"Name":' + "[" * 3000 + "]" * 3000 + "}").encode(), "CreateHttpNamespace", "SerializationException"),
    ("newline after name", {"Name": "abc\n"}, "CreateHttpNamespace", "InvalidInput"),
]


@pytest.mark.parametrize("label,body,target,code", CASES, ids=[c[0] for c in CASES])
def test_bad_bodies(cairn, label, body, target, code):
    resp, payload = raw(cairn, body, target=target)
    assert 400 <= resp.status < 500, (resp.status, payload)
    error = json.loads(payload)
    if code:
        assert error["__type"] == code, error
    assert "__type" in error and error["Message"]
    assert namespaces_in(cairn) == []


def test_unknown_and_missing_targets(cairn):
    resp, payload = raw(cairn, {}, target="NoSuchOperation")
    assert_aws_error(resp, payload, "UnknownOperationException")
    resp, payload = raw(cairn, {}, target="!OtherService_20200101.ListNamespaces")
    assert_aws_error(resp, payload, "UnknownOperationException")
    resp, payload = raw(cairn, {}, target=None)
    assert_aws_error(resp, payload, "UnknownOperationException")


def test_wrong_content_type(cairn):
    resp, payload = raw(cairn, {"Name": "x"}, content_type="text/plain")
    assert_aws_error(resp, payload, "UnsupportedMediaTypeException", status=415)
    assert namespaces_in(cairn) == []


def test_body_over_the_limit(cairn):
    body = json.dumps({"Name": "big", "Description": "x" * (1 << 20)})
    resp, payload = raw(cairn, body)
    assert_aws_error(resp, payload, "RequestEntityTooLargeException", status=413)
    assert namespaces_in(cairn) == []


def test_empty_body_means_an_empty_object(cairn):
    resp, payload = raw(cairn, b"", target="ListNamespaces")
    assert resp.status == 200 and json.loads(payload) == {"Namespaces": []}


def test_request_id_on_success_too(cairn):
    resp, payload = raw(cairn, {}, target="ListServices")
    assert resp.status == 200 and resp.getheader("x-amzn-RequestId")


def test_a_garbage_connection_does_not_hurt_the_server(cairn):
    with socket.create_connection(("127.0.0.1", cairn.port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x02\x00garbage that is not HTTP\r\n\r\n")
        try:
            s.recv(1024)
        except OSError:
            pass
    resp, _ = raw(cairn, {}, target="ListNamespaces")
    assert resp.status == 200 and cairn.alive()


FUZZ_SEEDS = [
    b'{"NamespaceName":"fuzz","ServiceName":"svc","HealthStatus":"ALL","MaxResults":1000,"QueryParameters":{"a":"b"}}',
    b'{"Name":"fuzz-ns","Description":"\\u00e9\\ud83d\\ude00 \\"q\\"","Tags":[{"Key":"k","Value":"v"}]}',
    b'{"ServiceId":"srv-abcdefghijklmnop","InstanceId":"i","Attributes":{"AWS_INSTANCE_IPV4":"10.0.0.1"}}',
    b'[1,2,{"a":[null,true,false,-1.5e3,0,-0,12345678901234567890]}]',
]
FUZZ_SPLICES = [b"[" * 600, b'"\\ud800"', b'"\\udc00\\ud800"', b"1e999999", b"-0", b"\xed\xa0\x80", b"\xff", b"\x00",
                b'"\\u00', b",]", b",}", b"\t\r\n ", b"nul", b"1.", b"\\"]


def test_mutated_bodies_get_aws_errors_and_change_nothing(cairn):
    """3,000 bodies mutated from valid ones (bytes dropped, inserted, replaced, spliced with known-hard fragments)
    against the JSON parser and validator: every answer is 2xx or a 4xx AWS error, never a 5xx, and the server
    answers afterwards. Deterministic (seeded), so a failure reproduces."""
    rng = random.Random(20261203)
    region = "test-fuzz-1"
    targets = ["DiscoverInstances", "ListNamespaces", "RegisterInstance", "GetOperation", "ListServices"]
    codes = {}
    for _ in range(3000):
        body = bytearray(rng.choice(FUZZ_SEEDS))
        for _ in range(rng.randint(1, 6)):
            kind = rng.randrange(4)
            if kind == 0 and body:
                del body[rng.randrange(len(body))]
            elif kind == 1:
                body.insert(rng.randrange(len(body) + 1), rng.randrange(256))
            elif kind == 2 and body:
                body[rng.randrange(len(body))] = rng.choice(b'{}[]",:\\u0123456789eE+-.tfn \x00\xff\xc3')
            else:
                at = rng.randrange(len(body) + 1)
                body[at:at] = rng.choice(FUZZ_SPLICES)
        resp, payload = raw(cairn, bytes(body), target=rng.choice(targets), region=region)
        assert resp.status < 500, (bytes(body), payload)
        if resp.status >= 400:
            code = json.loads(payload)["__type"]
            assert code, (bytes(body), payload)
            codes[code] = codes.get(code, 0) + 1
    # The mutations reached the parser and the validator (not only the throttle), and the server still answers
    # with nothing created (no target here creates anything).
    assert codes.get("SerializationException", 0) >= 300, codes
    assert namespaces_in(cairn, region=region) == []
