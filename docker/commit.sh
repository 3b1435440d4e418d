#!/bin/sh
# Runs an image, lets its init.d starts do the stage's runtime work, quiesces
# it with dind-init and commits the container as a new image. Refuses to
# commit unless dind-init reports the container commit-safe; the container
# is removed whatever happens.
#
# usage: commit.sh TMP_IMAGE IMAGE TIMEOUT_SECONDS SETUP [docker run flags...]
#   SETUP: a shell command run in the container (docker exec) after the
#          starts and before the quiesce; empty for none.
set -eu

tmp_image=$1 image=$2 timeout=$3 setup=$4
shift 4

say() { echo "commit: $*" >&2; }
fail() {
    say "$*"
    say "last log lines of the container:"
    docker logs --tail 40 "$container" >&2 2>&1 || true
    exit 1
}

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
docker exec "$container" dind-init quiesce --timeout "$timeout" \
    || fail "quiesce did not report commit-safe: not committing"
docker commit "$container" "$image" >/dev/null
say "committed $image (runtime work $((ready - started))s, total $(( $(date +%s) - started ))s)"
