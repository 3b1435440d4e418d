#!/bin/sh
# Builds the L2 root file system offline: debootstrap of Debian (minbase)
# with Debian's docker.io and docker-compose, imported as an image. No
# registry: only Debian's package archive is reached. Skipped when the image
# exists already (pass --force to rebuild).
#
# usage: docker/dind/build-rootfs.sh [--force] [TAG [PACKAGES]]
#   TAG      default $DIND_ROOTFS_IMAGE, else dind-init/dind-rootfs:bookworm-3 (bump the suffix when
#            the default package list changes, or the cache keeps the old one)
#   PACKAGES comma-separated, default: the L2's (docker.io, docker-compose,
#            fuse-overlayfs, rsync and attr for the storage modes, e2fsprogs, ...)
# env:   DEBIAN_SUITE (bookworm), DEBIAN_MIRROR (http://deb.debian.org/debian)
set -eu

force=no
[ "${1:-}" = --force ] && { force=yes; shift; }
tag=${1:-${DIND_ROOTFS_IMAGE:-dind-init/dind-rootfs:bookworm-3}}
suite=${DEBIAN_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=${2:-docker.io,docker-compose,fuse-overlayfs,rsync,attr,e2fsprogs,iptables,procps,ca-certificates}

if [ "$force" = no ] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag exists (build-rootfs.sh --force rebuilds it)"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "build-rootfs: no debootstrap: apt-get install debootstrap" >&2; exit 1; }

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
# mktemp's 0700 would become the mode of the image's "/": invisible on an
# overlay driver (the merged root is the upper directory), but with vfs a
# container's root would be 0700 and a non-root L3 process could not reach
# anything.
chmod 755 "$rootfs"
echo "debootstrap $suite ($packages) ..."
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
# Nothing of the build host's apt state or caches belongs in the image.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import - "$tag" >/dev/null
echo "built $tag"
