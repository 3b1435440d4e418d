#!/bin/sh
# Builds the L3 images on L1 and saves them as one tar for the L2 image to
# load at its first boot (seed 001's bundle). No registry is involved.
#
# usage: docker/dind/build-bundle.sh OUTPUT_TAR
set -eu

here=$(cd "$(dirname "$0")" && pwd)
output=${1:?usage: build-bundle.sh OUTPUT_TAR}
busybox=${BUSYBOX:-$(command -v busybox || true)}
[ -n "$busybox" ] || { echo "build-bundle: no busybox on PATH: apt-get install busybox-static" >&2; exit 1; }

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$here/l3/Dockerfile" "$context/Dockerfile"
cp -L "$busybox" "$context/busybox"
docker build -q -t dind-init-l3/busybox:latest "$context" >/dev/null
mkdir -p "$(dirname "$output")"
docker save -o "$output" dind-init-l3/busybox:latest
echo "bundled dind-init-l3/busybox:latest into $output"
