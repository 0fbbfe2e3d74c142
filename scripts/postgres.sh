#!/usr/bin/env bash
# Starts a throwaway PostgreSQL (Debian's postgresql) in a new temp directory on a free loopback port and prints
# its URL, postgres://cairn:cairn@127.0.0.1:PORT/cairn. `scripts/postgres.sh stop DIR` stops one. Used by the test
# command and the cluster bench; needs initdb (Debian package postgresql), installed by scripts/test.sh.
# As root it runs the server as the `postgres` user (initdb refuses root).
set -euo pipefail
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bindir/initdb" ] || { echo "postgres.sh: initdb not found (apt-get install postgresql)" >&2; exit 1; }
as_owner=()
[ "$(id -u)" -ne 0 ] || as_owner=(runuser -u postgres --)

if [ "${1:-}" = stop ]; then
  "${as_owner[@]}" "$bindir/pg_ctl" -D "$2/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$2"
  exit 0
fi

dir=$(mktemp -d /tmp/cairn-pg.XXXXXX)
chmod 755 "$dir"
[ ${#as_owner[@]} -eq 0 ] || chown postgres "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo cairn > "$dir/pw"
"${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -U cairn --pwfile="$dir/pw" -A scram-sha-256 --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
fsync = on
synchronous_commit = on
CONF
"${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null \
  || { cat "$dir/server.log" >&2; exit 1; }
PGPASSWORD=cairn "$bindir/psql" -h 127.0.0.1 -p "$port" -U cairn -d postgres -qc "CREATE DATABASE cairn" >/dev/null
echo "$dir postgres://cairn:cairn@127.0.0.1:$port/cairn"
