#!/usr/bin/env bash
# Throughput by partition count and cross-partition share, on one node:
#
#   DURATION=15 [ACCOUNTS=20000] [CLIENTS=64] [BATCH=0] [COORDINATION=tcc|saga] scripts/partition-bench.sh
#
# For 1, 2 and 4 partitions, starts a server with a fresh data directory,
# opens and funds ACCOUNTS accounts, then runs DURATION seconds of single
# transfers from CLIENTS clients (BATCH transfers per request; 0: the
# single-transfer endpoint) with 0%, 50% and 100% of them between two
# partitions. Prints transfers/s, p99 and the cores the server used per
# run, and each run's ratio to the first (1 partition, 0% across),
# measured in the same command.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
duration=${DURATION:-15}
accounts=${ACCOUNTS:-20000}
clients=${CLIENTS:-64}
batch=${BATCH:-0}
coordination=${COORDINATION:-tcc}
. "$root/scripts/prerequisites.sh"
. "$root/scripts/server.sh"
require_build_packages
results=$(mktemp)

# The server's CPU time so far, in clock ticks (user + system).
ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }

bench() {
    WALLET_TOKEN=$token "$wallet" bench --target "$url" --accounts "$accounts" \
        --clients "$clients" --batch "$batch" --json "$@"
}

run() {
    local partitions=$1 share=$2 before after
    before=$(ticks)
    bench --skip-setup --duration "$duration" --partitions "$partitions" --cross-share "$share" \
        >"$work/run.json"
    after=$(ticks)
    python3 - "$work/run.json" "$partitions" "$share" "$((after - before))" "$(getconf CLK_TCK)" <<'PY' >>"$results"
import json, sys
r = json.load(open(sys.argv[1]))
cores = int(sys.argv[4]) / int(sys.argv[5]) / r['wall_seconds']
print(sys.argv[2], sys.argv[3], r['transfers_per_sec'], r['latency']['p99_ms'], r['errors'], r['rejected'], f"{cores:.2f}")
PY
}

for partitions in 1 2 4; do
    if [ "$partitions" = 1 ]; then
        start_server partition-bench --partitions 1 --coordination "$coordination"
    else
        kill $server && wait $server 2>/dev/null || true
        rm -rf "$work/data"
        WALLET_ADMIN_TOKEN=$token serve --partitions "$partitions" --coordination "$coordination"
    fi
    echo "== $partitions partition(s): setting up $accounts accounts" >&2
    bench --duration 1 >/dev/null
    for share in 0 0.5 1; do
        [ "$partitions" = 1 ] && [ "$share" != 0 ] && continue
        echo "== $partitions partition(s), $share across, $duration s" >&2
        run "$partitions" "$share"
    done
done

python3 - "$results" "$coordination" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1])]
base = float(rows[0][2])
print(f"coordination: {sys.argv[2]}")
print(f"{'partitions':>10} {'across':>7} {'transfers/s':>12} {'ratio':>6} {'p99 ms':>8} {'errors':>7} {'refused':>8} {'server cores':>13}")
for partitions, share, tps, p99, errors, refused, cores in rows:
    print(f"{partitions:>10} {float(share):>7.0%} {float(tps):>12,.0f} {float(tps)/base:>6.2f} {float(p99):>8.1f} {errors:>7} {refused:>8} {cores:>13}")
PY
rm -f "$results"
