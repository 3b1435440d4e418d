#!/bin/sh
# DinD step 6: a compose project inside the inner docker.
#
# start: `up -d` creates the project's containers the first time and starts
#        them again after a restore (their volumes live on /var/lib/docker).
# stop:  `stop`, not `down`: the containers and volumes stay, to be committed.
#        No `-t`: each service gets its own stop_grace_period (compose's
#        10 s where it sets none). Then the engine says how each of the
#        project's containers ended, and the stop fails (not commit-safe)
#        unless every one exited with code 0 or by its own stop signal (143
#        for SIGTERM) and was not OOM-killed: `stop` returns 0 even when it
#        had to SIGKILL, and a killed database comes back through crash
#        recovery. Keep the longest stop_grace_period inside dind-init's stop
#        timeout (DIND_INIT_STOP_TIMEOUT, 60 s).
#
# Settings (environment): DIND_COMPOSE_FILE (/opt/dind-stack/compose.yml),
# DIND_COMPOSE_PROJECT (stack).
set -eu
# shellcheck disable=SC1091 # written by 40-dockerd.sh: the inner engine's own socket, whatever DOCKER_HOST says
[ ! -f /run/dind-dockerd.env ] || . /run/dind-dockerd.env

file=${DIND_COMPOSE_FILE:-/opt/dind-stack/compose.yml}
project=${DIND_COMPOSE_PROJECT:-stack}

# Whether exit code CODE is a clean end for a container whose stop signal is
# SIGNAL (Config.StopSignal: a name with or without SIG, a number, or empty
# for SIGTERM): 0, or 128 + that signal's number.
clean_exit() {
    [ "$1" = 0 ] && return 0
    case "$1" in '' | *[!0-9]*) return 1 ;; esac
    [ "$1" -gt 128 ] || return 1
    signal=${2:-SIGTERM}
    signal=${signal#SIG}
    case "$signal" in
    *[!0-9]*) [ "$(kill -l "$(($1 - 128))" 2>/dev/null || true)" = "$signal" ] ;;
    *) [ "$(($1 - 128))" = "$signal" ] ;;
    esac
}

case "${1:-}" in
start)
    [ -f "$file" ] || { echo "no compose file at $file: nothing to start"; exit 0; }
    docker-compose -f "$file" -p "$project" up -d --no-build 2>&1
    ;;
stop)
    [ -f "$file" ] || exit 0
    docker-compose -f "$file" -p "$project" stop 2>&1
    ids=$(docker ps -aq --filter "label=com.docker.compose.project=$project" --filter label=com.docker.compose.oneoff=False)
    unclean=0 clean=
    for id in $ids; do
        ended=$(docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}} {{.Name}} {{.State.Running}} {{.State.ExitCode}} {{.State.OOMKilled}} {{.Config.StopSignal}}' "$id")
        # shellcheck disable=SC2086 # fields without spaces, the stop signal last (it may be empty)
        set -- $ended
        service=$1 name=${2#/} running=$3 code=$4 oom_killed=$5 stop_signal=${6:-}
        if [ "$running" = true ]; then
            echo "service $service (container $name) still runs after docker-compose stop: not commit-safe; stop it, or remove it if it is no longer in $file" >&2
        elif [ "$oom_killed" != false ] || ! clean_exit "$code" "$stop_signal"; then
            echo "service $service (container $name) did not stop cleanly (exit code $code, OOM-killed $oom_killed, stop signal ${stop_signal:-SIGTERM}): its data may need crash recovery; not commit-safe; give it a stop_grace_period long enough for its shutdown (or a stop_signal it acts on) in $file" >&2
        else
            clean="${clean:+$clean, }$name (exit code $code)"
            continue
        fi
        unclean=$((unclean + 1))
    done
    [ "$unclean" = 0 ] || exit 1
    echo "project $project stopped cleanly: ${clean:-no containers}"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
