# Shared by the bench scripts: a scratch directory cleaned on exit, free loopback ports, waiting for a TCP port.
work=$(mktemp -d)
bench_pids=()
cleanup() { kill "${bench_pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; drop_cgroups; rm -rf "$work"; }
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
cpu_ticks() { # pid -> its user + system CPU so far, in clock ticks (1/100 s); the comm field may hold spaces
  local stat; stat=$(<"/proc/$1/stat"); stat=${stat##*) }; set -- $stat; echo $(( ${12} + ${13} ))
}
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
# A CPU budget for one process, as if it had a host of its own: a cgroup per process with a CPU quota, through
# cgroup v1's `cpu` controller or v2's `cpu.max`. `cg_kind` is empty when this host lets no such cgroup be made
# (the caller skips what needs one, and says so). Usage: limit_cpu PID CORES (again to change the budget);
# unlimit_cpu PID (back to no budget); drop_cgroups (at exit).
cg_kind=; cg_root=
if [ -w /sys/fs/cgroup/cpu ] && [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then cg_kind=v1; cg_root=/sys/fs/cgroup/cpu
elif [ -w /sys/fs/cgroup ] && grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then cg_kind=v2; cg_root=/sys/fs/cgroup
fi
limit_cpu() {
  local d="$cg_root/cairn-bench-$$-$1" quota
  quota=$(python3 -c "import sys; print(int(float(sys.argv[1]) * 100000))" "$2")
  mkdir -p "$d"
  if [ "$cg_kind" = v1 ]; then echo 100000 >"$d/cpu.cfs_period_us"; echo "$quota" >"$d/cpu.cfs_quota_us"
  else echo "$quota 100000" >"$d/cpu.max"; fi
  echo "$1" >"$d/cgroup.procs"
}
unlimit_cpu() { echo "$1" >"$cg_root/cgroup.procs"; }
drop_cgroups() { # a killed process may take a moment to leave its cgroup (it need not be this shell's child)
  [ -n "$cg_kind" ] || return 0
  local d
  for d in "$cg_root"/cairn-bench-$$-*; do
    [ -d "$d" ] || continue
    for _ in $(seq 100); do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
  done
}
