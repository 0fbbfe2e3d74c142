"""The watch stream (a Cairn extension, docs/api-compatibility.md): GET /cairn/v1/watch?namespace=&service= answers
with server-sent events, read here by Python's own HTTP client: a `reset` with every instance, a `change` per change
(health included), `deleted`, heartbeats, Last-Event-ID to resume, and a client that stops reading is cut off."""
import http.client
import json
import os
import queue
import re
import signal
import socket
import struct
import threading
import time
import urllib.parse
import urllib.request

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cairn_admin import presigned_url
from cairn_process import CairnProcess, ROOT
from conftest import client_for, http_namespace


class Stream:
    """One watch stream, parsed as the EventSource specification says, on a thread of its own."""

    def __init__(self, endpoint, key="AKIDCAIRNTEST", secret="any-secret-works-in-dev-mode", region="us-east-1",
                 last_event_id=None, url=None, **params):
        if url is None:
            url = f"{endpoint}/cairn/v1/watch?" + urllib.parse.urlencode(params)
            request = AWSRequest(method="GET", url=url)
            SigV4Auth(Credentials(key, secret), "servicediscovery", region).add_auth(request)
            headers = dict(request.headers.items())
        else:
            headers = {}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        parts = urllib.parse.urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        self.connection.request("GET", f"{parts.path}?{parts.query}", headers=headers)
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.events = queue.Queue()
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()
        else:
            self.error = json.loads(self.response.read())

    def _read(self):
        event = {}
        try:
            while True:
                raw = self.response.readline()
                if not raw:
                    break
                line = raw.decode().rstrip("\r\n")
                if line == "":
                    if event:
                        event["data"] = json.loads(event["data"]) if "data" in event else None
                        self.events.put(event)
                    event = {}
                elif line.startswith(":"):
                    self.events.put({"comment": line[1:].strip()})
                else:
                    field, _, value = line.partition(":")
                    event[field] = value[1:] if value.startswith(" ") else value
        except (OSError, ValueError, AttributeError, http.client.HTTPException):  # closed by the test
            pass
        self.events.put(None)

    def next(self, timeout=30, comments=False):
        """The next event (comments skipped unless asked for); None at the end of the stream."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "no event came"
            event = self.events.get(timeout=left)
            if event is None or comments or "comment" not in event:
                return event

    def close(self):
        self.connection.close()


def ids(instances):
    return sorted(i["InstanceId"] for i in instances)


@pytest.fixture
def web(sd, name):
    ns = http_namespace(sd, name)
    service = sd.create_service(Name="web", NamespaceId=ns, HealthCheckCustomConfig={"FailureThreshold": 1})["Service"]["Id"]
    sd.register_instance(ServiceId=service, InstanceId="i1", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1", "zone": "a"})
    return service


def test_a_stream_starts_with_every_instance_then_tells_each_change_health_included(cairn, sd, region, name, web):
    stream = Stream(cairn.endpoint, region=region, namespace=name, service="web")
    try:
        assert stream.status == 200
        assert stream.response.getheader("Content-Type") == "text/event-stream"
        reset = stream.next()
        assert reset["event"] == "reset" and int(reset["id"]) == reset["data"]["Index"]
        [i1] = reset["data"]["Instances"]
        assert i1 == {"InstanceId": "i1", "NamespaceName": name, "ServiceName": "web", "HealthStatus": "HEALTHY",
                      "Attributes": {"AWS_INSTANCE_IPV4": "10.0.0.1", "zone": "a"}}
        # The same instances DiscoverInstances answers with HealthStatus=ALL.
        assert reset["data"]["Instances"] == sd.discover_instances(NamespaceName=name, ServiceName="web", HealthStatus="ALL")["Instances"]

        sd.register_instance(ServiceId=web, InstanceId="i2", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.2"})
        added = stream.next()
        assert added["event"] == "change" and ids(added["data"]["Changed"]) == ["i2"] and added["data"]["Removed"] == []
        assert int(added["id"]) > int(reset["id"])

        # Health moves the stream (AWS's InstancesRevision does not move with it).
        sd.update_instance_custom_health_status(ServiceId=web, InstanceId="i1", Status="UNHEALTHY")
        sick = stream.next()
        assert [(i["InstanceId"], i["HealthStatus"]) for i in sick["data"]["Changed"]] == [("i1", "UNHEALTHY")]
        assert sick["data"]["InstancesRevision"] == added["data"]["InstancesRevision"]

        sd.register_instance(ServiceId=web, InstanceId="i2", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.2", "v": "2"})
        changed = stream.next()
        assert [i["Attributes"].get("v") for i in changed["data"]["Changed"]] == ["2"]

        sd.deregister_instance(ServiceId=web, InstanceId="i2")
        gone = stream.next()
        assert gone["data"]["Changed"] == [] and gone["data"]["Removed"] == ["i2"]
        assert int(reset["id"]) < int(added["id"]) < int(sick["id"]) < int(changed["id"]) < int(gone["id"])
    finally:
        stream.close()


def test_a_burst_of_writes_is_folded_into_at_most_ten_events_a_second(cairn, sd, region, name, web):
    stream = Stream(cairn.endpoint, region=region, namespace=name, service="web")
    try:
        assert stream.next()["event"] == "reset"
        wanted = {f"b{n}" for n in range(40)}
        started = time.monotonic()
        for n in range(40):
            sd.register_instance(ServiceId=web, InstanceId=f"b{n}", Attributes={"AWS_INSTANCE_IPV4": f"10.1.0.{n}"})
        seen, events = set(), 0
        while not wanted <= seen:
            event = stream.next()
            assert event["event"] == "change"
            seen |= set(ids(event["data"]["Changed"]))
            events += 1
        elapsed = time.monotonic() - started
        # The first change goes out at once, each later one at least 100 ms after the one before: a slower machine
        # only makes the bound looser. Without the pacing a stream sends about one event per write.
        assert events <= elapsed / 0.1 + 1, f"{events} events in {elapsed:.2f} s"
        assert seen == wanted
    finally:
        stream.close()


def test_the_fan_out_budget_folds_changes_over_a_longer_pace_and_heartbeats_go_on_meanwhile():
    # A budget of one event a second for all streams: with 8 streams open each stream waits 8 s after a change.
    server = CairnProcess(config="api:\n  watch:\n    maxEventsPerSecond: 1\n", extra_args=["--health-interval", "3600"]).start()
    streams = []
    try:
        sd = client_for(server.endpoint, "us-east-1")
        ns = http_namespace(sd, "budget")
        service = sd.create_service(Name="web", NamespaceId=ns)["Service"]["Id"]
        streams = [Stream(server.endpoint, namespace="budget", service="web", heartbeat=1) for _ in range(8)]
        watched = streams[0]
        assert watched.next()["event"] == "reset"
        sd.register_instance(ServiceId=service, InstanceId="first", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1"})
        assert ids(watched.next()["data"]["Changed"]) == ["first"]  # the first change after a quiet spell: at once
        started = time.monotonic()
        wanted = {f"b{n}" for n in range(5)}
        for n in range(5):
            sd.register_instance(ServiceId=service, InstanceId=f"b{n}", Attributes={"AWS_INSTANCE_IPV4": f"10.1.0.{n}"})
        seen, events, heartbeats = set(), 0, 0
        while not wanted <= seen:
            event = watched.next(comments=True)
            if "comment" in event:
                heartbeats += 1
                continue
            assert event["event"] == "change"
            seen |= set(ids(event["data"]["Changed"]))
            events += 1
        elapsed = time.monotonic() - started
        # Each change waits 8 s after the one before (a slower machine only loosens the bound); the stream still
        # sent its heartbeats meanwhile. Without the budget the five writes would be about five events.
        assert events <= elapsed / 8 + 1, f"{events} events in {elapsed:.2f} s"
        assert heartbeats >= 1 and seen == wanted
    finally:
        for stream in streams:
            stream.close()
        server.stop()


def test_last_event_id_resumes_without_a_reset_and_an_old_one_starts_over(cairn, sd, region, name, web):
    first = Stream(cairn.endpoint, region=region, namespace=name, service="web")
    reset = first.next()
    first.close()
    # The client has exactly this answer: nothing is sent until the service changes.
    resumed = Stream(cairn.endpoint, region=region, namespace=name, service="web", last_event_id=reset["id"])
    try:
        sd.register_instance(ServiceId=web, InstanceId="i3", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.3"})
        event = resumed.next()
        assert event["event"] == "change" and ids(event["data"]["Changed"]) == ["i3"]
    finally:
        resumed.close()
    # A client that missed changes is told to start over, with everything there is now.
    behind = Stream(cairn.endpoint, region=region, namespace=name, service="web", last_event_id=reset["id"])
    try:
        event = behind.next()
        assert event["event"] == "reset" and ids(event["data"]["Instances"]) == ["i1", "i3"]
    finally:
        behind.close()
    # The same works from the query string (an EventSource that cannot set headers on its first request).
    query = Stream(cairn.endpoint, region=region, namespace=name, service="web", index=reset["id"])
    try:
        assert query.next()["event"] == "reset"
    finally:
        query.close()


def test_a_quiet_stream_sends_heartbeats_and_a_deleted_service_ends_it(cairn, sd, region, name, web):
    stream = Stream(cairn.endpoint, region=region, namespace=name, service="web", heartbeat="1")
    try:
        assert stream.next()["event"] == "reset"
        assert stream.next(comments=True) == {"comment": "heartbeat"}
        sd.deregister_instance(ServiceId=web, InstanceId="i1")
        assert stream.next()["data"]["Removed"] == ["i1"]
        sd.delete_service(Id=web)
        deleted = stream.next()
        assert deleted["event"] == "deleted"
        assert stream.next() is None  # the server ended the stream
    finally:
        stream.close()


@pytest.mark.parametrize("params,headers,code", [
    ({"service": "web"}, {}, "InvalidInput"),
    ({"namespace": "{ns}"}, {}, "InvalidInput"),
    ({"namespace": "{ns}", "service": "nope"}, {}, "ServiceNotFound"),
    ({"namespace": "no-such-namespace", "service": "web"}, {}, "NamespaceNotFound"),
    ({"namespace": "{ns}", "service": "web", "heartbeat": "0"}, {}, "InvalidInput"),
    ({"namespace": "{ns}", "service": "web", "heartbeat": "301"}, {}, "InvalidInput"),
    ({"namespace": "{ns}", "service": "web", "heartbeat": "1.5"}, {}, "InvalidInput"),
    ({"namespace": "{ns}", "service": "web"}, {"Last-Event-ID": "-1"}, "InvalidInput"),
    ({"namespace": "{ns}", "service": "web", "index": "99999999999999999999999"}, {}, "InvalidInput"),
])
def test_bad_watch_requests_get_clear_errors(cairn, region, name, web, params, headers, code):
    params = {k: v.replace("{ns}", name) for k, v in params.items()}
    stream = Stream(cairn.endpoint, region=region, last_event_id=headers.get("Last-Event-ID"), **params)
    assert stream.status == 400, stream.status
    assert stream.error["__type"] == code and stream.error["Message"]


def test_a_client_that_stops_reading_is_cut_off_and_the_server_carries_on():
    server = CairnProcess(config="api:\n  watch:\n    writeTimeoutSeconds: 1\n", extra_args=["--health-interval", "3600"]).start()
    try:
        sd = client_for(server.endpoint, "us-east-1")
        ns = http_namespace(sd, "slow-reader")
        service = sd.create_service(Name="web", NamespaceId=ns)["Service"]["Id"]
        big = {f"a{k}": "x" * 1000 for k in range(4)}
        for n in range(300):  # about 1.2 MB in the first event: far more than the socket buffers hold
            sd.register_instance(ServiceId=service, InstanceId=f"i{n}", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1", **big})
        url = f"{server.endpoint}/cairn/v1/watch?namespace=slow-reader&service=web&heartbeat=1"
        reader = socket.socket()
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.connect(("127.0.0.1", server.port))
        request = AWSRequest(method="GET", url=url)
        SigV4Auth(Credentials("AKIDCAIRNTEST", "any-secret"), "servicediscovery", "us-east-1").add_auth(request)
        head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
        reader.sendall(f"GET /cairn/v1/watch?namespace=slow-reader&service=web&heartbeat=1 HTTP/1.1\r\n{head}\r\n".encode())

        def metric(text, name):
            match = re.search(rf"^{name} (\d+)", text, re.M)
            return int(match.group(1)) if match else None

        deadline = time.monotonic() + 60
        while True:
            text = urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=10).read().decode()
            if metric(text, "cairn_watch_cutoffs_total") == 1:
                break
            assert time.monotonic() < deadline, "the stalled reader was never cut off"
            time.sleep(0.5)
        assert any("watch stream cut off" in line for line in server.log_lines)
        # The writer never waited for it, and the server answers as before.
        sd.register_instance(ServiceId=service, InstanceId="after", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.9"})
        assert "after" in ids(sd.discover_instances(NamespaceName="slow-reader", ServiceName="web", MaxResults=1000)["Instances"])
        # Its connection was closed: what was sent drains, then the stream ends.
        reader.settimeout(30)
        received = 0
        while chunk := reader.recv(1 << 16):
            received += len(chunk)
        assert received > 0
        text = urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=10).read().decode()
        assert metric(text, "cairn_watch_streams") == 0
    finally:
        assert server.stop() == 0


def test_a_client_that_goes_away_frees_its_stream_at_once_not_at_its_next_heartbeat():
    """A stream waits for a change, or paces itself, up to its heartbeat (here 300 s) without writing: the server
    must notice the client leaving by its connection, not by a failed write minutes later."""
    server = CairnProcess(extra_args=["--health-interval", "3600"]).start()
    try:
        sd = client_for(server.endpoint, "us-east-1")
        ns = http_namespace(sd, "leaving")
        service = sd.create_service(Name="web", NamespaceId=ns)["Service"]["Id"]
        sd.register_instance(ServiceId=service, InstanceId="i1", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1"})

        def streams_open():
            text = urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=10).read().decode()
            return int(re.search(r"^cairn_watch_streams (\d+)", text, re.M).group(1))

        def wait_for(count, what):
            deadline = time.monotonic() + 60  # the heartbeat is 300 s: a stream freed only by a write takes that long
            while streams_open() != count:
                assert time.monotonic() < deadline, what
                time.sleep(0.2)

        def open_stream():
            path = "/cairn/v1/watch?namespace=leaving&service=web&heartbeat=300"
            request = AWSRequest(method="GET", url=f"{server.endpoint}{path}")
            SigV4Auth(Credentials("AKIDCAIRNTEST", "any-secret"), "servicediscovery", "us-east-1").add_auth(request)
            head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
            client = socket.create_connection(("127.0.0.1", server.port))
            client.sendall(f"GET {path} HTTP/1.1\r\n{head}\r\n".encode())
            client.settimeout(30)
            received = b""
            while b"event: reset" not in received:
                received += client.recv(1 << 16)
            return client

        # A client that closes its connection (FIN) while its stream waits for a change.
        waiting = open_stream()
        wait_for(1, "the stream did not open")
        waiting.close()
        wait_for(0, "a stream whose client closed its connection was not freed")

        # Two that got a change (so they have just paced themselves): one closes, one resets the connection (RST).
        first, second = open_stream(), open_stream()
        wait_for(2, "the streams did not open")
        sd.register_instance(ServiceId=service, InstanceId="i2", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.2"})
        for client in (first, second):
            received = b""
            while b"event: change" not in received:
                received += client.recv(1 << 16)
        first.close()
        second.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        second.close()
        wait_for(0, "streams whose clients went away after a change were not freed")
        # The server carries on: a new stream opens and hears the next change.
        third = open_stream()
        sd.deregister_instance(ServiceId=service, InstanceId="i2")
        received = b""
        while b"event: change" not in received:
            received += third.recv(1 << 16)
        third.close()
    finally:
        assert server.stop() == 0


READER = ("AKIDWATCHREADER01", "watch-reader-secret-0123456789ab")
LISTER = ("AKIDWATCHLISTER01", "watch-lister-secret-0123456789ab")
ADMIN = ("AKIDWATCHADMIN001", "watch-admin-secret-0123456789abc")


def test_a_stream_needs_a_signature_and_discover_permission_and_a_presigned_url_works():
    policies = os.path.join(ROOT, "docs", "policies")
    config = f"""
