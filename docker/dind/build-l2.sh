#!/bin/sh
# Builds the L2 base image offline: the Debian root file system with the
# inner docker (build-rootfs.sh, cached) plus the static dind-init.
#
# usage: docker/dind/build-l2.sh [TAG]   (default $DIND_L2_IMAGE, else dind-init/dind-l2:storage:
#        the image with the storage modes' packages and volume)
#        docker/dind/build-l2.sh --docker-dind TAG
#               l2/docker-dind.Dockerfile instead: an L2 like one FROM
#               docker:dind (VOLUME /var/lib/docker only, busybox sh and tools)
# env:   DIND_INIT_BIN (default: the musl release build)
#        DIND_ROOTFS_IMAGE  the root file system image (default dind-init/dind-rootfs:bookworm-3)
#        BUSYBOX  a static busybox for --docker-dind (default: busybox on PATH)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$(dirname "$here")")
dockerfile=$here/l2/Dockerfile
if [ "${1:-}" = --docker-dind ]; then
    dockerfile=$here/l2/docker-dind.Dockerfile
    tag=${2:?usage: build-l2.sh --docker-dind TAG}
else
    tag=${1:-${DIND_L2_IMAGE:-dind-init/dind-l2:storage}}
fi
rootfs=${DIND_ROOTFS_IMAGE:-dind-init/dind-rootfs:bookworm-3}
bin=${DIND_INIT_BIN:-$root/target/x86_64-unknown-linux-musl/release/dind-init}
[ -x "$bin" ] || { echo "build-l2: no dind-init binary at $bin: run 'make build' first" >&2; exit 1; }

"$here/build-rootfs.sh" "$rootfs"
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$dockerfile" "$context/Dockerfile"
cp -L "$bin" "$context/dind-init"
if [ "$dockerfile" = "$here/l2/docker-dind.Dockerfile" ]; then
    busybox=${BUSYBOX:-$(command -v busybox || true)}
    [ -n "$busybox" ] || { echo "build-l2: no busybox on PATH: apt-get install busybox-static" >&2; exit 1; }
    cp -L "$busybox" "$context/busybox"
fi
docker build -q --build-arg ROOTFS="$rootfs" -t "$tag" "$context" >/dev/null
echo "built $tag"
