#!/bin/sh
# The multi-arch checks of `make test`: both release binaries static and
# matching SHA256SUMS; the PID-namespace integration tests run on the
# shipped x86_64 binary natively and on the aarch64 one under qemu-user; the
# release images built, the amd64 one run, and the arm64 one run too where
# binfmt emulation can be enabled; the armv7 target tried.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

echo "== SHA256SUMS and static binaries"
(cd dist && sha256sum -c SHA256SUMS)
for binary in dist/dind-init-*; do
    file "$binary" | grep -q 'statically linked' || { file "$binary"; exit 1; }
done

# `cargo test` above ran them on the host's build (glibc); the binary that
# ships is the musl one, whose C library keeps other signals for itself.
echo "== integration tests on the shipped x86_64 (musl) binary (the Docker ones ran above)"
DIND_INIT_TEST_BIN=$root/dist/docker/amd64/dind-init cargo test --locked --test integration

echo "== integration tests on aarch64 under qemu-aarch64-static (the Docker ones need an aarch64 engine: ignored)"
# The emulator by its full path: a test that runs dind-init with a PATH of its own must still find it.
runner=$(command -v qemu-aarch64-static) || { echo "test-multiarch: no qemu-aarch64-static on PATH: scripts/setup test installs it" >&2; exit 1; }
DIND_INIT_TEST_BIN=$root/dist/docker/arm64/dind-init DIND_INIT_TEST_RUNNER=$runner \
    cargo test --locked --test integration

echo "== release images"
docker/build-release-images.sh
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
image=${RELEASE_IMAGE:-dind-init}
docker run --rm "$image:$version-amd64" --version | grep -q 'x86_64-unknown-linux-musl'
code=0
docker run --rm "$image:$version-amd64" -- /nonexistent 2>/dev/null || code=$?
[ "$code" = 127 ] || { echo "amd64 image: main command not found gave $code, not 127" >&2; exit 1; }
echo "amd64 image runs as PID 1"
if scripts/enable-arm64-emulation.sh; then
    docker run --rm --platform linux/arm64 "$image:$version-arm64" --version | grep -q 'aarch64-unknown-linux-musl'
    code=0
    docker run --rm --platform linux/arm64 "$image:$version-arm64" -- /nonexistent 2>/dev/null || code=$?
    [ "$code" = 127 ] || { echo "arm64 image: main command not found gave $code, not 127" >&2; exit 1; }
    echo "arm64 image runs as PID 1 under emulation"
else
    echo "arm64 image: built, NOT run (no binfmt emulation here, see above)"
fi

echo "== armv7"
if rustup target add armv7-unknown-linux-musleabihf >/dev/null 2>&1; then
    echo "armv7 target installed: not yet part of dist (see README)"
else
    echo "armv7-unknown-linux-musleabihf cannot be installed here: $(rustup target add armv7-unknown-linux-musleabihf 2>&1 | grep -m1 -o 'http request returned.*' || echo 'rustup failed')"
fi
