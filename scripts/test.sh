#!/usr/bin/env bash
# The README's test command: installs what the tests need if it is missing, builds, lints, runs the Swift
# unit tests and the conformance suite (boto3, the aws CLI) against real cairn processes, with a PostgreSQL it
# starts itself for the cluster tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "test dependencies"
missing=()
python3 -c 'import boto3, botocore' 2>/dev/null || missing+=(boto3)
python3 -c 'import pytest' 2>/dev/null || missing+=(pytest)
python3 -c 'import dns.message' 2>/dev/null || missing+=(dnspython)
python3 -c 'import prometheus_client' 2>/dev/null || missing+=(prometheus-client)
python3 -c 'import websocket' 2>/dev/null || missing+=(websocket-client)
command -v aws >/dev/null 2>&1 || missing+=(awscli)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} with pip"
  python3 -m pip install --quiet "${missing[@]}"
fi
debs=()
command -v dig >/dev/null 2>&1 || debs+=(bind9-dnsutils)           # dig, for the DNS tests
command -v chromium >/dev/null 2>&1 || debs+=(chromium)            # headless browser, for the console tests
command -v prometheus >/dev/null 2>&1 || debs+=(prometheus)        # a real Prometheus, for service discovery
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || debs+=(postgresql)  # the cluster store's tests
[ -x /usr/sbin/nsd ] || command -v nsd >/dev/null 2>&1 || debs+=(nsd)        # real secondaries, for zone transfers
[ -x /usr/sbin/knotd ] || command -v knotd >/dev/null 2>&1 || debs+=(knot)   # (Knot DNS too)
# DNSSEC validators that are not Cairn's: unbound, dnsviz (with pygraphviz for `dnsviz grok`), ldns-key2ds
[ -x /usr/sbin/unbound ] || command -v unbound >/dev/null 2>&1 || debs+=(unbound)
[ -x /usr/bin/dnsviz ] || debs+=(dnsviz)
/usr/bin/python3 -c "import pygraphviz" >/dev/null 2>&1 || debs+=(python3-pygraphviz)
command -v ldns-key2ds >/dev/null 2>&1 || debs+=(ldnsutils)
if [ ${#debs[@]} -gt 0 ]; then
  # As root directly; otherwise through sudo (which may ask for a password).
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  echo "installing ${debs[*]} with ${as_root[*]:+sudo }apt-get"
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get install -y -qq "${debs[@]}" >/dev/null 2>&1 \
    || { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" apt-get install -y -qq "${debs[@]}"; }
fi
python3 -c 'import botocore; print("botocore", botocore.__version__)'
dig -v 2>&1 | head -1
chromium --version 2>/dev/null
prometheus --version 2>&1 | head -1 || true
aws --version

step "PostgreSQL for the cluster tests (scripts/postgres.sh: a throwaway server in a temp dir, free port)"
pg_started=$(scripts/postgres.sh)
pg_dir=${pg_started%% *}
export CAIRN_TEST_POSTGRES=${pg_started#* }
trap 'scripts/postgres.sh stop "$pg_dir"' EXIT
echo "$CAIRN_TEST_POSTGRES (in $pg_dir)"

step "service model table is current (scripts/gen-model.py --check)"
python3 scripts/gen-model.py --check

step "lint (swift format)"
swift format lint --strict --recursive Package.swift Sources Tests

step "build"
swift build --build-tests

step "Swift unit tests"
swift test --skip-build

step "DNS fuzzing, 10 s (bench/fuzz-dns.sh runs longer)"
.build/debug/cairn-dns-fuzz 10

step "conformance suite (boto3 + aws CLI against a running cairn)"
export CAIRN_BIN="$PWD/.build/debug/cairn"
CAIRN_FULL_SUITE=1 python3 -m pytest -q -p no:cacheprovider Tests/conformance "$@"

step "conformance suite again, against 3-node clusters on PostgreSQL (every server a test starts is 3 nodes on a database of its own; each test talks to the next node once all have applied what came before)"
CAIRN_TEST_CLUSTER=3 CAIRN_FULL_SUITE=1 python3 -m pytest -q -p no:cacheprovider Tests/conformance "$@"
