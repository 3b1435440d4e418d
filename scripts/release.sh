#!/bin/sh
# Publishes the release image of dist/ (run `make dist` first) to a
# registry: REPOSITORY:VERSION-amd64 and REPOSITORY:VERSION-arm64, one per
# architecture (docker/build-release-images.sh), then the manifest list
# REPOSITORY:VERSION joining them, which is what users name in
# `COPY --from=REPOSITORY:VERSION /dind-init /usr/local/bin/dind-init`.
# Docker's own CLI only: no buildx, buildah or skopeo. A registry on a
# loopback address is plain HTTP (`docker manifest --insecure`).
#
# usage: scripts/release.sh REPOSITORY     (e.g. ghcr.io/OWNER/dind-init)
# env:   RELEASE_IMAGE  the local images' repository (default dind-init)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
repository=${1:?usage: scripts/release.sh REPOSITORY (e.g. ghcr.io/OWNER/dind-init)}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
local=${RELEASE_IMAGE:-dind-init}
case "$repository" in
127.* | localhost:* | localhost/*) insecure=--insecure ;;
*) insecure= ;;
esac

"$root/docker/build-release-images.sh"
for arch in amd64 arm64; do
    docker tag "$local:$version-$arch" "$repository:$version-$arch"
    docker push -q "$repository:$version-$arch"
done
docker manifest create $insecure "$repository:$version" \
    "$repository:$version-amd64" "$repository:$version-arm64" >/dev/null
docker manifest annotate "$repository:$version" "$repository:$version-arm64" \
    --os linux --arch arm64 --variant v8
# --purge: the client's local copy of the list goes once it is pushed.
docker manifest push --purge $insecure "$repository:$version"
echo "released $repository:$version (linux/amd64, linux/arm64/v8)"
(cd "$root/dist" && cat SHA256SUMS)