accessKeys:
  - id: {ADMIN[0]}
    secret: {ADMIN[1]}
principals:
  - name: reader
    accessKeys: [{{id: {READER[0]}, secret: {READER[1]}}}]
    policyFiles: [{policies}/reader.json]
  - name: lister
    accessKeys: [{{id: {LISTER[0]}, secret: {LISTER[1]}}}]
    policies:
      - Version: "2012-10-17"
        Statement: [{{Effect: Allow, Action: "servicediscovery:ListNamespaces", Resource: "*"}}]
"""
    server = CairnProcess(dev=False, config=config, extra_args=["--health-interval", "3600"]).start()
    try:
        admin = boto3.client(
            "servicediscovery", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=ADMIN[0],
            aws_secret_access_key=ADMIN[1])
        ns = http_namespace(admin, "guarded")
        service = admin.create_service(Name="web", NamespaceId=ns)["Service"]["Id"]
        admin.register_instance(ServiceId=service, InstanceId="i1", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1"})

        reader = Stream(server.endpoint, *READER, namespace="guarded", service="web")
        assert reader.status == 200 and ids(reader.next()["data"]["Instances"]) == ["i1"]
        reader.close()

        lister = Stream(server.endpoint, *LISTER, namespace="guarded", service="web")
        assert lister.status == 400 and lister.error["__type"] == "AccessDeniedException"
        assert "servicediscovery:DiscoverInstances" in lister.error["Message"]

        wrong = Stream(server.endpoint, READER[0], "not-the-secret-0123456789", namespace="guarded", service="web")
        assert wrong.status == 403

        unsigned = Stream(None, url=f"{server.endpoint}/cairn/v1/watch?namespace=guarded&service=web")
        assert unsigned.status == 403

        presigned = Stream(None, url=presigned_url(server.endpoint, "/cairn/v1/watch", *READER, namespace="guarded", service="web"))
        try:
            assert presigned.status == 200 and presigned.next()["event"] == "reset"
            admin.register_instance(ServiceId=service, InstanceId="i2", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.2"})
            assert ids(presigned.next()["data"]["Changed"]) == ["i2"]
        finally:
            presigned.close()
    finally:
        assert server.stop() == 0


def test_sigterm_ends_open_streams_and_the_server_exits_cleanly():
    server = CairnProcess(extra_args=["--health-interval", "3600"], single=True).start()
    sd = client_for(server.endpoint, "us-east-1")
    ns = http_namespace(sd, "closing")
    sd.create_service(Name="web", NamespaceId=ns)
    stream = Stream(server.endpoint, namespace="closing", service="web")
    try:
        assert stream.next()["event"] == "reset"
        server.proc.send_signal(signal.SIGTERM)
        end = stream.next()
        assert end["event"] == "end" and "shutting down" in end["data"]["Reason"]
        assert stream.next() is None
        assert server.stop() == 0
    finally:
        stream.close()
