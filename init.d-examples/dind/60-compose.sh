#!/bin/sh
# DinD step 6: a compose project inside the inner docker.
#
# start: `up -d` creates the project's containers the first time and starts
#        them again after a restore (their volumes live on /var/lib/docker).
# stop:  `stop`, not `down`: the containers and volumes stay, to be committed.
#
# Settings (environment): DIND_COMPOSE_FILE (/opt/dind-stack/compose.yml),
# DIND_COMPOSE_PROJECT (stack).
set -eu

file=${DIND_COMPOSE_FILE:-/opt/dind-stack/compose.yml}
project=${DIND_COMPOSE_PROJECT:-stack}

case "${1:-}" in
start)
    [ -f "$file" ] || { echo "no compose file at $file: nothing to start"; exit 0; }
    docker-compose -f "$file" -p "$project" up -d --no-build 2>&1
    ;;
stop)
    [ -f "$file" ] || exit 0
    docker-compose -f "$file" -p "$project" stop -t 10 2>&1
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
