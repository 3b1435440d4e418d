#!/bin/sh
# DinD step 6 (database example): PostgreSQL as an L3 container, its data on
# a named volume of the inner engine (so on /var/lib/docker, so in a commit).
#
# start: create the container the first time (the image's entrypoint runs
#        initdb on the empty volume), `docker start` it after a restore; wait
#        until it accepts connections (pg_isready).
# stop:  `docker stop` (the image's STOPSIGNAL SIGINT: fast shutdown, a
#        checkpoint, exit 0), then check how it ended: `docker stop` returns 0
#        even when it had to SIGKILL, and a killed database would come back
#        through crash recovery. Anything but exit code 0 fails the stop, so
#        the quiesce is not commit-safe.
#
# Settings (environment): DIND_PG_CONTAINER (pg), DIND_PG_IMAGE
# (dind-init-l3/postgres:15), DIND_PG_VOLUME (pgdata), DIND_PG_WAIT (seconds
# to wait for readiness, above 0, 120: inside dind-init's start timeout, 300),
# DIND_PG_STOP_TIMEOUT (seconds before Docker kills it, 30: inside
# dind-init's stop timeout, 60, so that this script still says why).
set -eu
# shellcheck disable=SC1091 # written by 40-dockerd.sh: the inner engine's own socket, whatever DOCKER_HOST says
[ ! -f /run/dind-dockerd.env ] || . /run/dind-dockerd.env

name=${DIND_PG_CONTAINER:-pg}
image=${DIND_PG_IMAGE:-dind-init-l3/postgres:15}
volume=${DIND_PG_VOLUME:-pgdata}
wait_seconds=${DIND_PG_WAIT:-120}

now() { cut -d' ' -f1 /proc/uptime; }
# Whether SECONDS have passed since START (both from now()).
passed() { awk -v start="$1" -v now="$(now)" -v limit="$2" 'BEGIN { exit !(now - start >= limit) }'; }
# The seconds left of LIMIT since START, at least 0.1 (`timeout 0` never ends).
left() { awk -v start="$1" -v now="$(now)" -v limit="$2" 'BEGIN { l = limit - (now - start); printf "%.1f\n", (l > 0.1 ? l : 0.1) }'; }

case "${1:-}" in
start)
    # `timeout 0` would never time out: the wait must have a bound.
    awk -v s="$wait_seconds" 'BEGIN { exit !(s ~ /^[0-9]+(\.[0-9]+)?$/ && s > 0) }' \
        || { echo "DIND_PG_WAIT=$wait_seconds: not a number of seconds above 0; set it to the readiness wait's bound (default 120)" >&2; exit 2; }
    if docker container inspect "$name" >/dev/null 2>&1; then
        docker start "$name" >/dev/null
    else
        docker image inspect "$image" >/dev/null 2>&1 \
            || { echo "no image $image in the inner engine: bundle it (docker/dind/build-bundle.sh) or docker load it" >&2; exit 1; }
        docker run -d --name "$name" --shm-size=256m -v "$volume:/var/lib/postgresql/data" "$image" >/dev/null
        echo "created container $name from $image, data on volume $volume"
    fi
    started=$(now)
    # The polling runs inside the L3, in one `docker exec` (each one is a
    # round trip through the inner engine, 0.1-0.2 s): ready shows within 50 ms.
    # An exec that fails early is tried again with what is left of the bound.
    until docker exec "$name" timeout "$(left "$started" "$wait_seconds")" sh -c 'until pg_isready -q; do sleep 0.05; done' 2>/dev/null; do
        if [ "$(docker inspect -f '{{.State.Running}}' "$name")" != true ]; then
            echo "postgres container $name exited during start-up:" >&2
            docker logs --tail 20 "$name" >&2 2>&1
            exit 1
        fi
        ! passed "$started" "$wait_seconds" || { echo "postgres in $name not ready within ${wait_seconds}s:" >&2; docker logs --tail 20 "$name" >&2 2>&1; exit 1; }
        sleep 0.1
    done
    echo "postgres ready in $name"
    ;;
stop)
    docker container inspect "$name" >/dev/null 2>&1 || exit 0
    docker stop -t "${DIND_PG_STOP_TIMEOUT:-30}" "$name" >/dev/null
    ended=$(docker inspect -f '{{.State.ExitCode}} {{.State.OOMKilled}}' "$name")
    code=${ended%% *} oom_killed=${ended#* }
    if [ "$code" != 0 ] || [ "$oom_killed" != false ]; then
        echo "postgres container $name did not shut down cleanly (exit code $code, OOM-killed $oom_killed): its data needs crash recovery; not commit-safe" >&2
        exit 1
    fi
    echo "postgres in $name shut down cleanly"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
