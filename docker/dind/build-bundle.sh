#!/bin/sh
# Builds L3 images on L1 and saves them as one tar, the bundle an L2 loads at
# its setup run (seed 001). No registry is involved.
#
# usage: docker/dind/build-bundle.sh OUTPUT_TAR [busybox|postgres ...]   (default busybox)
#   busybox   $DIND_L3_IMAGE (default dind-init-l3/busybox:latest, the name
#             stage 20's stack runs), a static busybox FROM scratch
#   postgres  dind-init-l3/postgres:15, PostgreSQL 15 from a debootstrapped
#             Debian (the rootfs is cached as dind-init-l3/postgres-rootfs:bookworm-2)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
output=${1:?usage: build-bundle.sh OUTPUT_TAR [busybox|postgres ...]}
shift
[ $# -gt 0 ] || set -- busybox

# Re-imports IMAGE as one layer (with the inner engine's vfs driver every
# layer is a full copy of the tree), then sets the configuration lines of
# DOCKERFILE again (ENV, USER, ...: no layer of their own).
squash() {
    container=$(docker create "$1")
    docker export "$container" | docker import - "$1" >/dev/null
    docker rm "$container" >/dev/null
    { echo "FROM $1"; grep -E '^(ENV|USER|STOPSIGNAL|ENTRYPOINT|CMD|WORKDIR) ' "$2"; } |
        docker build -q -t "$1" - >/dev/null
}

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
images=""
for kind in "$@"; do
    rm -rf "${context:?}"/*
    case "$kind" in
    busybox)
        busybox=${BUSYBOX:-$(command -v busybox || true)}
        [ -n "$busybox" ] || { echo "build-bundle: no busybox on PATH: apt-get install busybox-static" >&2; exit 1; }
        cp "$here/l3/Dockerfile" "$context/Dockerfile"
        cp -L "$busybox" "$context/busybox"
        image=${DIND_L3_IMAGE:-dind-init-l3/busybox:latest}
        docker build -q -t "$image" "$context" >/dev/null
        ;;
    postgres)
        rootfs=dind-init-l3/postgres-rootfs:bookworm-2
        "$here/build-rootfs.sh" "$rootfs" postgresql-15,procps
        cp "$here/l3-postgres/Dockerfile" "$here/l3-postgres/pg-entrypoint.sh" "$context/"
        image=dind-init-l3/postgres:15
        docker build -q --build-arg ROOTFS="$rootfs" -t "$image" "$context" >/dev/null
        squash "$image" "$here/l3-postgres/Dockerfile"
        ;;
    *)
        echo "build-bundle: unknown image '$kind': use busybox or postgres" >&2
        exit 2
        ;;
    esac
    images="$images $image"
done
mkdir -p "$(dirname "$output")"
# Saved aside, then renamed: an L2 loading the previous tar keeps reading it.
# shellcheck disable=SC2086 # a list of image names
docker save -o "$output.new.$$" $images
mv "$output.new.$$" "$output"
echo "bundled$images into $output ($(( $(stat -c %s "$output") / 1048576 )) MB)"
