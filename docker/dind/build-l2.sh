#!/bin/sh
# Builds the L2 base image offline: the Debian root file system with the
# inner docker (build-rootfs.sh, cached) plus the static dind-init.
#
# usage: docker/dind/build-l2.sh [TAG]   (default $DIND_L2_IMAGE, else dind-init/dind-l2:storage:
#        the image with the storage modes' packages and volume)
# env:   DIND_INIT_BIN (default: the musl release build)
#        DIND_ROOTFS_IMAGE  the root file system image (default dind-init/dind-rootfs:bookworm-3)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$(dirname "$here")")
tag=${1:-${DIND_L2_IMAGE:-dind-init/dind-l2:storage}}
rootfs=${DIND_ROOTFS_IMAGE:-dind-init/dind-rootfs:bookworm-3}
bin=${DIND_INIT_BIN:-$root/target/x86_64-unknown-linux-musl/release/dind-init}
[ -x "$bin" ] || { echo "build-l2: no dind-init binary at $bin: run 'make build' first" >&2; exit 1; }

"$here/build-rootfs.sh" "$rootfs"
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$here/l2/Dockerfile" "$context/Dockerfile"
cp -L "$bin" "$context/dind-init"
docker build -q --build-arg ROOTFS="$rootfs" -t "$tag" "$context" >/dev/null
echo "built $tag"
