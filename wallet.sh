#!/usr/bin/env bash
# The two commands of the README, on a machine with only rustup and the OS
# package manager:
#
#   ./wallet.sh serve [FLAGS]   build and start a wallet (`wallet serve --help`)
#   ./wallet.sh test [ARGS]     build and run every test (`cargo test` ARGS)
#   ./wallet.sh COMMAND...      any other `wallet` command, e.g. `token list`
#
# Missing system packages (a C++ compiler and libclang, for RocksDB) are
# installed first with apt-get or dnf, through sudo when not root; rustup
# brings the pinned toolchain and the wasm32-wasip2 target on first use.
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
    "" | -h | --help)
        sed -n '2,11s/^# \{0,1\}//p' "$0"
        exit
        ;;
esac
. "$root/scripts/prerequisites.sh"
require_build_packages
cd "$root"

case "$1" in
    test)
        shift
        exec cargo test --release --locked --workspace "$@"
        ;;
    *)
        exec cargo run --release --locked --bin wallet -- "$@"
        ;;
esac
