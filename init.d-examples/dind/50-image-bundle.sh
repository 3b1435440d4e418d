#!/bin/sh
# DinD step 5: load the images bundled into the L2 image (seed 001), once.
#
# The L2 image carries every L3 image as one `docker save` tar, so nothing is
# pulled. It is loaded on the first boot; a restored boot, or any boot that
# finds the marker on /var/lib/docker, already has the images.
#
# Settings (environment): DIND_BUNDLE (/opt/dind-bundle/images.tar).
set -eu

bundle=${DIND_BUNDLE:-/opt/dind-bundle/images.tar}
marker=/var/lib/docker/.dind-init-bundle-loaded

case "${1:-}" in
start)
    if [ "${DIND_INIT_RESTORED:-0}" = 1 ] || [ -e "$marker" ]; then
        echo "bundle already loaded: skipping (boot ${DIND_INIT_BOOT:-?}, restored=${DIND_INIT_RESTORED:-0})"
        exit 0
    fi
    if [ ! -f "$bundle" ]; then
        echo "no bundle at $bundle: nothing to load"
        exit 0
    fi
    docker load -q -i "$bundle"
    date -u +%Y-%m-%dT%H:%M:%SZ > "$marker"
    ;;
stop)
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
