#!/usr/bin/env bash
# Fuzz the DNS parser and responder (seeded random mutation) for a given time.
# Usage: bench/fuzz-dns.sh [seconds, default 60] [seed, default random]. Exits 1 on any failure, printing the input.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product cairn-dns-fuzz >/dev/null
exec .build/release/cairn-dns-fuzz "${1:-60}" ${2:+"$2"}
