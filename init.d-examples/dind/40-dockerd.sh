#!/bin/sh
# DinD step 4: the inner dockerd.
#
# start: dockerd in the background (its log lines reach the container log
#        behind this script's name) with the storage driver of the storage
#        mode (/run/dind-storage.env, written by 30-docker-storage.sh), a
#        readiness wait on the API, and a check that dockerd really uses that
#        driver: a silent fallback (to vfs) would copy every image in full,
#        so fail loudly instead.
# stop:  SIGTERM; dockerd stops its containers (those with restart policy
#        `always` come back at the next start; keep live-restore off) and its
#        containerd, then exits; wait until it is gone.
#
# Settings (environment): DOCKERD_FLAGS (--storage-driver=DRIVER --log-level=warn),
# DOCKERD_WAIT (seconds, 60).
set -eu

pidfile=/run/dind-dockerd.pid
wait_seconds=${DOCKERD_WAIT:-60}
DIND_STORAGE_DRIVER=overlay2
# shellcheck disable=SC1091 # written at start by 30-docker-storage.sh
[ -f /run/dind-storage.env ] && . /run/dind-storage.env
driver_wanted=$DIND_STORAGE_DRIVER

case "${1:-}" in
start)
    # shellcheck disable=SC2086 # DOCKERD_FLAGS is a list of flags
    dockerd ${DOCKERD_FLAGS:---storage-driver=$driver_wanted --log-level=warn} &
    echo $! > "$pidfile"
    tries=0
    until docker version >/dev/null 2>&1; do
        tries=$((tries + 1))
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "dockerd exited during start-up" >&2
            exit 1
        fi
        if [ "$tries" -ge $((wait_seconds * 10)) ]; then
            echo "dockerd did not answer within ${wait_seconds}s" >&2
            exit 1
        fi
        sleep 0.1
    done
    driver=$(docker info --format '{{.Driver}}')
    if [ "$driver" != "$driver_wanted" ]; then
        echo "storage driver is '$driver', not $driver_wanted (storage mode ${DIND_STORAGE:-?}): see 30-docker-storage.sh's log; stopping dockerd" >&2
        kill -TERM "$(cat "$pidfile")"
        exit 1
    fi
    echo "dockerd ready (pid $(cat "$pidfile"), storage driver $driver)"
    ;;
stop)
    [ -f "$pidfile" ] || exit 0
    pid=$(cat "$pidfile")
    if kill -TERM "$pid" 2>/dev/null; then
        while kill -0 "$pid" 2>/dev/null; do
            sleep 0.1
        done
    fi
    rm -f "$pidfile"
    echo "dockerd stopped"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
