#!/usr/bin/env bash
# Long-poll discovery's wake-up (issue 13): WAITERS calls (default 100) wait on one service of one node with
# X-Cairn-Index and X-Cairn-Wait; CHANGES registrations (default 200), one at a time, change that service, and one
# client process measures how long after each registration was acknowledged every waiting call was answered
# (p50/p99/max over all answers; it includes that client's own delay in reading them). Then the same with 1 waiter.
# Usage: bench/longpoll.sh   (env WAITERS=N CHANGES=N)
set -euo pipefail
cd "$(dirname "$0")/.."
WAITERS=${WAITERS:-100}
CHANGES=${CHANGES:-200}
python3 -c 'import boto3' 2>/dev/null || python3 -m pip install --quiet boto3
[ -n "${CAIRN_SKIP_BUILD:-}${CAIRN_BIN:-}" ] || swift build -c release --product cairn >/dev/null
CAIRN_BIN=${CAIRN_BIN:-.build/release/cairn}
source bench/lib.sh
port=$(free_port)
"$CAIRN_BIN" serve --dev --no-throttling --port "$port" --no-dns --data-dir "$work/data" --log-level warning &
bench_pids+=($!)
wait_for_tcp "$port"
service=$(python3 bench/load.py "http://127.0.0.1:$port" 10)
for waiters in "$WAITERS" 1; do
  python3 bench/longpoll_load.py 127.0.0.1 "$port" bench svc "$service" "$waiters" "$CHANGES" >"$work/longpoll.txt"
  val() { awk -v k="$1" '$1==k {print $2}' "$work/longpoll.txt"; }
  printf 'long-poll, %s waiting on one service, %s changes: acknowledged -> answered p50 %s ms, p99 %s ms, max %s ms  (answers %s of %s; not answered within 10 s: %s; errors: %s)\n' \
    "$waiters" "$CHANGES" "$(val p50_ms)" "$(val p99_ms)" "$(val max_ms)" "$(val answers)" "$(val expected)" \
    "$(val not_answered_within_10s)" "$(val failures)"
done
