#!/bin/sh
# Builds the L3 images on L1 and saves them as one tar for the L2 image to
# load at its first boot (seed 001's bundle). No registry is involved.
#
# usage: docker/dind/build-bundle.sh OUTPUT_TAR
# env:   DIND_L3_IMAGE  the L3 image's name, on L1 and inside the bundle
#        (default dind-init-l3/busybox:latest, the name stage 20's stack runs)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
output=${1:?usage: build-bundle.sh OUTPUT_TAR}
busybox=${BUSYBOX:-$(command -v busybox || true)}
[ -n "$busybox" ] || { echo "build-bundle: no busybox on PATH: apt-get install busybox-static" >&2; exit 1; }

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$here/l3/Dockerfile" "$context/Dockerfile"
cp -L "$busybox" "$context/busybox"
l3=${DIND_L3_IMAGE:-dind-init-l3/busybox:latest}
docker build -q -t "$l3" "$context" >/dev/null
mkdir -p "$(dirname "$output")"
docker save -o "$output" "$l3"
echo "bundled $l3 into $output"
