#!/bin/sh
# DinD step 5: load bundled L3 images (seed 001) into the inner engine, once.
#
# The bundle is one or more `docker save` tars in /opt/dind-bundle, mounted
# read-only at the setup run (`-v DIR:/opt/dind-bundle:ro`; the stages'
# Makefiles do it) rather than copied into the image: a bind mount is not
# committed, so the images are stored once, as the inner engine's layers, and
# not a second time as a tar. Each tar is loaded once: a marker per tar
# content (its SHA-256, not its name: every stage's bundle is images.tar) in
# the inner engine's data root (so in every commit) says it was; a restored
# boot, which runs without the mount, finds nothing to load.
#
# Your own images, any time: docker save IMAGE | docker exec -i L2 docker load
#
# Settings (environment): DIND_BUNDLE (/opt/dind-bundle: a directory of tars, or one tar).
set -eu
# shellcheck disable=SC1091 # written by 40-dockerd.sh: the inner engine's own socket, whatever DOCKER_HOST says
[ ! -f /run/dind-dockerd.env ] || . /run/dind-dockerd.env

bundle=${DIND_BUNDLE:-/opt/dind-bundle}
DIND_DOCKER_ROOT=/var/lib/docker
# shellcheck disable=SC1091 # written at start by 30-docker-storage.sh
[ -f /run/dind-storage.env ] && . /run/dind-storage.env
markers=$DIND_DOCKER_ROOT/.dind-init-bundles

case "${1:-}" in
start)
    if [ -d "$bundle" ]; then
        set -- "$bundle"/*.tar
        [ -e "$1" ] || set --
    elif [ -f "$bundle" ]; then
        set -- "$bundle"
    else
        set --
    fi
    if [ $# -eq 0 ]; then
        echo "no bundle at $bundle: nothing to load (boot ${DIND_INIT_BOOT:-?}, restored=${DIND_INIT_RESTORED:-0})"
        exit 0
    fi
    mkdir -p "$markers"
    for tar in "$@"; do
        sum=$(sha256sum "$tar" | cut -d' ' -f1)
        marker=$markers/$sum.loaded
        if [ -e "$marker" ]; then
            echo "$(basename "$tar") (sha256 $sum) already loaded: skipping"
            continue
        fi
        docker load -q -i "$tar"
        echo "$(basename "$tar") $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$marker"
    done
    ;;
stop)
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
