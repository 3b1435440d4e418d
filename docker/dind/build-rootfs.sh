#!/bin/sh
# Builds the L2 root file system offline: debootstrap of Debian (minbase)
# with Debian's docker.io and docker-compose, imported as an image. No
# registry: only Debian's package archive is reached. Skipped when the image
# exists already (pass --force to rebuild).
#
# usage: docker/dind/build-rootfs.sh [--force] [TAG [PACKAGES]]
#   TAG      default dind-init/dind-rootfs:bookworm-2 (bump the suffix when
#            the default package list changes, or the cache keeps the old one)
#   PACKAGES comma-separated, default: the L2's (docker.io, docker-compose,
#            fuse-overlayfs and rsync for the storage modes, e2fsprogs, ...)
# env:   DEBIAN_SUITE (bookworm), DEBIAN_MIRROR (http://deb.debian.org/debian)
set -eu

force=no
[ "${1:-}" = --force ] && { force=yes; shift; }
tag=${1:-dind-init/dind-rootfs:bookworm-2}
suite=${DEBIAN_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=${2:-docker.io,docker-compose,fuse-overlayfs,rsync,e2fsprogs,iptables,procps,ca-certificates}

if [ "$force" = no ] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag exists (build-rootfs.sh --force rebuilds it)"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "build-rootfs: no debootstrap: apt-get install debootstrap" >&2; exit 1; }

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap $suite ($packages) ..."
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
# Nothing of the build host's apt state or caches belongs in the image.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import - "$tag" >/dev/null
echo "built $tag"
