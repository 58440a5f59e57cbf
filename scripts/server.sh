# Sourced by the scripts that need a live server: `start_server NAME
# [FLAGS]` builds `wallet`, starts it on loopback with a fresh data
# directory and an admin token of its own, and stops it when the script
# exits. It sets `wallet` (the binary), `work` (a scratch directory),
# `token`, `server` (the pid) and `url`. `serve [FLAGS]` starts it again on
# the same data directory (after the first has stopped).

start_server() {
    local name=$1
    shift
    cargo build --quiet --release --locked --bin wallet --manifest-path "$root/Cargo.toml"
    wallet=${CARGO_TARGET_DIR:-$root/target}/release/wallet
    work=$(mktemp -d)
    token=$name-$RANDOM$RANDOM
    trap stop_server EXIT
    WALLET_ADMIN_TOKEN=$token serve "$@"
}

# Starts the server on `$work/data` and waits (up to a minute) until it
# prints its address.
serve() {
    "$wallet" serve --data-dir "$work/data" --listen 127.0.0.1:0 "$@" \
        >"$work/stdout" 2>>"$work/stderr" &
    server=$!
    url=
    for _ in $(seq 1 6000); do
        url=$(sed -n 's/^listening on //p' "$work/stdout")
        [ -n "$url" ] && return
        kill -0 $server 2>/dev/null || { cat "$work/stderr" >&2; exit 1; }
        sleep 0.01
    done
    echo "the server did not start" >&2
    exit 1
}

# Under `set -e` a failing command in a trap would replace the exit status.
stop_server() {
    kill $server 2>/dev/null || true
    wait $server 2>/dev/null || true
    rm -rf "$work"
}
