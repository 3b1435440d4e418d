#!/bin/sh
# Release build: stripped static binaries for every shipped architecture,
# named dind-init-VERSION-ARCH, with a SHA256SUMS file, in OUTPUT_DIR
# (default dist/). Reproducible: source and cargo-home paths are remapped,
# nothing else of the build machine or time ends up in the bytes, so two
# builds of one commit are identical (scripts/check-reproducible.sh).
#
# aarch64 links with the toolchain's own rust-lld (see .cargo/config.toml):
# no cross compiler, nothing downloaded beyond `rustup target add`.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
output=${1:-$root/dist}
cargo_home=${CARGO_HOME:-$HOME/.cargo}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
targets="x86_64-unknown-linux-musl aarch64-unknown-linux-musl"

# RUSTFLAGS replaces (does not extend) the per-target flags of
# .cargo/config.toml, so they are repeated here with the remapping.
RUSTFLAGS="-C relocation-model=static -C target-feature=+crt-static --remap-path-prefix=$root=/src --remap-path-prefix=$cargo_home=/cargo"
export RUSTFLAGS

mkdir -p "$output"
rm -rf "$output"/dind-init-* "$output/SHA256SUMS" "$output/docker"
for target in $targets; do
    cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" \
        --target "$target" --target-dir "$root/target/dist"
    arch=${target%%-*}
    cp "$root/target/dist/$target/release/dind-init" "$output/dind-init-$version-$arch"
    # The same binary under Docker's name for the architecture, for
    # docker/release/Dockerfile's COPY docker/${TARGETARCH}/dind-init.
    case "$arch" in x86_64) docker_arch=amd64 ;; aarch64) docker_arch=arm64 ;; esac
    mkdir -p "$output/docker/$docker_arch"
    cp "$output/dind-init-$version-$arch" "$output/docker/$docker_arch/dind-init"
done
(cd "$output" && sha256sum dind-init-* > SHA256SUMS)
for binary in "$output"/dind-init-*; do
    file "$binary" | grep -q 'statically linked' || { file "$binary"; echo "dist: $binary is not static" >&2; exit 1; }
done
cat "$output/SHA256SUMS"
