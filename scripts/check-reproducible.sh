#!/bin/sh
# Builds the release binaries twice from the same commit, in two different
# checkouts (the second a `git worktree` elsewhere), and fails unless every
# byte is the same.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
first=$(mktemp -d)
second_tree=$(mktemp -d)/dind-init-second-checkout
trap 'git -C "$root" worktree remove --force "$second_tree" >/dev/null 2>&1 || true; rm -rf "$first"' EXIT

"$root/scripts/dist.sh" "$first/out" >/dev/null
git -C "$root" worktree add --detach "$second_tree" HEAD >/dev/null 2>&1
"$second_tree/scripts/dist.sh" "$first/again" >/dev/null
if cmp -s "$first/out/SHA256SUMS" "$first/again/SHA256SUMS"; then
    echo "reproducible: two builds of $(git -C "$root" rev-parse --short HEAD) in two checkouts are identical:"
    cat "$first/out/SHA256SUMS"
else
    echo "NOT reproducible:" >&2
    diff "$first/out/SHA256SUMS" "$first/again/SHA256SUMS" >&2
    exit 1
fi
