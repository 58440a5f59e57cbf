#!/usr/bin/env bash
# Rebuilds every state-machine release from the commit it names and checks
# the bytes: an auditor can trust each version that ever ran, not only the
# newest. guest-statemachine/releases/PROVENANCE lists, per release, the
# commit it was built from and the arguments its build takes; each one is
# checked out in a scratch worktree and built by that commit's own
# guest-statemachine/release.sh. Needs the repository's history (not a
# shallow clone). A release file with no line in PROVENANCE fails.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
releases=$root/guest-statemachine/releases
provenance=$releases/PROVENANCE
scratch=${CARGO_TARGET_DIR:-$root/target}/provenance
tree=$scratch/tree

cleanup() {
    git -C "$root" worktree remove --force "$tree" 2>/dev/null || true
    git -C "$root" worktree prune
}
trap cleanup EXIT

for file in "$releases"/*.wasm; do
    name=$(basename "$file")
    if ! grep -q "^$name " "$provenance"; then
        echo "release check FAILED: $name has no line in PROVENANCE" >&2
        exit 1
    fi
done

status=0
while read -r -u 3 name commit args; do
    case $name in '' | '#'*) continue ;; esac
    if ! git -C "$root" cat-file -e "$commit^{commit}" 2>/dev/null; then
        echo "release check FAILED: $name names $commit, which this clone lacks" >&2
        exit 1
    fi
    cleanup
    mkdir -p "$scratch"
    git -C "$root" worktree add --quiet --detach "$tree" "$commit"
    # Its own recipe records the build in the scratch tree's releases/,
    # where that commit keeps its own copy: removed first, so a recipe that
    # builds another file (a wrong commit, an argument it ignores) fails.
    rm -f "$tree/guest-statemachine/releases/$name" "$tree/guest-statemachine/releases/$name.sha256"
    # shellcheck disable=SC2086 # the arguments are words
    CARGO_TARGET_DIR=$scratch/target "$tree/guest-statemachine/release.sh" $args >/dev/null
    if [ ! -f "$tree/guest-statemachine/releases/$name" ]; then
        echo "release check FAILED: the build at ${commit:0:12} makes no $name" >&2
        status=1
        continue
    fi
    rebuilt=$(sha256sum "$tree/guest-statemachine/releases/$name" | cut -d' ' -f1)
    recorded=$(cut -d' ' -f1 "$releases/$name.sha256")
    file=$(sha256sum "$releases/$name" | cut -d' ' -f1)
    if [ "$rebuilt" = "$recorded" ] && [ "$file" = "$recorded" ]; then
        echo "release check ok: $name rebuilds from ${commit:0:12} to $rebuilt"
    else
        echo "release check FAILED: $name from ${commit:0:12} rebuilds to $rebuilt;" \
            "recorded $recorded, file $file" >&2
        status=1
    fi
done 3<"$provenance"
exit $status
