# Shared by the bench scripts: a scratch directory cleaned on exit, free loopback ports, waiting for a TCP port.
work=$(mktemp -d)
bench_pids=()
cleanup() { kill "${bench_pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# A port free for both TCP and UDP (a DNS port needs both), so a server cannot fail to bind it.
free_port() {
  python3 - <<'PY'
import socket
while True:
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(port)
    break
PY
}
wait_for_tcp() { for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}x' if b else 'n/a')" "$1" "$2"; }
# NSD serving one zone file from $work on 127.0.0.1:PORT, one server process pinned to core 0, response rate
# limiting off (the benches measure the server, not its limiter). Usage: start_nsd PORT ZONE ZONEFILE
start_nsd() {
  cat >"$work/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1
  port: $1
  server-count: 1
  username: ""
  zonesdir: "$work"
  database: ""
  pidfile: "$work/nsd.pid"
  xfrdfile: "$work/xfrd.state"
  zonelistfile: "$work/zone.list"
  verbosity: 0
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: $2
  zonefile: $3
CONF
  taskset -c 0 nsd -d -c "$work/nsd.conf" >"$work/nsd.log" 2>&1 &
  bench_pids+=($!)
}
