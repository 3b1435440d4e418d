#!/bin/sh
# Builds the offline base image FROM scratch: Debian's static busybox and
# the static dind-init that cargo built on this host. No registry needed.
#
# usage: docker/build-base.sh [TAG]     (default: $DIND_INIT_BASE_IMAGE, else dind-init/base:latest)
# env:   DIND_INIT_BIN  the static binary (default: the musl release build)
#        BUSYBOX        a static busybox (default: busybox on PATH)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
tag=${1:-${DIND_INIT_BASE_IMAGE:-dind-init/base:latest}}
bin=${DIND_INIT_BIN:-$root/target/x86_64-unknown-linux-musl/release/dind-init}
busybox=${BUSYBOX:-$(command -v busybox || true)}

die() { echo "build-base: $*" >&2; exit 1; }
[ -x "$bin" ] || die "no dind-init binary at $bin: run 'cargo build --release --target x86_64-unknown-linux-musl' first"
[ -n "$busybox" ] || die "no busybox on PATH: apt-get install busybox-static"
file -L "$busybox" | grep -q 'statically linked' || die "$busybox is not static: apt-get install busybox-static"
file -L "$bin" | grep -q 'statically linked' || die "$bin is not statically linked"

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$here/base/Dockerfile" "$context/Dockerfile"
cp -L "$busybox" "$context/busybox"
cp -L "$bin" "$context/dind-init"
docker build -q -t "$tag" "$context" >/dev/null
echo "built $tag"
