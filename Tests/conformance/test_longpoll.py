"""Long-poll discovery (a Cairn extension, docs/api-compatibility.md): DiscoverInstances and DiscoverInstancesRevision
with X-Cairn-Index and X-Cairn-Wait answer once the service's answer moved past the index, or when the wait ends.
Driven from boto3 the way the README shows it: an event hook adds the two headers."""
import json
import os
import re
import socket
import struct
import subprocess
import threading
import time
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from cairn_process import CairnProcess
from conftest import client_for, error_of, http_namespace


def polling_client(cairn, region):
    """A boto3 client whose calls send the headers in `client.poll` (a dict), and remember the index answered."""
    client = client_for(cairn.endpoint, region, read_timeout=70)
    client.poll = {}
    client.answered = []

    def add_headers(request, **kwargs):
        for header, value in client.poll.items():
            request.headers[header] = value

    def keep_index(http_response, **kwargs):
        client.answered.append(http_response.headers.get("X-Cairn-Index"))

    client.meta.events.register("before-sign.servicediscovery", add_headers)
    client.meta.events.register("after-call.servicediscovery", keep_index)
    return client


def discover(client, name, index=None, wait=None, revision=False):
    """(answer, index answered, seconds taken) of one call with these headers."""
    client.poll = {k: str(v) for k, v in (("X-Cairn-Index", index), ("X-Cairn-Wait", wait)) if v is not None}
    started = time.monotonic()
    call = client.discover_instances_revision if revision else client.discover_instances
    answer = call(NamespaceName=name, ServiceName="web")
    return answer, client.answered[-1], time.monotonic() - started


