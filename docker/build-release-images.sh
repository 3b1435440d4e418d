#!/bin/sh
# Builds the release images from dist/ without buildx or a registry: one
# image per architecture, dind-init:VERSION-ARCH, each labelled with its own
# platform, FROM scratch with nothing but the static binary at /dind-init
# (for `COPY --from=dind-init:VERSION /dind-init /usr/local/bin/dind-init`;
# it is also the image's entrypoint). The legacy builder cannot build a foreign-platform image FROM
# scratch ("does not match the specified platform"), and `docker import
# --platform` needs an experimental daemon, so the image is imported and its
# config's architecture is set through docker save / docker load.
#
# usage: docker/build-release-images.sh [DIST_DIR]
# env:   RELEASE_IMAGE  the images' repository (default dind-init): the tags
#                       are RELEASE_IMAGE:VERSION-amd64 and RELEASE_IMAGE:VERSION-arm64
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
dist=${1:-$root/dist}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)

for docker_arch in amd64 arm64; do
    binary=$dist/docker/$docker_arch/dind-init
    [ -x "$binary" ] || { echo "build-release-images: no $binary: run 'make dist' first" >&2; exit 1; }
    tag=${RELEASE_IMAGE:-dind-init}:$version-$docker_arch
    rootfs=$(mktemp -d)
    cp "$binary" "$rootfs/dind-init"
    tar -C "$rootfs" -c dind-init | docker import -c 'ENTRYPOINT ["/dind-init"]' - "$tag" >/dev/null
    rm -rf "$rootfs"
    if [ "$(docker image inspect -f '{{.Architecture}}' "$tag")" != "$docker_arch" ]; then
        work=$(mktemp -d)
        docker save -o "$work/image.tar" "$tag"
        python3 - "$work/image.tar" "$docker_arch" <<'PYTHON'
import hashlib, io, json, sys, tarfile
path, arch = sys.argv[1], sys.argv[2]
with tarfile.open(path) as tar:
    members = {m.name: (m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()}
manifest = json.loads(members["manifest.json"][1])
old = manifest[0]["Config"]
config = json.loads(members[old][1])
config["architecture"] = arch
if arch == "arm64":
    config["variant"] = "v8"
data = json.dumps(config, separators=(",", ":")).encode()
new = hashlib.sha256(data).hexdigest() + ".json"
manifest[0]["Config"] = new
del members[old]
members["manifest.json"] = (members["manifest.json"][0], json.dumps(manifest).encode())
members[new] = (tarfile.TarInfo(new), data)
with tarfile.open(path, "w") as tar:
    for name, (info, content) in members.items():
        info.name = name
        if content is None:
            tar.addfile(info)
        else:
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
PYTHON
        docker rmi "$tag" >/dev/null
        docker load -q -i "$work/image.tar" >/dev/null
        rm -rf "$work"
    fi
    echo "built $tag ($(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$tag"))"
done
