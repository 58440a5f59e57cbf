#!/usr/bin/env bash
# Builds the state-machine component reproducibly from source.
#   guest-statemachine/release.sh [--features F]          rebuild and record
#                                                         it in releases/
#   guest-statemachine/release.sh [--features F] --check  rebuild and fail
#                                   unless the bytes equal the recorded release
# With `--features F` the release is the variant statemachine-<version>+F.wasm
# (for example F=daily-limit: the rules plus a daily outgoing limit).
# What pins the bytes: the toolchain (rust-toolchain.toml, which also brings
# the linker), Cargo.lock (--locked), the `guest` profile, and the path
# remapping below, so the same source gives the same bytes from any directory.
# releases/PROVENANCE names the commit each release was built from;
# scripts/check-releases.sh rebuilds every one of them from its commit.
set -euo pipefail

check=false
features=
while [ $# -gt 0 ]; do
    case $1 in
        --check) check=true ;;
        --features) features=$2; shift ;;
        *) echo "usage: $0 [--features F] [--check]" >&2; exit 2 ;;
    esac
    shift
done

root=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/guest-statemachine/Cargo.toml" | head -n 1)
release=$root/guest-statemachine/releases/statemachine-$version${features:++$features}.wasm
target_dir=${CARGO_TARGET_DIR:-$root/target}/guest
cargo_home=${CARGO_HOME:-$HOME/.cargo}

export CARGO_TARGET_DIR=$target_dir
export RUSTFLAGS="--remap-path-prefix=$root=/wallet --remap-path-prefix=$cargo_home=/cargo"
unset CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS
cd "$root"
cargo build --quiet --locked -p guest-statemachine --target wasm32-wasip2 --profile guest \
    ${features:+--features "$features"}
built=$target_dir/wasm32-wasip2/guest/guest_statemachine.wasm
hash=$(sha256sum "$built" | cut -d' ' -f1)

if $check; then
    recorded=$(cut -d' ' -f1 "$release.sha256")
    file_hash=$(sha256sum "$release" | cut -d' ' -f1)
    if [ "$hash" != "$recorded" ] || [ "$file_hash" != "$recorded" ]; then
        echo "release check FAILED: rebuilt $hash, recorded $recorded, file $file_hash" >&2
        exit 1
    fi
    echo "release check ok: $(basename "$release") rebuilds to $hash"
else
    cp "$built" "$release"
    (cd "$(dirname "$release")" && sha256sum "$(basename "$release")" > "$(basename "$release").sha256")
    echo "recorded $(basename "$release") $hash"
fi
