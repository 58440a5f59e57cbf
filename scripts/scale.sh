#!/usr/bin/env bash
# Memory and restart time at scale: a long run, not part of the tests.
#
#   ACCOUNTS=1000000 LOAD=60 scripts/scale.sh [SERVE_FLAGS...]
#
# Starts a server with a fresh data directory, opens and funds ACCOUNTS
# accounts through the API (in batches of 8,190: under a minute per
# million), then sends batches of 8,190 for LOAD seconds. It reports the
# server's resident memory (anonymous, and mapped log segments), the log
# length and the data directory's size; then stops the server with SIGTERM and measures
# how long a restart takes to acknowledge a write; then kills it with
# SIGKILL in the middle of a batch load and measures the same again (that
# restart replays the Raft log from RocksDB's last flush).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
accounts=${ACCOUNTS:-1000000}
load=${LOAD:-60}
. "$root/scripts/prerequisites.sh"
. "$root/scripts/server.sh"
require_build_packages
start_server scale "$@"
flags=("$@")

bench() {
    WALLET_TOKEN=$token "$wallet" bench --target "$url" --accounts "$accounts" \
        --clients 4 --batch 8190 --json "$@"
}

# Milliseconds since the epoch.
now_ms() { date +%s%3N; }

# restart: starts the server again on the same data directory and sets
# `elapsed` to the milliseconds from spawn to the first acknowledged write.
restart() {
    local started body
    started=$(now_ms)
    serve "${flags[@]}"
    body='{"account_id":"bench-0","amount":"1","currency":"USD","transaction_id":"'$(cat /proc/sys/kernel/random/uuid)'"}'
    until [ "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$url/v1/wallet/deposit" \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$body")" = 200 ]; do
        kill -0 $server 2>/dev/null || { tail -5 "$work/stderr" >&2; exit 1; }
        sleep 0.005
    done
    elapsed=$(($(now_ms) - started))
}

echo "== setting up $accounts accounts, then $load s of batches" >&2
bench --duration "$load" >"$work/load.json"
status=$(curl -sf "$url/v1/cluster/status" -H "Authorization: Bearer $token")
field() { awk "/^$1:/{print \$2}" /proc/$server/status; }
rss=$(field VmRSS)
hwm=$(field VmHWM)
anon=$(field RssAnon)
mapped=$(field RssFile)

echo "== SIGTERM, then restart" >&2
kill -TERM $server
wait $server || true
restart
after_term=$elapsed

echo "== SIGKILL under a batch load, then restart" >&2
bench --skip-setup --duration 30 >/dev/null 2>&1 &
loader=$!
sleep 15
kill -KILL $server
wait $server 2>/dev/null || true
wait $loader 2>/dev/null || true
restart
after_kill=$elapsed
size=$(du -sm "$work/data" | cut -f1)

python3 - "$work/load.json" "$status" "$rss" "$hwm" "$anon" "$mapped" "$after_term" "$after_kill" "$size" <<'PY'
import json, sys
load = json.loads(open(sys.argv[1]).read())
status = json.loads(sys.argv[2])
rss, hwm, anon, mapped, term, kill, size = map(int, sys.argv[3:])
print(f"accounts                      {load['accounts']:>12,}")
print(f"log entries before restarts   {status['partitions'][0]['applied_index']:>12,}")
print(f"batch load                    {load['transfers_per_sec']:>12,.0f} transfers/s")
print(f"resident memory (VmRSS)       {rss / 1024:>12,.0f} MiB (peak {hwm / 1024:,.0f} MiB)")
print(f"  of which anonymous          {anon / 1024:>12,.0f} MiB (heap: caches, memtables, batches)")
print(f"  of which mapped files       {mapped / 1024:>12,.0f} MiB (log segments, the kernel's to drop)")
print(f"data directory                {size:>12,} MiB")
print(f"restart after SIGTERM         {term:>12,} ms to the first acknowledged write")
print(f"restart after SIGKILL         {kill:>12,} ms to the first acknowledged write")
PY
