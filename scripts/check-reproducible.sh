#!/bin/sh
# Builds the release binaries of HEAD a second time, in another checkout (a
# `git worktree` in another directory), and fails unless every byte equals
# the first build in dist/ (made by scripts/dist.sh if it is not there).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$root/dist/SHA256SUMS" ] || "$root/scripts/dist.sh" >/dev/null
second=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$second/checkout" >/dev/null 2>&1 || true; rm -rf "$second"' EXIT

git -C "$root" worktree add --detach "$second/checkout" HEAD >/dev/null 2>&1
"$second/checkout/scripts/dist.sh" "$second/dist" >/dev/null
if cmp -s "$root/dist/SHA256SUMS" "$second/dist/SHA256SUMS"; then
    echo "reproducible: two builds of $(git -C "$root" rev-parse --short HEAD) in two checkouts are identical:"
    cat "$root/dist/SHA256SUMS"
else
    echo "NOT reproducible (is the work tree clean? dist/ must be built from HEAD):" >&2
    diff "$root/dist/SHA256SUMS" "$second/dist/SHA256SUMS" >&2
    exit 1
fi
