#!/usr/bin/env bash
# A state-machine version swapped under load: request errors and latency
# during the swap against a steady run of the same load, in one command.
#
#   DURATION=20 [RULES=daily-limit] [ACCOUNTS=10000] scripts/swap-bench.sh [SERVE_FLAGS...]
#
# Starts a server with a fresh data directory, measures DURATION seconds of
# single transfers from 64 clients (steady state), then the same load again
# while, from a quarter of the way in, `wallet sm` deploys the release
# statemachine-<version>+RULES.wasm (the daily limit by default;
# RULES=compact-accounts swaps to one whose migration rewrites every
# account at the switch), verifies it over the history written so far and
# activates it. Prints both runs' errors and latency, the ratios, and what
# a migration cost. About a minute.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
duration=${DURATION:-20}
release=$root/guest-statemachine/releases/statemachine-2.5.0+${RULES:-daily-limit}.wasm
. "$root/scripts/prerequisites.sh"
. "$root/scripts/server.sh"
require_build_packages
start_server swap "$@"

bench() {
    WALLET_TOKEN=$token "$wallet" bench --target "$url" --accounts "${ACCOUNTS:-10000}" \
        --clients 64 --duration "$duration" --json "$@"
}
sm() {
    local command=$1
    shift
    WALLET_TOKEN=$token "$wallet" sm "$command" --target "$url" "$@"
}

echo "== steady state, $duration s" >&2
bench >"$work/steady.json"
echo "== the same load, swapping versions from $((duration / 4)) s in" >&2
bench --skip-setup >"$work/swap.json" &
loader=$!
trap 'kill $loader 2>/dev/null || true; stop_server' EXIT
sleep $((duration / 4))
swap_started=$(date +%s%N)
sm deploy "$release" >&2
hash=$(sha256sum "$release" | cut -d' ' -f1)
sm verify "$hash" >&2
sm activate "$hash" >&2
swap_ms=$((($(date +%s%N) - swap_started) / 1000000))
wait $loader
active=$(curl -sf "$url/v1/cluster/status" -H "Authorization: Bearer $token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["partitions"][0]["active_version"])')
[ "$active" = "$hash" ] || { echo "the swap did not happen: $active is active" >&2; exit 1; }

python3 - "$work/steady.json" "$work/swap.json" "$swap_ms" <<'PY'
import json, sys
steady, swap = (json.load(open(p)) for p in sys.argv[1:3])
print(f"deploy + verify + activate took {int(sys.argv[3]):,} ms, inside the second run")
print(f"{'':18}{'steady':>12}{'with swap':>12}{'ratio':>8}")
def row(name, a, b, fmt):
    ratio = f"{b / a:.2f}x" if a else ""
    print(f"{name:18}{fmt.format(a):>12}{fmt.format(b):>12}{ratio:>8}")
row("transfers/s", steady["transfers_per_sec"], swap["transfers_per_sec"], "{:,.0f}")
row("errors", steady["errors"], swap["errors"], "{:,}")
row("throttled", steady["throttled"], swap["throttled"], "{:,}")
for q in ("p50_ms", "p99_ms", "p999_ms", "max_ms"):
    row(q, steady["latency"][q], swap["latency"][q], "{:.1f}")
PY
# The server logs how many records a migration rewrote and how long it took.
sed -e 's/\x1b\[[0-9;]*m//g' -n -e 's/.*migrated the state/migration at the switch:/p' "$work/stderr"
