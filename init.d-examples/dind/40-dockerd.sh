#!/bin/sh
# DinD step 4: the inner dockerd.
#
# start: dockerd in the background (its log lines reach the container log
#        behind this script's name) with the storage driver and data root of
#        the storage mode (/run/dind-storage.env, written by
#        30-docker-storage.sh), a readiness wait on the API, and a check that
#        dockerd really uses that driver: a silent fallback (to vfs) would
#        copy every image in full, so fail loudly instead. A start that fails
#        stops the dockerd it started (SIGTERM, then SIGKILL) before it exits
#        non-zero: dind-init runs no stop for a failed start, and a dockerd
#        left running would write while the storage step saves its data.
# stop:  SIGTERM; dockerd stops its containers (those with restart policy
#        `always` come back at the next start; keep live-restore off) and its
#        containerd, then exits; wait until it is gone (DOCKERD_STOP_WAIT
#        seconds, then SIGKILL and a failed stop: not commit-safe).
#
# Settings (environment):
#   DOCKERD_FLAGS      replaces --log-level=warn (the storage driver and the
#                      data root are always given unless it names them)
#   DOCKERD_WAIT       seconds for the API to answer at start (60)
#   DOCKERD_STOP_WAIT  seconds for dockerd to exit at stop (40)
#   DIND_DOCKERD_IPTABLES  0: --iptables=false --ip6tables=false, for test
#                      environments whose L3 containers need no traffic to
#                      outside the L2 (no NAT: they reach only each other and
#                      the L2; published ports still work through
#                      docker-proxy); dockerd starts faster. Default 1.
set -eu

pidfile=/run/dind-dockerd.pid
wait_seconds=${DOCKERD_WAIT:-60}
stop_wait_seconds=${DOCKERD_STOP_WAIT:-40}
DIND_STORAGE_DRIVER=overlay2
DIND_DOCKER_ROOT=/var/lib/docker
# shellcheck disable=SC1091 # written at start by 30-docker-storage.sh
[ -f /run/dind-storage.env ] && . /run/dind-storage.env
driver_wanted=$DIND_STORAGE_DRIVER

now() { cut -d' ' -f1 /proc/uptime; }
# Whether SECONDS have passed since START (both from now()).
passed() { awk -v start="$1" -v now="$(now)" -v limit="$2" 'BEGIN { exit !(now - start >= limit) }'; }

# Whether PID is a dockerd of this container's own: named dockerd and in
# its pid namespace. A pid file may outlive its dockerd, and the processes of
# L3 containers (an L3's own dockerd among them) show in the L2's /proc.
is_our_dockerd() {
    [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = dockerd ] \
        && [ "$(readlink "/proc/$1/ns/pid" 2>/dev/null)" = "$(readlink /proc/self/ns/pid)" ]
}

# The pid the pid file names, if that process is our dockerd.
dockerd_pid() {
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    is_our_dockerd "$pid"
}

# SIGTERM, wait up to SECONDS, then SIGKILL; returns 1 when it needed SIGKILL.
stop_dockerd() {
    dockerd_pid || { rm -f "$pidfile"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    started=$(now)
    while [ -d "/proc/$pid" ] && [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ]; do
        if passed "$started" "$1"; then
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$pidfile"
            return 1
        fi
        sleep 0.1
    done
    rm -f "$pidfile"
}

fail_start() {
    echo "$*; stopping dockerd" >&2
    stop_dockerd 10 || echo "dockerd needed SIGKILL" >&2
    exit 1
}

case "${1:-}" in
start)
    if dockerd_pid; then
        echo "dockerd (pid $pid) of an earlier start still runs: not starting a second one on the same data; stop it (kill $pid) or restart the container" >&2
        exit 1
    fi
    # A pid file of a dockerd that died (--on-daemon-exit=restart skips
    # 20-runtime-cleanup.sh) would make the new one refuse to start.
    docker_pid=$(cat /var/run/docker.pid 2>/dev/null || true)
    [ -z "$docker_pid" ] || is_our_dockerd "$docker_pid" || rm -f /var/run/docker.pid
    flags=${DOCKERD_FLAGS:---log-level=warn}
    case " $flags" in *" --storage-driver"* | *" -s "*) ;; *) flags="$flags --storage-driver=$driver_wanted" ;; esac
    case " $flags" in *" --data-root"*) ;; *) flags="$flags --data-root=$DIND_DOCKER_ROOT" ;; esac
    [ "${DIND_DOCKERD_IPTABLES:-1}" != 0 ] || flags="$flags --iptables=false --ip6tables=false"
    # shellcheck disable=SC2086 # a list of flags
    dockerd $flags &
    echo $! > "$pidfile"
    started=$(now)
    until docker version >/dev/null 2>&1; do
        dockerd_pid || { echo "dockerd exited during start-up" >&2; rm -f "$pidfile"; exit 1; }
        ! passed "$started" "$wait_seconds" || fail_start "dockerd did not answer within ${wait_seconds}s"
        sleep 0.1
    done
    driver=$(docker info --format '{{.Driver}}') || fail_start "docker info failed"
    if [ "$driver" != "$driver_wanted" ]; then
        fail_start "storage driver is '$driver', not $driver_wanted (storage mode ${DIND_STORAGE:-?}): see 30-docker-storage.sh's log"
    fi
    # dockerd replaces DATA_ROOT/runtimes at every start by two renames,
    # which fail on a directory of the image's lower layers: "invalid
    # cross-device link" where it is kept, and, where it is removed first (as
    # 30-docker-storage.sh does), a fuse-overlayfs L1 shows it again after
    # the first rename ("rename .../gen-runtimes... .../runtimes: file
    # exists"). A commit without a quiesce (whose stop removes it) would put
    # it there; so it goes now, when empty (no runtime with arguments in
    # daemon.json writes into it), in the plain-file modes, whose data root
    # is committed.
    case "${DIND_STORAGE:-}" in
    vfs | fuse-overlayfs) rmdir "$DIND_DOCKER_ROOT/runtimes" 2>/dev/null || true ;;
    esac
    echo "dockerd ready (pid $(cat "$pidfile"), storage driver $driver, data root $DIND_DOCKER_ROOT$([ "${DIND_DOCKERD_IPTABLES:-1}" != 0 ] || echo ', no iptables'))"
    ;;
stop)
    if ! stop_dockerd "$stop_wait_seconds"; then
        echo "dockerd did not exit within ${stop_wait_seconds}s of SIGTERM: killed; its containers did not stop cleanly (not commit-safe)" >&2
        exit 1
    fi
    echo "dockerd stopped"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
