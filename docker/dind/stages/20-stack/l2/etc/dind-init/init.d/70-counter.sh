#!/bin/sh
# DinD stage 20: an L3 container with restart policy `always` that counts its
# boots on a volume. Created once; after that the inner dockerd brings it
# back by itself at every start (this script only checks that it did).
set -eu
# shellcheck disable=SC1091 # written by 40-dockerd.sh: the inner engine's own socket, whatever DOCKER_HOST says
[ ! -f /run/dind-dockerd.env ] || . /run/dind-dockerd.env

case "${1:-}" in
start)
    if docker container inspect counter >/dev/null 2>&1; then
        echo "counter exists, state $(docker inspect -f '{{.State.Status}}' counter), boots $(docker exec counter cat /data/boots 2>/dev/null || echo ?)"
        exit 0
    fi
    docker run -d --init --name counter --restart always -v counter-data:/data dind-init-l3/busybox:latest \
        sh -c 'n=$(cat /data/boots 2>/dev/null || echo 0); echo $((n + 1)) > /data/boots; exec sleep 2147483647' >/dev/null
    echo "counter created"
    ;;
stop)
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
