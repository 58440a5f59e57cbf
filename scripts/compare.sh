#!/usr/bin/env bash
# The wallet beside the PostgreSQL baseline, in one run on one machine:
# these machines are shared and noisy, so only same-run ratios count.
#
#   scripts/compare.sh [PEER_RUN_SH]    # default ../shared/peers/postgres/run.sh
#
# Starts a wallet server on loopback with a fresh data directory, runs
# `wallet bench` (64 and 256 clients on the single-transfer endpoint, half
# of all transfers on one hot account with 32 clients, 4 clients sending
# batches of 8,190), each with --server-pid for the disk bytes per transfer,
# stops it, then runs the baseline script (skipped when it is missing) and
# prints a table with the ratios. DURATION (seconds per run, default 20)
# applies to both.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
peer=${1:-$root/../shared/peers/postgres/run.sh}
duration=${DURATION:-20}
. "$root/scripts/prerequisites.sh"
. "$root/scripts/server.sh"
require_build_packages
start_server compare

# bench LABEL [FLAGS]: one JSON report per line in $work/wallet.jsonl.
setup=()
bench() {
    local label=$1
    shift
    echo "== wallet bench: $label" >&2
    WALLET_TOKEN=$token "$wallet" bench --target "$url" --server-pid $server \
        --duration "$duration" --json "${setup[@]}" "$@" |
        sed "s/^{/{\"label\":\"$label\",/" >>"$work/wallet.jsonl"
    setup=(--skip-setup)
}
bench uniform_c64 --clients 64
bench uniform_c256 --clients 256
bench hot50_c32 --clients 32 --hot-share 0.5
bench batch8190_c4 --clients 4 --batch 8190
echo "== wallet status" >&2
curl -sf "$url/v1/cluster/status" -H "Authorization: Bearer $token" >"$work/status.json"
grep -E '^(VmHWM|VmRSS)' "/proc/$server/status" >"$work/rss.txt"
kill -TERM $server
wait $server || true

: >"$work/peer.tsv"
if [ -x "$peer" ]; then
    echo "== baseline: $peer" >&2
    CLIENTS="64 256" DURATION=$duration "$peer" >"$work/peer.log" 2>&1 ||
        { tail -20 "$work/peer.log" >&2; exit 1; }
    cp "${PGW_DIR:-/tmp/pgwallet}/results/summary.tsv" "$work/peer.tsv"
else
    echo "== no baseline at $peer: wallet figures only" >&2
fi

python3 - "$work/wallet.jsonl" "$work/peer.tsv" <<'PY'
import csv, json, sys
wallet = [json.loads(line) for line in open(sys.argv[1])]
peer = {row["run"]: float(row["tps"]) for row in csv.DictReader(open(sys.argv[2]), delimiter="\t")}
print(f"{'run':<14}{'wallet tx/s':>13}{'p99 ms':>9}{'disk B/tx':>11}{'postgres tx/s':>15}{'ratio':>8}")
for w in wallet:
    pg = peer.get(w["label"])
    ratio = f"{w['transfers_per_sec'] / pg:.2f}x" if pg else "-"
    print(f"{w['label']:<14}{w['transfers_per_sec']:>13,.0f}{w['latency']['p99_ms']:>9.1f}"
          f"{w['disk_bytes_per_transfer'] or 0:>11,.0f}{pg or 0:>15,.0f}{ratio:>8}")
PY
echo "server memory after the runs: $(tr -s ' \t\n' ' ' <"$work/rss.txt")"
