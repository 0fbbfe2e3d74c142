"""Signed calls to Cairn's own HTTP routes (/cairn/v1/...), with botocore's SigV4 signer."""
import json
import urllib.error
import urllib.parse
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def signed_get(endpoint, path, key, secret, region="us-east-1", **params):
    """GET endpoint+path?params signed as `servicediscovery`; returns (status, body bytes)."""
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    url = f"{endpoint}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(key, secret), "servicediscovery", region).add_auth(request)
    prepared = urllib.request.Request(url, headers=dict(request.headers.items()), method="GET")
    try:
        with urllib.request.urlopen(prepared, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def signed_post(endpoint, path, key, secret, region="us-east-1", body=b"", **params):
    """POST endpoint+path?params with `body` signed as `servicediscovery`; returns (status, body bytes)."""
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    url = f"{endpoint}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method="POST", url=url, data=body)
    SigV4Auth(Credentials(key, secret), "servicediscovery", region).add_auth(request)
    prepared = urllib.request.Request(url, data=body, headers=dict(request.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(prepared, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def lookup(endpoint, key, secret, **params):
    """All pages of the audit look-up, newest first."""
    events, token = [], None
    while True:
        status, body = signed_get(endpoint, "/cairn/v1/audit", key, secret, NextToken=token, **params)
        assert status == 200, body
        page = json.loads(body)
        events += page["Events"]
        token = page.get("NextToken")
        if not token:
            return events


def presigned_url(endpoint, path, key, secret, region="us-east-1", expires=300, **params):
    """A presigned GET URL (SigV4 in the query string), as botocore's SigV4QueryAuth makes it."""
    from botocore.auth import SigV4QueryAuth
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    request = AWSRequest(method="GET", url=f"{endpoint}{path}" + (f"?{query}" if query else ""))
    SigV4QueryAuth(Credentials(key, secret), "servicediscovery", region, expires=expires).add_auth(request)
    return request.url


def plain_get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