def aws(cairn, region, *args):
    env = dict(os.environ)
    env.update({
        "AWS_ACCESS_KEY_ID": "AKIDCAIRNTEST", "AWS_SECRET_ACCESS_KEY": "any-secret-works-in-dev-mode",
        "AWS_REGION": region, "AWS_DEFAULT_REGION": region, "AWS_ENDPOINT_URL": cairn.endpoint,
        "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_PAGER": "",
    })
    out = subprocess.run(["aws", "servicediscovery", *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def web_service(sd, name, **kw):
    ns = http_namespace(sd, name)
    return sd.create_service(Name="web", NamespaceId=ns, **kw)["Service"]["Id"]


def later(seconds, action):
    errors = []

    def run():
        time.sleep(seconds)
        try:
            action()
        except Exception as e:  # reported by the test, not lost in a thread
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_a_waiting_call_returns_on_a_registration_made_by_the_aws_cli(cairn, sd, region, name):
    service = web_service(sd, name)
    sd.register_instance(ServiceId=service, InstanceId="i1", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1"})
    client = polling_client(cairn, region)
    # An index the service is not at answers at once, with the current one.
    first, index, _ = discover(client, name, index=0, wait=50)
    assert [i["InstanceId"] for i in first["Instances"]] == ["i1"] and index is not None and index != "0"
    thread, errors = later(1, lambda: aws(cairn, region, "register-instance", "--service-id", service, "--instance-id", "i2",
                                          "--attributes", "AWS_INSTANCE_IPV4=10.0.0.2"))
    answer, new_index, took = discover(client, name, index=index, wait=50)
    thread.join()
    assert not errors, errors
    # It came back because of the registration (which the answer shows), not because the 50 s ran out.
    assert sorted(i["InstanceId"] for i in answer["Instances"]) == ["i1", "i2"], answer
    assert new_index != index and took < 45
    # The new index waits again; the same index as before answers at once.
    _, again, _ = discover(client, name, index=index, wait=50)
    assert again == new_index


def test_a_waiting_call_returns_on_a_health_change_which_the_revision_does_not_show(cairn, sd, region, name):
    service = web_service(sd, name, HealthCheckCustomConfig={"FailureThreshold": 1})
    sd.register_instance(ServiceId=service, InstanceId="i1", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1"})
    client = polling_client(cairn, region)
    first, index, _ = discover(client, name, index=0, wait=1, revision=True)
    thread, errors = later(1, lambda: sd.update_instance_custom_health_status(ServiceId=service, InstanceId="i1", Status="UNHEALTHY"))
    answer, new_index, took = discover(client, name, index=index, wait=50, revision=True)
    thread.join()
    assert not errors, errors
    # Cloud Map's InstancesRevision does not move on health; the index does, so a watcher hears of it.
    assert answer["InstancesRevision"] == first["InstancesRevision"]
    assert new_index != index and took < 45
    healthy, _, _ = discover(client, name, index=new_index, wait=1)
    assert healthy["Instances"] == []


def test_a_wait_with_nothing_changing_ends_with_the_same_index(cairn, sd, region, name):
    web_service(sd, name)
    client = polling_client(cairn, region)
    _, index, _ = discover(client, name, index=0, wait=1)
    answer, same, took = discover(client, name, index=index, wait=2)
    assert same == index and answer["Instances"] == []
    assert took >= 1.9, took  # it waited (the lower bound only: a slow machine makes it longer)


def test_without_the_headers_nothing_changes(cairn, sd, region, name):
    web_service(sd, name)
    client = polling_client(cairn, region)
    _, index, took = discover(client, name)
    assert index is None
    # A wait without an index, or an index without a wait, answers at once, with the index.
    _, index, _ = discover(client, name, wait=5)
    assert index is not None
    _, same, _ = discover(client, name, index=index, wait=0)
    assert same == index


@pytest.mark.parametrize("headers", [
    {"index": 0, "wait": 56}, {"index": 0, "wait": "-1"}, {"index": 0, "wait": "1.5"}, {"index": "abc", "wait": 5},
    {"index": "99999999999999999999999", "wait": 5}, {"index": "0x10", "wait": 5}, {"index": "1 2", "wait": 5},
])
def test_malformed_long_poll_headers_are_invalid_input(cairn, sd, region, name, headers):
    web_service(sd, name)
    client = polling_client(cairn, region)
    with pytest.raises(ClientError) as e:
        discover(client, name, **headers)
    code, message, response = error_of(e)
    assert code == "InvalidInput" and "X-Cairn-" in message, message
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_sigterm_answers_a_waiting_call_and_the_server_exits_cleanly():
    server = CairnProcess().start()
    try:
        sd = client_for(server.endpoint, "us-east-1")
        web_service(sd, "shutdown")
        client = polling_client(server, "us-east-1")
        _, index, _ = discover(client, "shutdown", index=0, wait=1)
        done = {}

        def wait():
            try:
                done["answer"] = discover(client, "shutdown", index=index, wait=50)
            except Exception as e:  # a dropped connection would land here
                done["error"] = e

        thread = threading.Thread(target=wait)
        thread.start()
        time.sleep(1)
    finally:
        code = server.stop()
    thread.join(60)
    # Answered (with what it had), not cut off by the HTTP server's drain, and the process ended as usual.
    assert "answer" in done, done
    assert done["answer"][1] == index and code == 0, (done, code)


def test_a_client_that_goes_away_frees_its_place_at_once_not_at_the_end_of_its_wait():
    """A waiting call holds one of `api.watch.maxWaiting` places. When its client leaves (FIN or RST), the place is
    free again at once, not after the rest of its wait (here 55 s), also on a keep-alive connection that waited
    before."""
    server = CairnProcess(extra_args=["--health-interval", "3600"]).start()
    try:
        sd = client_for(server.endpoint, "us-east-1")
        web_service(sd, "leaving")
        _, index, _ = discover(polling_client(server, "us-east-1"), "leaving", index=0, wait=1)

        def waiting_calls():
            text = urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=10).read().decode()
            return int(re.search(r"^cairn_waiting_calls (\d+)", text, re.M).group(1))

        def wait_for(count, what):
            deadline = time.monotonic() + 40  # the calls wait 55 s: a place freed only by the wait's end takes that
            while waiting_calls() != count:
                assert time.monotonic() < deadline, what
                time.sleep(0.2)

        def send_poll(client, wait):
            body = json.dumps({"NamespaceName": "leaving", "ServiceName": "web"})
            request = AWSRequest(method="POST", url=f"{server.endpoint}/", data=body, headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "Route53AutoNaming_v20170314.DiscoverInstances",
                "X-Cairn-Index": index, "X-Cairn-Wait": str(wait)})
            SigV4Auth(Credentials("AKIDCAIRNTEST", "any-secret"), "servicediscovery", "us-east-1").add_auth(request)
            head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
            client.sendall(f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n{head}\r\n{body}".encode())

        idle = waiting_calls()  # the health checker's own wait, if any
        # A client that closes its connection (FIN) while its call waits.
        first = socket.create_connection(("127.0.0.1", server.port))
        send_poll(first, 55)
        wait_for(idle + 1, "the call did not wait")
        first.close()
        wait_for(idle, "a call whose client closed its connection kept its place")

        # One that resets its connection (RST), on a keep-alive connection that has waited and been answered before.
        second = socket.create_connection(("127.0.0.1", server.port))
        second.settimeout(30)
        send_poll(second, 1)
        received = b""
        while b'"Instances"' not in received:
            received += second.recv(1 << 16)
        assert received.startswith(b"HTTP/1.1 200"), received[:200]
        send_poll(second, 55)
        wait_for(idle + 1, "the second call on the connection did not wait")
        second.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        second.close()
        wait_for(idle, "a call whose client reset its connection kept its place")

        # The server carries on: a waiting call from boto3 still returns on a registration.
        client = polling_client(server, "us-east-1")
        thread, errors = later(1, lambda: sd.register_instance(
            ServiceId=sd.list_services()["Services"][0]["Id"], InstanceId="i1", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1"}))
        answer, moved, _ = discover(client, "leaving", index=index, wait=50)
        thread.join()
        assert not errors and moved != index and [i["InstanceId"] for i in answer["Instances"]] == ["i1"], (errors, answer)
    finally:
        assert server.stop() == 0
