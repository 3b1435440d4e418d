#!/bin/sh
# Runs an image, lets its init.d starts do the stage's runtime work, then
# commits the container as a new image with `dind-init snapshot --rm`
# (quiesce, refuse unless commit-safe, commit with labels, remove). The
# container is removed whatever happens.
#
# usage: commit.sh TMP_IMAGE IMAGE TIMEOUT_SECONDS SETUP [run flags...]
#   SETUP: a shell command run in the container (docker exec) after the
#          starts and before the quiesce; empty for none.
# env:   DIND_INIT  the host's dind-init (default: the musl release build)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
dind_init=${DIND_INIT:-$root/target/x86_64-unknown-linux-musl/release/dind-init}
tmp_image=$1 image=$2 timeout=$3 setup=$4
shift 4

say() { echo "commit: $*" >&2; }
fail() {
    say "$*"
    say "last log lines of the container:"
    docker logs --tail 40 "$container" >&2 2>&1 || true
    exit 1
}
[ -x "$dind_init" ] || { say "no dind-init at $dind_init: run 'make build' or set DIND_INIT"; exit 1; }

container=$(docker run -d "$@" "$tmp_image")
# -v: with its anonymous volumes (the DinD L2 image declares one).
trap 'docker rm -f -v "$container" >/dev/null 2>&1 || true' EXIT INT TERM

started=$(date +%s)
docker exec "$container" dind-init status --wait running --timeout "$timeout" >/dev/null \
    || fail "$tmp_image did not reach phase running"
docker exec "$container" dind-init status >/dev/null \
    || fail "a start script of $tmp_image failed (dind-init status is not healthy)"
if [ -n "$setup" ]; then
    docker exec "$container" sh -c "$setup" || fail "setup command failed: $setup"
fi
ready=$(date +%s)
"$dind_init" snapshot --engine docker --timeout "$timeout" --rm "$container" "$image" >/dev/null \
    || fail "dind-init snapshot did not commit $tmp_image"
say "committed $image (runtime work $((ready - started))s, total $(( $(date +%s) - started ))s)"
