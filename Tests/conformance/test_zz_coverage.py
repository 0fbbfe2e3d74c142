"""The suite exercises the whole model: every operation succeeds somewhere and every modelled error is produced.

Runs last (by name) and only when the whole suite runs (CAIRN_FULL_SUITE=1, set by scripts/test.sh).
"""
import gzip
import json
import os
import subprocess
import sys

import botocore
import pytest

import conftest

MODEL = os.path.join(os.path.dirname(botocore.__file__), "data/servicediscovery/2017-03-14/service-2.json.gz")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# Modelled errors that cannot happen in Cairn: every operation completes within its request, so no second
# register/deregister/update can find one still in progress.
NOT_APPLICABLE = {
    ("DeregisterInstance", "DuplicateRequest"), ("DeregisterInstance", "ResourceInUse"),
    ("RegisterInstance", "ResourceInUse"), ("DeleteNamespace", "DuplicateRequest"),
    ("UpdateService", "DuplicateRequest"), ("UpdateHttpNamespace", "ResourceInUse"),
    ("UpdatePrivateDnsNamespace", "ResourceInUse"), ("UpdatePublicDnsNamespace", "ResourceInUse"),
    ("UpdateHttpNamespace", "DuplicateRequest"), ("UpdatePrivateDnsNamespace", "DuplicateRequest"),
    ("UpdatePublicDnsNamespace", "DuplicateRequest"), ("CreatePrivateDnsNamespace", "NamespaceAlreadyExists"),
    ("CreatePublicDnsNamespace", "NamespaceAlreadyExists"),
    # AWS documents no services-per-namespace quota, so CreateService has no limit to exceed.
    ("CreateService", "ResourceLimitExceeded"),
}


def test_service_model_table_is_current():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gen-model.py"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_every_operation_answers_and_validates(sd):
    model = json.load(gzip.open(MODEL))
    for op, spec in model["operations"].items():
        required = model["shapes"][spec["input"]["shape"]].get("required", [])
        if not required:
            continue
        method = getattr(sd, botocore.xform_name(op))
        with pytest.raises(botocore.exceptions.ClientError) as e:
            method()
        assert e.value.response["Error"]["Code"] == "InvalidInput", op


@pytest.mark.skipif(os.environ.get("CAIRN_FULL_SUITE") != "1", reason="needs the whole suite's calls")
def test_every_operation_and_modelled_error_was_exercised():
    model = json.load(gzip.open(MODEL))
    missing_ok = sorted(op for op in model["operations"] if (op, "OK") not in conftest.SEEN)
    assert not missing_ok, f"operations never called successfully: {missing_ok}"
    wanted = {(op, e["shape"]) for op, spec in model["operations"].items() for e in spec.get("errors", [])}
    missing = sorted(wanted - conftest.SEEN - NOT_APPLICABLE)
    assert not missing, f"modelled errors never produced: {missing}"
