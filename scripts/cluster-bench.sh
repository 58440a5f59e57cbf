#!/usr/bin/env bash
# A 3-member group beside a single node, in one run on one machine (all
# four processes share its cores and disk), and the time a leader's death
# costs writers:
#
#   scripts/cluster-bench.sh
#
# Runs `wallet bench` (64 and 256 clients on the single-transfer endpoint,
# 4 clients sending batches of 8,190) against a single node, then against
# the leader of a 3-member group on loopback, and prints throughput, p99
# and the group's share of the single node's throughput. Then kills the
# leader with SIGKILL ten times (restarting it and waiting for the group to
# converge each time) and reports the time from each kill to the first
# write a surviving member answers 200. DURATION (seconds per bench run,
# default 20) and KILLS (default 10).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
duration=${DURATION:-20}
kills=${KILLS:-10}
. "$root/scripts/prerequisites.sh"
. "$root/scripts/server.sh"
require_build_packages
start_server single

runs=("uniform_c64 --clients 64" "uniform_c256 --clients 256" "batch8190_c4 --clients 4 --batch 8190")
bench() {
    local out=$1 target=$2 bench_token=$3
    local setup=()
    for run in "${runs[@]}"; do
        set -- $run
        local label=$1
        shift
        echo "== $out: $label" >&2
        WALLET_TOKEN=$bench_token "$wallet" bench --target "$target" --duration "$duration" \
            --json "${setup[@]}" "$@" | sed "s/^{/{\"label\":\"$label\",/" >>"$work/$out.jsonl"
        setup=(--skip-setup)
    done
}
bench single "$url" "$token"
kill -TERM $server
wait $server || true

python3 - "$wallet" "$work" "$duration" "$kills" <<'PY'
import json, os, signal, socket, subprocess, sys, time, urllib.request, uuid

wallet, work, duration, kills = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
token = "cluster-bench-" + uuid.uuid4().hex
ports = []
for _ in range(3):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ports.append(s.getsockname()[1]); s.close()
peers = ",".join(f"{i + 1}=127.0.0.1:{p}" for i, p in enumerate(ports))
env = dict(os.environ, WALLET_ADMIN_TOKEN=token, WALLET_CLUSTER_SECRET=uuid.uuid4().hex * 2)
members = [None] * 3

def start(i):
    log = open(f"{work}/member{i + 1}.log", "ab")
    members[i] = subprocess.Popen(
        [wallet, "serve", "--node-id", str(i + 1), "--peers", peers, "--data-dir",
         f"{work}/member{i + 1}", "--listen", f"127.0.0.1:{ports[i]}"],
        env=env, stdout=subprocess.DEVNULL, stderr=log)

def call(i, path, body=None, timeout=10):
    request = urllib.request.Request(
        f"http://127.0.0.1:{ports[i]}{path}", method="POST" if body else "GET",
        data=json.dumps(body).encode() if body else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None
    except OSError:
        return None, None

def statuses():
    return [call(i, "/v1/cluster/status")[1] for i in range(3) if members[i]]

def converged():
    """The leader's index once every live member agrees on it and applied the same."""
    while True:
        seen = statuses()
        if all(seen) and len({s["partitions"][0]["leader"] for s in seen}) == 1 \
                and seen[0]["partitions"][0]["leader"] is not None \
                and len({s["partitions"][0]["applied_index"] for s in seen}) == 1:
            return seen[0]["partitions"][0]["leader"] - 1
        time.sleep(0.1)

for i in range(3):
    start(i)
leader = converged()
for run in ["uniform_c64 --clients 64", "uniform_c256 --clients 256", "batch8190_c4 --clients 4 --batch 8190"]:
    label, *flags = run.split()
    print(f"== group (leader {leader + 1}): {label}", file=sys.stderr)
    setup = [] if label == "uniform_c64" else ["--skip-setup"]
    out = subprocess.run([wallet, "bench", "--target", f"http://127.0.0.1:{ports[leader]}",
                          "--duration", duration, "--json", *setup, *flags],
                         env=dict(os.environ, WALLET_TOKEN=token), check=True,
                         capture_output=True, text=True).stdout
    report = json.loads(out)
    report["label"] = label
    open(f"{work}/group.jsonl", "a").write(json.dumps(report) + "\n")

print(f"== failover: {kills} kills of the leader", file=sys.stderr)
while call(0, "/v1/wallet/accounts", {"account_id": "failover"})[0] not in (201, 409):
    time.sleep(0.1)
times = []
for k in range(kills):
    leader = converged()
    others = [i for i in range(3) if i != leader]
    members[leader].send_signal(signal.SIGKILL)
    members[leader].wait()
    killed = time.monotonic()
    members[leader] = None
    n = 0
    while True:
        body = {"account_id": "failover", "amount": "1.00", "currency": "USD",
                "transaction_id": str(uuid.uuid4())}
        status, _ = call(others[n % 2], "/v1/wallet/deposit", body, timeout=5)
        n += 1
        if status == 200:
            break
        time.sleep(0.01)
    times.append(time.monotonic() - killed)
    print(f"   kill {k + 1}: first write after {times[-1] * 1000:.0f} ms", file=sys.stderr)
    start(leader)
leader = converged()
for member in members:
    member.send_signal(signal.SIGTERM)
    member.wait()
json.dump({"failover_ms": [t * 1000 for t in times]}, open(f"{work}/failover.json", "w"))
PY

python3 - "$work" <<'PY'
import json, statistics, sys
work = sys.argv[1]
single = {r["label"]: r for r in map(json.loads, open(f"{work}/single.jsonl"))}
group = {r["label"]: r for r in map(json.loads, open(f"{work}/group.jsonl"))}
print(f"{'run':<14}{'single tx/s':>13}{'p99 ms':>8}{'3-member tx/s':>15}{'p99 ms':>8}{'share':>8}")
for label, g in group.items():
    s = single[label]
    share = g["transfers_per_sec"] / s["transfers_per_sec"]
    print(f"{label:<14}{s['transfers_per_sec']:>13,.0f}{s['latency']['p99_ms']:>8.1f}"
          f"{g['transfers_per_sec']:>15,.0f}{g['latency']['p99_ms']:>8.1f}{share:>8.0%}")
times = json.load(open(f"{work}/failover.json"))["failover_ms"]
print(f"failover, leader SIGKILL to first write answered 200, {len(times)} kills: "
      f"p50 {statistics.median(times):.0f} ms, max {max(times):.0f} ms")
PY
