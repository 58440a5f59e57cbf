#!/usr/bin/env bash
# Audit replay speed over a long history: a long run, not part of the tests.
#
#   TRANSFERS=10000000 scripts/audit-bench.sh [SERVE_FLAGS...]   # about 6 minutes
#
# Starts a server with a fresh data directory and sends batches of 8,190
# transfers between ACCOUNTS accounts (10,000) until TRANSFERS were
# answered; stops it; then times `wallet audit` over the whole history,
# pinned to one core. The audit replays every batch through the rules
# component, re-encodes and compares every event record, re-chains the
# hashes and checks the sums and the read models. It prints the audit's
# commands per second and, as the baseline of the same run, how many times
# faster than the history was written it re-audits it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
transfers=${TRANSFERS:-10000000}
accounts=${ACCOUNTS:-10000}
. "$root/scripts/prerequisites.sh"
. "$root/scripts/server.sh"
require_build_packages
start_server audit "$@"

echo "== writing $transfers transfers in batches of 8,190" >&2
setup=()
written=0
seconds=0
while [ "$written" -lt "$transfers" ]; do
    WALLET_TOKEN=$token "$wallet" bench --target "$url" --accounts "$accounts" \
        --clients 4 --batch 8190 --duration 30 --json "${setup[@]}" >"$work/load.json"
    setup=(--skip-setup)
    read -r ok wall < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["transfers_ok"]+r["rejected"], r["wall_seconds"])' "$work/load.json")
    [ "$ok" -gt 0 ] || { echo "a round of load answered no transfer" >&2; exit 1; }
    written=$((written + ok))
    seconds=$(python3 -c "print($seconds + $wall)")
    echo "   $written transfers" >&2
done
kill -TERM $server
wait $server || true

echo "== wallet audit on one core" >&2
started=$(date +%s%N)
taskset -c 0 "$wallet" audit --data-dir "$work/data" --json >"$work/audit.json"
elapsed=$(( $(date +%s%N) - started ))

python3 - "$work/audit.json" "$elapsed" "$written" "$seconds" <<'PY'
import json, sys
audit = json.load(open(sys.argv[1]))
elapsed = int(sys.argv[2]) / 1e9
written, write_seconds = int(sys.argv[3]), float(sys.argv[4])
rate = audit["commands"] / elapsed
write_rate = written / write_seconds
print(f"history                 {audit['batches']:>14,} batches, {audit['commands']:,} commands, {audit['events']:,} events")
print(f"written at              {write_rate:>14,.0f} transfers/s (the server, every core)")
print(f"audit                   {elapsed:>14,.1f} s")
print(f"audit replay            {rate:>14,.0f} commands/s on one core")
print(f"audit / write rate      {rate / write_rate:>14,.2f}x")
PY
