#!/usr/bin/env bash
# Cairn's active health checker at scale: N instances (default 1,000 and 10,000) probed over HTTP every second
# against a local nginx. Prints probes/s achieved versus scheduled, the checker's lag, and the CPU Cairn used.
# Usage: bench/health.sh [seconds per measurement, default 20] [N ...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-20}
shift || true
COUNTS=("${@:-1000 10000}")
# shellcheck disable=SC2206
COUNTS=(${COUNTS[*]})

command -v nginx >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq nginx-light >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nginx-light; }
}
python3 -c 'import boto3' 2>/dev/null || python3 -m pip install --quiet boto3
[ -n "${CAIRN_SKIP_BUILD:-}${CAIRN_BIN:-}" ] || swift build -c release --product cairn >/dev/null
CAIRN_BIN=${CAIRN_BIN:-.build/release/cairn}  # another binary to measure (a before-build, say)
source bench/lib.sh

http_port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server { listen 127.0.0.1:$http_port backlog=8192; location / { return 200 "ok\n"; } }
}
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
bench_pids+=($!)
wait_for_tcp "$http_port"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)

for n in "${COUNTS[@]}"; do
  api_port=$(free_port)
  max=$(( n > 1000 ? n : 1000 ))
  printf 'limits:\n  instancesPerService: 1000\n  instancesPerNamespace: %d\n' "$max" >"$work/cairn-$n.yaml"
  "$CAIRN_BIN" serve --dev --no-throttling --port "$api_port" --no-dns --health-interval 1 --health-allow-loopback --data-dir "$work/data-$n" \
    --config "$work/cairn-$n.yaml" --log-level warning &
  pid=$!
  bench_pids+=("$pid")
  wait_for_tcp "$api_port"
  python3 bench/health_load.py "http://127.0.0.1:$api_port" "$n" "$http_port" >/dev/null
  sleep 3  # let the first round of probes (spread over one interval) settle
  checker() { curl -s "http://127.0.0.1:$api_port/cairn/v1/health-checker"; }
  p0=$(checker | python3 -c 'import json,sys; print(json.load(sys.stdin)["Probes"])')
  c0=$(cpu_ticks "$pid")
  sleep "$SECONDS_EACH"
  stats=$(checker)
  c1=$(cpu_ticks "$pid")
  python3 - "$n" "$SECONDS_EACH" "$p0" "$c0" "$c1" "$ticks_per_second" "$stats" <<'PY'
import json, sys
n, seconds, p0, c0, c1, hz, stats = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), json.loads(sys.argv[7])
rate = (stats["Probes"] - p0) / seconds
cores = (c1 - c0) / hz / seconds
print(f"health checks, {n} instances at 1 s: {rate:.0f} probes/s achieved of {n} scheduled ({rate / n * 100:.0f}%), "
      f"lag mean {stats['MeanLagSeconds'] * 1000:.1f} ms max {stats['MaxLagSeconds'] * 1000:.0f} ms, cairn CPU {cores:.2f} cores "
      f"({cores / max(rate, 1) * 10000:.2f} cores per 10,000 probes/s)")
PY
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
