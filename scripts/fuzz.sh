#!/bin/sh
# Runs every cargo fuzz target for SECONDS each (default 10: the short run of
# `make test`; `make fuzz` runs 300). New inputs libFuzzer finds go to a
# scratch directory, the seeds in fuzz/corpus/ are only read. Without
# -s none cargo fuzz would ask for a nightly compiler (AddressSanitizer);
# the targets are safe Rust, and what they look for is a panic.
#
# usage: scripts/fuzz.sh [SECONDS]
set -eu
seconds=${1:-10}
cd "$(dirname "$0")/../fuzz"
# scripts/setup installs it (make test runs setup first); make fuzz alone may not have.
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in control_request state_file storage_parsers; do
    mkdir -p "$scratch/$target"
    echo "fuzz: $target for ${seconds}s"
    status=0
    cargo fuzz run -s none "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" >"$scratch/$target.log" 2>&1 || status=$?
    grep -E '^Done [0-9]+ runs' "$scratch/$target.log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 30 "$scratch/$target.log" >&2
        echo "fuzz: $target failed (exit $status); a crashing input, if any, is in fuzz/artifacts/$target" >&2
        exit 1
    fi
done
